//! The HTTPProxy processor: roots, includes, routes, TLS and status.

mod conditions;
mod services;
mod tcpproxy;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use contour_crds::HTTPProxy;
use contour_crds::httpproxy::{MatchCondition, Route as ProxyRoute};

use super::builder::{BuilderConfig, parse_duration};
use super::common::{RouteError, add_routes, sort_routes, wildcard_authority};
use super::policy;
use super::source::Source;
use super::status::{Current, ObjectKind, ObjectRef, ObjectStatus};
use super::{
    Dag, HTTP_LISTENER, HTTPS_LISTENER, HeaderMatch, HeaderMatchKind, HealthCheck, PathMatch,
    QueryParamMatch, Redirect, RetryPolicy, Route, RouteAction, VirtualHost, WeightedCluster,
};
use crate::cache::{Cache, Key};

const VALID: &str = "Valid HTTPProxy";
const INVALID: &str = "At least one error present, see Errors for details";
const ORPHANED: &str = "this HTTPProxy is not part of a delegation chain from a root HTTPProxy";

/// `namespace/name`.
fn name_of(key: &Key) -> String {
    format!("{}/{}", key.namespace, key.name)
}

fn obj_ref(key: &Key) -> ObjectRef {
    ObjectRef {
        kind: ObjectKind::HTTPProxy,
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    }
}

/// Conditions accumulated along an include chain.
#[derive(Debug, Clone, Default)]
struct Inherited {
    prefix: String,
    headers: Vec<HeaderMatch>,
    query: Vec<QueryParamMatch>,
}

/// Envoy's default limit on a direct response body
/// (`max_direct_response_body_size_bytes`).
const MAX_DIRECT_RESPONSE_BODY: usize = 4096;
/// Longest health check interval or timeout passed to Envoy.
const MAX_HEALTH_CHECK_SECONDS: i64 = 1_000_000_000;

/// Statuses of HTTPProxies by key, while processing.
pub type ProxyStatuses = BTreeMap<Key, ObjectStatus>;

/// Processes one valid root with a unique fqdn into the DAG, the statuses
/// and the set of reached proxies (see [`process_root`]).
pub type RootRunner<'r> = dyn FnMut(
        &Cache,
        &BuilderConfig,
        &Key,
        &Arc<HTTPProxy>,
        &mut Dag,
        &mut ProxyStatuses,
        &mut BTreeSet<Key>,
    ) + 'r;

/// Processes every HTTPProxy in the cache into `dag`.
pub fn process(cache: &Cache, config: &BuilderConfig, dag: &mut Dag) {
    process_with(
        cache,
        config,
        dag,
        &mut |cache, config, key, proxy, dag, statuses, reached| {
            process_root(cache, config, key, proxy, dag, statuses, reached)
        },
    )
}

/// [`process`], with each root processed by `run_root` (the incremental
/// engine replays remembered results there).
pub fn process_with(
    cache: &Cache,
    config: &BuilderConfig,
    dag: &mut Dag,
    run_root: &mut RootRunner<'_>,
) {
    let mut statuses: BTreeMap<Key, ObjectStatus> = BTreeMap::new();
    let mut roots_by_fqdn: BTreeMap<String, Vec<Key>> = BTreeMap::new();

    for (key, proxy) in &cache.httpproxies {
        if proxy.spec.virtual_host.is_none() {
            continue;
        }
        let status = match claimed_fqdn(config, key, proxy) {
            Ok(fqdn) => {
                roots_by_fqdn.entry(fqdn).or_default().push(key.clone());
                ObjectStatus::valid(VALID, proxy.metadata.generation.unwrap_or_default())
            }
            Err(status) => status,
        };
        statuses.insert(key.clone(), status);
    }

    // One root per fqdn: every claimant of a duplicated fqdn is invalid.
    for (fqdn, keys) in &roots_by_fqdn {
        if keys.len() > 1 {
            for k in keys {
                if let Some(s) = statuses.get_mut(k) {
                    duplicate_error(s, fqdn, keys.iter());
                }
            }
        }
    }

    let mut reached: BTreeSet<Key> = BTreeSet::new();
    for keys in roots_by_fqdn.values() {
        let [key] = keys.as_slice() else { continue };
        let Some(proxy) = cache.httpproxies.get(key) else {
            continue;
        };
        if !statuses.get(key).is_some_and(ObjectStatus::is_valid) {
            continue;
        }
        run_root(cache, config, key, proxy, dag, &mut statuses, &mut reached);
    }

    // Non-root proxies no valid root reached are orphaned.
    for (key, proxy) in &cache.httpproxies {
        if proxy.spec.virtual_host.is_none() && !reached.contains(key) {
            statuses.insert(key.clone(), orphan_status(proxy));
        }
    }
    for (key, status) in statuses {
        dag.statuses.insert(obj_ref(&key), finished(status));
    }
}

