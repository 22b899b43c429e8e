//! `projectcontour.io/v1` HTTPProxy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::LoadBalancerStatus;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::DetailedCondition;
use crate::schema::is_false;

/// An HTTPProxy: a virtual host (when it is a root) or a set of routes that a
/// root includes, possibly across namespaces.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "projectcontour.io",
    version = "v1",
    kind = "HTTPProxy",
    plural = "httpproxies",
    singular = "httpproxy",
    shortname = "proxy",
    shortname = "proxies",
    namespaced,
    derive = "PartialEq",
    status = "HTTPProxyStatus",
    printcolumn = r#"{"name":"FQDN","type":"string","jsonPath":".spec.virtualhost.fqdn","description":"Fully qualified domain name"}"#,
    printcolumn = r#"{"name":"TLS Secret","type":"string","jsonPath":".spec.virtualhost.tls.secretName","description":"Secret with TLS credentials"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.currentStatus","description":"The current status of the HTTPProxy"}"#,
    printcolumn = r#"{"name":"Status Description","type":"string","jsonPath":".status.description","description":"Description of the current status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPProxySpec {
    /// Makes this proxy a root: the virtual host it serves.
    #[serde(
        default,
        rename = "virtualhost",
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_host: Option<VirtualHost>,
    /// The HTTP routes of this proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// A TCP proxy for the virtual host (TLS passthrough or termination).
    #[serde(default, rename = "tcpproxy", skip_serializing_if = "Option::is_none")]
    pub tcp_proxy: Option<Box<TCPProxy>>,
    /// Other HTTPProxies whose routes this one includes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<Include>,
    /// The ingress class this proxy belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_class_name: String,
}

/// An include of another HTTPProxy, optionally under conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Include {
    /// Name of the included HTTPProxy.
    pub name: String,
    /// Namespace of the included HTTPProxy; the includer's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
    /// Conditions prepended to every route of the included proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<MatchCondition>,
}

/// A request match: at most one path match (prefix, exact or regex), and/or
/// a header or query parameter match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.prefix) && has(self.exact)) && !(has(self.prefix) && has(self.regex)) && !(has(self.exact) && has(self.regex))").message("only one of prefix, exact or regex may be set in a condition"))]
pub struct MatchCondition {
    /// Path prefix match (segment aware).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Exact path match.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// Regular expression path match (RE2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
    /// A header match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Box<HeaderMatchCondition>>,
    /// A query parameter match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameter: Option<Box<QueryParameterMatchCondition>>,
}

/// Match on a request header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatchCondition {
    /// Header name.
    pub name: String,
    /// The header is present.
    #[serde(default, skip_serializing_if = "is_false")]
    pub present: bool,
    /// The header is absent.
    #[serde(default, rename = "notpresent", skip_serializing_if = "is_false")]
    pub not_present: bool,
    /// The value contains this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contains: String,
    /// The value does not contain this string.
    #[serde(
        default,
        rename = "notcontains",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_contains: String,
    /// Compare values case-insensitively.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_case: bool,
    /// The value equals this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// The value differs from this string.
    #[serde(default, rename = "notexact", skip_serializing_if = "String::is_empty")]
    pub not_exact: String,
    /// The value matches this regular expression.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
    /// Treat a missing header as the empty string.
    #[serde(default, skip_serializing_if = "is_false")]
    pub treat_missing_as_empty: bool,
}

/// Match on a query parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryParameterMatchCondition {
    /// Parameter name.
    pub name: String,
    /// The value equals this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    /// The value starts with this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// The value ends with this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suffix: String,
    /// The value matches this regular expression.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
    /// The value contains this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contains: String,
    /// Compare values case-insensitively.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_case: bool,
    /// The parameter is present.
    #[serde(default, skip_serializing_if = "is_false")]
    pub present: bool,
}

/// A reference to an ExtensionService.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionServiceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub api_version: String,
    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub namespace: String,
    /// Name of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub name: String,
}

/// External authorization for a virtual host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationServer {
    /// The ExtensionService that answers authorization checks.
    #[serde(default, rename = "extensionRef")]
    pub extension_service_ref: ExtensionServiceReference,
    /// The default policy of the virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_policy: Option<AuthorizationPolicy>,
    /// How long to wait for the server.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub response_timeout: String,
    /// Let requests through when the server fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fail_open: bool,
    /// Buffer the request body for the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_request_body: Option<AuthorizationServerBufferSettings>,
}

/// Request body buffering for external authorization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationServerBufferSettings {
    /// Maximum bytes buffered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_request_bytes: Option<u32>,
    /// Send a partial body when it is larger than the limit.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_partial_message: bool,
    /// Send the body as raw bytes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pack_as_bytes: bool,
}

