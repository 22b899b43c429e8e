use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig,
};
use envoy_types::pb::envoy::config::core::v3::TransportSocket;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as FilterConfig;
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, UpstreamTlsContext,
};
use prost::Name;

use super::*;
use crate::envoy::{any, xds_config_source};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn canonical<M: prost::Message + Name>(m: &M) -> Result<Vec<u8>, JsonError> {
    canonical_bytes(&M::full_name(), m)
}

fn cluster(source: &ConfigSource) -> Cluster {
    Cluster {
        name: "default/kuard/80/da39a3ee5e".into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(source.clone()),
            service_name: "default/kuard/http".into(),
        }),
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(ConfigType::TypedConfig(any(&UpstreamTlsContext {
                common_tls_context: Some(CommonTlsContext {
                    tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                        name: "default/client".into(),
                        sds_config: Some(source.clone()),
                    }],
                    ..Default::default()
                }),
                sni: "kuard".into(),
                ..Default::default()
            }))),
        }),
        ..Default::default()
    }
}

fn listener(source: &ConfigSource, hosts: usize) -> Listener {
    let hcm = |route: String| Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(FilterConfig::TypedConfig(any(&HttpConnectionManager {
            stat_prefix: "https".into(),
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                config_source: Some(source.clone()),
                route_config_name: route,
            })),
            ..Default::default()
        }))),
    };
    Listener {
        name: "ingress_https".into(),
        filter_chains: (0..hosts)
            .map(|i| FilterChain {
                filters: vec![hcm(format!("https/host{i}.example.com"))],
                transport_socket: Some(TransportSocket {
                    name: "envoy.transport_sockets.tls".into(),
                    config_type: Some(ConfigType::TypedConfig(any(&DownstreamTlsContext {
                        common_tls_context: Some(CommonTlsContext {
                            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                                name: format!("default/cert{i}"),
                                sds_config: Some(source.clone()),
                            }],
                            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn eds_and_sds_references_of_a_cluster_point_at_the_ads_stream() -> TestResult {
    let ads = ads_form(
        &Cluster::full_name(),
        &canonical(&cluster(&xds_config_source()))?,
    )?;
    assert_eq!(ads, Some(canonical(&cluster(&ads_config_source()))?));
    Ok(())
}

#[test]
fn rds_and_sds_references_inside_any_payloads_of_a_listener_are_replaced() -> TestResult {
    for hosts in [1, 3, 200] {
        let translated = canonical(&listener(&xds_config_source(), hosts))?;
        let ads = ads_form(&Listener::full_name(), &translated)?;
        assert_eq!(
            ads,
            Some(canonical(&listener(&ads_config_source(), hosts))?),
            "{hosts} filter chains"
        );
    }
    Ok(())
}

#[test]
fn resources_without_the_translated_source_have_no_ads_form() -> TestResult {
    let route = RouteConfiguration {
        name: "ingress_http".into(),
        ..Default::default()
    };
    assert_eq!(
        ads_form(&RouteConfiguration::full_name(), &canonical(&route)?)?,
        None
    );
    // A source that is not Contour's own (another cluster) is left alone.
    let mut other = xds_config_source();
    if let Some(ConfigSourceSpecifier::ApiConfigSource(api)) = &mut other.config_source_specifier {
        api.grpc_services.clear();
    }
    assert_eq!(
        ads_form(&Cluster::full_name(), &canonical(&cluster(&other))?)?,
        None
    );
    // Already in ADS form: nothing to do.
    let ads = canonical(&cluster(&ads_config_source()))?;
    assert_eq!(ads_form(&Cluster::full_name(), &ads)?, None);
    // A type the descriptors do not know is passed over.
    assert_eq!(ads_form("no.such.Type", b"\x0a\x01x")?, None);
    Ok(())
}

#[test]
fn truncated_or_garbled_bytes_are_errors_not_panics() -> TestResult {
    let translated = canonical(&listener(&xds_config_source(), 2))?;
    for cut in 1..translated.len() {
        // Any prefix either rewrites, has nothing to rewrite, or is an
        // error: it never panics.
        let _ = ads_form(&Listener::full_name(), &translated[..cut]);
    }
    for bad in [
        &b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        b"\x0b",
        b"\x0a\x05ab",
    ] {
        assert!(ads_form(&Listener::full_name(), bad).is_err(), "{bad:?}");
    }
    Ok(())
}
