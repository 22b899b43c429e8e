//! Catalogue: IngressRoute, Ingress, Service and EndpointSlice.

use serde_json::{Value, json};

use super::catalogue::*;
use super::check::*;

/// IngressRoute (contour.heptio.com/v1beta1).
pub fn ingressroutes(c: &Ctx) -> Built {
    let (m, o) = (c.m.as_str(), c.o.as_str());
    let invalid_ir =
        |name: &str, description: String| route_status(m, name, "invalid", description);
    let one = |name: &'static str, route: Value| {
        c.m(ingressroute(
            name,
            json!({"virtualhost": {"fqdn": c.host(name)}, "routes": [route]}),
        ))
    };
    let dup = c.host("ir-dup");
    let dup_msg =
        format!("fqdn \"{dup}\" is used in multiple IngressRoutes: {m}/ir-dup-a, {o}/ir-dup-b");
    Ok(vec![
        Entry {
            name: "ir-fqdn-duplicate",
            kind: "IngressRoute",
            objects: vec![
                c.m(root_route("ir-dup-a", &dup, "steady")),
                c.o(root_route("ir-dup-b", &dup, "steady")),
            ],
            expect: vec![
                invalid_ir("ir-dup-a", dup_msg.clone()),
                route_status(o, "ir-dup-b", "invalid", dup_msg),
                answers(&dup, "/", 404),
            ],
        },
        Entry {
            name: "ir-fqdn-wildcard",
            kind: "IngressRoute",
            objects: vec![c.m(root_route("ir-wild", &format!("*.{}", c.host("ir-wild")), "steady"))],
            expect: vec![invalid_ir(
                "ir-wild",
                format!("Spec.VirtualHost.Fqdn \"*.{}\" cannot use wildcards", c.host("ir-wild")),
            )],
        },
        Entry {
            name: "ir-fqdn-uppercase",
            kind: "IngressRoute",
            objects: vec![c.m(root_route("ir-upper", &c.host("IR-UPPER"), "steady"))],
            expect: vec![refused(0, "spec.virtualhost.fqdn in body should match")],
        },
        Entry {
            name: "ir-match-without-slash",
            kind: "IngressRoute",
            objects: vec![one("ir-match-without-slash", json!({"match": "api", "services": to_steady()}))],
            expect: vec![refused(0, "spec.routes[0].match in body should match")],
        },
        Entry {
            name: "ir-service-missing",
            kind: "IngressRoute",
            objects: vec![c.m(root_route("ir-service-missing", &c.host("ir-service-missing"), "nope"))],
            expect: vec![invalid_ir("ir-service-missing", "Service [nope:80] is invalid or missing".into())],
        },
        Entry {
            name: "ir-service-port-missing",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-service-port-missing",
                json!({"match": "/", "services": [{"name": "steady", "port": 8080}]}),
            )],
            expect: vec![invalid_ir(
                "ir-service-port-missing",
                "Service [steady:8080] is invalid or missing".into(),
            )],
        },
        Entry {
            name: "ir-delegation-cycle",
            kind: "IngressRoute",
            objects: vec![
                c.m(ingressroute(
                    "ir-cyc-root",
                    json!({"virtualhost": {"fqdn": c.host("ir-cyc-root")},
                           "routes": [{"match": "/", "services": to_steady()},
                                      {"match": "/a", "delegate": {"name": "ir-cyc-a"}}]}),
                )),
                c.m(ingressroute(
                    "ir-cyc-a",
                    json!({"routes": [{"match": "/a", "delegate": {"name": "ir-cyc-b"}}]}),
                )),
                c.m(ingressroute(
                    "ir-cyc-b",
                    json!({"routes": [{"match": "/a", "delegate": {"name": "ir-cyc-a"}}]}),
                )),
            ],
            expect: vec![
                invalid_ir(
                    "ir-cyc-b",
                    format!("route creates a delegation cycle: {m}/ir-cyc-root -> {m}/ir-cyc-a -> {m}/ir-cyc-b -> {m}/ir-cyc-a"),
                ),
                route_status(m, "ir-cyc-root", "valid", VALID_ROUTE),
                serves(&c.host("ir-cyc-root"), "/", "steady"),
            ],
        },
        Entry {
            name: "ir-delegate-to-root",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-delegate-to-root",
                json!({"virtualhost": {"fqdn": c.host("ir-delegate-to-root")},
                       "routes": [{"match": "/", "delegate": {"name": "ir-cyc-root"}}]}),
            ))],
            expect: vec![invalid_ir(
                "ir-delegate-to-root",
                "root ingressroute cannot delegate to another root ingressroute".into(),
            )],
        },
        Entry {
            name: "ir-delegate-missing",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-delegate-missing",
                json!({"virtualhost": {"fqdn": c.host("ir-delegate-missing")},
                       "routes": [{"match": "/", "services": to_steady()},
                                  {"match": "/gone", "delegate": {"name": "ghost"}}]}),
            ))],
            expect: vec![
                route_status(m, "ir-delegate-missing", "valid", VALID_ROUTE),
                serves(&c.host("ir-delegate-missing"), "/gone", "steady"),
            ],
        },
        Entry {
            name: "ir-delegate-escapes-prefix",
            kind: "IngressRoute",
            objects: vec![
                c.m(ingressroute(
                    "ir-jail",
                    json!({"virtualhost": {"fqdn": c.host("ir-jail")},
                           "routes": [{"match": "/jail", "delegate": {"name": "ir-jail-child"}}]}),
                )),
                c.m(ingressroute(
                    "ir-jail-child",
                    json!({"routes": [{"match": "/admin", "services": to_steady()}]}),
                )),
            ],
            expect: vec![
                invalid_ir(
                    "ir-jail-child",
                    "the path prefix \"/admin\" does not match the parent's path prefix \"/jail\"".into(),
                ),
                answers(&c.host("ir-jail"), "/admin", 404),
            ],
        },
        Entry {
            name: "ir-services-and-delegate",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-services-and-delegate",
                json!({"match": "/", "services": to_steady(), "delegate": {"name": "ir-orphan"}}),
            )],
            expect: vec![invalid_ir(
                "ir-services-and-delegate",
                "route \"/\": cannot specify services and delegate in the same route".into(),
            )],
        },
        Entry {
            name: "ir-websocket-multiple-services",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-websocket-multiple-services",
                json!({"match": "/", "enableWebsockets": true,
                       "services": [{"name": "steady", "port": 80}, {"name": "fresh", "port": 80}]}),
            )],
            expect: vec![invalid_ir(
                "ir-websocket-multiple-services",
                "route \"/\": cannot specify multiple services and enable websockets".into(),
            )],
        },
        Entry {
            name: "ir-healthcheck-empty-path",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-healthcheck-empty-path",
                json!({"match": "/", "services": [{"name": "steady", "port": 80, "healthCheck": {"path": ""}}]}),
            )],
            expect: vec![invalid_ir(
                "ir-healthcheck-empty-path",
                "route \"/\": service \"steady\": healthCheck path must not be empty, and path and host must not contain control characters".into(),
            )],
        },
        Entry {
            name: "ir-prefix-rewrite-crlf",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-prefix-rewrite-crlf",
                json!({"match": "/", "prefixRewrite": "/x\r\nX-Evil: 1", "services": to_steady()}),
            )],
            expect: vec![invalid_ir(
                "ir-prefix-rewrite-crlf",
                "route \"/\": prefixRewrite must not contain NUL, CR or LF".into(),
            )],
        },
        Entry {
            name: "ir-weights-overflow",
            kind: "IngressRoute",
            objects: vec![one(
                "ir-weights-overflow",
                json!({"match": "/", "services": [{"name": "steady", "port": 80, "weight": 4_294_967_295_u32},
                                                  {"name": "steady", "port": 80, "weight": 4_294_967_295_u32}]}),
            )],
            expect: vec![invalid_ir(
                "ir-weights-overflow",
                "route \"/\": the weights of the services must add up to at most 4294967295".into(),
            )],
        },
        Entry {
            name: "ir-weight-beyond-uint32",
            kind: "IngressRoute",
            // The schema's `format: uint32` is not enforced by the API
            // server; the object does not parse as an IngressRoute. It was
            // valid a moment before: its old status must not stay.
            objects: vec![
                one("ir-weight-beyond-uint32", json!({"match": "/", "services": to_steady()})),
                one(
                    "ir-weight-beyond-uint32",
                    json!({"match": "/", "services": [{"name": "steady", "port": 80, "weight": 4_294_967_296_u64}]}),
                ),
            ],
            expect: vec![
                logged(&["object does not parse", "ir-weight-beyond-uint32"]),
                invalid_ir(
                    "ir-weight-beyond-uint32",
                    "the object does not parse and is not served: invalid value: integer `4294967296`, expected u32".into(),
                ),
                answers(&c.host("ir-weight-beyond-uint32"), "/", 404),
            ],
        },
        Entry {
            name: "ir-tls-secret-missing",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-tls-secret-missing",
                json!({"virtualhost": {"fqdn": c.host("ir-tls-secret-missing"), "tls": {"secretName": "nope"}},
                       "routes": [{"match": "/", "services": to_steady()}]}),
            ))],
            expect: vec![invalid_ir(
                "ir-tls-secret-missing",
                "TLS Secret [nope] not found or is malformed".into(),
            )],
        },
        Entry {
            name: "ir-tls-undelegated",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-tls-undelegated",
                json!({"virtualhost": {"fqdn": c.host("ir-tls-undelegated"),
                                       "tls": {"secretName": format!("{o}/private-cert")}},
                       "routes": [{"match": "/", "services": to_steady()}]}),
            ))],
            expect: vec![invalid_ir(
                "ir-tls-undelegated",
                format!("{o}/private-cert: certificate delegation not permitted"),
            )],
        },
        Entry {
            name: "ir-tls-broken-pem",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-tls-broken-pem",
                json!({"virtualhost": {"fqdn": c.host("ir-tls-broken-pem"), "tls": {"secretName": "broken-pem"}},
                       "routes": [{"match": "/", "services": to_steady()}]}),
            ))],
            expect: vec![invalid_ir(
                "ir-tls-broken-pem",
                "TLS Secret [broken-pem] not found or is malformed".into(),
            )],
        },
        Entry {
            name: "ir-orphan",
            kind: "IngressRoute",
            objects: vec![c.m(ingressroute(
                "ir-orphan",
                json!({"routes": [{"match": "/", "services": to_steady()}]}),
            ))],
            expect: vec![route_status(m, "ir-orphan", "orphaned", ORPHANED_ROUTE)],
        },
    ])
}

