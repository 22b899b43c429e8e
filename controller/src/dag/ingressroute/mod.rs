//! The IngressRoute processor (`contour.heptio.com/v1beta1`), built the way
//! upstream v1.0.1 (the last release with IngressRoute) built it.
//!
//! Roots (objects with a `virtualhost`) in allowed namespaces own an fqdn;
//! their routes, and those of the IngressRoutes they delegate prefixes to,
//! become routes of that virtual host. Status is upstream's pair
//! `currentStatus` / `description`:
//!
//! - every status is committed once per build and the **first** committed one
//!   wins (duplicated fqdns first, then roots in key order, a delegate when
//!   its delegating route was processed);
//! - an error stops the processing of that object (`invalid`), but routes it
//!   (or its delegates) added before the error stay, as upstream kept them;
//!   an error in a delegate leaves its parent valid;
//! - a delegation to an IngressRoute that does not exist is ignored;
//! - a non-root no processed route delegated to is `orphaned`.
//!
//! Deliberate differences from upstream, each refusing input Envoy would
//! reject (which would take every other virtual host down with it) or that
//! this control plane cannot serve yet, with a description of our own:
//!
//! - a `match` that does not start with `/`;
//! - a `prefixRewrite` with NUL, CR or LF; a health check with an empty path,
//!   control characters in its path or host, or more than 10^9 seconds;
//!   service weights that add up to more than 2^32-1.
//!
//! A root in a namespace where roots are not allowed does not count as a
//! claim of its fqdn (upstream let it invalidate the legitimate root).
//!
//! `tcpproxy` (see `tcpproxy.rs`) is served for TLS passthrough or a valid
//! certificate, as upstream did; where upstream then overwrote a tcpproxy
//! error with `valid` once the routes were processed, the error stays, and a
//! delegate without a `tcpproxy` (upstream crashed) serves nothing.
//!
//! Also: unknown load balancer strategies become the default (upstream hashed
//! the raw string into the cluster name); `minimumProtocolVersion` other than
//! `1.3` means TLS 1.2 (upstream allowed TLS 1.1, which is not offered here);
//! virtual host names are lower-cased (duplicate detection stays
//! case-sensitive, as upstream's).

mod tcpproxy;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use contour_crds::IngressRoute;
use contour_crds::ingressroute::{Route as IrRoute, Service as IrService};

use super::builder::{BuilderConfig, parse_duration};
use super::common::{add_routes, delegation_permitted, resolve_service, secret_key, tls_secret};
use super::status::{ObjectKind, ObjectRef, ObjectStatus};
use super::{
    Dag, HTTP_LISTENER, HTTPS_LISTENER, HealthCheck, PathMatch, RetryPolicy, Route, RouteAction,
    TlsVersion, VirtualHost, WeightedCluster,
};
use crate::cache::Key;
use crate::dag::source::Source;

const VALID: &str = "valid IngressRoute";
const ORPHANED: &str =
    "this IngressRoute is not part of a delegation chain from a root IngressRoute";
/// Longest health check interval or timeout passed to Envoy.
const MAX_HEALTH_CHECK_SECONDS: i64 = 1_000_000_000;

/// Why an IngressRoute is invalid: condition type, reason, and the
/// description upstream wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Invalid {
    r#type: &'static str,
    reason: &'static str,
    description: String,
}

fn invalid(r#type: &'static str, reason: &'static str, description: impl Into<String>) -> Invalid {
    Invalid {
        r#type,
        reason,
        description: description.into(),
    }
}

/// The virtual host a chain of IngressRoutes is adding routes to.
struct Host {
    fqdn: String,
    /// The root has a certificate: plain-HTTP routes redirect unless they
    /// permit insecure requests, and routes are also served over TLS.
    tls: bool,
}

/// An IngressRoute being processed: its routes up to `next` are done.
struct Frame<'c> {
    key: Key,
    ir: &'c IngressRoute,
    /// The `match` of the route that delegated to it ("" for the root).
    parent_prefix: &'c str,
    next: usize,
}