/// An authorization policy of a virtual host or route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// Disable authorization.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Context passed to the authorization server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// The virtual host of a root HTTPProxy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualHost {
    /// The fully qualified domain name, optionally a `*.` wildcard.
    #[schemars(regex(pattern = crate::schema::FQDN))]
    pub fqdn: String,
    /// TLS for the virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<TLS>>,
    /// External authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Box<AuthorizationServer>>,
    /// Cross-origin resource sharing.
    #[serde(
        default,
        rename = "corsPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub cors_policy: Option<Box<CORSPolicy>>,
    /// Rate limits for the whole virtual host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_policy: Option<Box<RateLimitPolicy>>,
    /// JWT providers.
    #[serde(
        default,
        rename = "jwtProviders",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub jwt_providers: Vec<JWTProvider>,
    /// Allow only these source ranges.
    #[serde(
        default,
        rename = "ipAllowPolicy",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_allow_policy: Vec<IPFilterPolicy>,
    /// Deny these source ranges.
    #[serde(
        default,
        rename = "ipDenyPolicy",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_deny_policy: Vec<IPFilterPolicy>,
}

/// A JWT provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JWTProvider {
    /// Unique name of the provider.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Verify with this provider unless a route says otherwise.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// Expected issuer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// Expected audiences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where the keys are.
    #[serde(rename = "remoteJWKS")]
    pub remote_jwks: RemoteJWKS,
    /// Forward the JWT upstream.
    #[serde(default, rename = "forwardJWT", skip_serializing_if = "is_false")]
    pub forward_jwt: bool,
}

/// Remote JSON web key set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteJWKS {
    /// HTTP(S) URI of the key set.
    #[schemars(length(min = 1))]
    pub uri: String,
    /// TLS validation of the key server.
    #[serde(
        default,
        rename = "validation",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_validation: Option<UpstreamValidation>,
    /// Fetch timeout.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION))]
    pub timeout: String,
    /// How long keys are cached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION))]
    pub cache_duration: String,
    /// DNS lookup family for the key server.
    #[serde(
        default,
        rename = "dnsLookupFamily",
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(extend("enum" = ["auto", "v4", "v6"]))]
    pub dns_lookup_family: String,
}

/// TLS of a virtual host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TLS {
    /// Secret with the certificate and key; `namespace/name` for a delegated one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    /// Minimum TLS version (`1.2` or `1.3`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub minimum_protocol_version: String,
    /// Maximum TLS version (`1.2` or `1.3`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub maximum_protocol_version: String,
    /// Pass TLS through to the backend (requires tcpproxy).
    #[serde(default, skip_serializing_if = "is_false")]
    pub passthrough: bool,
    /// Require and validate client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<DownstreamValidation>,
    /// Serve the fallback certificate to clients without SNI.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_fallback_certificate: bool,
}

/// CORS policy of a virtual host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CORSPolicy {
    /// Allow credentials.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_credentials: bool,
    /// Allowed origins.
    #[schemars(length(min = 1))]
    pub allow_origin: Vec<String>,
    /// Allowed methods.
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[a-zA-Z0-9!#$%&'*+.^_`|~-]+$"))
    )]
    pub allow_methods: Vec<String>,
    /// Allowed headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[a-zA-Z0-9!#$%&'*+.^_`|~-]+$"))
    )]
    pub allow_headers: Vec<String>,
    /// Exposed headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1),
        inner(regex(pattern = r"^[a-zA-Z0-9!#$%&'*+.^_`|~-]+$"))
    )]
    pub expose_headers: Vec<String>,
    /// How long the preflight answer may be cached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(
        pattern = r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|0)$"
    ))]
    pub max_age: String,
    /// Allow private network access.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
}

