//! HTTPProxy (`projectcontour.io/v1`): the object, its virtual host (TLS,
//! CORS, rate limits, IP filters), includes and match conditions.

use arbitrary::Arbitrary;
use serde_json::{Value, json};

use super::common::{
    CIDRS, CLASSES, COUNTS, DURATIONS, FQDNS, Few, HEADERS, Num, PATHS, PROXIES, REGEXES, SECRETS,
    STATUS_CODES, TLS_VERSIONS, Text, UNITS, VALUES, ns, obj, opt,
};
use super::httpproxy_route::{Route, TcpProxy};

#[derive(Debug, Clone, Arbitrary)]
pub struct Proxy {
    ns: u8,
    name: Text,
    vhost: Option<VHost>,
    routes: Few<Route>,
    includes: Few<Include>,
    tcp: Option<TcpProxy>,
    class: Option<Text>,
}

impl Proxy {
    pub(super) fn json(&self) -> Value {
        let spec = obj(vec![
            ("virtualhost", opt(&self.vhost, VHost::json)),
            ("routes", self.routes.map(Route::json)),
            ("includes", self.includes.map(Include::json)),
            ("tcpproxy", opt(&self.tcp, TcpProxy::json)),
            (
                "ingressClassName",
                opt(&self.class, |c| json!(c.of(CLASSES))),
            ),
        ]);
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
               "metadata": {"name": self.name.of(PROXIES), "namespace": ns(self.ns), "generation": 1},
               "spec": spec})
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct VHost {
    fqdn: Text,
    tls: Option<Tls>,
    cors: Option<Cors>,
    rate_limit: Option<LocalRateLimit>,
    allow: Few<IpFilter>,
    deny: Few<IpFilter>,
}