/// What processing one route leads to.
enum Step<'c> {
    /// Go on with the next route.
    Next,
    /// Process this delegate first.
    Delegate(Frame<'c>),
    /// The IngressRoute is done: valid, or invalid and stopped.
    Done(Result<(), Invalid>),
}

struct Processor<'a> {
    cache: &'a dyn Source,
    config: &'a BuilderConfig,
    dag: &'a mut Dag,
    statuses: BTreeMap<Key, ObjectStatus>,
}

/// Processes every IngressRoute in the cache into `dag`. Runs before the
/// HTTPProxy processor, as upstream v1.0.1 did (see `builder::build`).
pub fn process(cache: &dyn Source, config: &BuilderConfig, dag: &mut Dag) {
    let mut p = Processor {
        cache,
        config,
        dag,
        statuses: BTreeMap::new(),
    };

    // An fqdn (compared as written) may be claimed by one root only; every
    // claimant of a duplicated one is invalid and not processed. A root in
    // a namespace where roots are not allowed claims nothing (upstream
    // counted it, so a tenant could take any root's host down).
    let mut roots_by_fqdn: BTreeMap<&str, Vec<&Key>> = BTreeMap::new();
    for (key, ir) in cache.ingressroutes() {
        if let Some(vh) = &ir.spec.virtual_host
            && config.root_allowed(&key.namespace)
        {
            roots_by_fqdn.entry(vh.fqdn.as_str()).or_default().push(key);
        }
    }
    let mut duplicated = BTreeSet::new();
    for (fqdn, keys) in &roots_by_fqdn {
        if keys.len() < 2 {
            continue;
        }
        let mut names: Vec<String> = keys
            .iter()
            .map(|k| format!("{}/{}", k.namespace, k.name))
            .collect();
        names.sort();
        let description = format!(
            "fqdn {} is used in multiple IngressRoutes: {}",
            go_quote(fqdn),
            names.join(", ")
        );
        for key in keys {
            p.commit(
                key,
                Err(invalid(
                    "VirtualHostError",
                    "DuplicateVhost",
                    description.clone(),
                )),
            );
            duplicated.insert(*key);
        }
    }

    for (key, ir) in cache.ingressroutes() {
        if ir.spec.virtual_host.is_some() && !duplicated.contains(key) {
            let result = p.root(config, key, ir);
            p.commit(key, result);
        }
    }

    // Non-roots no processed route delegated to.
    for (key, ir) in cache.ingressroutes() {
        if ir.spec.virtual_host.is_none() && !p.statuses.contains_key(key) {
            let mut status = ObjectStatus::valid(VALID, ir.metadata.generation.unwrap_or_default());
            status.orphan(ORPHANED);
            p.statuses.insert(key.clone(), status);
        }
    }

    let Processor { dag, statuses, .. } = p;
    for (key, status) in statuses {
        dag.statuses.insert(
            ObjectRef {
                kind: ObjectKind::IngressRoute,
                namespace: key.namespace,
                name: key.name,
            },
            status,
        );
    }
}

