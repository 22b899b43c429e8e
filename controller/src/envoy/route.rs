//! Route configurations: `ingress_http` for plain HTTP (unless it uses the
//! scoped layout, see [`super::scoped`]), `https/<fqdn>` per TLS virtual
//! host.

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::{
    DataSource, HeaderValue, HeaderValueOption, RuntimeFractionalPercent, header_value_option,
};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, RedirectAction, Route as EnvoyRoute,
    RouteAction as EnvoyRouteAction, RouteConfiguration, RouteMatch,
    VirtualHost as EnvoyVirtualHost, WeightedCluster as EnvoyWeighted,
    header_matcher::HeaderMatchSpecifier, redirect_action, route, route_action::ClusterSpecifier,
    route_match::PathSpecifier, weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::config::route::v3::{
    QueryParameterMatcher,
    query_parameter_matcher::QueryParameterMatchSpecifier as QpSpecifier,
    route_action::{
        HashPolicy as EnvoyHashPolicy, HostRewriteSpecifier, RequestMirrorPolicy, hash_policy,
    },
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::cluster::cluster_name;
use crate::dag::{
    Dag, HTTP_LISTENER, HashPolicy, HeaderMatchKind, Layout, PathMatch, Route, RouteAction,
    VirtualHost,
};

/// All route configurations, sorted by name.
pub fn route_configurations(dag: &Dag) -> Vec<RouteConfiguration> {
    let mut out = Vec::new();
    if let Some(l) = dag
        .listeners
        .get(HTTP_LISTENER)
        .filter(|l| l.layout() == Layout::Single)
    {
        out.push(RouteConfiguration {
            name: HTTP_LISTENER.into(),
            virtual_hosts: l.virtual_hosts.values().map(|v| virtual_host(v)).collect(),
            ..Default::default()
        });
    }
    for l in dag.listeners.values() {
        for (fqdn, svh) in l
            .secure_virtual_hosts
            .iter()
            .filter(|(_, s)| s.tcp_proxy.is_none())
        {
            out.push(RouteConfiguration {
                name: format!("https/{fqdn}"),
                virtual_hosts: vec![virtual_host(&svh.virtual_host)],
                ..Default::default()
            });
        }
    }
    // Hosts with the fallback certificate are also served, for clients
    // without SNI, by one shared route configuration.
    for l in dag.listeners.values() {
        let fallback: Vec<EnvoyVirtualHost> = l
            .secure_virtual_hosts
            .values()
            .filter(|s| s.fallback_certificate.is_some() && s.tcp_proxy.is_none())
            .map(|s| virtual_host(&s.virtual_host))
            .collect();
        if !fallback.is_empty() {
            out.push(RouteConfiguration {
                name: super::listener::FALLBACK_ROUTE_CONFIG.into(),
                virtual_hosts: fallback,
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
        routes: v.routes.iter().map(|r| route_in(r, &v.name)).collect(),
        typed_per_filter_config: super::policy::per_filter_config(
            v.cors.as_ref(),
            v.rate_limit.as_ref(),
            v.ip_filter.as_ref(),
            &format!("vhost.{}", v.name),
        ),
        ..Default::default()
    }
}

fn route_in(r: &Route, vhost: &str) -> EnvoyRoute {
    let path_specifier = match &r.path {
        PathMatch::Prefix {
            prefix,
            segment: true,
        } if prefix != "/" => Some(PathSpecifier::PathSeparatedPrefix(
            prefix.trim_end_matches('/').to_string(),
        )),
        PathMatch::Prefix { prefix, .. } => Some(PathSpecifier::Prefix(prefix.clone())),
        PathMatch::Exact(p) => Some(PathSpecifier::Path(p.clone())),
        // Anchored as upstream does: the match is on the whole path anyway,
        // and the anchor keeps Envoy's regex programs small.
        PathMatch::Regex(re) => Some(PathSpecifier::SafeRegex(RegexMatcher {
            regex: format!("^{re}"),
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
    let query_parameters = r.query_params.iter().map(query_parameter).collect();
    EnvoyRoute {
        r#match: Some(RouteMatch {
            path_specifier,
            headers,
            query_parameters,
            ..Default::default()
        }),
        action: Some(action),
        request_headers_to_add: headers_to_add(&r.request_headers),
        request_headers_to_remove: r.request_headers.remove.clone(),
        response_headers_to_add: headers_to_add(&r.response_headers),
        response_headers_to_remove: r.response_headers.remove.clone(),
        typed_per_filter_config: super::policy::per_filter_config(
            None,
            r.rate_limit.as_ref(),
            r.ip_filter.as_ref(),
            &format!("vhost.{vhost}"),
        ),
        ..Default::default()
    }
}

fn headers_to_add(p: &crate::dag::HeadersPolicy) -> Vec<HeaderValueOption> {
    set_headers(&p.set)
}

/// `headers_to_add` entries that replace any existing value.
pub(crate) fn set_headers(
    set: &std::collections::BTreeMap<String, String>,
) -> Vec<HeaderValueOption> {
    set.iter()
        .map(|(k, v)| HeaderValueOption {
            header: Some(HeaderValue {
                key: k.clone(),
                value: v.clone(),
                ..Default::default()
            }),
            append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..Default::default()
        })
        .collect()
}

fn query_parameter(q: &crate::dag::QueryParamMatch) -> QueryParameterMatcher {
    let string = |p: MatchPattern| StringMatcher {
        match_pattern: Some(p),
        ignore_case: q.ignore_case,
    };
    let specifier = match (&q.kind, &q.affix) {
        (Some(HeaderMatchKind::Exact(v)), _) => {
            QpSpecifier::StringMatch(string(MatchPattern::Exact(v.clone())))
        }
        (Some(HeaderMatchKind::Contains(v)), _) => {
            QpSpecifier::StringMatch(string(MatchPattern::Contains(v.clone())))
        }
        (Some(HeaderMatchKind::Regex(v)), _) => {
            // Envoy refuses ignore_case on regular expressions.
            QpSpecifier::StringMatch(StringMatcher {
                match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                    regex: v.clone(),
                    ..Default::default()
                })),
                ignore_case: false,
            })
        }
        (_, Some((true, v))) => QpSpecifier::StringMatch(string(MatchPattern::Prefix(v.clone()))),
        (_, Some((false, v))) => QpSpecifier::StringMatch(string(MatchPattern::Suffix(v.clone()))),
        _ => QpSpecifier::PresentMatch(true),
    };
    QueryParameterMatcher {
        name: q.name.clone(),
        query_parameter_match_specifier: Some(specifier),
    }
}

fn forward(r: &Route, clusters: &[crate::dag::WeightedCluster]) -> EnvoyRouteAction {
    // One cluster without header changes is named directly; otherwise
    // weighted clusters carry each service's header changes (as upstream).
    let cluster_specifier = match clusters {
        [one] if !one.has_header_policy() => ClusterSpecifier::Cluster(cluster_name(&one.cluster)),
        many => ClusterSpecifier::WeightedClusters(weighted_clusters(many)),
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
    let host_rewrite_specifier = r.host_rewrite.as_ref().map(|h| {
        match h
            .strip_prefix("%REQ(")
            .and_then(|rest| rest.strip_suffix(")%"))
        {
            Some(header) => HostRewriteSpecifier::HostRewriteHeader(
                crate::dag::policy::canonical_header(header),
            ),
            None => HostRewriteSpecifier::HostRewriteLiteral(h.clone()),
        }
    });
    let request_mirror_policies = r
        .mirror
        .iter()
        .map(|m| RequestMirrorPolicy {
            cluster: cluster_name(&m.cluster),
            runtime_fraction: Some(RuntimeFractionalPercent {
                default_value: Some(FractionalPercent {
                    numerator: m.weight,
                    denominator: fractional_percent::DenominatorType::Hundred as i32,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    // A `Cookie` strategy (also IngressRoute's) hashes on upstream's
    // session-affinity cookie.
    let hash_policy =
        if r.hash_policies.is_empty() && clusters.iter().any(|c| c.cluster.lb_policy == "Cookie") {
            vec![hash_policy(&HashPolicy::Cookie)]
        } else {
            r.hash_policies.iter().map(hash_policy).collect()
        };
    EnvoyRouteAction {
        cluster_specifier: Some(cluster_specifier),
        prefix_rewrite: r.prefix_rewrite.clone().unwrap_or_default(),
        host_rewrite_specifier,
        request_mirror_policies,
        hash_policy,
        idle_timeout: r.idle_timeout.map(super::duration),
        timeout: r.timeout.map(super::duration),
        retry_policy: r.retry.as_ref().map(|p| {
            envoy_types::pb::envoy::config::route::v3::RetryPolicy {
                retry_on: p.retry_on.clone(),
                // Zero retries leave Envoy's field unset, as upstream does.
                num_retries: (p.num_retries > 0).then_some(UInt32Value {
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

/// Weighted clusters with each service's header changes, sorted by name
/// then weight; all-zero weights count as equal.
fn weighted_clusters(clusters: &[crate::dag::WeightedCluster]) -> EnvoyWeighted {
    let all_zero = clusters.iter().all(|c| c.weight == 0);
    let mut out: Vec<ClusterWeight> = clusters
        .iter()
        .map(|c| ClusterWeight {
            name: cluster_name(&c.cluster),
            weight: Some(UInt32Value {
                value: if all_zero { 1 } else { c.weight },
            }),
            request_headers_to_add: set_headers(&c.request_headers.set),
            request_headers_to_remove: c.request_headers.remove.clone(),
            response_headers_to_add: set_headers(&c.response_headers.set),
            response_headers_to_remove: c.response_headers.remove.clone(),
            host_rewrite_specifier: c.host_rewrite.clone().map(
                envoy_types::pb::envoy::config::route::v3::weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
            ),
            ..Default::default()
        })
        .collect();
    out.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| a.weight.map(|w| w.value).cmp(&b.weight.map(|w| w.value)))
    });
    EnvoyWeighted {
        clusters: out,
        ..Default::default()
    }
}

fn hash_policy(h: &HashPolicy) -> EnvoyHashPolicy {
    use hash_policy::PolicySpecifier;
    let (spec, terminal) = match h {
        HashPolicy::Cookie => (
            PolicySpecifier::Cookie(hash_policy::Cookie {
                name: "X-Contour-Session-Affinity".into(),
                ttl: Some(super::duration(std::time::Duration::ZERO)),
                path: "/".into(),
                ..Default::default()
            }),
            false,
        ),
        HashPolicy::Header { name, terminal } => (
            PolicySpecifier::Header(hash_policy::Header {
                header_name: name.clone(),
                ..Default::default()
            }),
            *terminal,
        ),
        HashPolicy::QueryParameter { name, terminal } => (
            PolicySpecifier::QueryParameter(hash_policy::QueryParameter { name: name.clone() }),
            *terminal,
        ),
        HashPolicy::SourceIp { terminal } => (
            PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                source_ip: true,
            }),
            *terminal,
        ),
    };
    EnvoyHashPolicy {
        policy_specifier: Some(spec),
        terminal,
    }
}
