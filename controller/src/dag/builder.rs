//! One build: cache → DAG + statuses. Processors run in a fixed order, then
//! virtual hosts that cannot serve are pruned.

use std::collections::BTreeMap;
use std::time::Duration;

use super::common::sort_routes;
use super::{Dag, HTTP_LISTENER, HTTPS_LISTENER, Listener, httpproxy, ingressroute};
use crate::cache::Cache;

/// Settings of the builder (from flags and the Contour configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderConfig {
    /// Namespaces where root HTTPProxies/IngressRoutes may live; empty = all.
    pub root_namespaces: Vec<String>,
    /// Address the listeners bind.
    pub address: String,
    /// Port of `ingress_http`.
    pub http_port: u32,
    /// Port of `ingress_https`.
    pub https_port: u32,
}

impl Default for BuilderConfig {
    fn default() -> Self {
        Self {
            root_namespaces: vec![],
            address: "0.0.0.0".into(),
            http_port: 8080,
            https_port: 8443,
        }
    }
}

impl BuilderConfig {
    /// Whether a root object may live in `namespace`.
    pub fn root_allowed(&self, namespace: &str) -> bool {
        self.root_namespaces.is_empty() || self.root_namespaces.iter().any(|n| n == namespace)
    }
}

/// Builds the DAG. Pure: the same cache and config give the same DAG.
pub fn build(cache: &Cache, config: &BuilderConfig) -> Dag {
    let mut dag = Dag::default();
    for (name, port) in [
        (HTTP_LISTENER, config.http_port),
        (HTTPS_LISTENER, config.https_port),
    ] {
        dag.listeners.insert(
            name.to_string(),
            Listener {
                name: name.to_string(),
                address: config.address.clone(),
                port,
                ..Default::default()
            },
        );
    }
    // Upstream v1.0.1 order: IngressRoutes, then HTTPProxies. Both share the
    // virtual hosts; when they claim the same fqdn their routes merge and an
    // HTTPProxy route replaces an IngressRoute route with the same match.
    ingressroute::process(cache, config, &mut dag);
    httpproxy::process(cache, config, &mut dag);
    prune(&mut dag);
    dag
}

/// Drops virtual hosts that cannot serve (no routes, or TLS without a
/// certificate) and puts the routes of the others in match order.
fn prune(dag: &mut Dag) {
    for listener in dag.listeners.values_mut() {
        for v in listener.virtual_hosts.values_mut() {
            sort_routes(&mut v.routes);
        }
        for v in listener.secure_virtual_hosts.values_mut() {
            sort_routes(&mut v.virtual_host.routes);
        }
        listener.virtual_hosts.retain(|_, v| !v.routes.is_empty());
        listener
            .secure_virtual_hosts
            .retain(|_, v| !v.virtual_host.routes.is_empty() && v.secret.is_some());
    }
    dag.listeners
        .retain(|_, l| !(l.virtual_hosts.is_empty() && l.secure_virtual_hosts.is_empty()));
}

/// Parses a Go-style duration (`1h2m3.5s`, `250ms`) as upstream accepts it.
/// `infinity`/`infinite` (and `0`) mean "no timeout" and give `Some(ZERO)`;
/// the empty string gives `None` (use the default).
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s == "infinity" || s == "infinite" || s == "0" {
        return Ok(Some(Duration::ZERO));
    }
    let units: BTreeMap<&str, f64> = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
    ]
    .into_iter()
    .collect();
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = units
            .get(&rest[..unit_len])
            .ok_or_else(|| format!("invalid duration {s:?}: unknown unit"))?;
        total += value * unit;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("invalid duration {s:?}: out of range"));
    }
    Ok(Some(Duration::from_secs_f64(total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration(""), Ok(None));
        assert_eq!(parse_duration("infinity"), Ok(Some(Duration::ZERO)));
        assert_eq!(
            parse_duration("250ms"),
            Ok(Some(Duration::from_millis(250)))
        );
        assert_eq!(parse_duration("1m30s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_duration("1.5h"), Ok(Some(Duration::from_secs(5400))));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("99999999999h").is_err());
    }
}
