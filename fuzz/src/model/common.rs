//! Shared building blocks of the model: short lists, pooled strings and
//! numbers, the value pools, and JSON helpers.

use arbitrary::{Arbitrary, Result as ArbResult, Unstructured};
use serde_json::{Map, Value};

/// At most this many items in any list of the model.
pub(super) const MAX_ITEMS: usize = 4;

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
    pub(super) fn map(&self, f: impl Fn(&T) -> Value) -> Value {
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
pub(super) const PROXIES: &[&str] = &["p0", "p1", "p2", "p3"];
pub(super) const SERVICES: &[&str] = &["s0", "s1", "s2", "ext"];
pub(super) const SECRETS: &[&str] = &["tls", "ca", "bad", "team-a/tls", "default/ca", "missing"];
pub(super) const FQDNS: &[&str] = &[
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
pub(super) const PATHS: &[&str] = &[
    "/", "/api", "/api/", "/a/b", "api", "//", "/a?b", "/%zz", "/a/./b", "",
];
pub(super) const REGEXES: &[&str] = &["/api/.*", "(", "[a-z]+", ".*", "\\d{3}", "a{99999}", ""];
pub(super) const HEADERS: &[&str] = &["x-a", "X-B", ":authority", "host", "", "x a", "te"];
pub(super) const VALUES: &[&str] = &["v", "", "%REQ(x-a)%", "%bogus", "a\nb", "🦀"];
pub(super) const DURATIONS: &[&str] = &[
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
pub(super) const TLS_VERSIONS: &[&str] = &["1.2", "1.3", "1.1", "", "bogus"];
pub(super) const LB: &[&str] = &[
    "RoundRobin",
    "WeightedLeastRequest",
    "Random",
    "Cookie",
    "RequestHash",
    "bogus",
    "",
];
pub(super) const PROTOCOLS: &[&str] = &["h2", "h2c", "tls", "http", "bogus"];
pub(super) const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "::1/128",
    "1.2.3.4",
    "bad/99",
    "0.0.0.0/0",
    "10.0.0.1/33",
    "fe80::/10",
];
pub(super) const UNITS: &[&str] = &["second", "minute", "hour", "day", "bogus"];
pub(super) const SCHEMES: &[&str] = &["http", "https", "ftp", ""];
pub(super) const CLASSES: &[&str] = &["contour", "nginx", "", "contour,other"];
pub(super) const ADDRESSES: &[&str] = &["10.0.0.1", "10.0.0.2", "::1", "bad", "fe80::1", ""];
pub(super) const ANNOTATION_VALUES: &[&str] = &[
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
pub(super) const PORTS: &[i64] = &[80, 81, 443, 8080, 0, -1, 65536];
pub(super) const WEIGHTS: &[i64] = &[0, 1, 10, 90, 100, -1, 4294967296];
pub(super) const STATUS_CODES: &[i64] = &[200, 301, 302, 307, 308, 404, 503, 0, 999];
pub(super) const COUNTS: &[i64] = &[0, 1, 3, -1, 100];

pub(super) fn ns(i: u8) -> &'static str {
    NAMESPACES[i as usize % NAMESPACES.len()]
}

pub(super) fn opt<T>(v: &Option<T>, f: impl Fn(&T) -> Value) -> Value {
    v.as_ref().map(f).unwrap_or(Value::Null)
}

/// Drops null members (absent optional fields).
pub(super) fn obj(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if !v.is_null() {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}
