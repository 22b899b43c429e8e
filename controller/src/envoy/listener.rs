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
    HttpConnectionManager, HttpFilter, Rds,
    http_connection_manager::{
        ForwardClientCertDetails, RouteSpecifier, SetCurrentClientCertDetails,
    },
    http_filter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, TlsParameters,
    tls_parameters::TlsProtocol,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::protobuf::BoolValue;

use super::{any, xds_config_source};
use crate::dag::{
    AccessLog, AccessLogFormat, ClientCertificateDetails, Dag, DownstreamValidation, Layout,
    Listener, SecureVirtualHost, TlsSecret, TlsVersion, WeightedCluster,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};

/// Listeners of the DAG, sorted by name.
pub fn listeners(dag: &Dag) -> Vec<EnvoyListener> {
    dag.listeners.values().map(listener).collect()
}

fn listener(l: &Listener) -> EnvoyListener {
    let (mut out, at) = listener_shell(l);
    let chains = l
        .secure_virtual_hosts
        .iter()
        .map(|(fqdn, svh)| secure_chain(&l.name, l.access_log.as_ref(), fqdn, svh));
    out.filter_chains.splice(at..at, chains);
    out
}

/// The listener without the chains of its TLS virtual hosts, and the index
/// in `filter_chains` where those go (one per host, in fqdn order).
pub fn listener_shell(l: &Listener) -> (EnvoyListener, usize) {
    let mut out = EnvoyListener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        ..Default::default()
    };
    if !l.virtual_hosts.is_empty() {
        out.filter_chains.push(FilterChain {
            filters: vec![http_connection_manager(
                &l.name,
                Routes::of(l),
                None,
                l.access_log.as_ref(),
            )],
            ..Default::default()
        });
    }
    let at = out.filter_chains.len();
    if !l.secure_virtual_hosts.is_empty() {
        out.listener_filters.push(ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                &TlsInspector::default(),
            ))),
            ..Default::default()
        });
        // Upstream sorts chains without server names last.
        out.filter_chains.extend(fallback_chain(&l.name, l));
    }
    (out, at)
}

/// Name of the route configuration of the fallback certificate's chain.
pub const FALLBACK_ROUTE_CONFIG: &str = "ingress_fallbackcert";

/// The chain of one TLS virtual host.
pub fn secure_chain(
    listener: &str,
    access_log: Option<&AccessLog>,
    fqdn: &str,
    svh: &SecureVirtualHost,
) -> FilterChain {
    // Passthrough (a TCP proxy without a certificate) leaves TLS to the backend.
    let transport_socket = svh.secret.as_ref().map(|s| {
        downstream_tls(
            s,
            svh.min_tls_version,
            svh.max_tls_version,
            svh.downstream_validation.as_ref(),
            alpn(svh),
        )
    });
    let filter = match &svh.tcp_proxy {
        Some(clusters) => tcp_proxy_filter(listener, clusters),
        None => http_connection_manager(
            listener,
            Routes::Rds(&format!("https/{fqdn}")),
            forwarded_client_cert(svh),
            access_log,
        ),
    };
    FilterChain {
        filter_chain_match: Some(FilterChainMatch {
            server_names: vec![fqdn.to_string()],
            ..Default::default()
        }),
        filters: vec![filter],
        transport_socket,
        ..Default::default()
    }
}

/// The chain for TLS clients that send no (or an unknown) SNI, when a host
/// enabled the fallback certificate: the first such host (by name) gives
/// the certificate and client settings; the versions are the defaults. It
/// routes by `ingress_fallbackcert`, which holds every such host.
fn fallback_chain(listener: &str, l: &Listener) -> Option<FilterChain> {
    let (svh, secret) = l
        .secure_virtual_hosts
        .values()
        .find_map(|svh| svh.fallback_certificate.as_ref().map(|s| (svh, s)))?;
    Some(FilterChain {
        name: "fallback-certificate".into(),
        filter_chain_match: Some(FilterChainMatch {
            transport_protocol: "tls".into(),
            ..Default::default()
        }),
        filters: vec![http_connection_manager(
            listener,
            Routes::Rds(FALLBACK_ROUTE_CONFIG),
            forwarded_client_cert(svh),
            l.access_log.as_ref(),
        )],
        transport_socket: Some(downstream_tls(
            secret,
            TlsVersion::V1_2,
            TlsVersion::V1_3,
            svh.downstream_validation.as_ref(),
            alpn(svh),
        )),
        ..Default::default()
    })
}

