//! Route policies shared by the processors: header changes, hash policies,
//! query parameter matches, rate limits, address filters, CORS.

use contour_crds::httpproxy::{
    CORSPolicy, HeadersPolicy as SpecHeaders, IPFilterPolicy, LoadBalancerPolicy,
    LocalRateLimitPolicy, QueryParameterMatchCondition,
};

use super::builder::parse_duration;
use super::{
    Cors, HashPolicy, HeaderMatchKind, HeadersPolicy, IpFilter, IpRule, LocalRateLimit,
    OriginMatch, QueryParamMatch,
};

/// Go's `http.CanonicalHeaderKey`: `x-foo-bar` → `X-Foo-Bar`. Names with
/// characters outside the token set are returned unchanged.
pub fn canonical_header(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Escapes `%` in a header value unless it starts an Envoy variable upstream
/// lets through.
pub fn escape_header_value(value: &str) -> String {
    const VARIABLES: &[&str] = &[
        "DOWNSTREAM_REMOTE_ADDRESS",
        "DOWNSTREAM_LOCAL_ADDRESS",
        "DOWNSTREAM_LOCAL_PORT",
        "DOWNSTREAM_LOCAL_URI_SAN",
        "DOWNSTREAM_PEER_URI_SAN",
        "DOWNSTREAM_LOCAL_SUBJECT",
        "DOWNSTREAM_PEER_SUBJECT",
        "DOWNSTREAM_PEER_ISSUER",
        "DOWNSTREAM_TLS_SESSION_ID",
        "DOWNSTREAM_TLS_CIPHER",
        "DOWNSTREAM_TLS_VERSION",
        "DOWNSTREAM_PEER_FINGERPRINT",
        "DOWNSTREAM_PEER_SERIAL",
        "DOWNSTREAM_PEER_CERT",
        "HOSTNAME",
        "PROTOCOL",
        "UPSTREAM_REMOTE_ADDRESS",
        "RESPONSE_FLAGS",
        "RESPONSE_CODE_DETAILS",
        "REQ(",
    ];
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let is_var = VARIABLES.iter().any(|v| after.starts_with(v)) && after.contains('%');
        out.push_str(if is_var { "%" } else { "%%" });
        rest = after;
        if let Some(end) = rest.find('%').filter(|_| is_var) {
            out.push_str(&rest[..=end]);
            rest = &rest[end + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Envoy's (RE2's) limit on a counted repetition (`{n}`, `{n,m}`).
const MAX_REPEAT: u32 = 1000;

/// Whether `re` is a regular expression Envoy will compile: it parses, and
/// no counted repetition goes beyond RE2's 1000. The error is one line.
pub fn check_regex(re: &str) -> Result<(), String> {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    fn counts(ast: &Ast) -> Result<(), String> {
        match ast {
            Ast::Repetition(r) => {
                if let RepetitionKind::Range(range) = &r.op.kind {
                    let (RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n)) = range;
                    if *n > MAX_REPEAT {
                        return Err("invalid repeat count".into());
                    }
                }
                counts(&r.ast)
            }
            Ast::Group(g) => counts(&g.ast),
            Ast::Alternation(a) => a.asts.iter().try_for_each(counts),
            Ast::Concat(c) => c.asts.iter().try_for_each(counts),
            _ => Ok(()),
        }
    }
    let ast = regex_syntax::ast::parse::ParserBuilder::new()
        .octal(true)
        .build()
        .parse(re)
        .map_err(|e| e.kind().to_string())?;
    counts(&ast)?;
    regex_syntax::hir::translate::TranslatorBuilder::new()
        .utf8(false)
        .build()
        .translate(re, &ast)
        .map_err(|e| e.kind().to_string())?;
    Ok(())
}

/// Whether `name` is an HTTP header name as upstream accepts it (letters,
/// digits and `-`), and `value` carries no NUL, CR or LF (which Envoy
/// refuses). `what` is `set` or `remove`.
fn check_header(what: &str, name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "invalid {what} header {name:?}: a valid HTTP header must consist of alphanumeric characters or '-'"
        ));
    }
    if value.contains(['\0', '\r', '\n']) {
        return Err(format!(
            "invalid {what} header {name:?}: the value must not contain NUL, CR or LF"
        ));
    }
    Ok(())
}

/// A request or response header policy. Returns the policy and, for a
/// request policy, the Host rewrite it asks for.
pub fn headers_policy(
    spec: Option<&SpecHeaders>,
    request: bool,
) -> Result<(HeadersPolicy, Option<String>), String> {
    let mut out = HeadersPolicy::default();
    let mut host = None;
    let Some(spec) = spec else {
        return Ok((out, None));
    };
    for hv in &spec.set {
        let key = canonical_header(&hv.name);
        check_header("set", &key, &hv.value)?;
        if key == "Host" {
            if !request {
                return Err("rewriting \"Host\" header is not supported".into());
            }
            host = Some(hv.value.clone());
            continue;
        }
        if out
            .set
            .insert(key.clone(), escape_header_value(&hv.value))
            .is_some()
        {
            return Err(format!("duplicate header addition: {key:?}"));
        }
    }
    for name in &spec.remove {
        let key = canonical_header(name);
        check_header("remove", &key, "")?;
        if out.remove.contains(&key) {
            return Err(format!("duplicate header removal: {key:?}"));
        }
        out.remove.push(key);
    }
    out.remove.sort();
    Ok((out, host))
}

