//! Fuzz-side model of the objects the DAG builder reads, derived with
//! `arbitrary`, and their mapping to the real API types (through the same
//! JSON the API server would hand the controller).
//!
//! Every string is either picked from a small pool of interesting values
//! (names that resolve, valid and invalid durations, paths, regexes, ...)
//! or raw fuzz text, so inputs both reach deep into the builder and probe
//! its validation.

use arbitrary::{Arbitrary, Result as ArbResult, Unstructured};
use contour::cache::{Key, Kind, Object};
use contour::dag::{AccessLog, AccessLogFormat, BuilderConfig};
use serde_json::{Map, Value, json};

/// At most this many items in any list of the model.
const MAX_ITEMS: usize = 4;

/// A short list (at most [`MAX_ITEMS`]).
#[derive(Debug, Clone)]
pub struct Few<T>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>> Arbitrary<'a> for Few<T> {
    fn arbitrary(u: &mut Unstructured<'a>) -> ArbResult<Self> {
        let n = u.int_in_range(0..=MAX_ITEMS)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            if u.is_empty() {
                break;
            }
            out.push(T::arbitrary(u)?);
        }
        Ok(Few(out))
    }
}

impl<T> Few<T> {
    fn map(&self, f: impl Fn(&T) -> Value) -> Value {
        Value::Array(self.0.iter().map(f).collect())
    }
}

/// A string: from the field's pool, or raw.
#[derive(Debug, Clone, Arbitrary)]
pub enum Text {
    /// The `n`th (modulo) value of the field's pool.
    Pool(u8),
    /// Anything.
    Raw(String),
}

impl Text {
    pub fn of(&self, pool: &[&str]) -> String {
        match self {
            Text::Pool(n) => pool[*n as usize % pool.len()].to_string(),
            Text::Raw(s) => s.clone(),
        }
    }
}

/// A number: from the field's pool, or raw.
#[derive(Debug, Clone, Arbitrary)]
pub enum Num {
    /// The `n`th (modulo) value of the field's pool.
    Pool(u8),
    /// Anything.
    Raw(i64),
}

impl Num {
    pub fn of(&self, pool: &[i64]) -> i64 {
        match self {
            Num::Pool(n) => pool[*n as usize % pool.len()],
            Num::Raw(v) => *v,
        }
    }
}

pub const NAMESPACES: &[&str] = &["default", "team-a", "team-b"];
const PROXIES: &[&str] = &["p0", "p1", "p2", "p3"];
const SERVICES: &[&str] = &["s0", "s1", "s2", "ext"];
const SECRETS: &[&str] = &["tls", "ca", "bad", "team-a/tls", "default/ca", "missing"];
const FQDNS: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "*.example.com",
    "c.example.com",
    "A.Example.com",
    "Bad Host!",
    "",
    "a.example.com:80",
    "*",
];
const PATHS: &[&str] = &[
    "/", "/api", "/api/", "/a/b", "api", "//", "/a?b", "/%zz", "/a/./b", "",
];
const REGEXES: &[&str] = &["/api/.*", "(", "[a-z]+", ".*", "\\d{3}", "a{99999}", ""];
const HEADERS: &[&str] = &["x-a", "X-B", ":authority", "host", "", "x a", "te"];
const VALUES: &[&str] = &["v", "", "%REQ(x-a)%", "%bogus", "a\nb", "🦀"];
const DURATIONS: &[&str] = &[
    "5s",
    "1m",
    "0s",
    "infinity",
    "-1s",
    "bogus",
    "1.5h",
    "10ms",
    "9999999999h",
    "",
    "1h2m3s4ms5us6ns",
];
const TLS_VERSIONS: &[&str] = &["1.2", "1.3", "1.1", "", "bogus"];
const LB: &[&str] = &[
    "RoundRobin",
    "WeightedLeastRequest",
    "Random",
    "Cookie",
    "RequestHash",
    "bogus",
    "",
];
const PROTOCOLS: &[&str] = &["h2", "h2c", "tls", "http", "bogus"];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "::1/128",
    "1.2.3.4",
    "bad/99",
    "0.0.0.0/0",
    "10.0.0.1/33",
    "fe80::/10",
];
const UNITS: &[&str] = &["second", "minute", "hour", "day", "bogus"];
const SCHEMES: &[&str] = &["http", "https", "ftp", ""];
const CLASSES: &[&str] = &["contour", "nginx", "", "contour,other"];
const ADDRESSES: &[&str] = &["10.0.0.1", "10.0.0.2", "::1", "bad", "fe80::1", ""];
const ANNOTATION_VALUES: &[&str] = &[
    "1",
    "0",
    "-1",
    "x",
    "4294967296",
    "80,https",
    "true",
    "false",
    "5s",
    "http",
];
const PORTS: &[i64] = &[80, 81, 443, 8080, 0, -1, 65536];
const WEIGHTS: &[i64] = &[0, 1, 10, 90, 100, -1, 4294967296];
const STATUS_CODES: &[i64] = &[200, 301, 302, 307, 308, 404, 503, 0, 999];
const COUNTS: &[i64] = &[0, 1, 3, -1, 100];

