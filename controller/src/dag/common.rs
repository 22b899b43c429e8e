//! Lookups shared by the processors: Services, TLS secrets, route order.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::source::Source;
use super::{
    CaBundle, CircuitBreakers, Cluster, HeaderMatch, HeaderMatchKind, PathMatch, Route, TlsSecret,
    VirtualHost,
};
use crate::cache::{Key, ServicePortRecord};

/// A user error found while building a route: condition type, reason, message.
pub type RouteError = (&'static str, &'static str, String);

/// Looks a Service port up and makes a cluster of it. The Service's
/// annotations apply: `projectcontour.io/upstream-protocol.*` (unless
/// `protocol` is given by the route) and the circuit breaker thresholds.
pub fn resolve_service<C: Source + ?Sized>(
    cache: &C,
    config: &super::BuilderConfig,
    namespace: &str,
    name: &str,
    port: i32,
    protocol: String,
) -> Result<Cluster, RouteError> {
    // The bare reason; each processor words it its own way.
    let unresolved = |detail: String| ("ServiceError", "ServiceUnresolvedReference", detail);
    let key = Key::new(namespace, name);
    let svc = cache
        .service(&key)
        .ok_or_else(|| unresolved(format!("service \"{namespace}/{name}\" not found")))?;
    // Upstream matches the number, or a port named like the number.
    let port_text = port.to_string();
    let sp = svc
        .ports
        .iter()
        .find(|p| p.port == port || p.name.as_deref() == Some(port_text.as_str()))
        .ok_or_else(|| {
            unresolved(format!(
                "port \"{port}\" on service \"{namespace}/{name}\" not matched"
            ))
        })?;
    check_tcp(sp).map_err(unresolved)?;
    let external_name = svc.external_name.clone();
    if let Some(host) = &external_name {
        // As upstream: off unless enabled, and never towards this host.
        if !config.enable_external_name_service {
            return Err(unresolved(format!(
                "{namespace}/{name} is an ExternalName service, these are not currently enabled. See the config.enableExternalNameService config file setting"
            )));
        }
        if matches!(
            host.to_ascii_lowercase().trim_end_matches('.'),
            "localhost" | "localhost.localdomain" | "local.projectcontour.io"
        ) {
            return Err(unresolved(format!(
                "{namespace}/{name} is an ExternalName service that points to localhost, this is not allowed"
            )));
        }
    }
    let annotations = &svc.annotations;
    let protocol = if protocol.is_empty() {
        upstream_protocol(annotations, sp)
    } else {
        protocol
    };
    let breakers = circuit_breakers(annotations);
    Ok(Cluster {
        namespace: namespace.to_string(),
        service: name.to_string(),
        port: sp.port,
        port_name: sp.name.clone().unwrap_or_default(),
        external_name,
        protocol,
        circuit_breakers: breakers.any_set().then_some(breakers),
        ..Default::default()
    })
}

/// The number of the Service port called `port_name`, for backends that
/// name their port (Ingress).
pub fn service_port_by_name<C: Source + ?Sized>(
    cache: &C,
    namespace: &str,
    name: &str,
    port_name: &str,
) -> Result<i32, String> {
    let svc = cache
        .service(&Key::new(namespace, name))
        .ok_or_else(|| format!("service \"{namespace}/{name}\" not found"))?;
    let sp = svc
        .ports
        .iter()
        .find(|p| p.name.as_deref() == Some(port_name))
        .ok_or_else(|| {
            format!("port \"{port_name}\" on service \"{namespace}/{name}\" not matched")
        })?;
    check_tcp(sp)?;
    Ok(sp.port)
}

/// Only TCP Service ports (or ports without a protocol) can be proxied.
fn check_tcp(sp: &ServicePortRecord) -> Result<(), String> {
    match sp.protocol.as_deref() {
        None | Some("") | Some("TCP") => Ok(()),
        Some(other) => Err(format!("unsupported service protocol \"{other}\"")),
    }
}

