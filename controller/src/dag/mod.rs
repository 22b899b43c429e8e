//! The routing DAG: a pure function of the cache. Listeners hold virtual
//! hosts, virtual hosts hold ordered routes, routes point at clusters.
//! User mistakes never become Rust errors: they become status conditions
//! carried next to the DAG (see [`status`]).

pub mod builder;
pub mod common;
pub mod dot;
pub mod httpproxy;
pub mod ingress;
pub mod ingressroute;
pub mod policy;
pub mod source;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use imbl::OrdMap;

/// One entry of a persistent map, borrowed.
pub type Entry<'a, K, V> = Option<(&'a K, &'a V)>;

/// What one difference of two persistent maps takes away and brings:
/// `(gone, came)`; an update is both.
pub fn diff_sides<'a, 'b, K, V>(
    d: imbl::ordmap::DiffItem<'a, 'b, K, V>,
) -> (Entry<'a, K, V>, Entry<'b, K, V>) {
    use imbl::ordmap::DiffItem;
    match d {
        DiffItem::Add(k, v) => (None, Some((k, v))),
        DiffItem::Remove(k, v) => (Some((k, v)), None),
        DiffItem::Update { old, new } => (Some(old), Some(new)),
    }
}

pub use builder::{BuilderConfig, build};
pub use status::{ObjectKind, ObjectRef, ObjectStatus, Statuses};

/// Name of the plain-HTTP listener.
pub const HTTP_LISTENER: &str = "ingress_http";
/// Name of the TLS listener.
pub const HTTPS_LISTENER: &str = "ingress_https";

/// The result of one build: listeners with their hosts, and the status of
/// every routing object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dag {
    /// Listeners by name.
    pub listeners: BTreeMap<String, Listener>,
    /// Status of every HTTPProxy, IngressRoute and TLSCertificateDelegation seen.
    pub statuses: Statuses,
}

/// A listener: a port and the virtual hosts served on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`ingress_http`, `ingress_https`).
    pub name: String,
    /// Bind address.
    pub address: String,
    /// Bind port.
    pub port: u32,
    /// Plain HTTP virtual hosts by host name. Shared (`Arc`): a host is
    /// changed through `Arc::make_mut`, so builds that reuse a host (the
    /// incremental engine) neither copy nor compare it. The map is
    /// persistent: a clone costs nothing and shares its nodes, and two
    /// versions are compared by walking only the nodes they do not share.
    pub virtual_hosts: OrdMap<String, Arc<VirtualHost>>,
    /// TLS virtual hosts by SNI name (shared as `virtual_hosts`).
    pub secure_virtual_hosts: OrdMap<String, Arc<SecureVirtualHost>>,
    /// Where the listener's HTTP connection managers log requests.
    pub access_log: Option<AccessLog>,
    /// How Envoy gets the plain virtual hosts' routes (see [`Listener::layout`]).
    pub route_layout: RouteLayout,
}

/// How Envoy gets the routes of the plain-HTTP listener (`contour serve
/// --route-layout`; TLS hosts have one route configuration each anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteLayout {
    /// Always one route configuration, `ingress_http`, holding every host
    /// (as upstream): a new host resends all of them.
    Single,
    /// Always one scoped route configuration per host (SRDS), chosen by a
    /// key two Lua filters derive from the request's host: a new host sends
    /// one small resource (over delta xDS).
    Scoped,
    /// `Single` below `scoped_from` plain hosts, `Scoped` from there on:
    /// small installations look exactly like upstream's, and large ones do
    /// not resend every host on every change.
    Auto {
        /// The number of plain hosts from which the listener is scoped.
        scoped_from: usize,
    },
}

/// Plain hosts from which `--route-layout=auto` scopes the routes: from
/// about here a state-of-the-world `ingress_http` costs Envoy tens of
/// milliseconds per change, more than the Lua filters' ≈ 10 µs per request
/// are worth (BENCHMARKS.md, runs 7 and 8).
pub const SCOPED_FROM_HOSTS: usize = 1000;

impl Default for RouteLayout {
    fn default() -> Self {
        RouteLayout::Auto {
            scoped_from: SCOPED_FROM_HOSTS,
        }
    }
}

/// The layout a listener uses: its [`RouteLayout`] for its host count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One route configuration named after the listener.
    Single,
    /// A scope per plain host.
    Scoped,
}

impl RouteLayout {
    /// The layout for a listener with `hosts` plain hosts.
    pub fn resolve(self, hosts: usize) -> Layout {
        match self {
            RouteLayout::Single => Layout::Single,
            RouteLayout::Scoped => Layout::Scoped,
            RouteLayout::Auto { scoped_from } if hosts >= scoped_from => Layout::Scoped,
            RouteLayout::Auto { .. } => Layout::Single,
        }
    }
}