// The optional policies here (and in `Service`, `MatchCondition` and
// `VirtualHost`) are boxed: the controller holds every HTTPProxy of the
// cluster, and most routes set none of them (unboxed, a route took 936
// bytes before its first string). The schema and the JSON are the same.
/// One route of an HTTPProxy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Conditions a request must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<MatchCondition>,
    /// Upstream services, weighted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Allow websocket upgrades.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_websockets: bool,
    /// Serve over plain HTTP even when the virtual host has TLS.
    #[serde(default, skip_serializing_if = "is_false")]
    pub permit_insecure: bool,
    /// Authorization policy of this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_policy: Option<Box<AuthorizationPolicy>>,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_policy: Option<Box<TimeoutPolicy>>,
    /// Retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<Box<RetryPolicy>>,
    /// Active HTTP health checks of the services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_policy: Option<Box<HTTPHealthCheckPolicy>>,
    /// Load balancing across endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_policy: Option<Box<LoadBalancerPolicy>>,
    /// Path rewriting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_rewrite_policy: Option<Box<PathRewritePolicy>>,
    /// Request header changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_policy: Option<Box<HeadersPolicy>>,
    /// Response header changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers_policy: Option<Box<HeadersPolicy>>,
    /// Set-Cookie rewrites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookie_rewrite_policies: Vec<CookieRewritePolicy>,
    /// Rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_policy: Option<Box<RateLimitPolicy>>,
    /// Answer with a redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect_policy: Option<Box<HTTPRequestRedirectPolicy>>,
    /// Answer directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_response_policy: Option<Box<HTTPDirectResponsePolicy>>,
    /// Follow upstream redirects inside Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_redirect_policy: Option<Box<HTTPInternalRedirectPolicy>>,
    /// JWT verification of this route.
    #[serde(
        default,
        rename = "jwtVerificationPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    pub jwt_verification_policy: Option<Box<JWTVerificationPolicy>>,
    /// Allow only these source ranges.
    #[serde(
        default,
        rename = "ipAllowPolicy",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_allow_policy: Vec<IPFilterPolicy>,
    /// Deny these source ranges.
    #[serde(
        default,
        rename = "ipDenyPolicy",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_deny_policy: Vec<IPFilterPolicy>,
}

/// JWT verification of a route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JWTVerificationPolicy {
    /// The provider to verify with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub require: String,
    /// Disable verification.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

/// An IP range filter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPFilterPolicy {
    /// `Peer` (the connection) or `Remote` (the forwarded client address).
    #[schemars(extend("enum" = ["Peer", "Remote"]))]
    pub source: String,
    /// An address or CIDR range.
    pub cidr: String,
}

/// A direct response.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPDirectResponsePolicy {
    /// HTTP status code.
    #[schemars(range(min = 200, max = 599))]
    pub status_code: u32,
    /// Response body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

/// A redirect response.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRequestRedirectPolicy {
    /// Scheme of the redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["http", "https"]))]
    pub scheme: Option<String>,
    /// Host of the redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::schema::HOSTNAME))]
    pub hostname: Option<String>,
    /// Port of the redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// 301 or 302 (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [301, 302]))]
    pub status_code: Option<u32>,
    /// Replace the whole path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\/.*$"))]
    pub path: Option<String>,
    /// Replace the matched prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\/.*$"))]
    pub prefix: Option<String>,
}

/// Internal redirects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPInternalRedirectPolicy {
    /// Maximum redirects followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_internal_redirects: Option<u32>,
    /// Codes that trigger a redirect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::redirect_codes_schema")]
    pub redirect_response_codes: Vec<u32>,
    /// `Always`, `Never` (default) or `SafeOnly`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["Always", "Never", "SafeOnly"]))]
    pub allow_cross_scheme_redirect: String,
    /// Refuse to redirect to a route already visited.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deny_repeated_route_redirect: bool,
}

/// A Set-Cookie rewrite.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CookieRewritePolicy {
    /// Cookie name.
    #[schemars(length(min = 1, max = 4096))]
    pub name: String,
    /// New Path attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_rewrite: Option<CookieValue>,
    /// New Domain attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_rewrite: Option<CookieValue>,
    /// Set or clear the Secure attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// New SameSite attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Strict", "Lax", "None"]))]
    pub same_site: Option<String>,
}

/// A cookie attribute value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CookieValue {
    /// The value.
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
}

/// Rate limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitPolicy {
    /// Per-Envoy token bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalRateLimitPolicy>,
    /// Global rate limit service descriptors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalRateLimitPolicy>,
}

/// A local (per-Envoy) rate limit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalRateLimitPolicy {
    /// Requests per unit.
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// `second`, `minute` or `hour`.
    #[schemars(extend("enum" = ["second", "minute", "hour"]))]
    pub unit: String,
    /// Extra requests allowed in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Status code of limited requests (default 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub response_status_code: Option<u32>,
    /// Headers added to limited responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderValue>,
}

/// A global rate limit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalRateLimitPolicy {
    /// Disable the virtual host's global policy on this route.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Descriptors sent to the rate limit service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub descriptors: Vec<RateLimitDescriptor>,
}

/// A rate limit descriptor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RateLimitDescriptor {
    /// Descriptor entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub entries: Vec<RateLimitDescriptorEntry>,
}