/// Hash policies of a load balancer policy, with the warnings for entries
/// that were ignored.
pub fn hash_policies(lb: Option<&LoadBalancerPolicy>) -> (Vec<HashPolicy>, Vec<String>) {
    let Some(lb) = lb else {
        return (vec![], vec![]);
    };
    match lb.strategy.as_str() {
        "Cookie" => (vec![HashPolicy::Cookie], vec![]),
        "RequestHash" => {
            let mut out = Vec::new();
            let mut warnings = Vec::new();
            for p in &lb.request_hash_policies {
                let set = [
                    p.hash_source_ip,
                    p.header_hash_options.is_some(),
                    p.query_parameter_hash_options.is_some(),
                ];
                if set.iter().filter(|b| **b).count() != 1 {
                    warnings.push("ignoring invalid request hash policy, must set exactly one of hashSourceIP or headerHashOptions or queryParameterHashOptions".to_string());
                    continue;
                }
                if p.hash_source_ip {
                    out.push(HashPolicy::SourceIp {
                        terminal: p.terminal,
                    });
                } else if let Some(h) = &p.header_hash_options {
                    let name = canonical_header(&h.header_name);
                    // Envoy refuses other names, and with them every route.
                    if check_header("hash", &name, "").is_err() {
                        warnings.push(format!(
                            "ignoring invalid header hash policy options with invalid header name {name:?}: [a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')]"
                        ));
                        continue;
                    }
                    out.push(HashPolicy::Header {
                        name,
                        terminal: p.terminal,
                    });
                } else if let Some(q) = &p.query_parameter_hash_options {
                    out.push(HashPolicy::QueryParameter {
                        name: q.parameter_name.to_ascii_lowercase(),
                        terminal: p.terminal,
                    });
                }
            }
            if out.is_empty() {
                warnings.push(
                    "ignoring invalid request hash policy options, setting load balancer strategy to default RoundRobin"
                        .into(),
                );
            }
            (out, warnings)
        }
        _ => (vec![], vec![]),
    }
}

/// A query parameter condition.
pub fn query_match(q: &QueryParameterMatchCondition) -> Result<QueryParamMatch, String> {
    // Envoy's limits on the name.
    if q.name.is_empty() || q.name.len() > 1024 {
        return Err(format!(
            "query parameter condition name must be 1 to 1024 bytes long, not {}",
            q.name.len()
        ));
    }
    let base = QueryParamMatch {
        name: q.name.clone(),
        kind: None,
        affix: None,
        ignore_case: q.ignore_case,
    };
    let set = [
        !q.exact.is_empty(),
        !q.prefix.is_empty(),
        !q.suffix.is_empty(),
        !q.regex.is_empty(),
        !q.contains.is_empty(),
        q.present,
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(format!(
            "query parameter condition {:?} must specify exactly one match",
            q.name
        ));
    }
    Ok(if !q.exact.is_empty() {
        QueryParamMatch {
            kind: Some(HeaderMatchKind::Exact(q.exact.clone())),
            ..base
        }
    } else if !q.prefix.is_empty() {
        QueryParamMatch {
            affix: Some((true, q.prefix.clone())),
            ..base
        }
    } else if !q.suffix.is_empty() {
        QueryParamMatch {
            affix: Some((false, q.suffix.clone())),
            ..base
        }
    } else if !q.regex.is_empty() {
        check_regex(&q.regex).map_err(|_| {
            "invalid regular expression specified for 'regex' condition".to_string()
        })?;
        QueryParamMatch {
            kind: Some(HeaderMatchKind::Regex(q.regex.clone())),
            ..base
        }
    } else if !q.contains.is_empty() {
        QueryParamMatch {
            kind: Some(HeaderMatchKind::Contains(q.contains.clone())),
            ..base
        }
    } else {
        base
    })
}