impl Listener {
    /// The layout this listener's plain hosts use.
    pub fn layout(&self) -> Layout {
        self.route_layout.resolve(self.virtual_hosts.len())
    }
}

/// An access log of the HTTP listeners (upstream's
/// `--envoy-http(s)-access-log` and `--accesslog-format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// File the lines go to (`/dev/stdout` by default).
    pub path: String,
    /// Line format.
    pub format: AccessLogFormat,
}

/// The format of access log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Envoy's default text format.
    Envoy,
    /// One JSON object per request, with upstream's default fields.
    Json,
}

/// A virtual host and its routes, most specific first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualHost {
    /// The host name (`*.` wildcards allowed).
    pub name: String,
    /// Routes in match order.
    pub routes: Vec<Route>,
    /// Cross-origin resource sharing.
    pub cors: Option<Cors>,
    /// Local rate limit of the whole host.
    pub rate_limit: Option<LocalRateLimit>,
    /// Source address filter of the whole host.
    pub ip_filter: Option<IpFilter>,
}

/// A CORS policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Allow credentials.
    pub allow_credentials: bool,
    /// Allowed origins: exact strings (`*` for any) or regular expressions.
    pub allow_origin: Vec<OriginMatch>,
    /// Allowed methods.
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    pub expose_headers: Vec<String>,
    /// `Access-Control-Max-Age` in seconds as a string.
    pub max_age: Option<String>,
    /// Allow private network access.
    pub allow_private_network: bool,
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginMatch {
    /// The origin equals this (or `*`).
    Exact(String),
    /// The origin matches this regular expression.
    Regex(String),
}

/// A local (per-Envoy) token bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalRateLimit {
    /// Tokens added per fill interval.
    pub requests: u32,
    /// Fill interval.
    pub unit: std::time::Duration,
    /// Extra tokens for bursts.
    pub burst: u32,
    /// Status of limited requests (0 = Envoy's 429).
    pub status: u32,
    /// Headers added to limited responses.
    pub response_headers: std::collections::BTreeMap<String, String>,
}

/// Allow or deny requests by source address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilter {
    /// `true`: only matching sources pass; `false`: matching sources are refused.
    pub allow: bool,
    /// The ranges.
    pub rules: Vec<IpRule>,
}

/// One address range of an [`IpFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    /// Match the forwarded client address (`Remote`) instead of the peer (`Peer`).
    pub remote: bool,
    /// Network address.
    pub address: std::net::IpAddr,
    /// Prefix length.
    pub prefix_len: u32,
}

impl VirtualHost {
    /// Takes the host-wide policies (CORS, rate limit, address filter) of
    /// `other`, the HTTPProxy root that owns the host.
    pub fn adopt_policies(&mut self, other: &VirtualHost) {
        self.cors = other.cors.clone();
        self.rate_limit = other.rate_limit.clone();
        self.ip_filter = other.ip_filter.clone();
    }

    /// Adds a route; one with the same match (path and headers) is replaced,
    /// as upstream keys a virtual host's routes by their match conditions.
    pub fn add_route(&mut self, route: Route) {
        match self.routes.iter_mut().find(|r| {
            r.path == route.path
                && r.headers == route.headers
                && r.query_params == route.query_params
        }) {
            Some(existing) => *existing = route,
            None => self.routes.push(route),
        }
    }
}

/// A TLS virtual host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecureVirtualHost {
    /// Host name and routes.
    pub virtual_host: VirtualHost,
    /// Serving certificate.
    pub secret: Option<Arc<TlsSecret>>,
    /// Minimum TLS version.
    pub min_tls_version: TlsVersion,
    /// Maximum TLS version.
    pub max_tls_version: TlsVersion,
    /// Forward the TLS connection (terminated, or passed through when
    /// `secret` is `None`) to these clusters instead of serving HTTP routes.
    pub tcp_proxy: Option<Vec<WeightedCluster>>,
    /// Client certificate validation (`tls.clientValidation`).
    pub downstream_validation: Option<DownstreamValidation>,
    /// The configured fallback certificate, served (with this host's routes)
    /// to clients that send no SNI (`tls.enableFallbackCertificate`).
    pub fallback_certificate: Option<Arc<TlsSecret>>,
}

/// CA certificates (a Secret's `ca.crt`) a peer's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CaBundle {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// The PEM bundle.
    pub pem: String,
}

/// How a TLS virtual host validates client certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownstreamValidation {
    /// Trusted CAs; `None` only with `skip_verify`.
    pub ca: Option<Arc<CaBundle>>,
    /// Accept certificates that do not chain to the CA.
    pub skip_verify: bool,
    /// Accept connections without a client certificate.
    pub optional: bool,
    /// Revocation list (`crl.pem`).
    pub crl: Option<String>,
    /// Check only the leaf certificate against the revocation list.
    pub only_verify_leaf_crl: bool,
    /// Forward details of the client certificate in `X-Forwarded-Client-Cert`.
    pub forward_client_certificate: Option<ClientCertificateDetails>,
}

