//! Clusters: one per distinct upstream (Service port + options).

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers as EnvoyCircuitBreakers, Cluster as EnvoyCluster,
    circuit_breakers::Thresholds,
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy},
};
use envoy_types::pb::envoy::config::core::v3::{
    HealthCheck as EnvoyHealthCheck, Http2ProtocolOptions, TransportSocket,
    health_check::{HealthChecker, HttpHealthCheck},
    transport_socket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
    },
};
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Int64Range};
use envoy_types::pb::google::protobuf::UInt32Value;
use sha1::{Digest, Sha1};

use crate::dag::{CircuitBreakers, Cluster, Dag, HealthCheck, RouteAction};

/// Upstream's cluster name: `namespace/service/port/<10 hex of sha1 over the
/// non-default options>`, shortened to 60 characters when longer.
pub fn cluster_name(c: &Cluster) -> String {
    let mut buf = c.lb_policy.clone();
    if let Some(hc) = &c.health_check {
        if let Some(t) = hc.timeout.filter(|t| !t.is_zero()) {
            buf.push_str(&go_duration(t));
        }
        if let Some(i) = hc.interval.filter(|i| !i.is_zero()) {
            buf.push_str(&go_duration(i));
        }
        if hc.unhealthy_threshold > 0 {
            buf.push_str(&hc.unhealthy_threshold.to_string());
        }
        if hc.healthy_threshold > 0 {
            buf.push_str(&hc.healthy_threshold.to_string());
        }
        buf.push_str(&hc.path);
    }
    if let Some(uv) = &c.upstream_validation {
        // Upstream hashes the CA Secret's name (not its namespace) and the
        // first subject name.
        buf.push_str(&uv.ca.name);
        if let Some(first) = uv.subject_names.first() {
            buf.push_str(first);
        }
    }
    buf.push_str(&c.protocol);
    buf.push_str(&c.sni);
    let digest = Sha1::digest(buf.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hashname(60, &[&c.namespace, &c.service, &c.port.to_string(), &hash])
}

/// A duration as Go's `time.Duration.String()` writes it (`2s`, `1m30s`, `500ms`).
pub fn go_duration(d: std::time::Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        return match nanos {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let frac = d.subsec_nanos();
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:09}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => sec,
        (0, m) => format!("{m}m{sec}"),
        (h, m) => format!("{h}h{m}m{sec}"),
    }
}

/// Joins parts with `/`; when the result is `limit` or longer, truncates the
/// parts from the last one, marking each with a short sha256 hash.
pub fn hashname(limit: usize, parts: &[&str]) -> String {
    use sha2::Sha256;
    let joined = parts.join("/");
    if joined.len() < limit {
        return joined;
    }
    let hash: String = Sha256::digest(joined.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let short = &hash[..6];
    let mut parts: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    let each = limit / parts.len();
    for n in (0..parts.len()).rev() {
        parts[n] = truncate(each, &parts[n], short);
        let r = parts.join("/");
        if r.len() < limit {
            return r;
        }
    }
    hash[..limit.min(hash.len())].to_string()
}

fn truncate(limit: usize, s: &str, suffix: &str) -> String {
    if limit >= s.len() {
        return s.to_string();
    }
    if limit <= suffix.len() {
        return suffix[..limit].to_string();
    }
    let keep = limit - suffix.len() - 1;
    let head: String = s.chars().take(keep).collect();
    format!("{head}-{suffix}")
}

/// Every cluster the routes of the DAG point at, by name.
pub fn dag_clusters(dag: &Dag) -> BTreeMap<String, Arc<Cluster>> {
    dag_clusters_named(dag, &mut |c| cluster_name(c))
}

/// [`dag_clusters`] with names from `name` (the engine remembers them).
pub fn dag_clusters_named(
    dag: &Dag,
    name: &mut dyn FnMut(&Arc<Cluster>) -> String,
) -> BTreeMap<String, Arc<Cluster>> {
    let mut out = BTreeMap::new();
    for l in dag.listeners.values() {
        for wc in l
            .secure_virtual_hosts
            .values()
            .filter_map(|s| s.tcp_proxy.as_ref())
            .flatten()
        {
            out.entry(name(&wc.cluster))
                .or_insert_with(|| Arc::clone(&wc.cluster));
        }
        let vhosts = l
            .virtual_hosts
            .values()
            .map(|v| &**v)
            .chain(l.secure_virtual_hosts.values().map(|s| &s.virtual_host));
        for route in vhosts.flat_map(|v| &v.routes) {
            if let RouteAction::Forward(clusters) = &route.action {
                for wc in clusters.iter().chain(route.mirror.as_ref()) {
                    out.entry(name(&wc.cluster))
                        .or_insert_with(|| Arc::clone(&wc.cluster));
                }
            }
        }
    }
    out
}

/// The Envoy clusters, sorted by name.
pub fn clusters(dag: &Dag) -> Vec<EnvoyCluster> {
    dag_clusters(dag)
        .into_iter()
        .map(|(name, c)| envoy_cluster(name, &c))
        .collect()
}

/// The Envoy cluster `name` of a DAG cluster.
pub fn envoy_cluster(name: String, c: &Cluster) -> EnvoyCluster {
    let alt_stat_name = format!("{}_{}_{}", c.namespace, c.service, c.port);
    let mut out = EnvoyCluster {
        name,
        alt_stat_name,
        connect_timeout: Some(super::duration(std::time::Duration::from_secs(2))),
        ..Default::default()
    };
    out.lb_policy = match c.lb_policy.as_str() {
        "WeightedLeastRequest" => LbPolicy::LeastRequest,
        "Random" => LbPolicy::Random,
        "Cookie" | "RequestHash" => LbPolicy::RingHash,
        _ => LbPolicy::RoundRobin,
    } as i32;
    if let Some(hc) = &c.health_check {
        out.health_checks = vec![health_check(hc, &c.protocol)];
    }
    if let Some(cb) = c.circuit_breakers.filter(CircuitBreakers::any_set) {
        out.circuit_breakers = Some(circuit_breakers(&cb));
    }
    match c.protocol.as_str() {
        "tls" => out.transport_socket = Some(upstream_tls(c, &[])),
        "h2" => {
            out.transport_socket = Some(upstream_tls(c, &["h2"]));
            out.typed_extension_protocol_options = http2_protocol_options();
        }
        "h2c" => out.typed_extension_protocol_options = http2_protocol_options(),
        _ => {}
    }
    match &c.external_name {
        Some(host) => {
            out.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::StrictDns as i32));
            out.load_assignment = Some(super::endpoint::dns_assignment(&out.name, host, c.port));
        }
        None => {
            out.cluster_discovery_type =
                Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32));
            out.eds_cluster_config = Some(EdsClusterConfig {
                eds_config: Some(super::xds_config_source()),
                service_name: c.eds_name(),
            });
        }
    }
    out
}