impl Processor<'_> {
    /// Records the status of `key` unless one was recorded before.
    fn commit(&mut self, key: &Key, result: Result<(), Invalid>) {
        if self.statuses.contains_key(key) {
            return;
        }
        let generation = self
            .cache
            .ingressroutes()
            .get(key)
            .and_then(|ir| ir.metadata.generation)
            .unwrap_or_default();
        let mut status = ObjectStatus::valid(VALID, generation);
        if let Err(e) = result {
            status.error(e.r#type, e.reason, e.description);
        }
        self.statuses.insert(key.clone(), status);
    }

    fn root(
        &mut self,
        config: &BuilderConfig,
        key: &Key,
        ir: &IngressRoute,
    ) -> Result<(), Invalid> {
        let Some(vh) = &ir.spec.virtual_host else {
            return Ok(());
        };
        let namespace = key.namespace.as_str();
        if !config.root_allowed(namespace) {
            return Err(invalid(
                "RootNamespaceError",
                "RootIngressRouteNotAllowedInNamespace",
                "root IngressRoute cannot be defined in this namespace",
            ));
        }
        if vh.fqdn.trim().is_empty() {
            return Err(invalid(
                "VirtualHostError",
                "FQDNNotSpecified",
                "Spec.VirtualHost.Fqdn must be specified",
            ));
        }
        if vh.fqdn.contains('*') {
            return Err(invalid(
                "VirtualHostError",
                "WildCardNotAllowed",
                format!(
                    "Spec.VirtualHost.Fqdn {} cannot use wildcards",
                    go_quote(&vh.fqdn)
                ),
            ));
        }

        let mut certificate = None;
        let mut passthrough = false;
        if let Some(tls) = &vh.tls {
            let secret = secret_key(namespace, &tls.secret_name);
            // Upstream looks the Secret up first: a missing one is reported
            // as missing even when it would not have been delegated.
            if let Ok(found) = tls_secret(self.cache, &secret) {
                if !delegation_permitted(self.cache, &secret, namespace) {
                    return Err(invalid(
                        "TLSError",
                        "DelegationNotPermitted",
                        format!("{}: certificate delegation not permitted", tls.secret_name),
                    ));
                }
                certificate = Some((found, min_tls_version(&tls.minimum_protocol_version)));
            }
            passthrough = tls.secret_name.is_empty() && tls.passthrough;
            if certificate.is_none() && !passthrough {
                return Err(invalid(
                    "TLSError",
                    "SecretNotValid",
                    format!("TLS Secret [{}] not found or is malformed", tls.secret_name),
                ));
            }
        }
        // Upstream proxied TCP only for passthrough or a valid certificate,
        // and then served the routes over plain HTTP only; otherwise the
        // tcpproxy is ignored.
        let (tcp_clusters, tcp_result) =
            if ir.spec.tcp_proxy.is_some() && (passthrough || certificate.is_some()) {
                self.tcp_proxy(key, ir)
            } else {
                (None, Ok(()))
            };

        let host = Host {
            fqdn: vh.fqdn.to_ascii_lowercase(),
            tls: certificate.is_some() && ir.spec.tcp_proxy.is_none(),
        };
        if (certificate.is_some() || tcp_clusters.is_some())
            && let Some(l) = self.dag.listeners.get_mut(HTTPS_LISTENER)
        {
            let svh = Arc::make_mut(l.secure_virtual_hosts.entry(host.fqdn.clone()).or_default());
            svh.virtual_host.name = host.fqdn.clone();
            if let Some((secret, min)) = certificate {
                svh.secret = Some(secret);
                svh.min_tls_version = min;
                svh.max_tls_version = TlsVersion::V1_3;
            }
            if tcp_clusters.is_some() {
                svh.tcp_proxy = tcp_clusters;
            }
        }
        // Upstream then marked the root valid once its routes were done,
        // hiding a tcpproxy error; we keep it (a route error comes first).
        self.routes(key, ir, &host).and(tcp_result)
    }

    /// Adds the routes of the root `ir` and of the IngressRoutes it delegates
    /// to, depth first in route order, committing each delegate's status when
    /// its routes are done. Returns the root's own result. The delegation
    /// chain is an explicit stack, so long chains cannot exhaust the thread's.
    fn routes(&mut self, key: &Key, ir: &IngressRoute, host: &Host) -> Result<(), Invalid> {
        let cache = self.cache;
        let mut chain = vec![Frame {
            key: key.clone(),
            ir,
            parent_prefix: "",
            next: 0,
        }];
        loop {
            let Some(top) = chain.last_mut() else {
                return Ok(());
            };
            let step = match top.ir.spec.routes.get(top.next) {
                Some(route) => {
                    top.next += 1;
                    let (namespace, parent_prefix) = (top.key.namespace.clone(), top.parent_prefix);
                    self.route(cache, &namespace, route, parent_prefix, &chain, host)
                }
                None => Step::Done(Ok(())),
            };
            match step {
                Step::Next => {}
                Step::Delegate(frame) => chain.push(frame),
                Step::Done(result) => {
                    let Some(done) = chain.pop() else {
                        return result;
                    };
                    if chain.is_empty() {
                        return result;
                    }
                    self.commit(&done.key, result);
                }
            }
        }
    }

    /// One route of the IngressRoute on top of `chain`.
    fn route<'c>(
        &mut self,
        cache: &'c dyn Source,
        namespace: &str,
        route: &'c IrRoute,
        parent_prefix: &str,
        chain: &[Frame<'c>],
        host: &Host,
    ) -> Step<'c> {
        let m = route.r#match.as_str();
        if !m.starts_with('/') {
            return Step::Done(Err(invalid(
                "RouteError",
                "MatchNotValid",
                format!("route {}: match must start with \"/\"", go_quote(m)),
            )));
        }
        if !route.services.is_empty() && route.delegate.is_some() {
            return Step::Done(Err(invalid(
                "RouteError",
                "ServicesAndDelegate",
                format!(
                    "route {}: cannot specify services and delegate in the same route",
                    go_quote(m)
                ),
            )));
        }
        if route.services.len() > 1 && route.enable_websockets {
            return Step::Done(Err(invalid(
                "RouteError",
                "WebsocketsWithMultipleServices",
                format!(
                    "route {}: cannot specify multiple services and enable websockets",
                    go_quote(m)
                ),
            )));
        }
        if !route.services.is_empty() {
            if !matches_path_prefix(m, parent_prefix) {
                return Step::Done(Err(invalid(
                    "RouteError",
                    "PrefixNotUnderParent",
                    format!(
                        "the path prefix {} does not match the parent's path prefix {}",
                        go_quote(m),
                        go_quote(parent_prefix)
                    ),
                )));
            }
            return match self.build_route(namespace, route, host.tls) {
                Ok(built) => {
                    self.add_route(host, built);
                    Step::Next
                }
                Err(e) => Step::Done(Err(e)),
            };
        }
        let Some(delegate) = &route.delegate else {
            // Neither services nor a delegate: nothing to do.
            return Step::Next;
        };
        let target_namespace = if delegate.namespace.is_empty() {
            namespace
        } else {
            delegate.namespace.as_str()
        };
        let target = Key::new(target_namespace, delegate.name.clone());
        let Some(dest) = cache.ingressroutes().get(&target) else {
            // Upstream ignores a delegation to a missing IngressRoute.
            return Step::Next;
        };
        if dest.spec.virtual_host.is_some() {
            return Step::Done(Err(invalid(
                "DelegationError",
                "RootDelegatesToRoot",
                "root ingressroute cannot delegate to another root ingressroute",
            )));
        }
        if chain.iter().any(|f| f.key == target) {
            let path: Vec<String> = chain
                .iter()
                .map(|f| &f.key)
                .chain([&target])
                .map(|k| format!("{}/{}", k.namespace, k.name))
                .collect();
            return Step::Done(Err(invalid(
                "DelegationError",
                "DelegationCycle",
                format!("route creates a delegation cycle: {}", path.join(" -> ")),
            )));
        }
        Step::Delegate(Frame {
            key: target,
            ir: dest,
            parent_prefix: m,
            next: 0,
        })
    }

    fn build_route(&self, namespace: &str, route: &IrRoute, tls: bool) -> Result<Route, Invalid> {
        let m = route.r#match.as_str();
        if route.prefix_rewrite.contains(['\0', '\r', '\n']) {
            return Err(invalid(
                "RouteError",
                "PrefixRewriteNotValid",
                format!(
                    "route {}: prefixRewrite must not contain NUL, CR or LF",
                    go_quote(m)
                ),
            ));
        }
        let mut clusters = Vec::new();
        for s in &route.services {
            if !(1..=65535).contains(&s.port) {
                return Err(invalid(
                    "ServiceError",
                    "PortNotValid",
                    format!(
                        "route {}: service {}: port must be in the range 1-65535",
                        go_quote(m),
                        go_quote(&s.name)
                    ),
                ));
            }
            let mut cluster = resolve_service(
                self.cache,
                self.config,
                namespace,
                &s.name,
                s.port,
                String::new(),
            )
            .map_err(|_| {
                invalid(
                    "ServiceError",
                    "ServiceUnresolvedReference",
                    format!("Service [{}:{}] is invalid or missing", s.name, s.port),
                )
            })?;
            cluster.lb_policy = lb_policy(&s.strategy);
            cluster.health_check = health_check(m, s)?;
            clusters.push(WeightedCluster {
                cluster: Arc::new(cluster),
                weight: s.weight.unwrap_or(0),
                ..Default::default()
            });
        }
        let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
        if total == 0 {
            for c in &mut clusters {
                c.weight = 1;
            }
        } else if total > u64::from(u32::MAX) {
            return Err(invalid(
                "RouteError",
                "WeightsNotValid",
                format!(
                    "route {}: the weights of the services must add up to at most 4294967295",
                    go_quote(m)
                ),
            ));
        }
        Ok(Route {
            path: PathMatch::Prefix {
                prefix: m.to_string(),
                segment: false,
            },
            action: RouteAction::Forward(clusters),
            https_redirect: tls && !route.permit_insecure,
            websocket: route.enable_websockets,
            prefix_rewrite: (!route.prefix_rewrite.is_empty())
                .then(|| route.prefix_rewrite.clone()),
            timeout: route
                .timeout_policy
                .as_ref()
                .and_then(|t| response_timeout(&t.request)),
            retry: route.retry_policy.as_ref().map(|r| RetryPolicy {
                retry_on: "5xx".into(),
                num_retries: u32::try_from(r.count.unwrap_or(0).max(1)).unwrap_or(u32::MAX),
                per_try_timeout: per_try_timeout(&r.per_try_timeout),
            }),
            ..Route::default()
        })
    }

    /// Adds a route to the host's plain-HTTP virtual host and, when the root
    /// has a certificate, to its TLS one (where it never redirects). A route
    /// with the same prefix as an earlier one replaces it.
    fn add_route(&mut self, host: &Host, route: Route) {
        if host.tls
            && let Some(l) = self.dag.listeners.get_mut(HTTPS_LISTENER)
        {
            let svh = Arc::make_mut(l.secure_virtual_hosts.entry(host.fqdn.clone()).or_default());
            let secure = Route {
                https_redirect: false,
                ..route.clone()
            };
            add_routes(&mut svh.virtual_host, vec![secure]);
        }
        if let Some(l) = self.dag.listeners.get_mut(HTTP_LISTENER) {
            let vhost = l.virtual_hosts.entry(host.fqdn.clone()).or_insert_with(|| {
                Arc::new(VirtualHost {
                    name: host.fqdn.clone(),
                    ..VirtualHost::default()
                })
            });
            add_routes(Arc::make_mut(vhost), vec![route]);
        }
    }
}