/// The upstream protocol of a Service port: its `appProtocol` when set
/// (`kubernetes.io/h2c` → h2c, `https` → tls, anything else → none), else
/// the `projectcontour.io/upstream-protocol.{h2,h2c,tls}` annotations, whose
/// values list port names or numbers (by name first, then by number).
fn upstream_protocol(annotations: &BTreeMap<String, String>, sp: &ServicePortRecord) -> String {
    if let Some(app) = &sp.app_protocol {
        return match app.as_str() {
            "kubernetes.io/h2c" => "h2c",
            "https" => "tls",
            _ => "",
        }
        .to_string();
    }
    let mut by_port: BTreeMap<&str, &str> = BTreeMap::new();
    for protocol in ["h2", "h2c", "tls"] {
        let key = format!("projectcontour.io/upstream-protocol.{protocol}");
        for port in annotations.get(&key).into_iter().flat_map(|v| v.split(',')) {
            let port = port.trim();
            if !port.is_empty() {
                by_port.insert(port, protocol);
            }
        }
    }
    let name = sp.name.clone().unwrap_or_default();
    by_port
        .get(name.as_str())
        .filter(|p| !p.is_empty())
        .or_else(|| by_port.get(sp.port.to_string().as_str()))
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Circuit breaker thresholds from `projectcontour.io/max-connections`,
/// `max-pending-requests`, `max-requests`, `max-retries` and
/// `per-host-max-connections`; malformed values count as unset.
fn circuit_breakers(annotations: &BTreeMap<String, String>) -> CircuitBreakers {
    let value = |key: &str| {
        annotations
            .get(&format!("projectcontour.io/{key}"))
            .and_then(|v| parse_u32(v))
            .unwrap_or(0)
    };
    CircuitBreakers {
        max_connections: value("max-connections"),
        max_pending_requests: value("max-pending-requests"),
        max_requests: value("max-requests"),
        max_retries: value("max-retries"),
        per_host_max_connections: value("per-host-max-connections"),
    }
}

/// `s` with regular expression metacharacters escaped, as Go's
/// `regexp.QuoteMeta` does.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Matches one DNS label in place of the `*` of a wildcard host.
const SINGLE_LABEL_REGEX: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?";
/// Lets `:authority` carry a port.
const OPTIONAL_PORT_REGEX: &str = "(:[0-9]+)?";

/// For a wildcard host (`*.example.com`), the `:authority` match that lets
/// its routes answer one DNS label in place of the `*` only: Envoy's
/// wildcard domains match any number of labels (`a.b.example.com`). As
/// upstream, for Ingress rules and for every route under an HTTPProxy root.
pub fn wildcard_authority(host: &str) -> Option<HeaderMatch> {
    let domain = host.strip_prefix('*').filter(|d| d.starts_with('.'))?;
    Some(HeaderMatch {
        name: ":authority".into(),
        kind: HeaderMatchKind::Regex(format!(
            "{SINGLE_LABEL_REGEX}{}{OPTIONAL_PORT_REGEX}",
            quote_meta(domain)
        )),
        invert: false,
    })
}

/// A decimal uint32 as Go's `strconv.ParseUint(s, 10, 32)` accepts it (no
/// sign, no spaces).
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A decimal int32 as Go's `strconv.ParseInt(s, 10, 32)` accepts it
/// (optional sign, no spaces).
pub fn parse_i32(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Finds a TLS secret: `name` in `namespace`, or `ns/name` delegated to it.
pub fn resolve_tls_secret<C: Source + ?Sized>(
    cache: &C,
    namespace: &str,
    reference: &str,
) -> Result<Arc<TlsSecret>, String> {
    let key = secret_key(namespace, reference);
    if !delegation_permitted(cache, &key, namespace) {
        return Err(format!(
            "certificate delegation not permitted for Secret {}/{}",
            key.namespace, key.name
        ));
    }
    tls_secret(cache, &key)
}

/// The Secret a `secretName` names: `name` in `namespace`, or `ns/name`
/// (an empty `ns` means `namespace`).
pub fn secret_key(namespace: &str, reference: &str) -> Key {
    match reference.split_once('/') {
        Some((ns, name)) if !ns.is_empty() => Key::new(ns, name),
        Some((_, name)) => Key::new(namespace, name),
        None => Key::new(namespace, reference),
    }
}

/// Whether objects in `namespace` may use the Secret `secret`: it lives in
/// the same namespace or a TLSCertificateDelegation in the Secret's
/// namespace names it and lists `namespace`, or is exactly `["*"]`.
pub fn delegation_permitted<C: Source + ?Sized>(cache: &C, secret: &Key, namespace: &str) -> bool {
    secret.namespace == namespace
        || cache.delegations().values().any(|d| {
            d.metadata.namespace.as_deref() == Some(secret.namespace.as_str())
                && d.spec.delegations.iter().any(|del| {
                    // `*` is a wildcard only on its own, as upstream.
                    del.secret_name == secret.name
                        && (del.target_namespaces == ["*"]
                            || del.target_namespaces.iter().any(|t| t == namespace))
                })
        })
}

/// Why a referenced Secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// It lives in another namespace and no TLSCertificateDelegation allows it.
    NotDelegated,
    /// Missing or unusable, in upstream's words (`Secret not found`, …).
    Invalid(String),
}

/// The serving certificate `key` for an object in `namespace`.
pub fn lookup_tls_secret<C: Source + ?Sized>(
    cache: &C,
    key: &Key,
    namespace: &str,
) -> Result<Arc<TlsSecret>, SecretError> {
    if !delegation_permitted(cache, key, namespace) {
        return Err(SecretError::NotDelegated);
    }
    tls_secret(cache, key).map_err(SecretError::Invalid)
}

/// The kept material of a CA or CRL Secret, after upstream's type check.
fn validation_secret<C: Source + ?Sized>(
    cache: &C,
    key: &Key,
    namespace: &str,
) -> Result<Arc<crate::cache::SecretData>, SecretError> {
    if !delegation_permitted(cache, key, namespace) {
        return Err(SecretError::NotDelegated);
    }
    let data = cache
        .secret(key)
        .ok_or_else(|| SecretError::Invalid("Secret not found".into()))?;
    if !data.tls_or_opaque {
        return Err(SecretError::Invalid(
            "secret type is not \"kubernetes.io/tls\" or \"Opaque\"".into(),
        ));
    }
    Ok(Arc::clone(data))
}

/// The CA bundle (`ca.crt`) of the Secret `key` for an object in `namespace`.
pub fn lookup_ca<C: Source + ?Sized>(
    cache: &C,
    key: &Key,
    namespace: &str,
) -> Result<Arc<CaBundle>, SecretError> {
    let data = validation_secret(cache, key, namespace)?;
    let pem = data
        .ca_pem
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| SecretError::Invalid("empty \"ca.crt\" key".into()))?;
    crate::tls::check_ca_bundle(&pem)
        .map_err(|e| SecretError::Invalid(format!("invalid CA certificate bundle: {e}")))?;
    Ok(Arc::new(CaBundle {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        pem,
    }))
}

