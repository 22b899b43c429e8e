//! HTTPProxy routes (upstreams, header policies, redirect and direct
//! responses, timeouts, retries, health checks, load balancing) and the TCP
//! proxy.

use arbitrary::Arbitrary;
use serde_json::{Value, json};

use super::common::{
    COUNTS, DURATIONS, FQDNS, Few, HEADERS, LB, Num, PATHS, PORTS, PROTOCOLS, PROXIES, SCHEMES,
    SECRETS, SERVICES, STATUS_CODES, Text, VALUES, WEIGHTS, ns, obj, opt,
};
use super::httpproxy::{Condition, IpFilter, LocalRateLimit};

#[derive(Debug, Clone, Arbitrary)]
struct Upstream {
    name: Text,
    port: Num,
    protocol: Option<Text>,
    weight: Option<Num>,
    mirror: bool,
    request_headers: Option<Headers>,
    response_headers: Option<Headers>,
    validation: Option<(Text, Text)>,
}

impl Upstream {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("name", json!(self.name.of(SERVICES))),
            ("port", json!(self.port.of(PORTS))),
            ("protocol", opt(&self.protocol, |t| json!(t.of(PROTOCOLS)))),
            ("weight", opt(&self.weight, |n| json!(n.of(WEIGHTS)))),
            ("mirror", json!(self.mirror)),
            (
                "requestHeadersPolicy",
                opt(&self.request_headers, Headers::json),
            ),
            (
                "responseHeadersPolicy",
                opt(&self.response_headers, Headers::json),
            ),
            (
                "validation",
                opt(
                    &self.validation,
                    |(ca, subject)| json!({"caSecret": ca.of(SECRETS), "subjectName": subject.of(FQDNS)}),
                ),
            ),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Headers {
    set: Few<(Text, Text)>,
    remove: Few<Text>,
}

impl Headers {
    pub(super) fn json(&self) -> Value {
        json!({
            "set": self.set.map(|(n, v)| json!({"name": n.of(HEADERS), "value": v.of(VALUES)})),
            "remove": self.remove.map(|n| json!(n.of(HEADERS))),
        })
    }
}

#[derive(Debug, Clone, Arbitrary)]
enum Action {
    Forward,
    Redirect {
        scheme: Option<Text>,
        hostname: Option<Text>,
        port: Option<Num>,
        status: Option<Num>,
        path: Option<Text>,
        prefix: Option<Text>,
    },
    Direct {
        status: Num,
        body: Option<Text>,
    },
}

#[derive(Debug, Clone, Arbitrary)]
pub(super) struct Route {
    conditions: Few<Condition>,
    services: Few<Upstream>,
    action: Action,
    websockets: bool,
    insecure: bool,
    timeout: Option<(Option<Text>, Option<Text>, Option<Text>)>,
    retry: Option<Retry>,
    health: Option<(Text, Option<Text>, Num, Num, Num, Num)>,
    lb: Option<(Text, Few<HashPolicy>)>,
    rewrite: Option<Few<(Text, Text)>>,
    request_headers: Option<Headers>,
    response_headers: Option<Headers>,
    rate_limit: Option<LocalRateLimit>,
    allow: Few<IpFilter>,
    deny: Few<IpFilter>,
}

#[derive(Debug, Clone, Arbitrary)]
struct HashPolicy {
    terminal: bool,
    header: Option<Text>,
    query: Option<Text>,
    source_ip: bool,
}

impl Route {
    pub(super) fn json(&self) -> Value {
        let d = |t: &Option<Text>| opt(t, |t| json!(t.of(DURATIONS)));
        let mut v = obj(vec![
            ("conditions", self.conditions.map(Condition::json)),
            ("services", self.services.map(Upstream::json)),
            ("enableWebsockets", json!(self.websockets)),
            ("permitInsecure", json!(self.insecure)),
            (
                "timeoutPolicy",
                opt(&self.timeout, |(r, i, c)| {
                    obj(vec![
                        ("response", d(r)),
                        ("idle", d(i)),
                        ("idleConnection", d(c)),
                    ])
                }),
            ),
            (
                "retryPolicy",
                opt(&self.retry, |(count, per_try, on, codes)| {
                    let on_pool = [
                        "5xx",
                        "gateway-error",
                        "retriable-status-codes",
                        "bogus",
                        "",
                    ];
                    obj(vec![
                        ("count", opt(count, |n| json!(n.of(COUNTS)))),
                        ("perTryTimeout", d(per_try)),
                        ("retryOn", on.map(|t| json!(t.of(&on_pool)))),
                        (
                            "retriableStatusCodes",
                            codes.map(|n| json!(n.of(STATUS_CODES))),
                        ),
                    ])
                }),
            ),
            (
                "healthCheckPolicy",
                opt(&self.health, |(path, host, i, t, u, h)| {
                    obj(vec![
                        ("path", json!(path.of(PATHS))),
                        ("host", opt(host, |t| json!(t.of(FQDNS)))),
                        ("intervalSeconds", json!(i.of(COUNTS))),
                        ("timeoutSeconds", json!(t.of(COUNTS))),
                        ("unhealthyThresholdCount", json!(u.of(COUNTS))),
                        ("healthyThresholdCount", json!(h.of(COUNTS))),
                    ])
                }),
            ),
            (
                "loadBalancerPolicy",
                opt(&self.lb, |(strategy, hashes)| {
                    json!({"strategy": strategy.of(LB), "requestHashPolicies": hashes.map(|h| obj(vec![
                        ("terminal", json!(h.terminal)),
                        ("headerHashOptions", opt(&h.header, |t| json!({"headerName": t.of(HEADERS)}))),
                        ("queryParameterHashOptions", opt(&h.query, |t| json!({"parameterName": t.of(&["q", ""])}))),
                        ("hashSourceIP", json!(h.source_ip)),
                    ]))})
                }),
            ),
            (
                "pathRewritePolicy",
                opt(
                    &self.rewrite,
                    |r| json!({"replacePrefix": r.map(|(p, with)| json!({"prefix": p.of(PATHS), "replacement": with.of(PATHS)}))}),
                ),
            ),
            (
                "requestHeadersPolicy",
                opt(&self.request_headers, Headers::json),
            ),
            (
                "responseHeadersPolicy",
                opt(&self.response_headers, Headers::json),
            ),
            (
                "rateLimitPolicy",
                opt(&self.rate_limit, |l| json!({"local": l.json()})),
            ),
            ("ipAllowPolicy", self.allow.map(IpFilter::json)),
            ("ipDenyPolicy", self.deny.map(IpFilter::json)),
        ]);
        match &self.action {
            Action::Forward => {}
            Action::Redirect {
                scheme,
                hostname,
                port,
                status,
                path,
                prefix,
            } => {
                v["requestRedirectPolicy"] = obj(vec![
                    ("scheme", opt(scheme, |t| json!(t.of(SCHEMES)))),
                    ("hostname", opt(hostname, |t| json!(t.of(FQDNS)))),
                    ("port", opt(port, |n| json!(n.of(PORTS)))),
                    ("statusCode", opt(status, |n| json!(n.of(STATUS_CODES)))),
                    ("path", opt(path, |t| json!(t.of(PATHS)))),
                    ("prefix", opt(prefix, |t| json!(t.of(PATHS)))),
                ]);
            }
            Action::Direct { status, body } => {
                v["directResponsePolicy"] = obj(vec![
                    ("statusCode", json!(status.of(STATUS_CODES))),
                    ("body", opt(body, |t| json!(t.of(VALUES)))),
                ]);
            }
        }
        v
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub(super) struct TcpProxy {
    services: Few<Upstream>,
    include: Option<(Text, Option<u8>)>,
    deprecated_include: bool,
    lb: Option<Text>,
    health: Option<(Num, Num, Num, Num)>,
}

impl TcpProxy {
    pub(super) fn json(&self) -> Value {
        let include = opt(&self.include, |(n, s)| {
            obj(vec![
                ("name", json!(n.of(PROXIES))),
                ("namespace", opt(s, |s| json!(ns(*s)))),
            ])
        });
        let key = if self.deprecated_include {
            "includes"
        } else {
            "include"
        };
        obj(vec![
            ("services", self.services.map(Upstream::json)),
            (key, include),
            (
                "loadBalancerPolicy",
                opt(&self.lb, |t| json!({"strategy": t.of(LB)})),
            ),
            (
                "healthCheckPolicy",
                opt(&self.health, |(i, t, u, h)| {
                    json!({"intervalSeconds": i.of(COUNTS), "timeoutSeconds": t.of(COUNTS),
                           "unhealthyThresholdCount": u.of(COUNTS).clamp(0, u32::MAX as i64),
                           "healthyThresholdCount": h.of(COUNTS).clamp(0, u32::MAX as i64)})
                }),
            ),
        ])
    }
}

/// Count, per-try timeout, retry-on conditions, retriable status codes.
type Retry = (Option<Num>, Option<Text>, Few<Text>, Few<Num>);