/// Whether `path` lies under `prefix`, whole segments only (`/foo` covers
/// `/foo` and `/foo/bar`, not `/foobar`); everything lies under "".
fn matches_path_prefix(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    if path.is_empty() {
        return false;
    }
    let with_slash = |s: &str| {
        if s.ends_with('/') {
            s.to_string()
        } else {
            format!("{s}/")
        }
    };
    with_slash(path).starts_with(&with_slash(prefix))
}

/// The strategies upstream v1.0.1 knew; anything else is the default.
fn lb_policy(strategy: &str) -> String {
    match strategy {
        "RoundRobin" | "WeightedLeastRequest" | "Random" | "Cookie" => strategy.to_string(),
        _ => String::new(),
    }
}

fn health_check(m: &str, s: &IrService) -> Result<Option<HealthCheck>, Invalid> {
    let Some(h) = &s.health_check else {
        return Ok(None);
    };
    // Envoy refuses control characters (other than tab) in header values.
    let control = |v: &str| v.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f');
    if h.path.is_empty() || control(&h.path) || control(&h.host) {
        return Err(invalid(
            "ServiceError",
            "HealthCheckNotValid",
            format!(
                "route {}: service {}: healthCheck path must not be empty, and path and host must not contain control characters",
                go_quote(m),
                go_quote(&s.name)
            ),
        ));
    }
    let seconds = |v: Option<i64>| -> Result<Option<Duration>, Invalid> {
        match v.unwrap_or(0) {
            n if n <= 0 => Ok(None),
            n if n > MAX_HEALTH_CHECK_SECONDS => Err(invalid(
                "ServiceError",
                "HealthCheckNotValid",
                format!(
                    "route {}: service {}: healthCheck intervalSeconds and timeoutSeconds must be at most {MAX_HEALTH_CHECK_SECONDS}",
                    go_quote(m),
                    go_quote(&s.name)
                ),
            )),
            n => Ok(Some(Duration::from_secs(n.unsigned_abs()))),
        }
    };
    Ok(Some(HealthCheck {
        path: h.path.clone(),
        host: h.host.clone(),
        interval: seconds(h.interval_seconds)?,
        timeout: seconds(h.timeout_seconds)?,
        unhealthy_threshold: h.unhealthy_threshold_count.unwrap_or(0),
        healthy_threshold: h.healthy_threshold_count.unwrap_or(0),
        expected_statuses: vec![],
    }))
}