/// Which parts of the client certificate go into `X-Forwarded-Client-Cert`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCertificateDetails {
    /// The subject.
    pub subject: bool,
    /// The whole certificate (URL encoded PEM).
    pub cert: bool,
    /// The whole chain (URL encoded PEM).
    pub chain: bool,
    /// The DNS subject alternative names.
    pub dns: bool,
    /// The URI subject alternative name.
    pub uri: bool,
}

/// How Envoy validates an upstream's certificate (`services[].validation`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UpstreamValidation {
    /// Trusted CAs.
    pub ca: Arc<CaBundle>,
    /// Accepted DNS subject alternative names.
    pub subject_names: Vec<String>,
}

/// TLS protocol versions Contour allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (the default minimum).
    #[default]
    V1_2,
    /// TLS 1.3 (the default maximum).
    V1_3,
}

/// A certificate and key from a `kubernetes.io/tls` Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSecret {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// `tls.crt`.
    pub cert_pem: String,
    /// `tls.key`.
    pub key_pem: String,
}

/// A route: a match and what to do with matching requests. Build one with
/// `Route { path, action, ..Route::default() }` so new fields stay optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Path match.
    pub path: PathMatch,
    /// Header matches, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// What the route does.
    pub action: RouteAction,
    /// Answer plain-HTTP requests with a redirect to HTTPS.
    pub https_redirect: bool,
    /// Allow websocket upgrades.
    pub websocket: bool,
    /// Replace the matched prefix with this.
    pub prefix_rewrite: Option<String>,
    /// Response timeout; `None` is Envoy's default, `Some(0)` disables it.
    pub timeout: Option<std::time::Duration>,
    /// Retries.
    pub retry: Option<RetryPolicy>,
    /// Query parameter matches, all of which must hold.
    pub query_params: Vec<QueryParamMatch>,
    /// Request header changes (route level).
    pub request_headers: HeadersPolicy,
    /// Response header changes (route level).
    pub response_headers: HeadersPolicy,
    /// Rewrite of the Host header sent upstream.
    pub host_rewrite: Option<String>,
    /// A cluster that gets a copy of the requests; the weight is the percentage.
    pub mirror: Option<WeightedCluster>,
    /// Hash policies for `Cookie`/`RequestHash` load balancing.
    pub hash_policies: Vec<HashPolicy>,
    /// Idle timeout of the stream; `Some(0)` disables it.
    pub idle_timeout: Option<std::time::Duration>,
    /// Local rate limit of this route.
    pub rate_limit: Option<LocalRateLimit>,
    /// Source address filter of this route.
    pub ip_filter: Option<IpFilter>,
}

/// Header additions and removals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadersPolicy {
    /// Headers set (replacing existing values), by name.
    pub set: std::collections::BTreeMap<String, String>,
    /// Headers removed.
    pub remove: Vec<String>,
}

impl HeadersPolicy {
    /// Whether the policy changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// A query parameter match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueryParamMatch {
    /// Parameter name.
    pub name: String,
    /// How its value must look; `None` = present.
    pub kind: Option<HeaderMatchKind>,
    /// Prefix / suffix matches.
    pub affix: Option<(bool, String)>,
    /// Compare case-insensitively.
    pub ignore_case: bool,
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicy {
    /// The `X-Contour-Session-Affinity` cookie (Cookie strategy).
    Cookie,
    /// A request header.
    Header {
        /// Header name.
        name: String,
        /// Stop at this policy when it yields a hash.
        terminal: bool,
    },
    /// A query parameter.
    QueryParameter {
        /// Parameter name.
        name: String,
        /// Stop at this policy when it yields a hash.
        terminal: bool,
    },
    /// The client address.
    SourceIp {
        /// Stop at this policy when it yields a hash.
        terminal: bool,
    },
}

/// How a route matches the path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathMatch {
    /// Prefix match; `segment` means `/foo` matches `/foo` and `/foo/...` but not `/foobar`.
    Prefix {
        /// The prefix.
        prefix: String,
        /// Match whole path segments only.
        segment: bool,
    },
    /// Exact match.
    Exact(String),
    /// RE2 regular expression over the whole path.
    Regex(String),
}

impl Default for PathMatch {
    fn default() -> Self {
        PathMatch::Prefix {
            prefix: "/".into(),
            segment: false,
        }
    }
}

/// A header match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// How its value must look.
    pub kind: HeaderMatchKind,
    /// Negate the match.
    pub invert: bool,
}

