//! Catalogue, HTTPProxy: virtual hosts, services, includes.

use serde_json::json;

use super::catalogue::*;
use super::check::*;

/// HTTPProxy: virtual hosts, services, includes.
pub fn httpproxy(c: &Ctx) -> Built {
    let (m, o) = (c.m.as_str(), c.o.as_str());
    let fqdn_pattern = "spec.virtualhost.fqdn in body should match";
    let mut v = vec![
        Entry {
            name: "hp-fqdn-missing",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-fqdn-missing",
                json!({"virtualhost": {}, "routes": [{"services": to_steady()}]}),
            ))],
            expect: vec![refused(0, "spec.virtualhost.fqdn: Required value")],
        },
        Entry {
            name: "hp-fqdn-empty",
            kind: "HTTPProxy",
            objects: vec![c.m(root("hp-fqdn-empty", "", "steady"))],
            expect: vec![refused(0, fqdn_pattern)],
        },
        Entry {
            name: "hp-fqdn-uppercase",
            kind: "HTTPProxy",
            objects: vec![c.m(root("hp-fqdn-uppercase", &c.host("UPPER"), "steady"))],
            expect: vec![refused(0, fqdn_pattern)],
        },
        Entry {
            name: "hp-fqdn-unicode",
            kind: "HTTPProxy",
            objects: vec![c.m(root("hp-fqdn-unicode", &c.host("ünïcödé"), "steady"))],
            expect: vec![refused(0, fqdn_pattern)],
        },
        Entry {
            name: "hp-fqdn-invalid-chars",
            kind: "HTTPProxy",
            objects: vec![c.m(root(
                "hp-fqdn-invalid-chars",
                &c.host("bad_host!"),
                "steady",
            ))],
            expect: vec![refused(0, fqdn_pattern)],
        },
        Entry {
            name: "hp-fqdn-inner-wildcard",
            kind: "HTTPProxy",
            objects: vec![c.m(root(
                "hp-fqdn-inner-wildcard",
                &format!("a.*.{m}.example.com"),
                "steady",
            ))],
            expect: vec![refused(0, fqdn_pattern)],
        },
        Entry {
            name: "hp-fqdn-host-and-port",
            kind: "HTTPProxy",
            objects: vec![c.m(root(
                "hp-fqdn-host-and-port",
                &format!("{}:8080", c.host("port")),
                "steady",
            ))],
            expect: vec![refused(0, fqdn_pattern)],
        },
    ];

    // Longer than DNS allows (labels of 63, over 253 in all): the schema has
    // no length limit, and Envoy matches it like any other name.
    let long = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        c.host("long")
    );
    v.push(Entry {
        name: "hp-fqdn-too-long",
        kind: "HTTPProxy",
        objects: vec![c.m(root("hp-fqdn-too-long", &long, "steady"))],
        expect: vec![valid(m, "hp-fqdn-too-long"), serves(&long, "/", "steady")],
    });
    let wild = format!("*.{}", c.host("wild"));
    v.push(Entry {
        name: "hp-fqdn-wildcard",
        kind: "HTTPProxy",
        objects: vec![c.m(root("hp-fqdn-wildcard", &wild, "steady"))],
        expect: vec![
            valid(m, "hp-fqdn-wildcard"),
            serves(&format!("any.{}", c.host("wild")), "/", "steady"),
            // Envoy's `*.` domain takes any number of labels; as upstream,
            // every route gets a single-label `:authority` match, so two
            // labels find the virtual host but no route (the golden case
            // httpproxy-wildcard-fqdn pins the match).
            answers(&format!("a.b.{}", c.host("wild")), "/", 404),
        ],
    });

    // Duplicate fqdn, across namespaces: both invalid, each names both.
    let dup = c.host("hp-dup");
    let dup_msg =
        format!("fqdn \"{dup}\" is used in multiple HTTPProxies: {m}/hp-dup-a, {o}/hp-dup-b");
    v.push(Entry {
        name: "hp-fqdn-duplicate",
        kind: "HTTPProxy",
        objects: vec![
            c.m(root("hp-dup-a", &dup, "steady")),
            c.o(root("hp-dup-b", &dup, "steady")),
        ],
        expect: vec![
            invalid(
                m,
                "hp-dup-a",
                "VirtualHostError",
                "DuplicateVhost",
                dup_msg.clone(),
            ),
            invalid(o, "hp-dup-b", "VirtualHostError", "DuplicateVhost", dup_msg),
            answers(&dup, "/", 404),
        ],
    });
    // A hostile claim of the steady host itself: the steady proxy would be
    // invalidated too — so the claim is made on a copy host, and the steady
    // host is checked at the end of the run.

    let unresolved =
        |detail: String| format!("route 0: Spec.Routes unresolved service reference: {detail}");
    v.extend([
        Entry {
            name: "hp-service-missing",
            kind: "HTTPProxy",
            objects: vec![c.m(root(
                "hp-service-missing",
                &c.host("hp-service-missing"),
                "nope",
            ))],
            expect: vec![invalid(
                m,
                "hp-service-missing",
                "ServiceError",
                "ServiceUnresolvedReference",
                unresolved(format!("service \"{m}/nope\" not found")),
            )],
        },
        Entry {
            name: "hp-service-port-missing",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-service-port-missing",
                with_route(
                    &c.host("hp-service-port-missing"),
                    json!({"services": [{"name": "steady", "port": 8080}]}),
                ),
            ))],
            expect: vec![invalid(
                m,
                "hp-service-port-missing",
                "ServiceError",
                "ServiceUnresolvedReference",
                unresolved(format!(
                    "port \"8080\" on service \"{m}/steady\" not matched"
                )),
            )],
        },
        Entry {
            name: "hp-service-port-zero",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-service-port-zero",
                with_route(
                    &c.host("zero"),
                    json!({"services": [{"name": "steady", "port": 0}]}),
                ),
            ))],
            expect: vec![refused(0, "should be greater than or equal to 1")],
        },
        Entry {
            name: "hp-service-port-huge",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-service-port-huge",
                with_route(
                    &c.host("huge"),
                    json!({"services": [{"name": "steady", "port": 70000}]}),
                ),
            ))],
            expect: vec![refused(0, "should be less than or equal to 65535")],
        },
        Entry {
            name: "hp-service-in-other-namespace",
            kind: "HTTPProxy",
            // A route names a Service by name only: `o/steady` is not a
            // way into another namespace.
            objects: vec![c.m(root(
                "hp-service-in-other-namespace",
                &c.host("hp-service-in-other-namespace"),
                &format!("{o}/steady"),
            ))],
            expect: vec![invalid(
                m,
                "hp-service-in-other-namespace",
                "ServiceError",
                "ServiceUnresolvedReference",
                unresolved(format!("service \"{m}/{o}/steady\" not found")),
            )],
        },
        Entry {
            name: "hp-weight-negative",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-weight-negative",
                with_route(
                    &c.host("neg"),
                    json!({"services": [{"name": "steady", "port": 80, "weight": -1}]}),
                ),
            ))],
            expect: vec![refused(0, "should be greater than or equal to 0")],
        },
        Entry {
            name: "hp-weights-zero",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-weights-zero",
                with_route(
                    &c.host("hp-weights-zero"),
                    json!({"services": [{"name": "steady", "port": 80, "weight": 0},
                                        {"name": "steady", "port": 80, "weight": 0}]}),
                ),
            ))],
            expect: vec![
                valid(m, "hp-weights-zero"),
                serves(&c.host("hp-weights-zero"), "/", "steady"),
            ],
        },
        Entry {
            name: "hp-weights-huge",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-weights-huge",
                with_route(
                    &c.host("hp-weights-huge"),
                    json!({"services": [
                        {"name": "steady", "port": 80, "weight": 9_223_372_036_854_775_807_i64},
                        {"name": "steady", "port": 80, "weight": 4_294_967_295_i64}]}),
                ),
            ))],
            expect: vec![invalid(
                m,
                "hp-weights-huge",
                "RouteError",
                "WeightsNotValid",
                "route 0: the weights of the services must add up to at most 4294967295",
            )],
        },
        Entry {
            name: "hp-nothing-defined",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-nothing-defined",
                json!({"virtualhost": {"fqdn": c.host("hp-nothing-defined")}}),
            ))],
            expect: vec![invalid(
                m,
                "hp-nothing-defined",
                "SpecError",
                "NothingDefined",
                "HTTPProxy.Spec must have at least one Route, Include, or a TCPProxy",
            )],
        },
        Entry {
            name: "hp-orphan",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-orphan",
                json!({"routes": [{"services": to_steady()}]}),
            ))],
            expect: vec![orphaned(m, "hp-orphan")],
        },
        Entry {
            name: "hp-ingress-class-not-ours",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-ingress-class-not-ours",
                json!({"ingressClassName": "someone-else",
                       "virtualhost": {"fqdn": c.host("hp-ingress-class-not-ours")},
                       "routes": [{"services": to_steady()}]}),
            ))],
            expect: vec![
                ignored("HTTPProxy", m, "hp-ingress-class-not-ours"),
                answers(&c.host("hp-ingress-class-not-ours"), "/", 404),
            ],
        },
        Entry {
            name: "hp-include-missing",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-include-missing",
                json!({"virtualhost": {"fqdn": c.host("hp-include-missing")},
                       "includes": [{"name": "ghost", "conditions": [{"prefix": "/ghost"}]}]}),
            ))],
            expect: vec![invalid(
                m,
                "hp-include-missing",
                "IncludeError",
                "IncludeNotFound",
                format!("include {m}/ghost not found"),
            )],
        },
        Entry {
            name: "hp-include-root",
            kind: "HTTPProxy",
            // A root tries to take the steady root's routes in.
            objects: vec![c.m(proxy(
                "hp-include-root",
                json!({"virtualhost": {"fqdn": c.host("hp-include-root")},
                       "includes": [{"name": "steady", "conditions": [{"prefix": "/"}]}]}),
            ))],
            expect: vec![invalid(
                m,
                "hp-include-root",
                "IncludeError",
                "RootIncludesRoot",
                format!("root httpproxy cannot include another root httpproxy {m}/steady"),
            )],
        },
    ]);

    // Include cycles: A (root) → B → A, and A → B → C → B.
    v.push(Entry {
        name: "hp-include-cycle-to-root",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-cyc-a",
                json!({"virtualhost": {"fqdn": c.host("hp-cyc-a")},
                       "routes": [{"services": to_steady()}],
                       "includes": [{"name": "hp-cyc-b", "conditions": [{"prefix": "/b"}]}]}),
            )),
            c.m(proxy(
                "hp-cyc-b",
                json!({"routes": [{"services": to_steady()}],
                       "includes": [{"name": "hp-cyc-a", "conditions": [{"prefix": "/a"}]}]}),
            )),
        ],
        expect: vec![
            invalid(
                m,
                "hp-cyc-b",
                "IncludeError",
                "IncludeCreatesCycle",
                format!(
                    "include creates an include cycle: {m}/hp-cyc-a -> {m}/hp-cyc-b -> {m}/hp-cyc-a"
                ),
            ),
            valid(m, "hp-cyc-a"),
            serves(&c.host("hp-cyc-a"), "/", "steady"),
        ],
    });
    v.push(Entry {
        name: "hp-include-cycle-below",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-cyc2-root",
                json!({"virtualhost": {"fqdn": c.host("hp-cyc2-root")},
                       "includes": [{"name": "hp-cyc2-b", "conditions": [{"prefix": "/b"}]}]}),
            )),
            c.m(proxy(
                "hp-cyc2-b",
                json!({"routes": [{"services": to_steady()}],
                       "includes": [{"name": "hp-cyc2-c", "conditions": [{"prefix": "/c"}]}]}),
            )),
            c.m(proxy(
                "hp-cyc2-c",
                json!({"includes": [{"name": "hp-cyc2-b", "conditions": [{"prefix": "/b"}]}]}),
            )),
        ],
        expect: vec![
            invalid(
                m,
                "hp-cyc2-c",
                "IncludeError",
                "IncludeCreatesCycle",
                format!(
                    "include creates an include cycle: {m}/hp-cyc2-root -> {m}/hp-cyc2-b -> {m}/hp-cyc2-c -> {m}/hp-cyc2-b"
                ),
            ),
            valid(m, "hp-cyc2-b"),
            serves(&c.host("hp-cyc2-root"), "/b/x", "steady"),
        ],
    });

    // An include chain 100 deep, each link adding `/d`.
    let mut chain = vec![c.m(proxy(
        "hp-deep-0",
        json!({"virtualhost": {"fqdn": c.host("hp-deep")},
               "includes": [{"name": "hp-deep-1", "conditions": [{"prefix": "/d"}]}]}),
    ))];
    for i in 1..100 {
        chain.push(c.m(proxy(
            &format!("hp-deep-{i}"),
            json!({"includes": [{"name": format!("hp-deep-{}", i + 1), "conditions": [{"prefix": "/d"}]}]}),
        )));
    }
    chain.push(c.m(proxy(
        "hp-deep-100",
        json!({"routes": [{"services": to_steady()}]}),
    )));
    v.push(Entry {
        name: "hp-include-chain-100",
        kind: "HTTPProxy",
        objects: chain,
        expect: vec![
            valid(m, "hp-deep-0"),
            valid(m, "hp-deep-100"),
            serves(&c.host("hp-deep"), &"/d".repeat(100), "steady"),
            answers(&c.host("hp-deep"), &"/d".repeat(99), 404),
        ],
    });

    // Includes that try to escape their conditions.
    v.push(Entry {
        name: "hp-include-prefix-without-slash",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-esc-a",
                json!({"virtualhost": {"fqdn": c.host("hp-esc-a")},
                       "includes": [{"name": "hp-esc-child", "conditions": [{"prefix": "team"}]}]}),
            )),
            c.m(proxy(
                "hp-esc-child",
                json!({"routes": [{"services": to_steady()}]}),
            )),
        ],
        expect: vec![
            invalid(
                m,
                "hp-esc-a",
                "IncludeError",
                "PathMatchConditionsNotValid",
                "include hp-esc-child: prefix conditions must start with /",
            ),
            orphaned(m, "hp-esc-child"),
            answers(&c.host("hp-esc-a"), "/", 404),
        ],
    });
    v.push(Entry {
        name: "hp-include-two-prefixes",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-esc-b",
                json!({"virtualhost": {"fqdn": c.host("hp-esc-b")},
                       "includes": [{"name": "hp-esc-b-child",
                                     "conditions": [{"prefix": "/a"}, {"prefix": "/b"}]}]}),
            )),
            c.m(proxy(
                "hp-esc-b-child",
                json!({"routes": [{"services": to_steady()}]}),
            )),
        ],
        expect: vec![invalid(
            m,
            "hp-esc-b",
            "IncludeError",
            "PathMatchConditionsNotValid",
            "include hp-esc-b-child: more than one prefix is not allowed in a condition block",
        )],
    });
    v.push(Entry {
        name: "hp-include-header-contradiction",
        kind: "HTTPProxy",
        // The include requires x-team: a; the child's route requires
        // x-team not a: no request can match, which is refused.
        objects: vec![
            c.m(proxy(
                "hp-esc-c",
                json!({"virtualhost": {"fqdn": c.host("hp-esc-c")},
                       "routes": [{"services": to_steady()}],
                       "includes": [{"name": "hp-esc-c-child", "conditions": [
                           {"prefix": "/team"}, {"header": {"name": "x-team", "exact": "a"}}]}]}),
            )),
            c.m(proxy(
                "hp-esc-c-child",
                json!({"routes": [{"conditions": [{"header": {"name": "X-Team", "notexact": "a"}}],
                                   "services": to_steady()}]}),
            )),
        ],
        expect: vec![
            invalid(
                m,
                "hp-esc-c-child",
                "RouteError",
                "HeaderMatchConditionsNotValid",
                "route 0: cannot specify contradictory 'exact' and 'notexact' conditions for the same route and header",
            ),
            valid(m, "hp-esc-c"),
        ],
    });
    v.push(Entry {
        name: "hp-include-stays-under-its-prefix",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-jail",
                json!({"virtualhost": {"fqdn": c.host("hp-jail")},
                       "includes": [{"name": "hp-jail-child", "conditions": [{"prefix": "/jail"}]}]}),
            )),
            // The child asks for `/` and `/admin`: it gets `/jail` and `/jail/admin`.
            c.m(proxy(
                "hp-jail-child",
                json!({"routes": [{"services": to_steady()},
                                  {"conditions": [{"prefix": "/admin"}], "services": to_steady()}]}),
            )),
        ],
        expect: vec![
            valid(m, "hp-jail-child"),
            serves(&c.host("hp-jail"), "/jail/admin", "steady"),
            answers(&c.host("hp-jail"), "/admin", 404),
            answers(&c.host("hp-jail"), "/", 404),
        ],
    });
    v.push(Entry {
        name: "hp-route-and-include-same-prefix",
        kind: "HTTPProxy",
        objects: vec![
            c.m(proxy(
                "hp-same",
                json!({"virtualhost": {"fqdn": c.host("hp-same")},
                       "routes": [{"conditions": [{"prefix": "/x"}], "services": to_steady()}],
                       "includes": [{"name": "hp-same-child", "conditions": [{"prefix": "/x"}]}]}),
            )),
            c.m(proxy(
                "hp-same-child",
                json!({"routes": [{"services": to_steady()}]}),
            )),
        ],
        expect: vec![
            valid(m, "hp-same"),
            valid(m, "hp-same-child"),
            serves(&c.host("hp-same"), "/x", "steady"),
        ],
    });
    Ok(v)
}
