//! Catalogue, HTTPProxy: route conditions and policies, names and labels.

use serde_json::{Value, json};

use super::catalogue::*;
use super::check::*;

/// HTTPProxy: route conditions and policies.
pub fn httpproxy_routes(c: &Ctx) -> Built {
    let m = c.m.as_str();
    let one = |name: &'static str, route: Value| c.m(proxy(name, with_route(&c.host(name), route)));
    let bad = |name: &'static str, t: &'static str, reason: &'static str, message: String| {
        invalid(m, name, t, reason, message)
    };
    let mut v = vec![
        Entry {
            name: "hp-route-prefix-without-slash",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-route-prefix-without-slash",
                json!({"conditions": [{"prefix": "api"}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-route-prefix-without-slash",
                "RouteError",
                "PathMatchConditionsNotValid",
                "route 0: prefix conditions must start with /".into(),
            )],
        },
        Entry {
            name: "hp-route-two-prefixes",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-route-two-prefixes",
                json!({"conditions": [{"prefix": "/a"}, {"prefix": "/b"}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-route-two-prefixes",
                "RouteError",
                "PathMatchConditionsNotValid",
                "route 0: more than one prefix is not allowed in a condition block".into(),
            )],
        },
        Entry {
            name: "hp-route-prefix-and-regex",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-route-prefix-and-regex",
                json!({"conditions": [{"prefix": "/a", "regex": "/b.*"}], "services": to_steady()}),
            )],
            expect: vec![refused(
                0,
                "only one of prefix, exact or regex may be set in a condition",
            )],
        },
        Entry {
            name: "hp-route-header-without-match",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-route-header-without-match",
                json!({"conditions": [{"header": {"name": "x-nothing"}}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-route-header-without-match",
                "RouteError",
                "PathMatchConditionsNotValid",
                "route 0: header condition \"x-nothing\" specifies no match".into(),
            )],
        },
        Entry {
            name: "hp-route-duplicate-conditions",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-route-duplicate-conditions",
                json!({"virtualhost": {"fqdn": c.host("hp-route-duplicate-conditions")},
                       "routes": [{"conditions": [{"prefix": "/same"}], "services": to_steady()},
                                  {"conditions": [{"prefix": "/same"}], "services": to_steady()}]}),
            ))],
            expect: vec![
                valid(m, "hp-route-duplicate-conditions"),
                serves(&c.host("hp-route-duplicate-conditions"), "/same", "steady"),
            ],
        },
        Entry {
            name: "hp-regex-invalid",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-regex-invalid",
                json!({"conditions": [{"regex": "/[unclosed"}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-regex-invalid",
                "RouteError",
                "PathMatchConditionsNotValid",
                "route 0: supplied regex: /[unclosed invalid. error: unclosed character class"
                    .into(),
            )],
        },
        Entry {
            name: "hp-regex-repeat-too-large",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-regex-repeat-too-large",
                json!({"conditions": [{"regex": "/a{1001}"}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-regex-repeat-too-large",
                "RouteError",
                "PathMatchConditionsNotValid",
                "route 0: supplied regex: /a{1001} invalid. error: invalid repeat count".into(),
            )],
        },
        Entry {
            name: "hp-header-regex-invalid",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-header-regex-invalid",
                json!({"conditions": [{"header": {"name": "x-re", "regex": "(("}}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-header-regex-invalid",
                "RouteError",
                "HeaderMatchConditionsNotValid",
                "route 0: invalid regular expression specified for 'regex' condition".into(),
            )],
        },
        Entry {
            name: "hp-query-regex-invalid",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-query-regex-invalid",
                json!({"conditions": [{"queryParameter": {"name": "q", "regex": "*"}}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-query-regex-invalid",
                "RouteError",
                "QueryParameterMatchConditionsNotValid",
                "route 0: invalid regular expression specified for 'regex' condition".into(),
            )],
        },
    ];

    // A huge but valid regex: 2000 alternatives (~30 KB).
    let alternatives: Vec<String> = (0..2000).map(|i| format!("p{i:05}x")).collect();
    let huge = format!("/(?:{})", alternatives.join("|"));
    v.push(Entry {
        name: "hp-regex-huge",
        kind: "HTTPProxy",
        objects: vec![one(
            "hp-regex-huge",
            json!({"conditions": [{"regex": huge}], "services": to_steady()}),
        )],
        expect: vec![
            valid(m, "hp-regex-huge"),
            serves(&c.host("hp-regex-huge"), "/p01999x", "steady"),
            answers(&c.host("hp-regex-huge"), "/p02000x", 404),
        ],
    });

    // A regex of a megabyte: 90 000 alternatives.
    let alternatives: Vec<String> = (0..90_000).map(|i| format!("q{i:07}y")).collect();
    let megabyte = format!("/(?:{})", alternatives.join("|"));
    v.push(Entry {
        name: "hp-regex-megabyte",
        kind: "HTTPProxy",
        objects: vec![one(
            "hp-regex-megabyte",
            json!({"conditions": [{"regex": megabyte}], "services": to_steady()}),
        )],
        expect: vec![
            valid(m, "hp-regex-megabyte"),
            serves(&c.host("hp-regex-megabyte"), "/q0089999y", "steady"),
        ],
    });

    // 10 000 routes in one proxy.
    let routes: Vec<Value> = (0..10_000)
        .map(|i| json!({"conditions": [{"prefix": format!("/r{i}/")}], "services": to_steady()}))
        .collect();
    v.push(Entry {
        name: "hp-10k-routes",
        kind: "HTTPProxy",
        objects: vec![c.m(proxy(
            "hp-10k-routes",
            json!({"virtualhost": {"fqdn": c.host("hp-10k-routes")}, "routes": routes}),
        ))],
        expect: vec![
            valid(m, "hp-10k-routes"),
            serves(&c.host("hp-10k-routes"), "/r9999/", "steady"),
            answers(&c.host("hp-10k-routes"), "/r10000/", 404),
        ],
    });

    v.extend([
        Entry {
            name: "hp-timeout-garbage",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-timeout-garbage",
                json!({"timeoutPolicy": {"response": "banana"}, "services": to_steady()}),
            )],
            expect: vec![refused(0, "spec.routes[0].timeoutPolicy.response in body should match")],
        },
        Entry {
            name: "hp-timeout-unit-only",
            kind: "HTTPProxy",
            // Passes the schema's pattern (digits are optional there).
            objects: vec![one(
                "hp-timeout-unit-only",
                json!({"timeoutPolicy": {"response": "h"}, "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-timeout-unit-only",
                "RouteError",
                "TimeoutPolicyNotValid",
                "route 0: invalid duration \"h\"".into(),
            )],
        },
        Entry {
            name: "hp-timeout-huge",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-timeout-huge",
                json!({"timeoutPolicy": {"idle": "99999999999h"}, "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-timeout-huge",
                "RouteError",
                "TimeoutPolicyNotValid",
                "route 0: invalid duration \"99999999999h\": out of range".into(),
            )],
        },
        Entry {
            name: "hp-retry-per-try-garbage",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-retry-per-try-garbage",
                json!({"retryPolicy": {"count": 3, "perTryTimeout": "ms"}, "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-retry-per-try-garbage",
                "RouteError",
                "RetryPolicyNotValid",
                "route 0: invalid duration \"ms\"".into(),
            )],
        },
        Entry {
            name: "hp-retry-negative-count",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-retry-negative-count",
                json!({"retryPolicy": {"count": -7}, "services": to_steady()}),
            )],
            expect: vec![refused(0, "should be greater than or equal to -1")],
        },
        Entry {
            name: "hp-retry-on-unknown",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-retry-on-unknown",
                json!({"retryPolicy": {"retryOn": ["when-it-feels-like-it"]}, "services": to_steady()}),
            )],
            expect: vec![refused(0, "Unsupported value: \"when-it-feels-like-it\"")],
        },
        Entry {
            name: "hp-prefix-rewrite-crlf",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-prefix-rewrite-crlf",
                json!({"conditions": [{"prefix": "/a"}],
                       "pathRewritePolicy": {"replacePrefix": [{"replacement": "/b\r\nX-Evil: 1"}]},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-prefix-rewrite-crlf",
                "PrefixReplaceError",
                "ReplacementNotValid",
                "route 0: prefix replacement \"/b\\r\\nX-Evil: 1\" must not contain NUL, CR or LF".into(),
            )],
        },
        Entry {
            name: "hp-websocket-on-redirect",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-websocket-on-redirect",
                json!({"enableWebsockets": true, "requestRedirectPolicy": {"statusCode": 301, "path": "/moved"}}),
            )],
            expect: vec![
                valid(m, "hp-websocket-on-redirect"),
                answers(&c.host("hp-websocket-on-redirect"), "/", 301),
            ],
        },
        Entry {
            name: "hp-lb-unknown-strategy",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-lb-unknown-strategy",
                json!({"loadBalancerPolicy": {"strategy": "Psychic"}, "services": to_steady()}),
            )],
            expect: vec![
                valid(m, "hp-lb-unknown-strategy"),
                serves(&c.host("hp-lb-unknown-strategy"), "/", "steady"),
            ],
        },
        Entry {
            name: "hp-hash-header-crlf",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-hash-header-crlf",
                json!({"loadBalancerPolicy": {"strategy": "RequestHash", "requestHashPolicies": [
                           {"headerHashOptions": {"headerName": "x-user\r\nx-evil"}}]},
                       "services": to_steady()}),
            )],
            expect: vec![
                valid(m, "hp-hash-header-crlf"),
                warned(
                    m,
                    "hp-hash-header-crlf",
                    "SpecError",
                    "IgnoredField",
                    "ignoring invalid header hash policy options with invalid header name \"x-user\\r\\nx-evil\": [a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')]",
                ),
                warned(
                    m,
                    "hp-hash-header-crlf",
                    "SpecError",
                    "IgnoredField",
                    "ignoring invalid request hash policy options, setting load balancer strategy to default RoundRobin",
                ),
                serves(&c.host("hp-hash-header-crlf"), "/", "steady"),
            ],
        },
        Entry {
            name: "hp-header-condition-name-crlf",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-header-condition-name-crlf",
                json!({"conditions": [{"header": {"name": "x-a\r\nx-b", "present": true}}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-header-condition-name-crlf",
                "RouteError",
                "HeaderMatchConditionsNotValid",
                "route 0: header condition name \"x-a\\r\\nx-b\" must not be empty or contain NUL, CR or LF".into(),
            )],
        },
        Entry {
            name: "hp-query-condition-name-huge",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-query-condition-name-huge",
                json!({"conditions": [{"queryParameter": {"name": "q".repeat(2000), "exact": "x"}}], "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-query-condition-name-huge",
                "RouteError",
                "QueryParameterMatchConditionsNotValid",
                "route 0: query parameter condition name must be 1 to 1024 bytes long, not 2000".into(),
            )],
        },
        Entry {
            name: "hp-rate-limit-status-undefined",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-rate-limit-status-undefined",
                json!({"rateLimitPolicy": {"local": {"requests": 100, "unit": "second", "responseStatusCode": 430}},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-rate-limit-status-undefined",
                "RateLimitError",
                "PolicyDidNotParse",
                "route 0: route.rateLimitPolicy is invalid: responseStatusCode 430 is not an HTTP status code Envoy knows".into(),
            )],
        },
        Entry {
            name: "hp-unparsable-uint32",
            kind: "HTTPProxy",
            // `format: uint32` is not enforced by the API server: the
            // object is stored but does not parse. It was valid before.
            objects: vec![
                one("hp-unparsable-uint32", json!({"services": to_steady()})),
                one(
                    "hp-unparsable-uint32",
                    json!({"internalRedirectPolicy": {"maxInternalRedirects": 4_294_967_296_u64},
                           "services": to_steady()}),
                ),
            ],
            expect: vec![
                logged(&["object does not parse", "hp-unparsable-uint32"]),
                bad(
                    "hp-unparsable-uint32",
                    "SpecError",
                    "SpecNotParsed",
                    "the object does not parse and is not served: invalid value: integer `4294967296`, expected u32".into(),
                ),
                answers(&c.host("hp-unparsable-uint32"), "/", 404),
            ],
        },
        Entry {
            name: "hp-healthcheck-empty-path",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-healthcheck-empty-path",
                json!({"healthCheckPolicy": {"path": ""}, "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-healthcheck-empty-path",
                "RouteError",
                "HealthCheckPolicyInvalid",
                "route 0: healthCheckPolicy path must not be empty, and path and host must not contain control characters".into(),
            )],
        },
        Entry {
            name: "hp-healthcheck-control-chars",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-healthcheck-control-chars",
                json!({"healthCheckPolicy": {"path": "/healthz\r\nX-Evil: 1"}, "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-healthcheck-control-chars",
                "RouteError",
                "HealthCheckPolicyInvalid",
                "route 0: healthCheckPolicy path must not be empty, and path and host must not contain control characters".into(),
            )],
        },
        Entry {
            name: "hp-healthcheck-huge-interval",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-healthcheck-huge-interval",
                json!({"healthCheckPolicy": {"path": "/", "intervalSeconds": 9_223_372_036_854_775_807_i64},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-healthcheck-huge-interval",
                "RouteError",
                "HealthCheckPolicyInvalid",
                "route 0: healthCheckPolicy intervalSeconds and timeoutSeconds must be at most 1000000000".into(),
            )],
        },
        Entry {
            name: "hp-healthcheck-status-range-backwards",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-healthcheck-status-range-backwards",
                json!({"healthCheckPolicy": {"path": "/", "expectedStatuses": [{"start": 500, "end": 200}]},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-healthcheck-status-range-backwards",
                "RouteError",
                "HealthCheckPolicyInvalid",
                "route 0: invalid expected status range: start must be less than end".into(),
            )],
        },
        Entry {
            name: "hp-direct-response-huge-body",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-direct-response-huge-body",
                json!({"directResponsePolicy": {"statusCode": 200, "body": "x".repeat(5000)}}),
            )],
            expect: vec![bad(
                "hp-direct-response-huge-body",
                "RouteError",
                "DirectResponsePolicyInvalid",
                "route 0: directResponsePolicy body must be at most 4096 bytes".into(),
            )],
        },
        Entry {
            name: "hp-header-policy-pseudo-header",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-header-policy-pseudo-header",
                json!({"requestHeadersPolicy": {"set": [{"name": ":path", "value": "/admin"}]},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-header-policy-pseudo-header",
                "RouteError",
                "RequestHeadersPolicyInvalid",
                "route 0: invalid set header \":path\": a valid HTTP header must consist of alphanumeric characters or '-'".into(),
            )],
        },
        Entry {
            name: "hp-header-policy-crlf-value",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-header-policy-crlf-value",
                json!({"responseHeadersPolicy": {"set": [{"name": "x-ok", "value": "a\r\nSet-Cookie: evil=1"}]},
                       "services": to_steady()}),
            )],
            expect: vec![bad(
                "hp-header-policy-crlf-value",
                "RouteError",
                "ResponseHeaderPolicyInvalid",
                "route 0: invalid set header \"X-Ok\": the value must not contain NUL, CR or LF".into(),
            )],
        },
        Entry {
            name: "hp-ip-filter-bad-cidr",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-ip-filter-bad-cidr",
                json!({"virtualhost": {"fqdn": c.host("hp-ip-filter-bad-cidr"),
                                       "ipAllowPolicy": [{"source": "Peer", "cidr": "300.1.1.1/8"}]},
                       "routes": [{"services": to_steady()}]}),
            ))],
            expect: vec![bad(
                "hp-ip-filter-bad-cidr",
                "IPFilterError",
                "IPFilterPolicyNotValid",
                "Spec.VirtualHost.IPAllowFilterPolicy or Spec.VirtualHost.IPDenyFilterPolicy is invalid: 300.1.1.1/8 failed to parse: invalid IP address syntax".into(),
            )],
        },
        Entry {
            name: "hp-two-mirrors",
            kind: "HTTPProxy",
            objects: vec![one(
                "hp-two-mirrors",
                json!({"services": [{"name": "steady", "port": 80},
                                    {"name": "steady", "port": 80, "mirror": true},
                                    {"name": "fresh", "port": 80, "mirror": true}]}),
            )],
            expect: vec![bad(
                "hp-two-mirrors",
                "ServiceError",
                "OnlyOneMirror",
                "route 0: only one service per route may be nominated as mirror".into(),
            )],
        },
        Entry {
            name: "hp-tcpproxy-without-tls",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-tcpproxy-without-tls",
                json!({"virtualhost": {"fqdn": c.host("hp-tcpproxy-without-tls")},
                       "tcpproxy": {"services": to_steady()}}),
            ))],
            expect: vec![bad(
                "hp-tcpproxy-without-tls",
                "TCPProxyError",
                "TLSMustBeConfigured",
                "Spec.TCPProxy requires that either Spec.TLS.Passthrough or Spec.TLS.SecretName be set".into(),
            )],
        },
        Entry {
            name: "hp-tcpproxy-services-and-include",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-tcpproxy-services-and-include",
                json!({"virtualhost": {"fqdn": c.host("hp-tcpproxy-services-and-include"),
                                       "tls": {"passthrough": true}},
                       "tcpproxy": {"services": to_steady(), "include": {"name": "hp-orphan"}}}),
            ))],
            expect: vec![bad(
                "hp-tcpproxy-services-and-include",
                "TCPProxyError",
                "NoServicesAndInclude",
                "cannot specify services and include in the same httpproxy".into(),
            )],
        },
        Entry {
            name: "hp-tls-passthrough-and-secret",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-tls-passthrough-and-secret",
                json!({"virtualhost": {"fqdn": c.host("hp-tls-passthrough-and-secret"),
                                       "tls": {"passthrough": true, "secretName": "good-cert"}},
                       "tcpproxy": {"services": to_steady()}}),
            ))],
            expect: vec![bad(
                "hp-tls-passthrough-and-secret",
                "TLSError",
                "TLSConfigNotValid",
                "Spec.VirtualHost.TLS: both Passthrough and SecretName were specified".into(),
            )],
        },
    ]);

    // Very long names and labels.
    let long_name = format!("hp-long-{}", "n".repeat(245));
    v.push(Entry {
        name: "hp-name-253-chars",
        kind: "HTTPProxy",
        objects: vec![c.m(root(&long_name, &c.host("hp-long-name"), "steady"))],
        expect: vec![
            valid(m, &long_name),
            serves(&c.host("hp-long-name"), "/", "steady"),
        ],
    });
    v.push(Entry {
        name: "hp-name-254-chars",
        kind: "HTTPProxy",
        objects: vec![c.m(root(
            &format!("{long_name}n"),
            &c.host("hp-longer-name"),
            "steady",
        ))],
        expect: vec![refused(0, "must be no more than 253 characters")],
    });
    let mut labelled = root("hp-long-label", &c.host("hp-long-label"), "steady");
    labelled["metadata"]["labels"] = json!({"team": "l".repeat(64)});
    v.push(Entry {
        name: "hp-label-64-chars",
        kind: "HTTPProxy",
        objects: vec![c.m(labelled)],
        expect: vec![refused(0, "must be no more than 63 bytes")],
    });
    let mut annotated = root(
        "hp-huge-annotation",
        &c.host("hp-huge-annotation"),
        "steady",
    );
    annotated["metadata"]["annotations"] = json!({"note": "a".repeat(200_000)});
    v.push(Entry {
        name: "hp-annotation-200k",
        kind: "HTTPProxy",
        objects: vec![c.m(annotated)],
        expect: vec![
            valid(m, "hp-huge-annotation"),
            serves(&c.host("hp-huge-annotation"), "/", "steady"),
        ],
    });
    Ok(v)
}