/// ALPN offered: HTTP/2 and HTTP/1.1, none for TCP proxying (the backend
/// answers in its ServerHello).
fn alpn(svh: &SecureVirtualHost) -> Vec<String> {
    if svh.tcp_proxy.is_some() {
        vec![]
    } else {
        vec!["h2".into(), "http/1.1".into()]
    }
}

fn forwarded_client_cert(svh: &SecureVirtualHost) -> Option<&ClientCertificateDetails> {
    svh.downstream_validation
        .as_ref()
        .and_then(|v| v.forward_client_certificate.as_ref())
}

/// TLS termination with `secret` (by SDS) and, with client validation, a
/// validation context and the client certificate required unless optional.
fn downstream_tls(
    secret: &TlsSecret,
    min: TlsVersion,
    max: TlsVersion,
    validation: Option<&DownstreamValidation>,
    alpn_protocols: Vec<String>,
) -> TransportSocket {
    let version = |v: TlsVersion| match v {
        TlsVersion::V1_2 => TlsProtocol::TlSv12 as i32,
        TlsVersion::V1_3 => TlsProtocol::TlSv13 as i32,
    };
    let tls = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_params: Some(TlsParameters {
                tls_minimum_protocol_version: version(min),
                tls_maximum_protocol_version: version(max),
                ..Default::default()
            }),
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: super::secret::secret_name(secret),
                sds_config: Some(xds_config_source()),
            }],
            alpn_protocols,
            validation_context_type: validation.map(|v| {
                super::tls::validation_context(
                    v.ca.as_ref().map(|c| c.pem.as_str()),
                    &[],
                    v.skip_verify,
                    v.crl.as_deref(),
                    v.only_verify_leaf_crl,
                )
            }),
            ..Default::default()
        }),
        require_client_certificate: validation.map(|v| BoolValue { value: !v.optional }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&tls))),
    }
}

/// `envoy.filters.network.tcp_proxy` to one cluster or weighted clusters
/// (zero weights dropped unless all are zero, as upstream).
fn tcp_proxy_filter(stat_prefix: &str, clusters: &[WeightedCluster]) -> Filter {
    let all_zero = clusters.iter().all(|c| c.weight == 0);
    let live: Vec<&WeightedCluster> = clusters
        .iter()
        .filter(|c| all_zero || c.weight > 0)
        .collect();
    let specifier = match live.as_slice() {
        [one] => tcp_proxy::ClusterSpecifier::Cluster(super::cluster::cluster_name(&one.cluster)),
        many => {
            let mut clusters: Vec<_> = many
                .iter()
                .map(|c| tcp_proxy::weighted_cluster::ClusterWeight {
                    name: super::cluster::cluster_name(&c.cluster),
                    weight: c.weight.max(1),
                    ..Default::default()
                })
                .collect();
            // Upstream sorts by name, then weight.
            clusters.sort_by(|a, b| a.name.cmp(&b.name).then(a.weight.cmp(&b.weight)));
            tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster { clusters })
        }
    };
    let tcp = TcpProxy {
        stat_prefix: stat_prefix.to_string(),
        cluster_specifier: Some(specifier),
        idle_timeout: Some(super::duration(std::time::Duration::from_secs(9001))),
        ..Default::default()
    };
    Filter {
        name: "envoy.filters.network.tcp_proxy".into(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&tcp))),
    }
}

/// Upstream's default fields of the JSON access log, with the Envoy
/// command operator each one reads.
pub const JSON_ACCESS_LOG_FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "%START_TIME%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("duration", "%DURATION%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("uber_trace_id", "%REQ(UBER-TRACE-ID)%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("grpc_status", "%GRPC_STATUS(CAMEL_STRING)%"),
    ("grpc_status_number", "%GRPC_STATUS(NUMBER)%"),
];

/// The file access log of an HTTP connection manager.
fn access_log(log: &AccessLog) -> envoy_types::pb::envoy::config::accesslog::v3::AccessLog {
    use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog as Log, access_log};
    use envoy_types::pb::envoy::config::core::v3::{
        SubstitutionFormatString, substitution_format_string,
    };
    use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
        FileAccessLog, file_access_log,
    };
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    let format = match log.format {
        // Envoy's default format.
        AccessLogFormat::Envoy => None,
        AccessLogFormat::Json => {
            let fields = JSON_ACCESS_LOG_FIELDS
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value {
                            kind: Some(Kind::StringValue(v.to_string())),
                        },
                    )
                })
                .collect();
            Some(file_access_log::AccessLogFormat::LogFormat(
                SubstitutionFormatString {
                    format: Some(substitution_format_string::Format::JsonFormat(Struct {
                        fields,
                    })),
                    ..Default::default()
                },
            ))
        }
    };
    let file = FileAccessLog {
        path: log.path.clone(),
        access_log_format: format,
    };
    Log {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(any(&file))),
        ..Default::default()
    }
}