/// A local rate limit policy.
pub fn local_rate_limit(p: &LocalRateLimitPolicy) -> Result<LocalRateLimit, String> {
    let unit = match p.unit.as_str() {
        "second" => std::time::Duration::from_secs(1),
        "minute" => std::time::Duration::from_secs(60),
        "hour" => std::time::Duration::from_secs(3600),
        other => return Err(format!("invalid unit {other:?} in local rate limit policy")),
    };
    if p.requests == 0 {
        return Err("requests must be greater than 0".into());
    }
    // Envoy takes only the codes its `StatusCode` enum names (no 430).
    if let Some(code) = p.response_status_code.filter(|c| *c != 0) {
        let known = i32::try_from(code)
            .ok()
            .and_then(|c| envoy_types::pb::envoy::r#type::v3::StatusCode::try_from(c).ok());
        if known.is_none() {
            return Err(format!(
                "responseStatusCode {code} is not an HTTP status code Envoy knows"
            ));
        }
    }
    let mut response_headers = std::collections::BTreeMap::new();
    for h in &p.response_headers_to_add {
        let key = canonical_header(&h.name);
        check_header("set", &key, &h.value)?;
        if response_headers
            .insert(key.clone(), escape_header_value(&h.value))
            .is_some()
        {
            return Err(format!("duplicate header addition: {key:?}"));
        }
    }
    Ok(LocalRateLimit {
        requests: p.requests,
        unit,
        burst: p.burst.unwrap_or(0),
        status: p.response_status_code.unwrap_or(0),
        response_headers,
    })
}

/// An allow or deny list (only one of the two may be given).
pub fn ip_filter(
    allow: &[IPFilterPolicy],
    deny: &[IPFilterPolicy],
) -> Result<Option<IpFilter>, String> {
    let (is_allow, rules) = match (allow.is_empty(), deny.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {
            return Err("cannot specify both `ipAllowPolicy` and `ipDenyPolicy`".into());
        }
        (false, true) => (true, allow),
        (true, false) => (false, deny),
    };
    let rules = rules
        .iter()
        .map(|r| {
            let (addr, len) = match r.cidr.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (r.cidr.as_str(), None),
            };
            let address: std::net::IpAddr = addr
                .parse()
                .map_err(|e| format!("{} failed to parse: {e}", r.cidr))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix_len =
                match len {
                    Some(l) => l.parse::<u32>().ok().filter(|l| *l <= max).ok_or_else(|| {
                        format!("{} failed to parse: invalid prefix length", r.cidr)
                    })?,
                    None => max,
                };
            Ok(IpRule {
                remote: r.source == "Remote",
                address,
                prefix_len,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Some(IpFilter {
        allow: is_allow,
        rules,
    }))
}

/// A CORS policy.
pub fn cors(p: &CORSPolicy) -> Result<Cors, String> {
    let max_age = match p.max_age.as_str() {
        "" => None,
        "0" => Some("0".to_string()),
        other => {
            let d = parse_duration(other)?.unwrap_or_default();
            Some(d.as_secs().to_string())
        }
    };
    let allow_origin = p
        .allow_origin
        .iter()
        .map(|o| {
            if o == "*" || !o.chars().any(|c| "^$*+?()[]{}|\\".contains(c)) {
                Ok(OriginMatch::Exact(o.clone()))
            } else {
                regex_syntax::Parser::new()
                    .parse(o)
                    .map(|_| OriginMatch::Regex(o.clone()))
                    .map_err(|e| format!("allowOrigin {o:?} is neither a valid origin nor a valid regular expression: {e}"))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Cors {
        allow_credentials: p.allow_credentials,
        allow_origin,
        allow_methods: p.allow_methods.clone(),
        allow_headers: p.allow_headers.clone(),
        expose_headers: p.expose_headers.clone(),
        max_age,
        allow_private_network: p.allow_private_network,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_checked_as_envoy_compiles_them() {
        assert_eq!(check_regex("/api/v[0-9]+/.*"), Ok(()));
        assert_eq!(check_regex("/a{1000}"), Ok(()));
        assert_eq!(check_regex("/\\141"), Ok(()));
        assert_eq!(
            check_regex("/[unclosed"),
            Err("unclosed character class".into())
        );
        assert_eq!(check_regex("(("), Err("unclosed group".into()));
        assert_eq!(check_regex("/a{1001}"), Err("invalid repeat count".into()));
        assert_eq!(
            check_regex("(?:x{2,2000})+"),
            Err("invalid repeat count".into())
        );
    }

    #[test]
    fn header_names_and_values_are_checked() {
        let set = |name: &str, value: &str| SpecHeaders {
            set: vec![contour_crds::httpproxy::HeaderValue {
                name: name.into(),
                value: value.into(),
            }],
            remove: vec![],
        };
        assert!(headers_policy(Some(&set("x-ok", "fine")), true).is_ok());
        assert_eq!(
            headers_policy(Some(&set(":path", "/admin")), true).err(),
            Some("invalid set header \":path\": a valid HTTP header must consist of alphanumeric characters or '-'".into())
        );
        assert_eq!(
            headers_policy(Some(&set("x-ok", "a\r\nb")), false).err(),
            Some("invalid set header \"X-Ok\": the value must not contain NUL, CR or LF".into())
        );
        assert!(headers_policy(Some(&set("host", "a\nb")), true).is_err());
    }

    #[test]
    fn headers_are_canonicalised_like_go() {
        assert_eq!(canonical_header("x-foo-bar"), "X-Foo-Bar");
        assert_eq!(canonical_header("HOST"), "Host");
        assert_eq!(canonical_header("bad header"), "bad header");
    }

    #[test]
    fn percent_signs_are_escaped_except_envoy_variables() {
        assert_eq!(escape_header_value("100%"), "100%%");
        assert_eq!(
            escape_header_value("%DOWNSTREAM_REMOTE_ADDRESS%"),
            "%DOWNSTREAM_REMOTE_ADDRESS%"
        );
        assert_eq!(escape_header_value("a %REQ(x-foo)% b"), "a %REQ(x-foo)% b");
    }
}