/// The kinds of header match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HeaderMatchKind {
    /// The header is present.
    Present,
    /// The value equals.
    Exact(String),
    /// The value contains.
    Contains(String),
    /// The value matches a regular expression.
    Regex(String),
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Forward to weighted clusters.
    Forward(Vec<WeightedCluster>),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer directly.
    DirectResponse {
        /// Status code.
        status: u32,
        /// Body.
        body: String,
    },
}

impl Default for RouteAction {
    fn default() -> Self {
        RouteAction::Forward(Vec::new())
    }
}

/// A cluster and its share of the traffic. Build one with
/// `WeightedCluster { cluster, weight, ..Default::default() }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightedCluster {
    /// The upstream.
    pub cluster: Arc<Cluster>,
    /// Relative weight.
    pub weight: u32,
    /// Request header changes of this service (HTTPProxy `services[]`).
    pub request_headers: HeadersPolicy,
    /// Response header changes of this service.
    pub response_headers: HeadersPolicy,
    /// Host header rewrite of this service (a literal value).
    pub host_rewrite: Option<String>,
}

impl WeightedCluster {
    /// Whether this service changes headers (then upstream always routes
    /// through weighted clusters, which carry the changes).
    pub fn has_header_policy(&self) -> bool {
        !self.request_headers.is_empty()
            || !self.response_headers.is_empty()
            || self.host_rewrite.is_some()
    }
}

/// A redirect response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirect {
    /// New scheme.
    pub scheme: Option<String>,
    /// New host.
    pub hostname: Option<String>,
    /// New port.
    pub port: Option<u32>,
    /// New path.
    pub path: Option<String>,
    /// Replacement of the matched prefix.
    pub prefix: Option<String>,
    /// 301 or 302.
    pub status: u32,
}

/// Retry policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Envoy `retry_on` words, comma separated.
    pub retry_on: String,
    /// Number of retries.
    pub num_retries: u32,
    /// Per-try timeout.
    pub per_try_timeout: Option<std::time::Duration>,
}

/// An upstream: a port of a Kubernetes Service plus the options that make
/// clusters of the same port differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cluster {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub service: String,
    /// Service port number.
    pub port: i32,
    /// Service port name (empty when unnamed).
    pub port_name: String,
    /// DNS name for ExternalName services.
    pub external_name: Option<String>,
    /// Load balancer strategy as users write it (`RoundRobin`,
    /// `WeightedLeastRequest`, `Random`, `Cookie`, `RequestHash`); empty for
    /// the default (round robin).
    pub lb_policy: String,
    /// Upstream protocol: "", "h2", "h2c" or "tls".
    pub protocol: String,
    /// Active HTTP health checking.
    pub health_check: Option<HealthCheck>,
    /// Circuit breaker thresholds from the Service's annotations.
    pub circuit_breakers: Option<CircuitBreakers>,
    /// SNI sent to a TLS upstream (Host rewrite of the service or route,
    /// else the ExternalName); part of the cluster's identity upstream.
    pub sni: String,
    /// Validation of the upstream's certificate.
    pub upstream_validation: Option<UpstreamValidation>,
}

/// Circuit breaker thresholds of a cluster (`projectcontour.io/max-*`
/// Service annotations); 0 leaves Envoy's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CircuitBreakers {
    /// `max_connections`.
    pub max_connections: u32,
    /// `max_pending_requests`.
    pub max_pending_requests: u32,
    /// `max_requests`.
    pub max_requests: u32,
    /// `max_retries`.
    pub max_retries: u32,
    /// Per-host `max_connections`.
    pub per_host_max_connections: u32,
}

impl CircuitBreakers {
    /// Whether any threshold is set (upstream emits circuit breakers only then).
    pub fn any_set(&self) -> bool {
        self.max_connections > 0
            || self.max_pending_requests > 0
            || self.max_requests > 0
            || self.max_retries > 0
            || self.per_host_max_connections > 0
    }
}

/// Active HTTP health checking of a cluster's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct HealthCheck {
    /// Path requested.
    pub path: String,
    /// Host header; Envoy gets `contour-envoy-healthcheck` when empty.
    pub host: String,
    /// Interval between checks (default 10s).
    pub interval: Option<std::time::Duration>,
    /// Timeout of a check (default 2s).
    pub timeout: Option<std::time::Duration>,
    /// Failures before unhealthy (0 = default 3).
    pub unhealthy_threshold: u32,
    /// Successes before healthy (0 = default 2).
    pub healthy_threshold: u32,
    /// Accepted status ranges `[start, end)`; empty = 200 only.
    pub expected_statuses: Vec<(i64, i64)>,
}

impl Cluster {
    /// The name the EDS service and endpoints are known by:
    /// `namespace/service/portname`, or `namespace/service` for an unnamed port.
    pub fn eds_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.service)
        } else {
            format!("{}/{}/{}", self.namespace, self.service, self.port_name)
        }
    }
}
