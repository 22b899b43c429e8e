//! Listeners: `ingress_http` (HTTP, RDS `ingress_http`) and `ingress_https`
//! (one filter chain per SNI name, RDS `https/<fqdn>`, certificates by SDS).

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TransportSocket, address, socket_address::PortSpecifier,
    transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener as EnvoyListener, ListenerFilter, filter,
    listener_filter,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier, http_filter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters, common_tls_context,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::protobuf::BoolValue;

use super::{ads_config_source, any};
use crate::dag::{Dag, Listener, SecureVirtualHost, TlsVersion};

/// Listeners of the DAG, sorted by name.
pub fn listeners(dag: &Dag) -> Vec<EnvoyListener> {
    dag.listeners.values().map(listener).collect()
}

fn listener(l: &Listener) -> EnvoyListener {
    let mut out = EnvoyListener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        ..Default::default()
    };
    if !l.virtual_hosts.is_empty() {
        out.filter_chains.push(FilterChain {
            filters: vec![http_connection_manager(&l.name, &l.name)],
            ..Default::default()
        });
    }
    if !l.secure_virtual_hosts.is_empty() {
        out.listener_filters.push(ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                &TlsInspector::default(),
            ))),
            ..Default::default()
        });
        for (fqdn, svh) in &l.secure_virtual_hosts {
            out.filter_chains.push(secure_chain(&l.name, fqdn, svh));
        }
    }
    out
}

fn secure_chain(listener: &str, fqdn: &str, svh: &SecureVirtualHost) -> FilterChain {
    let secret = svh
        .secret
        .as_ref()
        .map(|s| super::secret::secret_name(s))
        .unwrap_or_default();
    let version = |v: TlsVersion| match v {
        TlsVersion::V1_2 => TlsProtocol::TlSv12 as i32,
        TlsVersion::V1_3 => TlsProtocol::TlSv13 as i32,
    };
    let tls = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(TlsParameters {
                tls_minimum_protocol_version: version(svh.min_tls_version),
                tls_maximum_protocol_version: version(svh.max_tls_version),
                ..Default::default()
            }),
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: secret,
                sds_config: Some(ads_config_source()),
            }],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            validation_context_type: None::<common_tls_context::ValidationContextType>,
            ..Default::default()
        }),
        ..Default::default()
    };
    FilterChain {
        filter_chain_match: Some(FilterChainMatch {
            server_names: vec![fqdn.to_string()],
            ..Default::default()
        }),
        filters: vec![http_connection_manager(listener, &format!("https/{fqdn}"))],
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(any(&tls))),
        }),
        ..Default::default()
    }
}

fn http_connection_manager(stat_prefix: &str, route_config: &str) -> Filter {
    let hcm = HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: route_config.to_string(),
        })),
        http_filters: http_filters(),
        use_remote_address: Some(BoolValue { value: true }),
        normalize_path: Some(BoolValue { value: true }),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.http_connection_manager".into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
    }
}

fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// The HTTP filters, in upstream's order; the router is always last. CORS,
/// rate limit and RBAC do nothing unless a host or route configures them.
fn http_filters() -> Vec<HttpFilter> {
    let filter = |name: &str, config: Any| HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    vec![
        filter(super::policy::CORS, any(&Cors::default())),
        filter(
            super::policy::LOCAL_RATELIMIT,
            any(&LocalRateLimit {
                stat_prefix: "http".into(),
                ..Default::default()
            }),
        ),
        filter(super::policy::RBAC, any(&Rbac::default())),
        filter("envoy.filters.http.router", any(&Router::default())),
    ]
}
