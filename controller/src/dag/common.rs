//! Lookups shared by the processors: Services, TLS secrets, route order.

use std::sync::Arc;

use super::{Cluster, PathMatch, Route, TlsSecret, VirtualHost};
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
/// the same namespace or a TLSCertificateDelegation allows it.
pub fn delegation_permitted(cache: &Cache, secret: &Key, namespace: &str) -> bool {
    secret.namespace == namespace
        || cache.delegations.values().any(|d| {
            d.metadata.namespace.as_deref() == Some(secret.namespace.as_str())
                && d.spec.delegations.iter().any(|del| {
                    del.secret_name == secret.name
                        && del
                            .target_namespaces
                            .iter()
                            .any(|t| t == "*" || t == namespace)
                })
        })
}

/// The certificate and key of the Secret `key`, if it holds PEM material.
pub fn tls_secret(cache: &Cache, key: &Key) -> Result<Arc<TlsSecret>, String> {
    let data = cache.secrets.get(key).ok_or("Secret not found")?;
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

/// Most specific first: exact, then regex, then longer prefixes; more header
/// matches before fewer; ties keep a stable order.
pub fn sort_routes(routes: &mut [Route]) {
    fn rank(r: &Route) -> (u8, std::cmp::Reverse<usize>, std::cmp::Reverse<usize>) {
        match &r.path {
            PathMatch::Exact(p) => (
                0,
                std::cmp::Reverse(p.len()),
                std::cmp::Reverse(r.headers.len()),
            ),
            PathMatch::Regex(p) => (
                1,
                std::cmp::Reverse(p.len()),
                std::cmp::Reverse(r.headers.len()),
            ),
            PathMatch::Prefix { prefix, .. } => (
                2,
                std::cmp::Reverse(prefix.len()),
                std::cmp::Reverse(r.headers.len()),
            ),
        }
    }
    routes.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.headers.cmp(&b.headers))
    });
}

/// Adds `routes` to `vhost`. A route whose match (path and headers) equals
/// that of a route already on the virtual host replaces it, as upstream keys
/// a virtual host's routes by their match; routes in `routes` do not replace
/// one another. Order is restored by the builder once every processor ran.
pub fn add_routes(vhost: &mut VirtualHost, routes: Vec<Route>) {
    vhost
        .routes
        .retain(|old| !routes.iter().any(|r| same_match(old, r)));
    vhost.routes.extend(routes);
}

fn same_match(a: &Route, b: &Route) -> bool {
    a.path == b.path && a.headers == b.headers
}