/// The fqdn (lower case) a proxy with a virtual host claims, or, when it
/// cannot be a root at all, its status saying why.
pub fn claimed_fqdn(
    config: &BuilderConfig,
    key: &Key,
    proxy: &HTTPProxy,
) -> Result<String, ObjectStatus> {
    let mut status = ObjectStatus::valid(VALID, proxy.metadata.generation.unwrap_or_default());
    let fqdn = proxy
        .spec
        .virtual_host
        .as_ref()
        .map(|v| v.fqdn.as_str())
        .unwrap_or_default();
    if !config.root_allowed(&key.namespace) {
        status.error(
            "RootNamespaceError",
            "RootProxyNotAllowedInNamespace",
            "root HTTPProxy cannot be defined in this namespace",
        );
    } else if fqdn.is_empty() {
        status.error(
            "VirtualHostError",
            "FQDNNotSpecified",
            "Spec.VirtualHost.Fqdn must be specified",
        );
    } else {
        return Ok(fqdn.to_ascii_lowercase());
    }
    Err(status)
}

/// The starting status of a root whose fqdn is claimed by `claimants`
/// (every claimant, itself included, in key order).
pub fn root_input<'k>(
    proxy: &HTTPProxy,
    fqdn: &str,
    claimants: impl ExactSizeIterator<Item = &'k Key> + Clone,
) -> ObjectStatus {
    let mut status = ObjectStatus::valid(VALID, proxy.metadata.generation.unwrap_or_default());
    if claimants.len() > 1 {
        duplicate_error(&mut status, fqdn, claimants);
    }
    status
}

fn duplicate_error<'k>(status: &mut ObjectStatus, fqdn: &str, keys: impl Iterator<Item = &'k Key>) {
    let names: Vec<String> = keys.map(name_of).collect();
    status.error(
        "VirtualHostError",
        "DuplicateVhost",
        format!(
            "fqdn \"{fqdn}\" is used in multiple HTTPProxies: {}",
            names.join(", ")
        ),
    );
}

/// The status of a non-root proxy no root reaches.
pub fn orphan_status(proxy: &HTTPProxy) -> ObjectStatus {
    let mut status = ObjectStatus::valid(VALID, proxy.metadata.generation.unwrap_or_default());
    status.orphan(ORPHANED);
    status
}

/// A proxy's status as published: an invalid one keeps its details in the
/// conditions only, as upstream.
pub fn finished(mut status: ObjectStatus) -> ObjectStatus {
    if status.current == Current::Invalid {
        status.description = INVALID.to_string();
    }
    status
}

/// The status key of a proxy.
pub fn status_ref(key: &Key) -> ObjectRef {
    obj_ref(key)
}