/// One entry of a rate limit descriptor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitDescriptorEntry {
    /// A static key and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_key: Option<GenericKeyDescriptor>,
    /// A request header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header: Option<RequestHeaderDescriptor>,
    /// Whether headers match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_value_match: Option<RequestHeaderValueMatchDescriptor>,
    /// The client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<RemoteAddressDescriptor>,
}

/// A static descriptor entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct GenericKeyDescriptor {
    /// Key (default `generic_key`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub value: String,
}

/// A descriptor entry from a request header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeaderDescriptor {
    /// Header name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub header_name: String,
    /// Descriptor key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub descriptor_key: String,
}

/// A descriptor entry from header matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestHeaderValueMatchDescriptor {
    /// Header conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1))]
    pub headers: Vec<HeaderMatchCondition>,
    /// Whether the entry is produced on match (default true) or non-match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_match: Option<bool>,
    /// Descriptor value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub value: String,
}

/// A descriptor entry from the client address.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RemoteAddressDescriptor {}

/// A TCP proxy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TCPProxy {
    /// Load balancing across endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_policy: Option<LoadBalancerPolicy>,
    /// Upstream services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Delegate the TCP proxy to another HTTPProxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<TCPProxyInclude>,
    /// Deprecated spelling of `include`.
    #[serde(default, rename = "includes", skip_serializing_if = "Option::is_none")]
    pub includes_deprecated: Option<TCPProxyInclude>,
    /// Active TCP health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_policy: Option<TCPHealthCheckPolicy>,
}

/// The HTTPProxy a TCP proxy is delegated to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct TCPProxyInclude {
    /// Name of the HTTPProxy.
    pub name: String,
    /// Its namespace; the includer's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// An upstream Kubernetes Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Name of the Service.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Port of the Service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Port used for health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub health_port: Option<i32>,
    /// Upstream protocol: `h2`, `h2c` or `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["h2", "h2c", "tls"]))]
    pub protocol: Option<String>,
    /// Relative weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub weight: Option<i64>,
    /// TLS validation of the upstream.
    #[serde(
        default,
        rename = "validation",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_validation: Option<Box<UpstreamValidation>>,
    /// Mirror traffic to this service.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mirror: bool,
    /// Request header changes for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_policy: Option<Box<HeadersPolicy>>,
    /// Response header changes for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers_policy: Option<Box<HeadersPolicy>>,
    /// Set-Cookie rewrites for this service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookie_rewrite_policies: Vec<CookieRewritePolicy>,
    /// Slow start of new endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start_policy: Option<Box<SlowStartPolicy>>,
}

/// Active HTTP health checks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPHealthCheckPolicy {
    /// Path requested.
    pub path: String,
    /// Host header sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Interval between checks.
    #[serde(default)]
    pub interval_seconds: i64,
    /// Timeout of one check.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub timeout_seconds: i64,
    /// Failures before an endpoint is unhealthy.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub unhealthy_threshold_count: i64,
    /// Successes before an endpoint is healthy.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub healthy_threshold_count: i64,
    /// Status codes taken as healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<HTTPStatusRange>,
}

/// A range of HTTP status codes, start inclusive, end exclusive.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct HTTPStatusRange {
    /// First code.
    #[schemars(range(min = 100, max = 599))]
    pub start: i64,
    /// One past the last code.
    #[schemars(range(min = 101, max = 600))]
    pub end: i64,
}

/// Active TCP health checks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TCPHealthCheckPolicy {
    /// Interval between checks.
    #[serde(default)]
    pub interval_seconds: i64,
    /// Timeout of one check.
    #[serde(default)]
    pub timeout_seconds: i64,
    /// Failures before an endpoint is unhealthy.
    #[serde(default)]
    pub unhealthy_threshold_count: u32,
    /// Successes before an endpoint is healthy.
    #[serde(default)]
    pub healthy_threshold_count: u32,
}

/// Timeouts of a route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutPolicy {
    /// Time for the whole response.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub response: String,
    /// Idle time of a stream.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub idle: String,
    /// Idle time of an upstream connection.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub idle_connection: String,
}

/// Retries of a route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Number of retries (default 1; -1 disables).
    #[serde(default, rename = "count", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1))]
    pub num_retries: Option<i64>,
    /// Timeout of each try.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = crate::schema::DURATION_OR_INFINITY))]
    pub per_try_timeout: String,
    /// Conditions that trigger a retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::retry_on_schema")]
    pub retry_on: Vec<String>,
    /// Status codes retried with `retriable-status-codes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u32>,
}