/// The revocation list (`crl.pem`) of the Secret `key` for an object in `namespace`.
pub fn lookup_crl<C: Source + ?Sized>(
    cache: &C,
    key: &Key,
    namespace: &str,
) -> Result<String, SecretError> {
    let data = validation_secret(cache, key, namespace)?;
    let pem = data
        .crl_pem
        .clone()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| SecretError::Invalid("empty \"crl.pem\" key".into()))?;
    crate::tls::check_crl(&pem).map_err(SecretError::Invalid)?;
    Ok(pem)
}

/// The certificate and key of the Secret `key`, if it holds PEM material.
pub fn tls_secret<C: Source + ?Sized>(cache: &C, key: &Key) -> Result<Arc<TlsSecret>, String> {
    let data = cache.secret(key).ok_or("Secret not found")?;
    if let Some(e) = &data.tls_error {
        return Err(e.clone());
    }
    match (&data.cert_pem, &data.key_pem) {
        (Some(cert), Some(key_pem)) => Ok(Arc::new(TlsSecret {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            cert_pem: cert.clone(),
            key_pem: key_pem.clone(),
        })),
        _ => Err("missing TLS certificate".into()),
    }
}

/// Orders routes as upstream's route sorter does, most specific first:
/// exact paths (descending), then regexes (longer first, then descending),
/// then prefixes (longer first, then descending; a segment prefix before a
/// string prefix of the same text); equal paths put a `:method` match first,
/// then more header matches, then compare their headers pairwise. Header
/// matches inside each route are sorted first (name, then exact < regex <
/// contains < present, then value, non-inverted first).
pub fn sort_routes(routes: &mut [Route]) {
    // A stable sort leaves sorted input as it is, so sorted input (a host
    // the incremental engine reuses) is left alone, unchanged and unshared.
    if routes_sorted(routes) {
        return;
    }
    for r in routes.iter_mut() {
        r.headers.sort_by(header_order);
    }
    routes.sort_by(route_order);
}

