//! Route configurations: `ingress_http` for plain HTTP, `https/<fqdn>` per
//! TLS virtual host.

use envoy_types::pb::envoy::config::core::v3::DataSource;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, RedirectAction, Route as EnvoyRoute,
    RouteAction as EnvoyRouteAction, RouteConfiguration, RouteMatch,
    VirtualHost as EnvoyVirtualHost, WeightedCluster as EnvoyWeighted,
    header_matcher::HeaderMatchSpecifier,
    redirect_action, route,
    route_action::{ClusterSpecifier, HashPolicy, hash_policy},
    route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::cluster::cluster_name;
use crate::dag::{Dag, HTTP_LISTENER, HeaderMatchKind, PathMatch, Route, RouteAction, VirtualHost};

/// All route configurations, sorted by name.
pub fn route_configurations(dag: &Dag) -> Vec<RouteConfiguration> {
    let mut out = Vec::new();
    if let Some(l) = dag.listeners.get(HTTP_LISTENER) {
        out.push(RouteConfiguration {
            name: HTTP_LISTENER.into(),
            virtual_hosts: l.virtual_hosts.values().map(virtual_host).collect(),
            ..Default::default()
        });
    }
    for l in dag.listeners.values() {
        for (fqdn, svh) in &l.secure_virtual_hosts {
            out.push(RouteConfiguration {
                name: format!("https/{fqdn}"),
                virtual_hosts: vec![virtual_host(&svh.virtual_host)],
                ..Default::default()
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A virtual host answering `fqdn` and `fqdn:*`.
pub fn virtual_host(v: &VirtualHost) -> EnvoyVirtualHost {
    EnvoyVirtualHost {
        name: v.name.clone(),
        domains: vec![v.name.clone(), format!("{}:*", v.name)],
        routes: v.routes.iter().map(route).collect(),
        ..Default::default()
    }
}

fn route(r: &Route) -> EnvoyRoute {
    let path_specifier = match &r.path {
        PathMatch::Prefix {
            prefix,
            segment: true,
        } if prefix != "/" => Some(PathSpecifier::PathSeparatedPrefix(
            prefix.trim_end_matches('/').to_string(),
        )),
        PathMatch::Prefix { prefix, .. } => Some(PathSpecifier::Prefix(prefix.clone())),
        PathMatch::Exact(p) => Some(PathSpecifier::Path(p.clone())),
        PathMatch::Regex(re) => Some(PathSpecifier::SafeRegex(RegexMatcher {
            regex: re.clone(),
            ..Default::default()
        })),
    };
    let headers = r
        .headers
        .iter()
        .map(|h| {
            let matcher = |p: MatchPattern| StringMatcher {
                match_pattern: Some(p),
                ..Default::default()
            };
            let spec = match &h.kind {
                HeaderMatchKind::Present => HeaderMatchSpecifier::PresentMatch(true),
                HeaderMatchKind::Exact(v) => {
                    HeaderMatchSpecifier::StringMatch(matcher(MatchPattern::Exact(v.clone())))
                }
                HeaderMatchKind::Contains(v) => {
                    HeaderMatchSpecifier::StringMatch(matcher(MatchPattern::Contains(v.clone())))
                }
                HeaderMatchKind::Regex(v) => HeaderMatchSpecifier::StringMatch(matcher(
                    MatchPattern::SafeRegex(RegexMatcher {
                        regex: v.clone(),
                        ..Default::default()
                    }),
                )),
            };
            HeaderMatcher {
                name: h.name.clone(),
                invert_match: h.invert,
                header_match_specifier: Some(spec),
                ..Default::default()
            }
        })
        .collect();
    let action = if r.https_redirect {
        route::Action::Redirect(RedirectAction {
            scheme_rewrite_specifier: Some(redirect_action::SchemeRewriteSpecifier::HttpsRedirect(
                true,
            )),
            response_code: redirect_action::RedirectResponseCode::MovedPermanently as i32,
            ..Default::default()
        })
    } else {
        match &r.action {
            RouteAction::Forward(clusters) => route::Action::Route(forward(r, clusters)),
            RouteAction::Redirect(rd) => route::Action::Redirect(RedirectAction {
                scheme_rewrite_specifier: rd
                    .scheme
                    .clone()
                    .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
                host_redirect: rd.hostname.clone().unwrap_or_default(),
                port_redirect: rd.port.unwrap_or_default(),
                path_rewrite_specifier: rd
                    .path
                    .clone()
                    .map(redirect_action::PathRewriteSpecifier::PathRedirect)
                    .or_else(|| {
                        rd.prefix
                            .clone()
                            .map(redirect_action::PathRewriteSpecifier::PrefixRewrite)
                    }),
                response_code: if rd.status == 301 {
                    redirect_action::RedirectResponseCode::MovedPermanently as i32
                } else {
                    redirect_action::RedirectResponseCode::Found as i32
                },
                ..Default::default()
            }),
            RouteAction::DirectResponse { status, body } => {
                route::Action::DirectResponse(DirectResponseAction {
                    status: *status,
                    body: (!body.is_empty()).then(|| DataSource {
                        specifier: Some(Specifier::InlineString(body.clone())),
                        ..Default::default()
                    }),
                    body_format: None,
                })
            }
        }
    };
    EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier,
            headers,
            ..Default::default()
        }),
        action: Some(action),
        ..Default::default()
    }
}

fn forward(r: &Route, clusters: &[crate::dag::WeightedCluster]) -> EnvoyRouteAction {
    let cluster_specifier = match clusters {
        [one] => ClusterSpecifier::Cluster(cluster_name(&one.cluster)),
        many => ClusterSpecifier::WeightedClusters(EnvoyWeighted {
            clusters: many
                .iter()
                .map(|c| ClusterWeight {
                    name: cluster_name(&c.cluster),
                    weight: Some(UInt32Value { value: c.weight }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    let upgrade_configs = if r.websocket {
        vec![
            envoy_types::pb::envoy::config::route::v3::route_action::UpgradeConfig {
                upgrade_type: "websocket".into(),
                ..Default::default()
            },
        ]
    } else {
        vec![]
    };
    // A `Cookie` strategy hashes on upstream's session-affinity cookie
    // (a session cookie for every path).
    let hash_policy = if clusters.iter().any(|c| c.cluster.lb_policy == "Cookie") {
        vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
                name: "X-Contour-Session-Affinity".into(),
                ttl: Some(super::duration(std::time::Duration::ZERO)),
                path: "/".into(),
                ..Default::default()
            })),
            ..Default::default()
        }]
    } else {
        vec![]
    };
    EnvoyRouteAction {
        cluster_specifier: Some(cluster_specifier),
        hash_policy,
        prefix_rewrite: r.prefix_rewrite.clone().unwrap_or_default(),
        timeout: r.timeout.map(super::duration),
        retry_policy: r.retry.as_ref().map(|p| {
            envoy_types::pb::envoy::config::route::v3::RetryPolicy {
                retry_on: p.retry_on.clone(),
                num_retries: Some(UInt32Value {
                    value: p.num_retries,
                }),
                per_try_timeout: p.per_try_timeout.map(super::duration),
                ..Default::default()
            }
        }),
        upgrade_configs,
        ..Default::default()
    }
}