fn circuit_breakers(cb: &CircuitBreakers) -> EnvoyCircuitBreakers {
    let value = |v: u32| (v > 0).then_some(UInt32Value { value: v });
    EnvoyCircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: value(cb.max_connections),
            max_pending_requests: value(cb.max_pending_requests),
            max_requests: value(cb.max_requests),
            max_retries: value(cb.max_retries),
            track_remaining: true,
            ..Default::default()
        }],
        per_host_thresholds: vec![Thresholds {
            max_connections: value(cb.per_host_max_connections),
            track_remaining: true,
            ..Default::default()
        }],
    }
}

/// Upstream TLS (protocol `tls`, and `h2` with ALPN `h2`) with the
/// cluster's SNI; the peer is validated (inline CA, DNS names) only when
/// the service asks for it.
fn upstream_tls(c: &Cluster, alpn: &[&str]) -> TransportSocket {
    let tls = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: alpn.iter().map(|p| p.to_string()).collect(),
            validation_context_type: c
                .upstream_validation
                .as_ref()
                .filter(|uv| !uv.subject_names.is_empty())
                .map(|uv| {
                    super::tls::validation_context(
                        Some(&uv.ca.pem),
                        &uv.subject_names,
                        false,
                        None,
                        false,
                    )
                }),
            ..Default::default()
        }),
        sni: c.sni.clone(),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(super::any(&tls))),
    }
}

/// Explicit HTTP/2 to the upstream (protocols `h2` and `h2c`).
fn http2_protocol_options()
-> std::collections::HashMap<String, envoy_types::pb::google::protobuf::Any> {
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    [(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
        super::any(&options),
    )]
    .into_iter()
    .collect()
}

fn health_check(hc: &HealthCheck, protocol: &str) -> EnvoyHealthCheck {
    use std::time::Duration;
    let or = |d: Option<Duration>, default: u64| {
        super::duration(
            d.filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(default)),
        )
    };
    let threshold = |v: u32, default: u32| {
        Some(UInt32Value {
            value: if v == 0 { default } else { v },
        })
    };
    EnvoyHealthCheck {
        timeout: Some(or(hc.timeout, 2)),
        interval: Some(or(hc.interval, 10)),
        unhealthy_threshold: threshold(hc.unhealthy_threshold, 3),
        healthy_threshold: threshold(hc.healthy_threshold, 2),
        health_checker: Some(HealthChecker::HttpHealthCheck(HttpHealthCheck {
            path: hc.path.clone(),
            host: if hc.host.is_empty() {
                "contour-envoy-healthcheck".into()
            } else {
                hc.host.clone()
            },
            codec_client_type: if protocol == "h2" || protocol == "h2c" {
                CodecClientType::Http2
            } else {
                CodecClientType::Http1
            } as i32,
            expected_statuses: hc
                .expected_statuses
                .iter()
                .map(|(start, end)| Int64Range {
                    start: *start,
                    end: *end,
                })
                .collect(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        use std::time::Duration;
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn a_plain_cluster_is_named_as_upstream_names_it() {
        let c = Cluster {
            namespace: "default".into(),
            service: "kuard".into(),
            port: 80,
            ..Default::default()
        };
        assert_eq!(cluster_name(&c), "default/kuard/80/da39a3ee5e");
    }

    #[test]
    fn long_names_are_shortened_below_the_limit() {
        let c = Cluster {
            namespace: "a-very-long-namespace-name-for-testing".into(),
            service: "an-equally-long-service-name-for-testing".into(),
            port: 8080,
            ..Default::default()
        };
        let name = cluster_name(&c);
        assert!(name.len() < 60, "{name}");
        assert_eq!(name, cluster_name(&c), "deterministic");
    }
}