/// Whether [`sort_routes`] would leave `routes` as they are.
pub fn routes_sorted(routes: &[Route]) -> bool {
    routes
        .iter()
        .all(|r| r.headers.is_sorted_by(|a, b| header_order(a, b).is_le()))
        && routes.is_sorted_by(|a, b| route_order(a, b).is_le())
}

/// The order of [`sort_routes`] (of routes whose headers are sorted).
fn route_order(a: &Route, b: &Route) -> std::cmp::Ordering {
    use std::cmp::Ordering;

    fn by_headers(a: &Route, b: &Route) -> Ordering {
        let method = |r: &Route| r.headers.iter().any(|h| h.name == ":method");
        fn others(r: &Route) -> Vec<&HeaderMatch> {
            r.headers.iter().filter(|h| h.name != ":method").collect()
        }
        method(b).cmp(&method(a)).then_with(|| {
            let (ha, hb) = (others(a), others(b));
            hb.len().cmp(&ha.len()).then_with(|| {
                ha.iter()
                    .zip(&hb)
                    .map(|(x, y)| header_order(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
        })
    }
    let path = match (&a.path, &b.path) {
        (PathMatch::Exact(x), PathMatch::Exact(y)) => y.cmp(x),
        (PathMatch::Exact(_), _) => Ordering::Less,
        (_, PathMatch::Exact(_)) => Ordering::Greater,
        (PathMatch::Regex(x), PathMatch::Regex(y)) => y.len().cmp(&x.len()).then_with(|| y.cmp(x)),
        (PathMatch::Regex(_), _) => Ordering::Less,
        (_, PathMatch::Regex(_)) => Ordering::Greater,
        (
            PathMatch::Prefix {
                prefix: x,
                segment: sx,
            },
            PathMatch::Prefix {
                prefix: y,
                segment: sy,
            },
        ) => y
            .len()
            .cmp(&x.len())
            .then_with(|| y.cmp(x))
            .then_with(|| sy.cmp(sx)),
    };
    path.then_with(|| by_headers(a, b))
}

/// Adds `routes` to `vhost`. A route whose match (path and headers) equals
/// that of a route already on the virtual host replaces it, as upstream keys
/// a virtual host's routes by their match; routes in `routes` do not replace
/// one another. Order is restored by the builder once every processor ran.
pub fn add_routes(vhost: &mut VirtualHost, routes: Vec<Route>) {
    vhost
        .routes
        .retain(|old| !routes.iter().any(|r| same_match(old, r)));
    // Exactly: a route is large and most hosts have a few, so doubling
    // growth would leave up to half of every host's routes unused (the
    // largest single consumer in a heap profile of 10k proxies).
    vhost.routes.reserve_exact(routes.len());
    vhost.routes.extend(routes);
}

fn same_match(a: &Route, b: &Route) -> bool {
    a.path == b.path && a.headers == b.headers && a.query_params == b.query_params
}

/// Upstream's order of header matches within a route.
fn header_order(a: &HeaderMatch, b: &HeaderMatch) -> std::cmp::Ordering {
    fn rank(k: &HeaderMatchKind) -> (u8, &str) {
        match k {
            HeaderMatchKind::Exact(v) => (0, v),
            HeaderMatchKind::Regex(v) => (1, v),
            HeaderMatchKind::Contains(v) => (2, v),
            HeaderMatchKind::Present => (3, ""),
        }
    }
    a.name
        .cmp(&b.name)
        .then_with(|| rank(&a.kind).cmp(&rank(&b.kind)))
        .then_with(|| a.invert.cmp(&b.invert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_go_parses_them() {
        assert_eq!(parse_u32("42"), Some(42));
        assert_eq!(parse_u32("+42"), None);
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(" 4"), None);
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_i32("-1"), Some(-1));
        assert_eq!(parse_i32("+7"), Some(7));
        assert_eq!(parse_i32("-"), None);
        assert_eq!(parse_i32("2147483648"), None);
    }

    #[test]
    fn metacharacters_are_quoted() {
        assert_eq!(quote_meta(".example.com"), "\\.example\\.com");
        assert_eq!(quote_meta("a+b(c)"), "a\\+b\\(c\\)");
    }

    #[test]
    fn upstream_protocol_by_name_then_number_and_app_protocol_first() {
        let annotations: BTreeMap<String, String> = [
            ("projectcontour.io/upstream-protocol.h2c", "http, 81"),
            ("projectcontour.io/upstream-protocol.tls", "81,https"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let port = |n: i32, name: Option<&str>, app: Option<&str>| ServicePortRecord {
            port: n,
            name: name.map(String::from),
            app_protocol: app.map(String::from),
            ..Default::default()
        };
        assert_eq!(
            upstream_protocol(&annotations, &port(80, Some("http"), None)),
            "h2c"
        );
        // `tls` is read after `h2c`, so it wins for the same port.
        assert_eq!(
            upstream_protocol(&annotations, &port(81, None, None)),
            "tls"
        );
        assert_eq!(upstream_protocol(&annotations, &port(82, None, None)), "");
        assert_eq!(
            upstream_protocol(&annotations, &port(80, Some("http"), Some("http"))),
            ""
        );
        assert_eq!(
            upstream_protocol(&annotations, &port(90, None, Some("kubernetes.io/h2c"))),
            "h2c"
        );
    }

    #[test]
    fn routes_sort_as_upstream_sorts_them() {
        let route = |path: PathMatch| Route {
            path,
            ..Route::default()
        };
        let prefix = |p: &str, segment| PathMatch::Prefix {
            prefix: p.into(),
            segment,
        };
        let mut routes = vec![
            route(prefix("/", false)),
            route(prefix("/foo", false)),
            route(PathMatch::Regex("/a.*".into())),
            route(prefix("/foo", true)),
            route(PathMatch::Exact("/a".into())),
            route(prefix("/bar", false)),
            route(PathMatch::Exact("/b".into())),
        ];
        sort_routes(&mut routes);
        let order: Vec<PathMatch> = routes.into_iter().map(|r| r.path).collect();
        assert_eq!(
            order,
            vec![
                PathMatch::Exact("/b".into()),
                PathMatch::Exact("/a".into()),
                PathMatch::Regex("/a.*".into()),
                prefix("/foo", true),
                prefix("/foo", false),
                prefix("/bar", false),
                prefix("/", false),
            ]
        );
    }
}