/// `minimumProtocolVersion`: `1.3`, otherwise TLS 1.2 (upstream's TLS 1.1
/// fallback is not offered).
fn min_tls_version(v: &str) -> TlsVersion {
    if v == "1.3" {
        TlsVersion::V1_3
    } else {
        TlsVersion::V1_2
    }
}

/// Go's `time.ParseDuration`: an optional sign, then what [`parse_duration`]
/// reads, without its words and blanks. Gives the sign (true = negative).
fn go_parse_duration(s: &str) -> Option<(bool, Duration)> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body == "0" {
        return Some((negative, Duration::ZERO));
    }
    if body.is_empty() || body.starts_with('i') || body.contains(char::is_whitespace) {
        return None;
    }
    match parse_duration(body) {
        Ok(Some(d)) => Some((negative, d)),
        // The shared parser reads a zero duration as "unset".
        Ok(None) => Some((negative, Duration::ZERO)),
        Err(_) => None,
    }
}

/// `timeoutPolicy.request` as upstream applied it to the response: empty or
/// zero → Envoy's default (`None`); `infinity`, a negative or an unparsable
/// value → no timeout (`Some(0)`).
fn response_timeout(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    if s == "infinity" {
        return Some(Duration::ZERO);
    }
    match go_parse_duration(s) {
        None | Some((true, _)) => Some(Duration::ZERO),
        Some((false, d)) if d.is_zero() => None,
        Some((false, d)) => Some(d),
    }
}

