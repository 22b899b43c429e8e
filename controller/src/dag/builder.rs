//! One build: cache → DAG + statuses. Processors run in a fixed order, then
//! virtual hosts that cannot serve are pruned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use contour_crds::HTTPProxy;
use k8s_openapi::api::networking::v1::Ingress;

use super::common::{routes_sorted, sort_routes};
use super::source::Source;
use super::{
    Dag, HTTP_LISTENER, HTTPS_LISTENER, Listener, SecureVirtualHost, VirtualHost, httpproxy,
    ingress, ingressroute,
};
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
    /// Ingress class(es) this Contour serves (`--ingress-class-name`, comma
    /// separated). `None`: objects without a class or with class `contour`.
    pub ingress_class_name: Option<String>,
    /// Follow ExternalName Services (`enableExternalNameService`; off by
    /// default, as upstream, since they can point anywhere).
    pub enable_external_name_service: bool,
    /// The fallback certificate `(namespace, name)` served to TLS clients
    /// that send no SNI, for HTTPProxies with `enableFallbackCertificate`
    /// (upstream's `tls.fallback-certificate`).
    pub fallback_certificate: Option<(String, String)>,
    /// Access log of `ingress_http` (`None`: no access log).
    pub http_access_log: Option<super::AccessLog>,
    /// Access log of `ingress_https`.
    pub https_access_log: Option<super::AccessLog>,
    /// How Envoy gets the plain-HTTP routes.
    pub route_layout: super::RouteLayout,
}

impl Default for BuilderConfig {
    fn default() -> Self {
        Self {
            root_namespaces: vec![],
            address: "0.0.0.0".into(),
            http_port: 8080,
            https_port: 8443,
            ingress_class_name: None,
            enable_external_name_service: false,
            fallback_certificate: None,
            http_access_log: None,
            https_access_log: None,
            route_layout: super::RouteLayout::default(),
        }
    }
}

impl BuilderConfig {
    /// Whether a root object may live in `namespace`.
    pub fn root_allowed(&self, namespace: &str) -> bool {
        self.root_namespaces.is_empty() || self.root_namespaces.iter().any(|n| n == namespace)
    }

    /// Whether an object of ingress class `class` ("" = none) is served, as
    /// upstream matches it: with no configured class, class-less objects and
    /// class `contour`; otherwise an exact match with one configured name.
    pub fn class_matches(&self, class: &str) -> bool {
        match self.ingress_class_name.as_deref() {
            None | Some("") => class.is_empty() || class == DEFAULT_INGRESS_CLASS,
            Some(names) => names.split(',').any(|n| n == class),
        }
    }
}

/// The class served when none is configured.
pub const DEFAULT_INGRESS_CLASS: &str = "contour";

/// The ingress class of an object: the `projectcontour.io/ingress.class`
/// annotation if present (even empty), else `kubernetes.io/ingress.class`;
/// an empty result falls back to `spec.ingressClassName`.
pub fn object_class<'a>(
    annotations: Option<&'a BTreeMap<String, String>>,
    spec_class: Option<&'a str>,
) -> &'a str {
    let annotated = annotations.and_then(|a| {
        a.get("projectcontour.io/ingress.class")
            .or_else(|| a.get("kubernetes.io/ingress.class"))
    });
    match annotated.map(String::as_str) {
        Some(class) if !class.is_empty() => class,
        _ => spec_class.unwrap_or_default(),
    }
}

/// Whether an HTTPProxy is of the configured ingress class.
pub fn proxy_visible(config: &BuilderConfig, p: &HTTPProxy) -> bool {
    config.class_matches(object_class(
        p.metadata.annotations.as_ref(),
        Some(p.spec.ingress_class_name.as_str()),
    ))
}

/// Whether an Ingress is of the served ingress class.
pub fn ingress_visible(config: &BuilderConfig, i: &Ingress) -> bool {
    config.class_matches(object_class(
        i.metadata.annotations.as_ref(),
        i.spec
            .as_ref()
            .and_then(|s| s.ingress_class_name.as_deref()),
    ))
}

/// The cache as the processors see it: Ingresses and HTTPProxies of another
/// ingress class are invisible (upstream drops them at cache insert).
pub fn visible(cache: &Cache, config: &BuilderConfig) -> Option<Cache> {
    let ingress_ok = |i: &Ingress| ingress_visible(config, i);
    let proxy_ok = |p: &HTTPProxy| proxy_visible(config, p);
    if cache.ingresses.values().all(|i| ingress_ok(i))
        && cache.httpproxies.values().all(|p| proxy_ok(p))
    {
        return None;
    }
    let mut out = cache.clone();
    out.ingresses.retain(|_, i| ingress_ok(i));
    out.httpproxies.retain(|_, p| proxy_ok(p));
    Some(out)
}

/// Builds the DAG. Pure: the same cache and config give the same DAG.
pub fn build(cache: &Cache, config: &BuilderConfig) -> Dag {
    build_with(
        cache,
        config,
        &mut |cache, config, key, proxy, dag, statuses, reached| {
            httpproxy::process_root(cache, config, key, proxy, dag, statuses, reached)
        },
    )
}

/// [`build`], with each HTTPProxy root processed by `run_root`.
pub fn build_with(
    cache: &Cache,
    config: &BuilderConfig,
    run_root: &mut httpproxy::RootRunner<'_>,
) -> Dag {
    let filtered = visible(cache, config);
    let cache = filtered.as_ref().unwrap_or(cache);
    let dag = globals(cache, config);
    finish(cache, config, dag, run_root)
}

