//! Lookups shared by the processors: Services, TLS secrets, route order.

use std::sync::Arc;

use super::{Cluster, HeaderMatch, HeaderMatchKind, PathMatch, Route, TlsSecret};
use crate::cache::{Cache, Key};

/// A user error found while building a route: condition type, reason, message.
pub type RouteError = (&'static str, &'static str, String);

/// Looks a Service port up and makes a cluster of it.
pub fn resolve_service(
    cache: &Cache,
    namespace: &str,
    name: &str,
    port: i32,
    protocol: String,
) -> Result<Cluster, RouteError> {
    let key = Key::new(namespace, name);
    let svc = cache.services.get(&key).ok_or_else(|| {
        (
            "ServiceError",
            "ServiceUnresolvedReference",
            format!(
                "Spec.Routes unresolved service reference: service \"{namespace}/{name}\" not found"
            ),
        )
    })?;
    let spec = svc.spec.clone().unwrap_or_default();
    let sp = spec.ports.iter().flatten().find(|p| p.port == port).ok_or_else(|| {
        ("ServiceError", "ServiceUnresolvedReference", format!("Spec.Routes unresolved service reference: port \"{port}\" on service \"{namespace}/{name}\" not matched"))
    })?;
    let external_name = (spec.type_.as_deref() == Some("ExternalName"))
        .then(|| spec.external_name.clone().unwrap_or_default());
    Ok(Cluster {
        namespace: namespace.to_string(),
        service: name.to_string(),
        port,
        port_name: sp.name.clone().unwrap_or_default(),
        external_name,
        protocol,
        ..Default::default()
    })
}

/// Finds a TLS secret: `name` in `namespace`, or `ns/name` delegated to it.
pub fn resolve_tls_secret(
    cache: &Cache,
    namespace: &str,
    reference: &str,
) -> Result<Arc<TlsSecret>, String> {
    let key = match reference.split_once('/') {
        Some((ns, name)) => {
            let delegated = cache.delegations.values().any(|d| {
                d.metadata.namespace.as_deref() == Some(ns)
                    && d.spec.delegations.iter().any(|del| {
                        del.secret_name == name
                            && del
                                .target_namespaces
                                .iter()
                                .any(|t| t == "*" || t == namespace)
                    })
            });
            if ns != namespace && !delegated {
                return Err(format!(
                    "certificate delegation not permitted for Secret {ns}/{name}"
                ));
            }
            Key::new(ns, name)
        }
        None => Key::new(namespace, reference),
    };
    let data = cache.secrets.get(&key).ok_or("Secret not found")?;
    match (&data.cert_pem, &data.key_pem) {
        (Some(cert), Some(key_pem))
            if cert.contains("-----BEGIN") && key_pem.contains("-----BEGIN") =>
        {
            Ok(Arc::new(TlsSecret {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                cert_pem: cert.clone(),
                key_pem: key_pem.clone(),
            }))
        }
        _ => Err("missing or invalid TLS certificate or key".into()),
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
    use std::cmp::Ordering;

    for r in routes.iter_mut() {
        r.headers.sort_by(header_order);
    }
    fn by_headers(a: &Route, b: &Route) -> Ordering {
        let method = |r: &Route| r.headers.iter().any(|h| h.name == ":method");
        let others = |r: &Route| -> Vec<HeaderMatch> {
            r.headers
                .iter()
                .filter(|h| h.name != ":method")
                .cloned()
                .collect()
        };
        let (ha, hb) = (others(a), others(b));
        method(b)
            .cmp(&method(a))
            .then_with(|| hb.len().cmp(&ha.len()))
            .then_with(|| {
                ha.iter()
                    .zip(&hb)
                    .map(|(x, y)| header_order(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
    }
    routes.sort_by(|a, b| {
        let path = match (&a.path, &b.path) {
            (PathMatch::Exact(x), PathMatch::Exact(y)) => y.cmp(x),
            (PathMatch::Exact(_), _) => Ordering::Less,
            (_, PathMatch::Exact(_)) => Ordering::Greater,
            (PathMatch::Regex(x), PathMatch::Regex(y)) => {
                y.len().cmp(&x.len()).then_with(|| y.cmp(x))
            }
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
    });
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
