//! The routing DAG: a pure function of the cache. Listeners hold virtual
//! hosts, virtual hosts hold ordered routes, routes point at clusters.
//! User mistakes never become Rust errors: they become status conditions
//! carried next to the DAG (see [`status`]).

pub mod builder;
pub mod common;
pub mod httpproxy;
pub mod ingressroute;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use builder::{BuilderConfig, build};
pub use status::{ObjectKind, ObjectRef, ObjectStatus, Statuses};

/// Name of the plain-HTTP listener.
pub const HTTP_LISTENER: &str = "ingress_http";
/// Name of the TLS listener.
pub const HTTPS_LISTENER: &str = "ingress_https";

/// The result of one build: listeners with their hosts, and the status of
/// every routing object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dag {
    /// Listeners by name.
    pub listeners: BTreeMap<String, Listener>,
    /// Status of every HTTPProxy, IngressRoute and TLSCertificateDelegation seen.
    pub statuses: Statuses,
}

/// A listener: a port and the virtual hosts served on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listener {
    /// Listener name (`ingress_http`, `ingress_https`).
    pub name: String,
    /// Bind address.
    pub address: String,
    /// Bind port.
    pub port: u32,
    /// Plain HTTP virtual hosts by host name.
    pub virtual_hosts: BTreeMap<String, VirtualHost>,
    /// TLS virtual hosts by SNI name.
    pub secure_virtual_hosts: BTreeMap<String, SecureVirtualHost>,
}

/// A virtual host and its routes, most specific first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VirtualHost {
    /// The host name (`*.` wildcards allowed).
    pub name: String,
    /// Routes in match order.
    pub routes: Vec<Route>,
}

/// A TLS virtual host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecureVirtualHost {
    /// Host name and routes.
    pub virtual_host: VirtualHost,
    /// Serving certificate.
    pub secret: Option<Arc<TlsSecret>>,
    /// Minimum TLS version.
    pub min_tls_version: TlsVersion,
    /// Maximum TLS version.
    pub max_tls_version: TlsVersion,
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
#[derive(Debug, Clone, Default, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
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

/// A cluster and its share of the traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    /// The upstream.
    pub cluster: Arc<Cluster>,
    /// Relative weight.
    pub weight: u32,
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