/// The listeners of a build, without virtual hosts.
pub fn listeners(config: &BuilderConfig) -> Dag {
    let mut dag = Dag::default();
    for (name, port, access_log) in [
        (HTTP_LISTENER, config.http_port, &config.http_access_log),
        (HTTPS_LISTENER, config.https_port, &config.https_access_log),
    ] {
        dag.listeners.insert(
            name.to_string(),
            Listener {
                name: name.to_string(),
                address: config.address.clone(),
                port,
                access_log: access_log.clone(),
                // Only the plain listener has a choice (TLS hosts have a
                // route configuration each).
                route_layout: match name {
                    HTTP_LISTENER => config.route_layout,
                    _ => super::RouteLayout::Single,
                },
                ..Default::default()
            },
        );
    }
    dag
}

/// The first half of a build from a class-filtered cache (see
/// [`visible`]): the listeners, with what Ingresses and IngressRoutes make
/// of them (upstream v1.0.1's order: Ingress first, then IngressRoutes).
/// It reads the cache only through `cache`.
pub fn globals(cache: &dyn Source, config: &BuilderConfig) -> Dag {
    let mut dag = listeners(config);
    ingress::process(cache, config, &mut dag);
    ingressroute::process(cache, config, &mut dag);
    dag
}

/// The second half: HTTPProxies on top of [`globals`], then pruning. They
/// share virtual hosts; when several claim one fqdn their routes merge and
/// a later route with the same match replaces an earlier one.
pub fn finish(
    cache: &Cache,
    config: &BuilderConfig,
    mut dag: Dag,
    run_root: &mut httpproxy::RootRunner<'_>,
) -> Dag {
    httpproxy::process_with(cache, config, &mut dag, run_root);
    prune(&mut dag);
    dag
}

/// What pruning makes of one plain host: its routes in match order
/// (written, and so unshared, only when out of order), or nothing when it
/// has no route.
pub fn pruned_host(mut v: Arc<VirtualHost>) -> Option<Arc<VirtualHost>> {
    if !routes_sorted(&v.routes) {
        sort_routes(&mut Arc::make_mut(&mut v).routes);
    }
    (!v.routes.is_empty()).then_some(v)
}

/// [`pruned_host`] for a TLS host: it also needs a certificate, unless it
/// proxies TCP.
pub fn pruned_secure_host(mut v: Arc<SecureVirtualHost>) -> Option<Arc<SecureVirtualHost>> {
    if !routes_sorted(&v.virtual_host.routes) {
        sort_routes(&mut Arc::make_mut(&mut v).virtual_host.routes);
    }
    ((!v.virtual_host.routes.is_empty() && v.secret.is_some()) || v.tcp_proxy.is_some())
        .then_some(v)
}

/// Drops virtual hosts that cannot serve (no routes, or TLS without a
/// certificate) and puts the routes of the others in match order.
fn prune(dag: &mut Dag) {
    for listener in dag.listeners.values_mut() {
        listener.virtual_hosts = std::mem::take(&mut listener.virtual_hosts)
            .into_iter()
            .filter_map(|(k, v)| pruned_host(v).map(|v| (k, v)))
            .collect();
        listener.secure_virtual_hosts = std::mem::take(&mut listener.secure_virtual_hosts)
            .into_iter()
            .filter_map(|(k, v)| pruned_secure_host(v).map(|v| (k, v)))
            .collect();
    }
    dag.listeners
        .retain(|_, l| !(l.virtual_hosts.is_empty() && l.secure_virtual_hosts.is_empty()));
}

/// Parses a timeout as upstream's `timeout.Parse` does: a Go-style duration
/// (`1h2m3.5s`, `250ms`); `infinity`/`infinite` mean "no timeout" and give
/// `Some(ZERO)`; the empty string and zero durations (`0`, `0s`) give `None`
/// (use the default).
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s == "infinity" || s == "infinite" {
        return Ok(Some(Duration::ZERO));
    }
    if s == "0" {
        return Ok(None);
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
    if total == 0.0 {
        return Ok(None);
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
        assert_eq!(parse_duration("0"), Ok(None));
        assert_eq!(parse_duration("0s"), Ok(None));
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

    #[test]
    fn ingress_classes_match_as_upstream() {
        let default = BuilderConfig::default();
        assert!(default.class_matches(""));
        assert!(default.class_matches("contour"));
        assert!(!default.class_matches("nginx"));
        let configured = BuilderConfig {
            ingress_class_name: Some("internal,external".into()),
            ..Default::default()
        };
        assert!(configured.class_matches("external"));
        assert!(!configured.class_matches(""));
        assert!(!configured.class_matches("contour"));

        let annotations = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let both = annotations(&[
            ("projectcontour.io/ingress.class", "a"),
            ("kubernetes.io/ingress.class", "b"),
        ]);
        assert_eq!(object_class(Some(&both), Some("c")), "a");
        let empty_first = annotations(&[
            ("projectcontour.io/ingress.class", ""),
            ("kubernetes.io/ingress.class", "b"),
        ]);
        assert_eq!(object_class(Some(&empty_first), Some("c")), "c");
        assert_eq!(object_class(None, None), "");
    }
}