/// Ingress (networking.k8s.io/v1): no status, so the effect is the log
/// line naming it and what Envoy serves.
pub fn ingresses(c: &Ctx) -> Built {
    let (m, o) = (c.m.as_str(), c.o.as_str());
    let rule = |host: &str, path: &str, path_type: &str, backend: Value| {
        json!({"rules": [{"host": host, "http": {"paths": [
            {"path": path, "pathType": path_type, "backend": backend}]}}]})
    };
    let svc = |name: &str, port: Value| json!({"service": {"name": name, "port": port}});
    let name_is = |n: &str| format!("name={n}");
    let ns_is = format!("namespace={m}");
    Ok(vec![
        Entry {
            name: "ing-service-missing",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-service-missing",
                rule(&c.host("ing-service-missing"), "/", "Prefix", svc("nope", json!({"number": 80}))),
            ))],
            expect: vec![
                logged(&["unresolved service reference", &name_is("ing-service-missing"), &ns_is,
                         &format!("service \"{m}/nope\" not found")]),
                answers(&c.host("ing-service-missing"), "/", 404),
            ],
        },
        Entry {
            name: "ing-port-name-missing",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-port-name-missing",
                rule(&c.host("ing-port-name-missing"), "/", "Prefix", svc("steady", json!({"name": "nope"}))),
            ))],
            expect: vec![
                logged(&[&name_is("ing-port-name-missing"), &ns_is,
                         &format!("port \"nope\" on service \"{m}/steady\" not matched")]),
                answers(&c.host("ing-port-name-missing"), "/", 404),
            ],
        },
        Entry {
            name: "ing-tls-secret-missing",
            kind: "Ingress",
            objects: vec![c.m(ingress("ing-tls-secret-missing", {
                let mut s = rule(&c.host("ing-tls-secret-missing"), "/", "Prefix", svc("steady", json!({"number": 80})));
                s["tls"] = json!([{"hosts": [c.host("ing-tls-secret-missing")], "secretName": "nope"}]);
                s
            }))],
            expect: vec![
                logged(&["unresolved secret reference", &name_is("ing-tls-secret-missing"),
                         &format!("secret={m}/nope")]),
                // The rule still serves over plain HTTP.
                serves(&c.host("ing-tls-secret-missing"), "/", "steady"),
            ],
        },
        Entry {
            name: "ing-tls-secret-with-namespace",
            kind: "Ingress",
            objects: vec![c.m(ingress("ing-tls-secret-with-namespace", {
                let mut s = rule(&c.host("ing-tls-ns"), "/", "Prefix", svc("steady", json!({"number": 80})));
                s["tls"] = json!([{"hosts": [c.host("ing-tls-ns")], "secretName": format!("{o}/private-cert")}]);
                s
            }))],
            expect: vec![refused(0, "spec.tls[0].secretName: Invalid value")],
        },
        Entry {
            name: "ing-tls-undelegated",
            kind: "Ingress",
            // Another namespace's Secret, through upstream's annotation.
            objects: vec![c.m({
                let mut s = rule(&c.host("ing-tls-undelegated"), "/", "Prefix", svc("steady", json!({"number": 80})));
                s["tls"] = json!([{"hosts": [c.host("ing-tls-undelegated")], "secretName": "private-cert"}]);
                let mut i = ingress("ing-tls-undelegated", s);
                i["metadata"]["annotations"] = json!({"projectcontour.io/tls-cert-namespace": o});
                i
            })],
            expect: vec![
                logged(&[
                    "certificate delegation not permitted",
                    &name_is("ing-tls-undelegated"),
                    &format!("secret={o}/private-cert"),
                ]),
                // The rule still serves over plain HTTP.
                serves(&c.host("ing-tls-undelegated"), "/", "steady"),
            ],
        },
        Entry {
            name: "ing-host-invalid",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-host-invalid",
                rule("Bad_Host.example.com", "/", "Prefix", svc("steady", json!({"number": 80}))),
            ))],
            expect: vec![refused(0, "spec.rules[0].host: Invalid value")],
        },
        Entry {
            name: "ing-host-with-port",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-host-with-port",
                rule(&format!("{}:80", c.host("ing-port")), "/", "Prefix", svc("steady", json!({"number": 80}))),
            ))],
            expect: vec![refused(0, "spec.rules[0].host: Invalid value")],
        },
        Entry {
            name: "ing-path-type-unknown",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-path-type-unknown",
                rule(&c.host("ing-path-type-unknown"), "/", "Sideways", svc("steady", json!({"number": 80}))),
            ))],
            expect: vec![refused(0, "Unsupported value: \"Sideways\"")],
        },
        Entry {
            name: "ing-path-relative",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-path-relative",
                rule(&c.host("ing-path-relative"), "relative", "Exact", svc("steady", json!({"number": 80}))),
            ))],
            expect: vec![refused(0, "must be an absolute path")],
        },
        Entry {
            name: "ing-regex-invalid",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-regex-invalid",
                rule(&c.host("ing-regex-invalid"), "/[unclosed", "ImplementationSpecific",
                     svc("steady", json!({"number": 80}))),
            ))],
            expect: vec![
                logged(&["path regex is not valid", &name_is("ing-regex-invalid"), &ns_is]),
                answers(&c.host("ing-regex-invalid"), "/", 404),
            ],
        },
        Entry {
            name: "ing-resource-backend",
            kind: "Ingress",
            objects: vec![c.m(ingress(
                "ing-resource-backend",
                rule(&c.host("ing-resource-backend"), "/", "Prefix",
                     json!({"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}})),
            ))],
            expect: vec![logged(&[
                "resource backends are not supported",
                &name_is("ing-resource-backend"),
                &ns_is,
            ])],
        },
        Entry {
            name: "ing-class-not-ours",
            kind: "Ingress",
            objects: vec![c.m(ingress("ing-class-not-ours", {
                let mut s = rule(&c.host("ing-class-not-ours"), "/", "Prefix", svc("steady", json!({"number": 80})));
                s["ingressClassName"] = json!("someone-else");
                s
            }))],
            expect: vec![answers(&c.host("ing-class-not-ours"), "/", 404)],
        },
        Entry {
            name: "ing-annotation-class-not-ours",
            kind: "Ingress",
            objects: vec![c.m({
                let mut i = ingress(
                    "ing-annotation-class-not-ours",
                    rule(&c.host("ing-annotation-class-not-ours"), "/", "Prefix", svc("steady", json!({"number": 80}))),
                );
                i["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
                i
            })],
            expect: vec![answers(&c.host("ing-annotation-class-not-ours"), "/", 404)],
        },
    ])
}

/// Services and EndpointSlices, each observed through a proxy that uses it.
pub fn services_and_slices(c: &Ctx) -> Built {
    let m = c.m.as_str();
    let (ip, port) = (c.steady.ip().to_string(), c.steady.port());
    let user = |name: &str, service: &str| c.m(root(name, &c.host(name), service));
    let ready = |ready: bool| json!([{"addresses": [ip], "conditions": {"ready": ready}}]);
    let named_port = json!([{"name": "http", "port": port, "protocol": "TCP"}]);
    Ok(vec![
        Entry {
            name: "svc-udp-port",
            kind: "Service",
            objects: vec![
                c.m(service(
                    "udp",
                    json!({"name": "dns", "port": 80, "protocol": "UDP", "targetPort": 53}),
                )),
                user("svc-udp-port", "udp"),
            ],
            expect: vec![invalid(
                m,
                "svc-udp-port",
                "ServiceError",
                "ServiceUnresolvedReference",
                "route 0: Spec.Routes unresolved service reference: unsupported service protocol \"UDP\"",
            )],
        },
        Entry {
            name: "svc-externalname",
            kind: "Service",
            objects: vec![
                c.m(
                    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "extname"},
                           "spec": {"type": "ExternalName", "externalName": "example.com",
                                    "ports": [{"port": 80}]}}),
                ),
                user("svc-externalname", "extname"),
            ],
            expect: vec![invalid(
                m,
                "svc-externalname",
                "ServiceError",
                "ServiceUnresolvedReference",
                format!(
                    "route 0: Spec.Routes unresolved service reference: {m}/extname is an ExternalName service, these are not currently enabled. See the config.enableExternalNameService config file setting"
                ),
            )],
        },
        Entry {
            name: "svc-port-zero",
            kind: "Service",
            objects: vec![c.m(service("zero", json!({"port": 0})))],
            expect: vec![refused(0, "spec.ports[0].port: Invalid value: 0")],
        },
        Entry {
            name: "svc-named-target-port",
            kind: "Service",
            objects: vec![
                c.m(service(
                    "named-target",
                    json!({"name": "http", "port": 80, "targetPort": "web"}),
                )),
                c.m(slice(
                    "named-target-1",
                    "named-target",
                    "IPv4",
                    named_port.clone(),
                    ready(true),
                )),
                user("svc-named-target-port", "named-target"),
            ],
            expect: vec![
                valid(m, "svc-named-target-port"),
                serves(&c.host("svc-named-target-port"), "/", "steady"),
            ],
        },
        Entry {
            name: "svc-unnamed-ports",
            kind: "Service",
            objects: vec![
                c.m(service("unnamed", json!({"port": 80, "targetPort": port}))),
                c.m(slice(
                    "unnamed-1",
                    "unnamed",
                    "IPv4",
                    json!([{"port": port}]),
                    ready(true),
                )),
                user("svc-unnamed-ports", "unnamed"),
            ],
            expect: vec![
                valid(m, "svc-unnamed-ports"),
                serves(&c.host("svc-unnamed-ports"), "/", "steady"),
            ],
        },
        Entry {
            name: "eps-fqdn-address-type",
            kind: "EndpointSlice",
            objects: vec![
                c.m(service("fqdn-eps", json!({"name": "http", "port": 80}))),
                c.m(slice(
                    "fqdn-eps-1",
                    "fqdn-eps",
                    "FQDN",
                    named_port.clone(),
                    json!([{"addresses": ["steady.example.com"], "conditions": {"ready": true}}]),
                )),
                user("eps-fqdn-address-type", "fqdn-eps"),
            ],
            expect: vec![
                valid(m, "eps-fqdn-address-type"),
                answers(&c.host("eps-fqdn-address-type"), "/", 503),
            ],
        },
        Entry {
            name: "eps-ipv6-in-ipv4-slice",
            kind: "EndpointSlice",
            objects: vec![c.m(slice(
                "v6-in-v4",
                "steady",
                "IPv4",
                named_port.clone(),
                json!([{"addresses": ["fd00::1"]}]),
            ))],
            expect: vec![refused(0, "must be an IPv4 address")],
        },
        Entry {
            name: "eps-bogus-address",
            kind: "EndpointSlice",
            objects: vec![c.m(slice(
                "bogus",
                "steady",
                "IPv4",
                named_port.clone(),
                json!([{"addresses": ["999.1.1.1"]}]),
            ))],
            expect: vec![refused(0, "must be a valid IP address")],
        },
        Entry {
            name: "eps-no-endpoints",
            kind: "EndpointSlice",
            objects: vec![
                c.m(service("empty-eps", json!({"name": "http", "port": 80}))),
                c.m(slice(
                    "empty-eps-1",
                    "empty-eps",
                    "IPv4",
                    named_port.clone(),
                    json!([]),
                )),
                user("eps-no-endpoints", "empty-eps"),
            ],
            expect: vec![
                valid(m, "eps-no-endpoints"),
                answers(&c.host("eps-no-endpoints"), "/", 503),
            ],
        },
        Entry {
            name: "eps-not-ready",
            kind: "EndpointSlice",
            objects: vec![
                c.m(service("notready", json!({"name": "http", "port": 80}))),
                c.m(slice(
                    "notready-1",
                    "notready",
                    "IPv4",
                    named_port.clone(),
                    ready(false),
                )),
                user("eps-not-ready", "notready"),
            ],
            expect: vec![
                valid(m, "eps-not-ready"),
                answers(&c.host("eps-not-ready"), "/", 503),
            ],
        },
        Entry {
            name: "eps-port-without-name",
            kind: "EndpointSlice",
            // The Service's port is named `http`; the slice's port has no
            // name, so it belongs to no Service port.
            objects: vec![
                c.m(service("portless", json!({"name": "http", "port": 80}))),
                c.m(slice(
                    "portless-1",
                    "portless",
                    "IPv4",
                    json!([{"port": port}]),
                    ready(true),
                )),
                user("eps-port-without-name", "portless"),
            ],
            expect: vec![
                valid(m, "eps-port-without-name"),
                answers(&c.host("eps-port-without-name"), "/", 503),
            ],
        },
        Entry {
            name: "eps-without-service-label",
            kind: "EndpointSlice",
            objects: vec![
                c.m(service("unlabelled", json!({"name": "http", "port": 80}))),
                c.m(slice(
                    "unlabelled-1",
                    "",
                    "IPv4",
                    named_port.clone(),
                    ready(true),
                )),
                user("eps-without-service-label", "unlabelled"),
            ],
            expect: vec![
                valid(m, "eps-without-service-label"),
                answers(&c.host("eps-without-service-label"), "/", 503),
            ],
        },
        Entry {
            name: "eps-for-another-service",
            kind: "EndpointSlice",
            // A slice claiming to belong to the steady Service adds an
            // endpoint to it: that is how EndpointSlices work, so the
            // endpoint must at least be a real one to be served; a port
            // the steady Service does not have is ignored.
            objects: vec![c.m(slice(
                "steady-foreign",
                "steady",
                "IPv4",
                json!([{"name": "nope", "port": 1}]),
                ready(true),
            ))],
            expect: vec![serves(&format!("steady.{m}.example.com"), "/", "steady")],
        },
    ])
}