/// Where a connection manager gets its routes.
enum Routes<'a> {
    /// One route configuration by RDS.
    Rds(&'a str),
    /// Scopes by SRDS, keyed by the Lua filters (see [`super::scoped`]).
    Scoped,
}

impl<'a> Routes<'a> {
    /// The routes of a plain listener, by its layout.
    fn of(l: &'a Listener) -> Self {
        match l.layout() {
            Layout::Single => Routes::Rds(&l.name),
            Layout::Scoped => Routes::Scoped,
        }
    }
}

fn http_connection_manager(
    stat_prefix: &str,
    routes: Routes<'_>,
    forward_client_cert: Option<&ClientCertificateDetails>,
    log: Option<&AccessLog>,
) -> Filter {
    let (route_specifier, http_filters) = match routes {
        Routes::Rds(name) => (
            RouteSpecifier::Rds(Rds {
                config_source: Some(xds_config_source()),
                route_config_name: name.to_string(),
            }),
            http_filters(),
        ),
        Routes::Scoped => {
            let mut filters = super::scoped::lua_filters();
            filters.extend(http_filters());
            (
                RouteSpecifier::ScopedRoutes(super::scoped::scoped_routes()),
                filters,
            )
        }
    };
    let mut hcm = HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(route_specifier),
        http_filters,
        use_remote_address: Some(BoolValue { value: true }),
        normalize_path: Some(BoolValue { value: true }),
        access_log: log.map(access_log).into_iter().collect(),
        ..Default::default()
    };
    if let Some(details) = forward_client_cert {
        hcm.forward_client_cert_details = ForwardClientCertDetails::SanitizeSet as i32;
        hcm.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            subject: Some(BoolValue {
                value: details.subject,
            }),
            cert: details.cert,
            chain: details.chain,
            dns: details.dns,
            uri: details.uri,
            ..Default::default()
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
        FileAccessLog, file_access_log,
    };
    use prost::Message;

    fn hcm_of(filter: &Filter) -> Result<HttpConnectionManager, Box<dyn std::error::Error>> {
        match &filter.config_type {
            Some(filter::ConfigType::TypedConfig(a)) => {
                Ok(HttpConnectionManager::decode(a.value.as_slice())?)
            }
            _ => Err("no typed config".into()),
        }
    }

    #[test]
    fn access_logs_go_to_the_configured_file_in_the_configured_format()
    -> Result<(), Box<dyn std::error::Error>> {
        let none = hcm_of(&http_connection_manager(
            "ingress_http",
            Routes::Rds("r"),
            None,
            None,
        ))?;
        assert!(none.access_log.is_empty());
        let text = AccessLog {
            path: "/dev/stdout".into(),
            format: AccessLogFormat::Envoy,
        };
        let hcm = hcm_of(&http_connection_manager(
            "ingress_http",
            Routes::Rds("r"),
            None,
            Some(&text),
        ))?;
        let [log] = hcm.access_log.as_slice() else {
            return Err("one access log expected".into());
        };
        assert_eq!(log.name, "envoy.access_loggers.file");
        let Some(
            envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType::TypedConfig(a),
        ) = &log.config_type
        else {
            return Err("no typed config".into());
        };
        let file = FileAccessLog::decode(a.value.as_slice())?;
        assert_eq!(file.path, "/dev/stdout");
        assert!(file.access_log_format.is_none(), "Envoy's default format");

        let json = AccessLog {
            path: "/var/log/envoy.json".into(),
            format: AccessLogFormat::Json,
        };
        let hcm = hcm_of(&http_connection_manager(
            "ingress_https",
            Routes::Scoped,
            None,
            Some(&json),
        ))?;
        let Some(
            envoy_types::pb::envoy::config::accesslog::v3::access_log::ConfigType::TypedConfig(a),
        ) = &hcm.access_log[0].config_type
        else {
            return Err("no typed config".into());
        };
        let file = FileAccessLog::decode(a.value.as_slice())?;
        assert_eq!(file.path, "/var/log/envoy.json");
        let Some(file_access_log::AccessLogFormat::LogFormat(f)) = file.access_log_format else {
            return Err("JSON format expected".into());
        };
        let Some(envoy_types::pb::envoy::config::core::v3::substitution_format_string::Format::JsonFormat(s)) =
            f.format
        else {
            return Err("JSON format expected".into());
        };
        assert_eq!(s.fields.len(), JSON_ACCESS_LOG_FIELDS.len());
        assert!(s.fields.contains_key("response_code"));
        Ok(())
    }
}