fn ns(i: u8) -> &'static str {
    NAMESPACES[i as usize % NAMESPACES.len()]
}

fn opt<T>(v: &Option<T>, f: impl Fn(&T) -> Value) -> Value {
    v.as_ref().map(f).unwrap_or(Value::Null)
}

/// Drops null members (absent optional fields).
fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if !v.is_null() {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

/// Builder settings.
#[derive(Debug, Clone, Arbitrary)]
pub struct Config {
    /// The fallback certificate (namespace, name).
    pub fallback: Option<(u8, Text)>,
    /// Roots only in `default` and `team-a`.
    pub restricted: bool,
    /// `--ingress-class-name`.
    pub class: Option<Text>,
    /// `--enable-external-name-service`.
    pub external_names: bool,
    /// Access logs (none, text, JSON).
    pub http_log: Option<bool>,
    /// Access logs (none, text, JSON).
    pub https_log: Option<bool>,
}

impl Config {
    /// The builder configuration.
    pub fn build(&self) -> BuilderConfig {
        let log = |json: &Option<bool>| {
            json.map(|j| AccessLog {
                path: "/dev/stdout".into(),
                format: if j {
                    AccessLogFormat::Json
                } else {
                    AccessLogFormat::Envoy
                },
            })
        };
        BuilderConfig {
            fallback_certificate: self
                .fallback
                .as_ref()
                .map(|(n, s)| (ns(*n).to_string(), s.of(SECRETS))),
            root_namespaces: if self.restricted {
                vec!["default".into(), "team-a".into()]
            } else {
                vec![]
            },
            ingress_class_name: self.class.as_ref().map(|c| c.of(CLASSES)),
            enable_external_name_service: self.external_names,
            http_access_log: log(&self.http_log),
            https_access_log: log(&self.https_log),
            ..BuilderConfig::default()
        }
    }
}

/// One object of any kind the builder reads.
#[derive(Debug, Clone, Arbitrary)]
pub enum Obj {
    Proxy(Proxy),
    IngressRoute(IngressRoute),
    Ingress(Ingress),
    Service(Service),
    Secret(Secret),
    Slice(Slice),
    Delegation(Delegation),
}

impl Obj {
    /// The object as the API server would serve it.
    pub fn json(&self) -> Value {
        match self {
            Obj::Proxy(p) => p.json(),
            Obj::IngressRoute(r) => r.json(),
            Obj::Ingress(i) => i.json(),
            Obj::Service(s) => s.json(),
            Obj::Secret(s) => s.json(),
            Obj::Slice(s) => s.json(),
            Obj::Delegation(d) => d.json(),
        }
    }

    /// The real object (`None` when the JSON does not deserialize, as the
    /// API server would have refused it).
    pub fn object(&self) -> Option<Object> {
        object(self.json())
    }
}

/// The real object of some JSON, by its `kind`.
pub fn object(v: Value) -> Option<Object> {
    let kind = v.get("kind")?.as_str()?.to_string();
    Some(match kind.as_str() {
        "HTTPProxy" => Object::HTTPProxy(serde_json::from_value(v).ok()?),
        "IngressRoute" => Object::IngressRoute(serde_json::from_value(v).ok()?),
        "Ingress" => Object::Ingress(serde_json::from_value(v).ok()?),
        "Service" => Object::Service(serde_json::from_value(v).ok()?),
        "Secret" => Object::Secret(serde_json::from_value(v).ok()?),
        "EndpointSlice" => Object::EndpointSlice(serde_json::from_value(v).ok()?),
        "TLSCertificateDelegation" => Object::Delegation(serde_json::from_value(v).ok()?),
        _ => return None,
    })
}

/// A change to the cache.
#[derive(Debug, Clone, Arbitrary)]
pub enum Step {
    /// Insert or replace.
    Put(Obj),
    /// Delete (kind, namespace, name pool index).
    Delete(u8, u8, u8),
}

impl Step {
    /// The key to delete, if this is a delete.
    pub fn delete_key(&self) -> Option<(Kind, Key)> {
        let Step::Delete(k, n, name) = self else {
            return None;
        };
        let (kind, pool): (Kind, &[&str]) = match k % 7 {
            0 => (Kind::HTTPProxy, PROXIES),
            1 => (Kind::IngressRoute, PROXIES),
            2 => (Kind::Ingress, &["ing", "ing2"]),
            3 => (Kind::Service, SERVICES),
            4 => (Kind::Secret, &["tls", "ca", "bad"]),
            5 => (Kind::EndpointSlice, &["s0-x", "s1-x", "s0-y", "ext-x"]),
            _ => (Kind::Delegation, &["d"]),
        };
        Some((kind, Key::new(ns(*n), pool[*name as usize % pool.len()])))
    }
}

/// Everything one `dag_translate` run does.
#[derive(Debug, Clone, Arbitrary)]
pub struct Scenario {
    pub config: Config,
    pub initial: Few<Obj>,
    pub more: Few<Obj>,
    pub steps: Few<Step>,
}

// ---------------------------------------------------------------- HTTPProxy

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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
struct LocalRateLimit {
    requests: Num,
    unit: Text,
    burst: Option<Num>,
    status: Option<Num>,
    headers: Few<(Text, Text)>,
}

impl LocalRateLimit {
    fn json(&self) -> Value {
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
struct IpFilter {
    remote: bool,
    cidr: Text,
}

impl IpFilter {
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
        obj(vec![
            ("name", json!(self.name.of(PROXIES))),
            ("namespace", opt(&self.ns, |n| json!(ns(*n)))),
            ("conditions", self.conditions.map(Condition::json)),
        ])
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Condition {
    prefix: Option<Text>,
    exact: Option<Text>,
    regex: Option<Text>,
    header: Option<HeaderCondition>,
    query: Option<QueryCondition>,
}

impl Condition {
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
    fn json(&self) -> Value {
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
struct Route {
    conditions: Few<Condition>,
    services: Few<Upstream>,
    action: Action,
    websockets: bool,
    insecure: bool,
    timeout: Option<(Option<Text>, Option<Text>, Option<Text>)>,
    retry: Option<(Option<Num>, Option<Text>, Few<Text>, Few<Num>)>,
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
    fn json(&self) -> Value {
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
struct TcpProxy {
    services: Few<Upstream>,
    include: Option<(Text, Option<u8>)>,
    deprecated_include: bool,
    lb: Option<Text>,
    health: Option<(Num, Num, Num, Num)>,
}

impl TcpProxy {
    fn json(&self) -> Value {
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

// ------------------------------------------------------------- IngressRoute

#[derive(Debug, Clone, Arbitrary)]
pub struct IngressRoute {
    ns: u8,
    name: Text,
    vhost: Option<(Text, Option<(Text, Option<Text>, bool)>)>,
    routes: Few<IrRoute>,
    tcp: Option<(Few<IrService>, Option<(Text, Option<u8>)>)>,
}

#[derive(Debug, Clone, Arbitrary)]
struct IrRoute {
    prefix: Text,
    services: Few<IrService>,
    delegate: Option<(Text, Option<u8>)>,
    websockets: bool,
    insecure: bool,
    rewrite: Option<Text>,
    timeout: Option<Text>,
    retry: Option<(Option<Num>, Option<Text>)>,
}

#[derive(Debug, Clone, Arbitrary)]
struct IrService {
    name: Text,
    port: Num,
    weight: Option<u8>,
    health: Option<(Text, Option<Text>)>,
    strategy: Option<Text>,
    validation: Option<(Text, Text)>,
}

fn delegate(d: &Option<(Text, Option<u8>)>) -> Value {
    opt(d, |(n, s)| {
        obj(vec![
            ("name", json!(n.of(PROXIES))),
            ("namespace", opt(s, |s| json!(ns(*s)))),
        ])
    })
}

impl IrService {
    fn json(&self) -> Value {
        obj(vec![
            ("name", json!(self.name.of(SERVICES))),
            ("port", json!(self.port.of(PORTS))),
            ("weight", opt(&self.weight, |w| json!(w))),
            (
                "healthCheck",
                opt(&self.health, |(p, h)| {
                    obj(vec![
                        ("path", json!(p.of(PATHS))),
                        ("host", opt(h, |h| json!(h.of(FQDNS)))),
                    ])
                }),
            ),
            ("strategy", opt(&self.strategy, |t| json!(t.of(LB)))),
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

impl IngressRoute {
    fn json(&self) -> Value {
        let vhost = opt(&self.vhost, |(fqdn, tls)| {
            obj(vec![
                ("fqdn", json!(fqdn.of(FQDNS))),
                (
                    "tls",
                    opt(tls, |(s, min, pass)| {
                        obj(vec![
                            ("secretName", json!(s.of(SECRETS))),
                            (
                                "minimumProtocolVersion",
                                opt(min, |t| json!(t.of(TLS_VERSIONS))),
                            ),
                            ("passthrough", json!(pass)),
                        ])
                    }),
                ),
            ])
        });
        let routes = self.routes.map(|r| {
            obj(vec![
                ("match", json!(r.prefix.of(PATHS))),
                ("services", r.services.map(IrService::json)),
                ("delegate", delegate(&r.delegate)),
                ("enableWebsockets", json!(r.websockets)),
                ("permitInsecure", json!(r.insecure)),
                ("prefixRewrite", opt(&r.rewrite, |t| json!(t.of(PATHS)))),
                (
                    "timeoutPolicy",
                    opt(&r.timeout, |t| json!({"request": t.of(DURATIONS)})),
                ),
                (
                    "retryPolicy",
                    opt(&r.retry, |(c, p)| {
                        obj(vec![
                            ("count", opt(c, |n| json!(n.of(COUNTS)))),
                            ("perTryTimeout", opt(p, |t| json!(t.of(DURATIONS)))),
                        ])
                    }),
                ),
            ])
        });
        let tcp = opt(&self.tcp, |(services, d)| {
            obj(vec![
                ("services", services.map(IrService::json)),
                ("delegate", delegate(d)),
            ])
        });
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
               "metadata": {"name": self.name.of(PROXIES), "namespace": ns(self.ns), "generation": 1},
               "spec": obj(vec![("virtualhost", vhost), ("routes", routes), ("tcpproxy", tcp)])})
    }
}

// ------------------------------------------------------------------ Ingress

#[derive(Debug, Clone, Arbitrary)]
pub struct Ingress {
    ns: u8,
    second: bool,
    class_annotation: Option<(bool, Text)>,
    class_field: Option<Text>,
    annotations: Few<(u8, Text)>,
    default_backend: Option<Backend>,
    tls: Few<(Few<Text>, Option<Text>)>,
    rules: Few<Rule>,
}

#[derive(Debug, Clone, Arbitrary)]
struct Backend {
    service: Text,
    port: Result<Num, Text>,
}

impl Backend {
    fn json(&self) -> Value {
        let port = match &self.port {
            Ok(n) => json!({"number": n.of(PORTS)}),
            Err(t) => json!({"name": t.of(&["http", "https", "h2", ""])}),
        };
        json!({"service": {"name": self.service.of(SERVICES), "port": port}})
    }
}

#[derive(Debug, Clone, Arbitrary)]
struct Rule {
    host: Option<Text>,
    paths: Few<(Option<Text>, Text, Backend)>,
}

impl Ingress {
    fn json(&self) -> Value {
        const KEYS: &[&str] = &[
            "ingress.kubernetes.io/force-ssl-redirect",
            "kubernetes.io/ingress.allow-http",
            "projectcontour.io/websocket-routes",
            "projectcontour.io/response-timeout",
            "projectcontour.io/request-timeout",
            "projectcontour.io/retry-on",
            "projectcontour.io/num-retries",
            "projectcontour.io/per-try-timeout",
            "projectcontour.io/tls-minimum-protocol-version",
            "projectcontour.io/tls-maximum-protocol-version",
            "projectcontour.io/tls-cert-namespace",
        ];
        let mut annotations = Map::new();
        for (k, v) in &self.annotations.0 {
            let key = KEYS[*k as usize % KEYS.len()];
            let pool: Vec<&str> = ANNOTATION_VALUES
                .iter()
                .chain(DURATIONS)
                .chain(TLS_VERSIONS)
                .chain(NAMESPACES)
                .chain(PATHS)
                .copied()
                .collect();
            annotations.insert(key.to_string(), json!(v.of(&pool)));
        }
        if let Some((contour, c)) = &self.class_annotation {
            let key = if *contour {
                "projectcontour.io/ingress.class"
            } else {
                "kubernetes.io/ingress.class"
            };
            annotations.insert(key.to_string(), json!(c.of(CLASSES)));
        }
        let path_types = ["Prefix", "Exact", "ImplementationSpecific", "bogus"];
        let spec = obj(vec![
            (
                "ingressClassName",
                opt(&self.class_field, |t| json!(t.of(CLASSES))),
            ),
            ("defaultBackend", opt(&self.default_backend, Backend::json)),
            (
                "tls",
                self.tls.map(|(hosts, s)| {
                    obj(vec![
                        ("hosts", hosts.map(|h| json!(h.of(FQDNS)))),
                        ("secretName", opt(s, |s| json!(s.of(SECRETS)))),
                    ])
                }),
            ),
            (
                "rules",
                self.rules.map(|r| {
                    obj(vec![
                        ("host", opt(&r.host, |h| json!(h.of(FQDNS)))),
                        (
                            "http",
                            json!({"paths": r.paths.map(|(p, t, b)| obj(vec![
                                ("path", opt(p, |p| json!(p.of(PATHS)))),
                                ("pathType", json!(t.of(&path_types))),
                                ("backend", b.json()),
                            ]))}),
                        ),
                    ])
                }),
            ),
        ]);
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": if self.second { "ing2" } else { "ing" }, "namespace": ns(self.ns),
                            "annotations": annotations},
               "spec": spec})
    }
}

// ------------------------------------------------------------------ Service

#[derive(Debug, Clone, Arbitrary)]
pub struct Service {
    ns: u8,
    name: Text,
    external: Option<Text>,
    ports: Few<(Option<Text>, Num, Option<Num>, Option<Text>)>,
    annotations: Few<(u8, Text)>,
}

impl Service {
    fn json(&self) -> Value {
        const KEYS: &[&str] = &[
            "projectcontour.io/upstream-protocol.tls",
            "projectcontour.io/upstream-protocol.h2c",
            "projectcontour.io/upstream-protocol.h2",
            "projectcontour.io/max-connections",
            "projectcontour.io/max-pending-requests",
            "projectcontour.io/max-requests",
            "projectcontour.io/max-retries",
            "projectcontour.io/per-host-max-connections",
        ];
        let mut annotations = Map::new();
        for (k, v) in &self.annotations.0 {
            annotations.insert(
                KEYS[*k as usize % KEYS.len()].to_string(),
                json!(v.of(ANNOTATION_VALUES)),
            );
        }
        let ports = self.ports.map(|(name, port, target, app)| {
            obj(vec![
                (
                    "name",
                    opt(name, |t| json!(t.of(&["http", "https", "h2", ""]))),
                ),
                (
                    "port",
                    json!(port.of(PORTS).clamp(i32::MIN as i64, i32::MAX as i64)),
                ),
                (
                    "targetPort",
                    opt(target, |n| {
                        json!(n.of(&[8080, 80, 0]).clamp(i32::MIN as i64, i32::MAX as i64))
                    }),
                ),
                (
                    "appProtocol",
                    opt(app, |t| {
                        json!(t.of(&[
                            "kubernetes.io/h2c",
                            "kubernetes.io/wss",
                            "http",
                            "https",
                            "h2c",
                            ""
                        ]))
                    }),
                ),
            ])
        });
        let mut spec = obj(vec![("ports", ports)]);
        if let Some(host) = &self.external {
            spec["type"] = json!("ExternalName");
            spec["externalName"] = json!(host.of(&["example.com", "bad name", "", "10.0.0.1"]));
        }
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": self.name.of(SERVICES), "namespace": ns(self.ns), "annotations": annotations},
               "spec": spec})
    }
}

// ------------------------------------------------------------------- Secret

/// Secret bytes: real PEM, damaged PEM or anything.
#[derive(Debug, Clone, Arbitrary)]
enum Blob {
    Cert,
    Key,
    Ca,
    Crl,
    Both(bool),
    Truncated(u8, u16),
    Flipped(u8, u16, u8),
    Raw(Vec<u8>),
}

pub const CERT: &str = include_str!("pem/tls.crt");
pub const KEY: &str = include_str!("pem/tls.key");
pub const CA: &str = include_str!("pem/ca.crt");
pub const CRL: &str = include_str!("pem/crl.pem");

fn pem(i: u8) -> &'static [u8] {
    [CERT, KEY, CA, CRL][i as usize % 4].as_bytes()
}

impl Blob {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Blob::Cert => CERT.as_bytes().to_vec(),
            Blob::Key => KEY.as_bytes().to_vec(),
            Blob::Ca => CA.as_bytes().to_vec(),
            Blob::Crl => CRL.as_bytes().to_vec(),
            Blob::Both(ca_first) => {
                let (a, b) = if *ca_first { (CA, CERT) } else { (CERT, CA) };
                format!("{a}{b}").into_bytes()
            }
            Blob::Truncated(i, at) => {
                let p = pem(*i);
                p[..(*at as usize).min(p.len())].to_vec()
            }
            Blob::Flipped(i, at, x) => {
                let mut p = pem(*i).to_vec();
                let n = p.len();
                p[*at as usize % n] ^= *x;
                p
            }
            Blob::Raw(b) => b.clone(),
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub struct Secret {
    ns: u8,
    name: Text,
    kind: Text,
    crt: Option<Blob>,
    key: Option<Blob>,
    ca: Option<Blob>,
    crl: Option<Blob>,
}

/// Standard base64 (the encoding of a Secret's `data` in JSON).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Secret {
    fn json(&self) -> Value {
        let mut data = Map::new();
        for (k, b) in [
            ("tls.crt", &self.crt),
            ("tls.key", &self.key),
            ("ca.crt", &self.ca),
            ("crl.pem", &self.crl),
        ] {
            if let Some(b) = b {
                data.insert(k.to_string(), json!(base64(&b.bytes())));
            }
        }
        json!({"apiVersion": "v1", "kind": "Secret",
               "type": self.kind.of(&["kubernetes.io/tls", "Opaque", ""]),
               "metadata": {"name": self.name.of(&["tls", "ca", "bad"]), "namespace": ns(self.ns)},
               "data": data})
    }
}

// ------------------------------------------------------------ EndpointSlice

#[derive(Debug, Clone, Arbitrary)]
pub struct Slice {
    ns: u8,
    name: Text,
    service: Option<Text>,
    family: Text,
    ports: Few<(Option<Text>, Option<Num>)>,
    endpoints: Few<(Few<Text>, Option<bool>, Option<bool>, Option<bool>)>,
}

impl Slice {
    fn json(&self) -> Value {
        let mut labels = Map::new();
        if let Some(s) = &self.service {
            labels.insert("kubernetes.io/service-name".into(), json!(s.of(SERVICES)));
        }
        let ports = self.ports.map(|(n, p)| {
            obj(vec![
                (
                    "name",
                    opt(n, |t| json!(t.of(&["http", "https", "h2", ""]))),
                ),
                (
                    "port",
                    opt(p, |n| {
                        json!(
                            n.of(&[8080, 80, 0, -1])
                                .clamp(i32::MIN as i64, i32::MAX as i64)
                        )
                    }),
                ),
            ])
        });
        let endpoints = self.endpoints.map(|(addrs, ready, serving, terminating)| {
            json!({"addresses": addrs.map(|a| json!(a.of(ADDRESSES))),
            "conditions": obj(vec![
                ("ready", opt(ready, |b| json!(b))),
                ("serving", opt(serving, |b| json!(b))),
                ("terminating", opt(terminating, |b| json!(b))),
            ])})
        });
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": self.name.of(&["s0-x", "s1-x", "s0-y", "ext-x"]), "namespace": ns(self.ns),
                            "labels": labels},
               "addressType": self.family.of(&["IPv4", "IPv6", "FQDN"]),
               "ports": ports, "endpoints": endpoints})
    }
}

// ------------------------------------------------- TLSCertificateDelegation

#[derive(Debug, Clone, Arbitrary)]
pub struct Delegation {
    ns: u8,
    delegations: Few<(Text, Few<Text>)>,
}

impl Delegation {
    fn json(&self) -> Value {
        let targets = ["*", "default", "team-a", "team-b", ""];
        json!({"apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
        "metadata": {"name": "d", "namespace": ns(self.ns)},
        "spec": {"delegations": self.delegations.map(|(s, t)| json!({
            "secretName": s.of(&["tls", "ca", "bad"]),
            "targetNamespaces": t.map(|n| json!(n.of(&targets))),
        }))}})
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
