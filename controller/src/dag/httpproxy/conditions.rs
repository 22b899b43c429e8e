//! Route conditions: the path match of merged include conditions, the
//! header and query conditions carried down includes (and their
//! consistency), and health checks.

use super::*;

pub(super) fn path_match(merged: &Inherited, own: &[MatchCondition]) -> PathMatch {
    if let Some(exact) = own.iter().find(|c| !c.exact.is_empty()) {
        return PathMatch::Exact(format!(
            "{}{}",
            merged.prefix.trim_end_matches('/'),
            exact.exact
        ));
    }
    if let Some(regex) = own.iter().find(|c| !c.regex.is_empty()) {
        let prefix = regex_escape(merged.prefix.trim_end_matches('/'));
        // Grouped, so that an alternation cannot reach past the prefix the
        // includes put in front (as upstream: `/api(?:/v[0-9]+)`).
        return PathMatch::Regex(if prefix.is_empty() {
            regex.regex.clone()
        } else {
            format!("{prefix}(?:{})", regex.regex)
        });
    }
    let prefix = if merged.prefix.is_empty() {
        "/".to_string()
    } else {
        merged.prefix.clone()
    };
    PathMatch::Prefix {
        prefix,
        segment: false,
    }
}

/// `healthCheckPolicy`, refused where Envoy would refuse the cluster.
pub(super) fn health_check(
    h: &contour_crds::httpproxy::HTTPHealthCheckPolicy,
) -> Result<HealthCheck, RouteError> {
    let invalid = |m: String| ("RouteError", "HealthCheckPolicyInvalid", m);
    let control = |v: &str| v.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f');
    if h.path.is_empty() || control(&h.path) || control(&h.host) {
        return Err(invalid(
            "healthCheckPolicy path must not be empty, and path and host must not contain control characters".into(),
        ));
    }
    if h.interval_seconds > MAX_HEALTH_CHECK_SECONDS || h.timeout_seconds > MAX_HEALTH_CHECK_SECONDS
    {
        return Err(invalid(format!(
            "healthCheckPolicy intervalSeconds and timeoutSeconds must be at most {MAX_HEALTH_CHECK_SECONDS}"
        )));
    }
    if h.expected_statuses.iter().any(|r| r.start >= r.end) {
        return Err(invalid(
            "invalid expected status range: start must be less than end".into(),
        ));
    }
    Ok(HealthCheck {
        path: h.path.clone(),
        host: h.host.clone(),
        interval: (h.interval_seconds > 0)
            .then(|| Duration::from_secs(h.interval_seconds.unsigned_abs())),
        timeout: (h.timeout_seconds > 0)
            .then(|| Duration::from_secs(h.timeout_seconds.unsigned_abs())),
        unhealthy_threshold: u32::try_from(h.unhealthy_threshold_count.max(0)).unwrap_or(u32::MAX),
        healthy_threshold: u32::try_from(h.healthy_threshold_count.max(0)).unwrap_or(u32::MAX),
        expected_statuses: h
            .expected_statuses
            .iter()
            .map(|r| (r.start, r.end))
            .collect(),
    })
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Appends `conditions` to what was inherited: prefixes concatenate (one per
/// block, starting with `/`), header and query parameter matches
/// accumulate, and the accumulated headers must not contradict one another.
/// The error is (reason, message).
pub(super) fn merge_conditions(
    inherited: &Inherited,
    conditions: &[MatchCondition],
) -> Result<Inherited, (&'static str, String)> {
    let path = |m: String| ("PathMatchConditionsNotValid", m);
    let mut out = inherited.clone();
    let prefixes: Vec<&str> = conditions
        .iter()
        .filter(|c| !c.prefix.is_empty())
        .map(|c| c.prefix.as_str())
        .collect();
    if prefixes.len() > 1 {
        return Err(path(
            "more than one prefix is not allowed in a condition block".into(),
        ));
    }
    if let Some(p) = prefixes.first() {
        if !p.starts_with('/') {
            return Err(path("prefix conditions must start with /".into()));
        }
        out.prefix = format!("{}{}", inherited.prefix.trim_end_matches('/'), p);
    }
    for c in conditions {
        if let Some(h) = &c.header {
            out.headers.push(header_match(h)?);
        }
        if let Some(q) = &c.query_parameter {
            out.query.push(
                policy::query_match(q).map_err(|m| ("QueryParameterMatchConditionsNotValid", m))?,
            );
        }
    }
    headers_consistent(&out.headers)
        .map_err(|m| ("HeaderMatchConditionsNotValid", m.to_string()))?;
    Ok(out)
}

/// Upstream's checks of the header matches of one route (its own and
/// those its includes put in front), names compared case-insensitively.
fn headers_consistent(headers: &[HeaderMatch]) -> Result<(), &'static str> {
    for (i, a) in headers.iter().enumerate() {
        for b in &headers[i + 1..] {
            if a.name != b.name {
                continue;
            }
            match (&a.kind, &b.kind) {
                (HeaderMatchKind::Present, HeaderMatchKind::Present) if a.invert != b.invert => {
                    return Err(
                        "cannot specify contradictory 'present' and 'notpresent' conditions for the same route and header",
                    );
                }
                (HeaderMatchKind::Exact(_), HeaderMatchKind::Exact(_))
                    if !a.invert && !b.invert =>
                {
                    return Err(
                        "cannot specify duplicate header 'exact match' conditions in the same route",
                    );
                }
                (HeaderMatchKind::Exact(x), HeaderMatchKind::Exact(y))
                    if x == y && a.invert != b.invert =>
                {
                    return Err(
                        "cannot specify contradictory 'exact' and 'notexact' conditions for the same route and header",
                    );
                }
                (HeaderMatchKind::Contains(x), HeaderMatchKind::Contains(y))
                    if x == y && a.invert != b.invert =>
                {
                    return Err(
                        "cannot specify contradictory 'contains' and 'notcontains' conditions for the same route and header",
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn header_match(
    h: &contour_crds::httpproxy::HeaderMatchCondition,
) -> Result<HeaderMatch, (&'static str, String)> {
    // Envoy refuses these names, and with them every route.
    if h.name.is_empty() || h.name.contains(['\0', '\r', '\n']) {
        return Err((
            "HeaderMatchConditionsNotValid",
            format!(
                "header condition name {:?} must not be empty or contain NUL, CR or LF",
                h.name
            ),
        ));
    }
    let (kind, invert) = if h.present {
        (HeaderMatchKind::Present, false)
    } else if h.not_present {
        (HeaderMatchKind::Present, true)
    } else if !h.exact.is_empty() {
        (HeaderMatchKind::Exact(h.exact.clone()), false)
    } else if !h.not_exact.is_empty() {
        (HeaderMatchKind::Exact(h.not_exact.clone()), true)
    } else if !h.contains.is_empty() {
        (HeaderMatchKind::Contains(h.contains.clone()), false)
    } else if !h.not_contains.is_empty() {
        (HeaderMatchKind::Contains(h.not_contains.clone()), true)
    } else if !h.regex.is_empty() {
        policy::check_regex(&h.regex).map_err(|_| {
            (
                "HeaderMatchConditionsNotValid",
                "invalid regular expression specified for 'regex' condition".to_string(),
            )
        })?;
        (HeaderMatchKind::Regex(h.regex.clone()), false)
    } else {
        return Err((
            "PathMatchConditionsNotValid",
            format!("header condition {:?} specifies no match", h.name),
        ));
    };
    Ok(HeaderMatch {
        name: h.name.to_ascii_lowercase(),
        kind,
        invert,
    })
}