/// Processes the root `key`: its virtual hosts go into `dag`, the statuses
/// of it and of the proxies it includes into `statuses` (read only for those
/// keys), what it includes into `reached` (only added to). It reads the
/// cache only through `cache`.
pub fn process_root(
    cache: &dyn Source,
    config: &BuilderConfig,
    key: &Key,
    proxy: &HTTPProxy,
    dag: &mut Dag,
    statuses: &mut BTreeMap<Key, ObjectStatus>,
    reached: &mut BTreeSet<Key>,
) {
    let Some(vh) = &proxy.spec.virtual_host else {
        return;
    };
    let fqdn = vh.fqdn.to_ascii_lowercase();
    let mut root_status = statuses
        .remove(key)
        .unwrap_or_else(|| ObjectStatus::valid(VALID, 0));

    // Host-wide policies, on both the plain and the TLS virtual host.
    let template = VirtualHost {
        name: fqdn.clone(),
        cors: vh.cors_policy.as_ref().and_then(|c| {
            policy::cors(c)
                .map_err(|m| root_status.error("CORSError", "PolicyDidNotParse", format!("Spec.VirtualHost.CORSPolicy: {m}")))
                .ok()
        }),
        rate_limit: vh.rate_limit_policy.as_ref().and_then(|r| r.local.as_ref()).and_then(|l| {
            policy::local_rate_limit(l)
                .map_err(|m| {
                    root_status.error("RateLimitError", "PolicyDidNotParse", format!("Spec.VirtualHost.RateLimitPolicy is invalid: {m}"))
                })
                .ok()
        }),
        ip_filter: policy::ip_filter(&vh.ip_allow_policy, &vh.ip_deny_policy)
            .map_err(|m| {
                root_status.error(
                    "IPFilterError",
                    "IPFilterPolicyNotValid",
                    format!("Spec.VirtualHost.IPAllowFilterPolicy or Spec.VirtualHost.IPDenyFilterPolicy is invalid: {m}"),
                )
            })
            .ok()
            .flatten(),
        ..VirtualHost::default()
    };

    // TLS first: routes need to know whether to redirect plain HTTP.
    let mut secure = vh.tls.as_ref().and_then(|tls| {
        tls::secure_virtual_host(
            cache,
            config,
            &key.namespace,
            tls,
            &template,
            &mut root_status,
        )
    });
    // A TCP proxy serves the whole TLS connection: no HTTP routes there.
    let has_tcp_proxy = proxy.spec.tcp_proxy.is_some();
    let mut tcp_failed = false;
    if has_tcp_proxy {
        match &mut secure {
            None if vh.tls.is_none() => root_status.error(
                "TCPProxyError",
                "TLSMustBeConfigured",
                "Spec.TCPProxy requires that either Spec.TLS.Passthrough or Spec.TLS.SecretName be set",
            ),
            None => {} // the TLS error is already recorded
            Some(svh) => {
                let mut walk = tcpproxy::Walk {
                    cache,
                    config,
                    statuses,
                    reached,
                };
                match walk.tcp_proxy(key, proxy, &mut root_status, &mut Vec::new()) {
                    tcpproxy::Outcome::Clusters(clusters) => svh.tcp_proxy = Some(clusters),
                    tcpproxy::Outcome::Nothing => {}
                    // Upstream stops here: the error may be on an included
                    // proxy, and nothing of this root is served.
                    tcpproxy::Outcome::Failed => tcp_failed = true,
                }
            }
        }
    }
    let tls_enabled = secure.is_some();

    if tcp_failed {
        statuses.insert(key.clone(), root_status);
        reached.insert(key.clone());
        return;
    }
    let mut routes = Vec::new();
    let mut visiting = vec![key.clone()];
    statuses.insert(key.clone(), root_status);
    collect_routes(
        cache,
        config,
        key,
        proxy,
        &Inherited::default(),
        tls_enabled,
        &mut visiting,
        &mut routes,
        statuses,
        reached,
    );
    reached.insert(key.clone());

    if !statuses.get(key).is_some_and(ObjectStatus::is_valid) {
        return;
    }
    if let Some(authority) = wildcard_authority(&fqdn) {
        for r in &mut routes {
            r.headers.push(authority.clone());
        }
    }
    sort_routes(&mut routes);
    let insecure: Vec<Route> = routes
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.https_redirect = tls_enabled && r.https_redirect;
            r
        })
        .collect();
    // Ingresses and IngressRoutes were processed first: a root with the same
    // fqdn shares the virtual host, and a route of this proxy replaces one
    // of theirs with the same match. The host policies are this proxy's.
    if let Some(l) = dag.listeners.get_mut(HTTP_LISTENER) {
        let vhost = Arc::make_mut(l.virtual_hosts.entry(fqdn.clone()).or_insert_with(|| {
            Arc::new(VirtualHost {
                routes: vec![],
                ..template.clone()
            })
        }));
        vhost.adopt_policies(&template);
        add_routes(vhost, insecure);
    }
    if let Some(s) = secure {
        let routes = routes
            .into_iter()
            .map(|r| Route {
                https_redirect: false,
                ..r
            })
            .collect();
        if let Some(l) = dag.listeners.get_mut(HTTPS_LISTENER) {
            let svh = Arc::make_mut(l.secure_virtual_hosts.entry(fqdn).or_default());
            // This proxy's certificate and versions win over earlier ones.
            svh.virtual_host.name = s.virtual_host.name;
            svh.virtual_host.adopt_policies(&template);
            svh.secret = s.secret;
            svh.min_tls_version = s.min_tls_version;
            svh.max_tls_version = s.max_tls_version;
            svh.tcp_proxy = s.tcp_proxy;
            svh.downstream_validation = s.downstream_validation;
            svh.fallback_certificate = s.fallback_certificate;
            if !has_tcp_proxy {
                add_routes(&mut svh.virtual_host, routes);
            } else {
                svh.virtual_host.routes.clear();
            }
        }
    }
}