impl VHost {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("fqdn", json!(self.fqdn.of(FQDNS))),
            ("tls", opt(&self.tls, Tls::json)),
            ("corsPolicy", opt(&self.cors, Cors::json)),
            (
                "rateLimitPolicy",
                opt(&self.rate_limit, |l| json!({"local": l.json()})),
            ),
            ("ipAllowPolicy", self.allow.map(IpFilter::json)),
            ("ipDenyPolicy", self.deny.map(IpFilter::json)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Tls {
    secret: Text,
    min: Option<Text>,
    max: Option<Text>,
    passthrough: bool,
    fallback: bool,
    client: Option<ClientValidation>,
}

impl Tls {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("secretName", json!(self.secret.of(SECRETS))),
            (
                "minimumProtocolVersion",
                opt(&self.min, |t| json!(t.of(TLS_VERSIONS))),
            ),
            (
                "maximumProtocolVersion",
                opt(&self.max, |t| json!(t.of(TLS_VERSIONS))),
            ),
            ("passthrough", json!(self.passthrough)),
            ("enableFallbackCertificate", json!(self.fallback)),
            (
                "clientValidation",
                opt(&self.client, ClientValidation::json),
            ),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct ClientValidation {
    ca: Option<Text>,
    skip: bool,
    forward: Option<[bool; 5]>,
    crl: Option<Text>,
    crl_leaf_only: bool,
    optional: bool,
}

impl ClientValidation {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("caSecret", opt(&self.ca, |t| json!(t.of(SECRETS)))),
            ("skipClientCertValidation", json!(self.skip)),
            (
                "forwardClientCertificate",
                opt(
                    &self.forward,
                    |f| json!({"subject": f[0], "cert": f[1], "chain": f[2], "dns": f[3], "uri": f[4]}),
                ),
            ),
            ("crlSecret", opt(&self.crl, |t| json!(t.of(SECRETS)))),
            ("crlOnlyVerifyLeafCert", json!(self.crl_leaf_only)),
            ("optionalClientCertificate", json!(self.optional)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Cors {
    credentials: bool,
    origins: Few<Text>,
    methods: Few<Text>,
    headers: Few<Text>,
    expose: Few<Text>,
    max_age: Option<Text>,
    private_network: bool,
}

impl Cors {
    pub(super) fn json(&self) -> Value {
        let origins = [
            "*",
            "https://a.example.com",
            "https://.*\\.example\\.com",
            "(",
            "",
        ];
        let methods = ["GET", "POST", "*", "", "get"];
        obj(vec![
            ("allowCredentials", json!(self.credentials)),
            ("allowOrigin", self.origins.map(|t| json!(t.of(&origins)))),
            ("allowMethods", self.methods.map(|t| json!(t.of(&methods)))),
            ("allowHeaders", self.headers.map(|t| json!(t.of(HEADERS)))),
            ("exposeHeaders", self.expose.map(|t| json!(t.of(HEADERS)))),
            ("maxAge", opt(&self.max_age, |t| json!(t.of(DURATIONS)))),
            ("allowPrivateNetwork", json!(self.private_network)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub(super) struct LocalRateLimit {
    requests: Num,
    unit: Text,
    burst: Option<Num>,
    status: Option<Num>,
    headers: Few<(Text, Text)>,
}

impl LocalRateLimit {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("requests", json!(self.requests.of(COUNTS))),
            ("unit", json!(self.unit.of(UNITS))),
            ("burst", opt(&self.burst, |n| json!(n.of(COUNTS)))),
            (
                "responseStatusCode",
                opt(&self.status, |n| json!(n.of(STATUS_CODES))),
            ),
            (
                "responseHeadersToAdd",
                self.headers
                    .map(|(n, v)| json!({"name": n.of(HEADERS), "value": v.of(VALUES)})),
            ),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub(super) struct IpFilter {
    remote: bool,
    cidr: Text,
}

impl IpFilter {
    pub(super) fn json(&self) -> Value {
        json!({"source": if self.remote { "Remote" } else { "Peer" }, "cidr": self.cidr.of(CIDRS)})
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Include {
    name: Text,
    ns: Option<u8>,
    conditions: Few<Condition>,
}

impl Include {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("name", json!(self.name.of(PROXIES))),
            ("namespace", opt(&self.ns, |n| json!(ns(*n)))),
            ("conditions", self.conditions.map(Condition::json)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub(super) struct Condition {
    prefix: Option<Text>,
    exact: Option<Text>,
    regex: Option<Text>,
    header: Option<HeaderCondition>,
    query: Option<QueryCondition>,
}

impl Condition {
    pub(super) fn json(&self) -> Value {
        obj(vec![
            ("prefix", opt(&self.prefix, |t| json!(t.of(PATHS)))),
            ("exact", opt(&self.exact, |t| json!(t.of(PATHS)))),
            ("regex", opt(&self.regex, |t| json!(t.of(REGEXES)))),
            ("header", opt(&self.header, HeaderCondition::json)),
            ("queryParameter", opt(&self.query, QueryCondition::json)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
enum MatchOp {
    Exact,
    NotExact,
    Contains,
    NotContains,
    Regex,
    Prefix,
    Suffix,
}

#[derive(Debug, Clone, Arbitrary)]
struct HeaderCondition {
    name: Text,
    ops: Few<(MatchOp, Text)>,
    present: bool,
    not_present: bool,
    ignore_case: bool,
    missing_as_empty: bool,
}

impl HeaderCondition {
    pub(super) fn json(&self) -> Value {
        let mut v = obj(vec![
            ("name", json!(self.name.of(HEADERS))),
            ("present", json!(self.present)),
            ("notpresent", json!(self.not_present)),
            ("ignoreCase", json!(self.ignore_case)),
            ("treatMissingAsEmpty", json!(self.missing_as_empty)),
        ]);
        for (op, t) in &self.ops.0 {
            let (key, pool) = match op {
                MatchOp::Exact | MatchOp::Prefix | MatchOp::Suffix => ("exact", VALUES),
                MatchOp::NotExact => ("notexact", VALUES),
                MatchOp::Contains => ("contains", VALUES),
                MatchOp::NotContains => ("notcontains", VALUES),
                MatchOp::Regex => ("regex", REGEXES),
            };
            v[key] = json!(t.of(pool));
        }
        v
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct QueryCondition {
    name: Text,
    ops: Few<(MatchOp, Text)>,
    present: bool,
    ignore_case: bool,
}

impl QueryCondition {
    pub(super) fn json(&self) -> Value {
        let mut v = obj(vec![
            ("name", json!(self.name.of(&["q", "", "Q", "a b"]))),
            ("present", json!(self.present)),
            ("ignoreCase", json!(self.ignore_case)),
        ]);
        for (op, t) in &self.ops.0 {
            let (key, pool) = match op {
                MatchOp::Exact | MatchOp::NotExact => ("exact", VALUES),
                MatchOp::Prefix => ("prefix", VALUES),
                MatchOp::Suffix => ("suffix", VALUES),
                MatchOp::Contains | MatchOp::NotContains => ("contains", VALUES),
                MatchOp::Regex => ("regex", REGEXES),
            };
            v[key] = json!(t.of(pool));
        }
        v
    }
}