/// `retryPolicy.perTryTimeout`: set only when it parses to a positive value.
fn per_try_timeout(s: &str) -> Option<Duration> {
    match go_parse_duration(s) {
        Some((false, d)) if !d.is_zero() => Some(d),
        _ => None,
    }
}

/// A string quoted as Go's `%q` quotes it.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use contour_crds::ingressroute::{Delegate, IngressRouteSpec, VirtualHost as IrVirtualHost};

    #[test]
    fn path_prefixes_match_whole_segments() {
        assert!(matches_path_prefix("/anything", ""));
        assert!(matches_path_prefix("/foo", "/foo"));
        assert!(matches_path_prefix("/foo/bar", "/foo"));
        assert!(matches_path_prefix("/foo/bar", "/foo/"));
        assert!(matches_path_prefix("/foo/", "/foo"));
        assert!(!matches_path_prefix("/foobar", "/foo"));
        assert!(!matches_path_prefix("/", "/foo"));
        assert!(!matches_path_prefix("", "/foo"));
    }

    #[test]
    fn request_timeouts_follow_upstream() {
        assert_eq!(response_timeout(""), None);
        assert_eq!(response_timeout("0s"), None);
        assert_eq!(response_timeout("0"), None);
        assert_eq!(response_timeout("infinity"), Some(Duration::ZERO));
        assert_eq!(response_timeout("infinite"), Some(Duration::ZERO));
        assert_eq!(response_timeout("forever"), Some(Duration::ZERO));
        assert_eq!(response_timeout("-1s"), Some(Duration::ZERO));
        assert_eq!(response_timeout(" 1s"), Some(Duration::ZERO));
        assert_eq!(response_timeout("+90s"), Some(Duration::from_secs(90)));
        assert_eq!(response_timeout("1m30s"), Some(Duration::from_secs(90)));
    }

    #[test]
    fn per_try_timeouts_are_positive_or_unset() {
        assert_eq!(per_try_timeout(""), None);
        assert_eq!(per_try_timeout("infinity"), None);
        assert_eq!(per_try_timeout("-1s"), None);
        assert_eq!(per_try_timeout("0s"), None);
        assert_eq!(per_try_timeout("bogus"), None);
        assert_eq!(per_try_timeout("250ms"), Some(Duration::from_millis(250)));
    }

    #[test]
    fn strings_are_quoted_as_go_quotes_them() {
        assert_eq!(go_quote("/foo"), "\"/foo\"");
        assert_eq!(go_quote(""), "\"\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("a\nb\x01"), "\"a\\nb\\x01\"");
        assert_eq!(go_quote("é"), "\"é\"");
    }

    #[test]
    fn strategies_upstream_did_not_know_are_the_default() {
        assert_eq!(lb_policy("Cookie"), "Cookie");
        assert_eq!(lb_policy("RoundRobin"), "RoundRobin");
        assert_eq!(lb_policy("RequestHash"), "");
        assert_eq!(lb_policy("bogus"), "");
    }

    #[test]
    fn minimum_versions_below_1_3_are_1_2() {
        assert_eq!(min_tls_version("1.3"), TlsVersion::V1_3);
        assert_eq!(min_tls_version("1.2"), TlsVersion::V1_2);
        assert_eq!(min_tls_version("1.1"), TlsVersion::V1_2);
        assert_eq!(min_tls_version(""), TlsVersion::V1_2);
    }

    fn ir(name: &str, spec: IngressRouteSpec) -> IngressRoute {
        let mut ir = IngressRoute::new(name, spec);
        ir.metadata.namespace = Some("default".into());
        ir
    }

    fn delegating(to: &str) -> IrRoute {
        IrRoute {
            r#match: "/".into(),
            delegate: Some(Delegate {
                name: to.into(),
                namespace: String::new(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn long_delegation_chains_are_followed() {
        const DEPTH: usize = 3000;
        let mut cache = crate::cache::Cache::default();
        let root = ir(
            "root",
            IngressRouteSpec {
                virtual_host: Some(IrVirtualHost {
                    fqdn: "chain.example.com".into(),
                    tls: None,
                }),
                routes: vec![delegating("n0")],
                tcp_proxy: None,
            },
        );
        cache.insert(crate::cache::Object::IngressRoute(root));
        for i in 0..DEPTH {
            let spec = IngressRouteSpec {
                routes: vec![delegating(&format!("n{}", i + 1))],
                ..Default::default()
            };
            cache.insert(crate::cache::Object::IngressRoute(ir(
                &format!("n{i}"),
                spec,
            )));
        }
        let dag = super::super::build(&cache, &BuilderConfig::default());
        assert_eq!(dag.statuses.len(), DEPTH + 1);
        assert!(dag.statuses.values().all(ObjectStatus::is_valid));
    }
}