/// Routes of `proxy` and, recursively, of the proxies it includes.
#[allow(clippy::too_many_arguments)]
fn collect_routes(
    cache: &dyn Source,
    config: &BuilderConfig,
    key: &Key,
    proxy: &HTTPProxy,
    inherited: &Inherited,
    tls_enabled: bool,
    visiting: &mut Vec<Key>,
    out: &mut Vec<Route>,
    statuses: &mut BTreeMap<Key, ObjectStatus>,
    reached: &mut BTreeSet<Key>,
) {
    let mut status = statuses.remove(key).unwrap_or_else(|| {
        ObjectStatus::valid(VALID, proxy.metadata.generation.unwrap_or_default())
    });
    let mut own = Vec::new();

    if proxy.spec.routes.is_empty()
        && proxy.spec.includes.is_empty()
        && proxy.spec.tcp_proxy.is_none()
    {
        status.error(
            "SpecError",
            "NothingDefined",
            "HTTPProxy.Spec must have at least one Route, Include, or a TCPProxy",
        );
    }

    for (i, route) in proxy.spec.routes.iter().enumerate() {
        let mut warnings = Vec::new();
        match build_route(
            cache,
            config,
            &key.namespace,
            route,
            inherited,
            tls_enabled,
            &mut warnings,
        ) {
            Ok(r) => own.push(r),
            Err((r#type, reason, message)) => {
                status.error(r#type, reason, format!("route {i}: {message}"))
            }
        }
        for w in warnings {
            status.warn("SpecError", "IgnoredField", w);
        }
    }

    let mut includes = Vec::new();
    for include in &proxy.spec.includes {
        let ns = if include.namespace.is_empty() {
            key.namespace.clone()
        } else {
            include.namespace.clone()
        };
        let target = Key::new(ns, include.name.clone());
        // An include narrows by prefix, headers and query parameters only:
        // an exact or regex path would be dropped, handing the whole
        // virtual host to the included proxy.
        let path_kind = include.conditions.iter().find_map(|c| {
            (!c.exact.is_empty())
                .then_some("exact")
                .or((!c.regex.is_empty()).then_some("regex"))
        });
        if let Some(kind) = path_kind {
            status.error(
                "IncludeError",
                "PathMatchConditionsNotValid",
                format!(
                    "include {}: {kind} conditions are not allowed in includes block",
                    include.name
                ),
            );
            continue;
        }
        let merged = match merge_conditions(inherited, &include.conditions) {
            Ok(m) => m,
            Err((reason, message)) => {
                status.error(
                    "IncludeError",
                    reason,
                    format!("include {}: {message}", include.name),
                );
                continue;
            }
        };
        if visiting.contains(&target) {
            let chain: Vec<String> = visiting
                .iter()
                .chain([&target])
                .map(|k| format!("{}/{}", k.namespace, k.name))
                .collect();
            status.error(
                "IncludeError",
                "IncludeCreatesCycle",
                format!("include creates an include cycle: {}", chain.join(" -> ")),
            );
            continue;
        }
        match cache.httpproxy(&target) {
            None => status.error(
                "IncludeError",
                "IncludeNotFound",
                format!("include {}/{} not found", target.namespace, target.name),
            ),
            Some(child) if child.spec.virtual_host.is_some() => status.error(
                "IncludeError",
                "RootIncludesRoot",
                format!(
                    "root httpproxy cannot include another root httpproxy {}/{}",
                    target.namespace, target.name
                ),
            ),
            Some(child) => includes.push((target, Arc::clone(child), merged)),
        }
    }

    let valid = status.is_valid();
    statuses.insert(key.clone(), status);
    if !valid {
        // An invalid object contributes nothing; its includes stay unreached.
        return;
    }
    out.extend(own);
    for (target, child, merged) in includes {
        visiting.push(target.clone());
        collect_routes(
            cache,
            config,
            &target,
            &child,
            &merged,
            tls_enabled,
            visiting,
            out,
            statuses,
            reached,
        );
        visiting.pop();
        reached.insert(target);
    }
}

/// One route; fields that are ignored are named in `warnings`.
fn build_route(
    cache: &dyn Source,
    config: &BuilderConfig,
    namespace: &str,
    route: &ProxyRoute,
    inherited: &Inherited,
    tls_enabled: bool,
    warnings: &mut Vec<String>,
) -> Result<Route, RouteError> {
    let merged = merge_conditions(inherited, &route.conditions)
        .map_err(|(reason, m)| ("RouteError", reason, m))?;
    if let Some(regex) = route.conditions.iter().find(|c| !c.regex.is_empty()) {
        policy::check_regex(&regex.regex).map_err(|e| {
            (
                "RouteError",
                "PathMatchConditionsNotValid",
                format!("supplied regex: {} invalid. error: {e}", regex.regex),
            )
        })?;
    }
    let path = path_match(&merged, &route.conditions);
    // The route's Host rewrite also names the SNI of its TLS upstreams.
    let route_host = policy::headers_policy(route.request_headers_policy.as_deref(), true)
        .ok()
        .and_then(|(_, host)| host);

    let action = if let Some(redirect) = &route.request_redirect_policy {
        RouteAction::Redirect(Redirect {
            scheme: redirect.scheme.clone(),
            hostname: redirect.hostname.clone(),
            port: redirect.port.and_then(|p| u32::try_from(p).ok()),
            path: redirect.path.clone(),
            prefix: redirect.prefix.clone(),
            status: redirect.status_code.unwrap_or(302),
        })
    } else if let Some(direct) = &route.direct_response_policy {
        if direct.body.len() > MAX_DIRECT_RESPONSE_BODY {
            return Err((
                "RouteError",
                "DirectResponsePolicyInvalid",
                format!(
                    "directResponsePolicy body must be at most {MAX_DIRECT_RESPONSE_BODY} bytes"
                ),
            ));
        }
        RouteAction::DirectResponse {
            status: direct.status_code,
            body: direct.body.clone(),
        }
    } else {
        let forwarded: Vec<_> = route.services.iter().filter(|s| !s.mirror).collect();
        if forwarded.is_empty() {
            return Err((
                "RouteError",
                "NoServicesPresent",
                "route.services must have at least one entry".into(),
            ));
        }
        let lb_policy = match route
            .load_balancer_policy
            .as_ref()
            .map(|p| p.strategy.as_str())
        {
            Some(
                s @ ("RoundRobin" | "WeightedLeastRequest" | "Random" | "Cookie" | "RequestHash"),
            ) => s.to_string(),
            _ => String::new(),
        };
        let health_check = route
            .health_check_policy
            .as_deref()
            .map(health_check)
            .transpose()?;
        let mut clusters = Vec::new();
        for s in forwarded {
            let mut wc =
                services::route_service(cache, config, namespace, s, route_host.as_deref())?;
            let cluster = Arc::make_mut(&mut wc.cluster);
            cluster.lb_policy = lb_policy.clone();
            cluster.health_check = health_check.clone();
            clusters.push(wc);
        }
        if clusters.iter().all(|c| c.weight == 0) {
            for c in &mut clusters {
                c.weight = 1;
            }
        }
        // Envoy refuses a route whose weights add up to more than 2^32-1,
        // and with it every route of the listener.
        if clusters.iter().map(|c| u64::from(c.weight)).sum::<u64>() > u64::from(u32::MAX) {
            return Err((
                "RouteError",
                "WeightsNotValid",
                "the weights of the services must add up to at most 4294967295".into(),
            ));
        }
        RouteAction::Forward(clusters)
    };

    let timeout = match &route.timeout_policy {
        Some(t) => {
            parse_duration(&t.response).map_err(|m| ("RouteError", "TimeoutPolicyNotValid", m))?
        }
        None => None,
    };
    let retry = match &route.retry_policy {
        Some(r) => Some(RetryPolicy {
            retry_on: if r.retry_on.is_empty() {
                "5xx".into()
            } else {
                r.retry_on.join(",")
            },
            num_retries: u32::try_from(r.num_retries.unwrap_or(1).max(0)).unwrap_or(u32::MAX),
            per_try_timeout: parse_duration(&r.per_try_timeout)
                .map_err(|m| ("RouteError", "RetryPolicyNotValid", m))?,
        }),
        None => None,
    };
    let prefix_rewrite = route
        .path_rewrite_policy
        .as_ref()
        .and_then(|p| p.replace_prefix.first())
        .map(|r| r.replacement.clone());
    if let Some(p) = prefix_rewrite
        .as_ref()
        .filter(|p| p.contains(['\0', '\r', '\n']))
    {
        return Err((
            "PrefixReplaceError",
            "ReplacementNotValid",
            format!("prefix replacement {p:?} must not contain NUL, CR or LF"),
        ));
    }

    let idle_timeout = match &route.timeout_policy {
        Some(t) => {
            parse_duration(&t.idle).map_err(|m| ("RouteError", "TimeoutPolicyNotValid", m))?
        }
        None => None,
    };
    let (request_headers, host_rewrite) =
        policy::headers_policy(route.request_headers_policy.as_deref(), true)
            .map_err(|m| ("RouteError", "RequestHeadersPolicyInvalid", m))?;
    let (response_headers, _) =
        policy::headers_policy(route.response_headers_policy.as_deref(), false)
            .map_err(|m| ("RouteError", "ResponseHeaderPolicyInvalid", m))?;
    let query_params = merged.query.clone();
    let mirrors: Vec<_> = route.services.iter().filter(|s| s.mirror).collect();
    if mirrors.len() > 1 {
        return Err((
            "ServiceError",
            "OnlyOneMirror",
            "only one service per route may be nominated as mirror".into(),
        ));
    }
    let mirror = match mirrors.first() {
        Some(s) => Some(WeightedCluster {
            // Upstream mirrors everything unless a weight (percent) is given.
            weight: match s.weight.unwrap_or(0) {
                w if w <= 0 => 100,
                w => u32::try_from(w.min(100)).unwrap_or(100),
            },
            ..services::route_service(cache, config, namespace, s, route_host.as_deref())?
        }),
        None => None,
    };
    let (hash_policies, ignored) = policy::hash_policies(route.load_balancer_policy.as_deref());
    warnings.extend(ignored);
    let rate_limit = match route
        .rate_limit_policy
        .as_ref()
        .and_then(|r| r.local.as_ref())
    {
        Some(l) => Some(policy::local_rate_limit(l).map_err(|m| {
            (
                "RateLimitError",
                "PolicyDidNotParse",
                format!("route.rateLimitPolicy is invalid: {m}"),
            )
        })?),
        None => None,
    };
    let ip_filter = policy::ip_filter(&route.ip_allow_policy, &route.ip_deny_policy)
        .map_err(|m| ("IPFilterError", "IPFilterPolicyNotValid", m))?;

    Ok(Route {
        path,
        headers: merged.headers,
        action,
        https_redirect: tls_enabled && !route.permit_insecure,
        websocket: route.enable_websockets,
        prefix_rewrite,
        timeout,
        retry,
        query_params,
        request_headers,
        response_headers,
        host_rewrite,
        mirror,
        hash_policies,
        idle_timeout,
        rate_limit,
        ip_filter,
    })
}

use conditions::{health_check, merge_conditions, path_match};
