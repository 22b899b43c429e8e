//! The `services` of HTTPProxy routes and TCP proxies: the Service lookup,
//! upstream TLS validation, SNI and the service-level header policies.

use std::sync::Arc;

use contour_crds::httpproxy::Service;

use super::super::builder::BuilderConfig;
use super::super::common::{RouteError, SecretError, lookup_ca, resolve_service, secret_key};
use super::super::source::Source;
use super::super::{Cluster, UpstreamValidation, WeightedCluster, policy};

/// The cluster of a service entry (name, port, protocol of the spec) with
/// its upstream validation; a lookup failure reads "`<field>` unresolved
/// service reference: …".
pub(super) fn service_cluster(
    cache: &dyn Source,
    config: &BuilderConfig,
    namespace: &str,
    s: &Service,
    field: &str,
) -> Result<Cluster, RouteError> {
    let mut cluster = resolve_service(
        cache,
        config,
        namespace,
        &s.name,
        s.port,
        s.protocol.clone().unwrap_or_default(),
    )
    .map_err(|(t, r, m)| (t, r, format!("{field} unresolved service reference: {m}")))?;
    // Only connections that speak TLS can validate the upstream.
    if let Some(uv) = &s.upstream_validation
        && matches!(cluster.protocol.as_str(), "tls" | "h2")
    {
        cluster.upstream_validation = Some(upstream_validation(cache, namespace, s, uv)?);
    }
    Ok(cluster)
}

/// A service of a route: its cluster, weight and header policies; the SNI
/// is the service's Host rewrite, else the route's (`route_host`, a
/// literal), else the ExternalName, as upstream decides it.
pub(super) fn route_service(
    cache: &dyn Source,
    config: &BuilderConfig,
    namespace: &str,
    s: &Service,
    route_host: Option<&str>,
) -> Result<WeightedCluster, RouteError> {
    let mut cluster = service_cluster(cache, config, namespace, s, "Spec.Routes")?;
    let (request_headers, host) = policy::headers_policy(s.request_headers_policy.as_deref(), true)
        .map_err(|m| {
            (
                "ServiceError",
                "RequestHeadersPolicyInvalid",
                format!("{m} on request headers"),
            )
        })?;
    let (response_headers, _) = policy::headers_policy(s.response_headers_policy.as_deref(), false)
        .map_err(|m| {
            (
                "ServiceError",
                "ResponseHeadersPolicyInvalid",
                format!("{m} on response headers"),
            )
        })?;
    // Upstream drops a dynamic (`%REQ(header)%`) Host of a service: only a
    // literal can be set per weighted cluster.
    let host_rewrite = host.filter(|h| !is_dynamic(h));
    cluster.sni = host_rewrite
        .clone()
        .or_else(|| route_host.filter(|h| !is_dynamic(h)).map(String::from))
        .or_else(|| cluster.external_name.clone())
        .unwrap_or_default();
    Ok(WeightedCluster {
        cluster: Arc::new(cluster),
        weight: weight(s),
        request_headers,
        response_headers,
        host_rewrite,
    })
}

/// Whether a Host value names a request header (`%REQ(x-host)%`).
fn is_dynamic(host: &str) -> bool {
    host.contains("%REQ(") && host.contains(")%")
}

/// `services[].validation`: the CA Secret and the subject names, with
/// upstream's checks and words.
fn upstream_validation(
    cache: &dyn Source,
    namespace: &str,
    s: &Service,
    uv: &contour_crds::httpproxy::UpstreamValidation,
) -> Result<UpstreamValidation, RouteError> {
    let key = secret_key(namespace, &uv.ca_secret);
    let policy_error = |m: String| {
        (
            "ServiceError",
            "TLSUpstreamValidation",
            format!(
                "Service [{}:{}] TLS upstream validation policy error: {m}",
                s.name, s.port
            ),
        )
    };
    let ca = lookup_ca(cache, &key, namespace).map_err(|e| match e {
        SecretError::NotDelegated => (
            "TLSError",
            "CACertificateNotDelegated",
            format!(
                "service.UpstreamValidation.CACertificate Secret \"{}/{}\" is not configured for certificate delegation",
                key.namespace, key.name
            ),
        ),
        SecretError::Invalid(m) => policy_error(format!(
            "invalid CA Secret \"{}/{}\": {m}",
            key.namespace, key.name
        )),
    })?;
    if uv.subject_name.is_empty() {
        return Err(policy_error("missing subject alternative name".into()));
    }
    let subject_names = match uv.subject_names.first() {
        None => vec![uv.subject_name.clone()],
        Some(first) if *first != uv.subject_name => {
            return Err(policy_error(format!(
                "first entry of SubjectNames ({first}) does not match SubjectName ({})",
                uv.subject_name
            )));
        }
        Some(_) => uv.subject_names.clone(),
    };
    Ok(UpstreamValidation { ca, subject_names })
}

/// A service entry's weight; negative counts as zero.
pub(super) fn weight(s: &Service) -> u32 {
    u32::try_from(s.weight.unwrap_or(0).max(0)).unwrap_or(u32::MAX)
}
