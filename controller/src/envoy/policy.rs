//! Per-filter configuration of virtual hosts and routes: CORS, local rate
//! limits and source address filters (RBAC).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{CidrRange, RuntimeFractionalPercent};
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission, Policy, Principal, Rbac, permission, principal, rbac::Action,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit as EnvoyLocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{
    Rbac as RbacFilter, RbacPerRoute,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, HttpStatus, TokenBucket};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};

use super::any;
use crate::dag::{Cors, IpFilter, LocalRateLimit, OriginMatch};

/// Filter names, as in the HTTP connection manager's filter list.
pub const CORS: &str = "envoy.filters.http.cors";
/// Local rate limit filter.
pub const LOCAL_RATELIMIT: &str = "envoy.filters.http.local_ratelimit";
/// RBAC filter.
pub const RBAC: &str = "envoy.filters.http.rbac";

/// `typed_per_filter_config` entries for a host or route.
pub fn per_filter_config(
    cors: Option<&Cors>,
    rate_limit: Option<&LocalRateLimit>,
    ip_filter: Option<&IpFilter>,
    stat_prefix: &str,
) -> HashMap<String, Any> {
    let mut out = HashMap::new();
    if let Some(c) = cors {
        out.insert(CORS.to_string(), any(&cors_policy(c)));
    }
    if let Some(r) = rate_limit {
        out.insert(
            LOCAL_RATELIMIT.to_string(),
            any(&local_rate_limit(r, stat_prefix)),
        );
    }
    if let Some(f) = ip_filter {
        out.insert(RBAC.to_string(), any(&rbac(f)));
    }
    out
}

fn cors_policy(c: &Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: c
            .allow_origin
            .iter()
            .map(|o| match o {
                OriginMatch::Exact(s) => StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(s.clone())),
                    ignore_case: true,
                },
                // Envoy refuses ignore_case on regular expressions.
                OriginMatch::Regex(r) => StringMatcher {
                    match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                        regex: r.clone(),
                        ..Default::default()
                    })),
                    ignore_case: false,
                },
            })
            .collect(),
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c.max_age.clone().unwrap_or_default(),
        allow_credentials: Some(BoolValue {
            value: c.allow_credentials,
        }),
        allow_private_network_access: Some(BoolValue {
            value: c.allow_private_network,
        }),
        ..Default::default()
    }
}

fn local_rate_limit(r: &LocalRateLimit, stat_prefix: &str) -> EnvoyLocalRateLimit {
    let hundred = || RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 100,
            denominator: 0,
        }),
        runtime_key: String::new(),
    };
    EnvoyLocalRateLimit {
        stat_prefix: stat_prefix.to_string(),
        status: (r.status != 0).then_some(HttpStatus {
            code: i32::try_from(r.status).unwrap_or(429),
        }),
        token_bucket: Some(TokenBucket {
            max_tokens: r.requests.saturating_add(r.burst),
            tokens_per_fill: Some(UInt32Value { value: r.requests }),
            fill_interval: Some(super::duration(r.unit)),
        }),
        filter_enabled: Some(hundred()),
        filter_enforced: Some(hundred()),
        response_headers_to_add: super::route::set_headers(&r.response_headers),
        ..Default::default()
    }
}

fn rbac(f: &IpFilter) -> RbacPerRoute {
    let principals = f
        .rules
        .iter()
        .map(|r| {
            let range = CidrRange {
                address_prefix: r.address.to_string(),
                prefix_len: Some(UInt32Value {
                    value: r.prefix_len,
                }),
            };
            Principal {
                identifier: Some(if r.remote {
                    principal::Identifier::RemoteIp(range)
                } else {
                    principal::Identifier::DirectRemoteIp(range)
                }),
            }
        })
        .collect();
    let policy = Policy {
        permissions: vec![Permission {
            rule: Some(permission::Rule::Any(true)),
        }],
        principals,
        ..Default::default()
    };
    RbacPerRoute {
        rbac: Some(RbacFilter {
            rules: Some(Rbac {
                action: if f.allow { Action::Allow } else { Action::Deny } as i32,
                policies: [("ip-rules".to_string(), policy)].into_iter().collect(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}