/// A prefix replacement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ReplacePrefix {
    /// The prefix to replace; the route's own prefix when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub prefix: String,
    /// The replacement.
    #[schemars(length(min = 1))]
    pub replacement: String,
}

/// Path rewriting.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathRewritePolicy {
    /// Prefix replacements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace_prefix: Vec<ReplacePrefix>,
}

/// Hash on a header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderHashOptions {
    /// Header name.
    #[schemars(length(min = 1))]
    pub header_name: String,
}

/// Hash on a query parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryParameterHashOptions {
    /// Parameter name.
    #[schemars(length(min = 1))]
    pub parameter_name: String,
}

/// One hash policy of the `RequestHash` strategy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestHashPolicy {
    /// Stop at this policy when it yields a hash.
    #[serde(default, skip_serializing_if = "is_false")]
    pub terminal: bool,
    /// Hash a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_hash_options: Option<HeaderHashOptions>,
    /// Hash a query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_parameter_hash_options: Option<QueryParameterHashOptions>,
    /// Hash the source IP.
    #[serde(default, rename = "hashSourceIP", skip_serializing_if = "is_false")]
    pub hash_source_ip: bool,
}

/// Load balancing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerPolicy {
    /// `RoundRobin` (default), `WeightedLeastRequest`, `Random`, `RequestHash` or `Cookie`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub strategy: String,
    /// Hash policies of `RequestHash`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_hash_policies: Vec<RequestHashPolicy>,
}

/// Header changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct HeadersPolicy {
    /// Headers set (replaced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<HeaderValue>,
    /// Headers removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct HeaderValue {
    /// Header name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Header value.
    #[schemars(length(min = 1))]
    pub value: String,
}

/// TLS validation of an upstream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.subjectNames) ? self.subjectNames[0] == self.subjectName : true").message("subjectNames[0] must equal subjectName if set"))]
pub struct UpstreamValidation {
    /// Secret with the CA certificate; `namespace/name` for a delegated one.
    #[serde(rename = "caSecret")]
    #[schemars(length(min = 1, max = 317))]
    pub ca_secret: String,
    /// Expected subject name of the upstream certificate.
    #[schemars(length(min = 1, max = 250))]
    pub subject_name: String,
    /// Further accepted subject names (the first must equal `subjectName`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 8))]
    pub subject_names: Vec<String>,
}

/// Client certificate validation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownstreamValidation {
    /// Secret with the CA that signs client certificates.
    #[serde(default, rename = "caSecret", skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1))]
    pub ca_secret: String,
    /// Accept any client certificate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_client_cert_validation: bool,
    /// Forward client certificate details upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_client_certificate: Option<ClientCertificateDetails>,
    /// Secret with a certificate revocation list.
    #[serde(
        default,
        rename = "crlSecret",
        skip_serializing_if = "String::is_empty"
    )]
    #[schemars(length(min = 1))]
    pub crl_secret: String,
    /// Check the CRL for the leaf only.
    #[serde(
        default,
        rename = "crlOnlyVerifyLeafCert",
        skip_serializing_if = "is_false"
    )]
    pub crl_only_verify_leaf_cert: bool,
    /// Accept clients without a certificate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional_client_certificate: bool,
}

/// Which client certificate details to forward.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ClientCertificateDetails {
    /// The subject.
    #[serde(default, skip_serializing_if = "is_false")]
    pub subject: bool,
    /// The PEM certificate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cert: bool,
    /// The PEM chain.
    #[serde(default, skip_serializing_if = "is_false")]
    pub chain: bool,
    /// DNS SANs.
    #[serde(default, rename = "dns", skip_serializing_if = "is_false")]
    pub dns: bool,
    /// URI SANs.
    #[serde(default, rename = "uri", skip_serializing_if = "is_false")]
    pub uri: bool,
}

/// Slow start of new endpoints.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlowStartPolicy {
    /// Duration of the slow start.
    #[schemars(regex(pattern = crate::schema::DURATION))]
    pub window: String,
    /// Aggression of the ramp (default `1.0`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(regex(pattern = r"^([0-9]+([.][0-9]+)?|[.][0-9]+)$"))]
    pub aggression: String,
    /// Minimum weight percent (default 10).
    #[serde(
        default,
        rename = "minWeightPercent",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 100))]
    pub min_weight_percent: Option<u32>,
}

/// Status of an HTTPProxy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPProxyStatus {
    /// `valid`, `invalid`, `orphaned` or `NotReconciled`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_status: String,
    /// A human-readable description of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Addresses of the Envoy service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerStatus>,
    /// Detailed conditions; `Valid` summarises them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<DetailedCondition>,
}
