//! The incremental engine gives exactly what the full path gives
//! (`dag::build` → `envoy::translate` → `Snapshot::build`: the DAG, every
//! status, every resource's bytes and version), after every step of random
//! sequences of inserts, updates and deletes of HTTPProxies (with includes,
//! TLS, shared and duplicate fqdns), Ingresses claiming the same hosts,
//! Services, Secrets, TLSCertificateDelegations and EndpointSlices.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use contour::cache::{Cache, Key, Kind, Object};
use contour::dag::{self, BuilderConfig};
use contour::envoy;
use contour::incremental::Engine;
use contour::xds::snapshot::Snapshot;
use proptest::prelude::*;
use serde_json::{Value, json};

use common::{FQDNS, NAMESPACES};

fn pem() -> &'static (String, String) {
    static PEM: OnceLock<(String, String)> = OnceLock::new();
    PEM.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a.example.com".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    })
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"prefix": "/"})),
        "/[a-z]{1,2}".prop_map(|p| json!({"prefix": p})),
        Just(json!({"prefix": "x"})),
        "/[a-z]{1,2}".prop_map(|p| json!({"exact": p})),
        Just(json!({"header": {"name": "x-a", "present": true}})),
    ]
}

fn route() -> impl Strategy<Value = Value> {
    common::route(condition(), 2)
}

fn proxy() -> impl Strategy<Value = Value> {
    let tls = prop::option::of(prop_oneof![
        Just("tls"),
        Just("missing"),
        Just("team-a/tls")
    ]);
    (
        0..NAMESPACES.len(),
        "[p][0-3]",
        prop::option::of((0..FQDNS.len(), tls, any::<bool>())),
        prop::collection::vec(route(), 0..3),
        prop::collection::vec((0..NAMESPACES.len(), "[p][0-3]", prop::collection::vec(condition(), 0..2)), 0..2),
        1i64..3,
    )
        .prop_map(|(ns, name, vhost, routes, includes, generation)| {
            let mut spec = json!({"routes": routes});
            if let Some((f, tls, fallback)) = vhost {
                spec["virtualhost"] = json!({"fqdn": FQDNS[f]});
                if let Some(secret) = tls {
                    spec["virtualhost"]["tls"] =
                        json!({"secretName": secret, "enableFallbackCertificate": fallback});
                }
            }
            spec["includes"] = Value::Array(
                includes
                    .into_iter()
                    .map(|(ins, iname, conds)| json!({"name": iname, "namespace": NAMESPACES[ins], "conditions": conds}))
                    .collect(),
            );
            json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                   "metadata": {"name": name, "namespace": NAMESPACES[ns], "generation": generation}, "spec": spec})
        })
}

/// One step: an object to insert (or update), or a kind and key to delete.
#[derive(Debug, Clone)]
enum Step {
    Put(Value),
    Delete(Kind, String, String),
}

fn other() -> impl Strategy<Value = Value> {
    let ns = || (0..NAMESPACES.len()).prop_map(|i| NAMESPACES[i]);
    prop_oneof![
        (ns(), "[s][0-2]", prop_oneof![Just(80), Just(81)], any::<bool>()).prop_map(|(ns, n, port, h2)| {
            let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": n, "namespace": ns},
                "spec": {"ports": [{"port": port, "name": "http"}]}});
            if h2 {
                svc["metadata"]["annotations"] = json!({"projectcontour.io/upstream-protocol.h2c": "80"});
            }
            svc
        }),
        (ns(), "[s][0-2]", 1u8..4, any::<bool>()).prop_map(|(ns, s, ip, ready)| json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{s}-x"), "namespace": ns, "labels": {"kubernetes.io/service-name": s}},
            "addressType": "IPv4", "ports": [{"port": 8080, "name": "http"}],
            "endpoints": [{"addresses": [format!("10.0.0.{ip}")], "conditions": {"ready": ready}}]})),
        (ns(), any::<bool>()).prop_map(|(ns, valid)| {
            let (cert, key) = pem();
            let crt = if valid { cert.clone() } else { "garbage".into() };
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "tls", "namespace": ns}, "data": {"tls.crt": b64(&crt), "tls.key": b64(key)}})
        }),
        prop_oneof![Just("*"), Just("default"), Just("team-b")].prop_map(|target| json!({
            "apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
            "metadata": {"name": "d", "namespace": "team-a"},
            "spec": {"delegations": [{"secretName": "tls", "targetNamespaces": [target]}]}})),
        (0..3usize, "/[a-z]{0,2}", "[s][0-2]").prop_map(|(f, path, s)| json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "ing", "namespace": "default"},
            "spec": {"rules": [{"host": FQDNS[f], "http": {"paths": [{"path": if path.is_empty() { "/".to_string() } else { path },
                "pathType": "Prefix", "backend": {"service": {"name": s, "port": {"number": 80}}}}]}}]}})),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let delete = (
        prop_oneof![
            Just(Kind::HTTPProxy),
            Just(Kind::Service),
            Just(Kind::Secret),
            Just(Kind::EndpointSlice),
            Just(Kind::Delegation),
            Just(Kind::Ingress)
        ],
        0..NAMESPACES.len(),
        prop_oneof![
            "[p][0-3]",
            "[s][0-2]",
            Just("tls".to_string()),
            Just("d".to_string()),
            Just("ing".to_string())
        ],
    )
        .prop_map(|(k, ns, name)| {
            let name = if k == Kind::EndpointSlice {
                format!("{name}-x")
            } else {
                name
            };
            let ns = if k == Kind::Delegation {
                "team-a"
            } else {
                NAMESPACES[ns]
            };
            Step::Delete(k, ns.to_string(), name)
        });
    prop_oneof![4 => proxy().prop_map(Step::Put), 3 => other().prop_map(Step::Put), 2 => delete]
}

fn object(v: Value) -> Option<Object> {
    Some(match v["kind"].as_str()? {
        "HTTPProxy" => Object::HTTPProxy(serde_json::from_value(v).ok()?),
        "Service" => Object::Service(serde_json::from_value(v).ok()?),
        "Secret" => Object::Secret(serde_json::from_value(v).ok()?),
        "EndpointSlice" => Object::EndpointSlice(serde_json::from_value(v).ok()?),
        "TLSCertificateDelegation" => Object::Delegation(serde_json::from_value(v).ok()?),
        "Ingress" => Object::Ingress(serde_json::from_value(v).ok()?),
        _ => return None,
    })
}

fn check(engine: &mut Engine, cache: &Cache, config: &BuilderConfig) -> Result<(), TestCaseError> {
    let full = dag::build(cache, config);
    let snapshot = Snapshot::build(&envoy::translate(&full, cache)).expect("snapshot");
    let out = engine.apply(cache);
    prop_assert_eq!(&out.dag, &full);
    let got = out.snapshot.expect("incremental snapshot");
    for (t, want) in &snapshot.types {
        prop_assert_eq!(got.types.get(t), Some(want), "type {}", t);
    }
    prop_assert_eq!(got.types.len(), snapshot.types.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn every_step_equals_the_full_rebuild(
        initial in prop::collection::vec(prop_oneof![2 => proxy(), 1 => other()], 0..14),
        steps in prop::collection::vec(step(), 1..12),
        fallback in any::<bool>(),
        restricted in any::<bool>(),
        route_layout in prop_oneof![
            Just(dag::RouteLayout::Single),
            Just(dag::RouteLayout::Scoped),
            // Small thresholds, so that steps cross them both ways.
            (1usize..5).prop_map(|scoped_from| dag::RouteLayout::Auto { scoped_from }),
        ],
    ) {
        let config = BuilderConfig {
            fallback_certificate: fallback.then(|| ("team-a".to_string(), "tls".to_string())),
            root_namespaces: if restricted { vec!["default".into(), "team-a".into()] } else { vec![] },
            // serve's defaults: both listeners log to stdout.
            http_access_log: restricted.then(|| dag::AccessLog {
                path: "/dev/stdout".into(),
                format: dag::AccessLogFormat::Envoy,
            }),
            https_access_log: fallback.then(|| dag::AccessLog {
                path: "/dev/stdout".into(),
                format: dag::AccessLogFormat::Json,
            }),
            route_layout,
            ..BuilderConfig::default()
        };
        let mut cache = Cache::default();
        // Services and a certificate up front, so many proxies are valid.
        for ns in NAMESPACES {
            for s in ["s0", "s1", "s2"] {
                let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s, "namespace": ns},
                    "spec": {"ports": [{"port": 80, "name": "http"}]}});
                cache.insert(object(svc).expect("service"));
            }
        }
        let (cert, key) = pem();
        // The proxies' certificate, and the fallback certificate.
        for ns in ["default", "team-a"] {
            let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": "tls", "namespace": ns}, "data": {"tls.crt": b64(cert), "tls.key": b64(key)}});
            cache.insert(object(secret).expect("secret"));
        }
        for o in initial.into_iter().filter_map(object) {
            cache.insert(o);
        }
        let mut engine = Engine::new(config.clone());
        check(&mut engine, &cache, &config)?;
        for s in steps {
            match s {
                Step::Put(v) => {
                    if let Some(o) = object(v) {
                        cache.insert(o);
                    }
                }
                Step::Delete(kind, ns, name) => {
                    cache.remove(kind, &Key::new(ns, name));
                }
            }
            check(&mut engine, &cache, &config)?;
        }
    }
}

#[test]
fn an_unchanged_cache_replays_every_root_and_a_change_reprocesses_one() {
    let mut cache = Cache::default();
    for i in 0..20 {
        let v = json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": format!("p{i}"), "namespace": "default"},
            "spec": {"virtualhost": {"fqdn": format!("p{i}.example.com")},
                     "routes": [{"services": [{"name": "s0", "port": 80}]}]}});
        cache.insert(object(v).expect("proxy"));
    }
    let mut engine = Engine::new(BuilderConfig::default());
    engine.apply(&cache);
    assert_eq!(engine.last_roots(), (0, 20));
    assert!(!engine.last_patched());
    engine.apply(&cache);
    assert_eq!(
        engine.last_roots(),
        (0, 0),
        "nothing changed: nothing to do"
    );
    assert!(engine.last_patched());
    let v = json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "p3", "namespace": "default"},
        "spec": {"virtualhost": {"fqdn": "p3.example.com"},
                 "routes": [{"services": [{"name": "s1", "port": 80}]}]}});
    cache.insert(object(v).expect("proxy"));
    engine.apply(&cache);
    assert_eq!(engine.last_roots(), (0, 1), "only the changed root");
    assert!(engine.last_patched());
    // An Ingress change goes the full way, replaying every root.
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "ing", "namespace": "default"},
        "spec": {"rules": [{"host": "other.example.com", "http": {"paths": [{"path": "/",
            "pathType": "Prefix", "backend": {"service": {"name": "s0", "port": {"number": 80}}}}]}}]}});
    cache.insert(object(ing).expect("ingress"));
    engine.apply(&cache);
    assert!(!engine.last_patched());
    assert_eq!(engine.last_roots(), (20, 0));
}

/// In the scoped layout each plain host is its own scope: a new host adds
/// one scope and changes no other resource (no listener, no other scope, no
/// `ingress_http` route configuration, which does not exist), exactly as
/// the full path would have it.
#[test]
fn a_new_host_in_the_scoped_layout_is_one_new_scope() {
    use contour::xds::type_url;
    let config = BuilderConfig {
        route_layout: dag::RouteLayout::Scoped,
        ..BuilderConfig::default()
    };
    let proxy = |i: usize| {
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": format!("p{i}"), "namespace": "default"},
            "spec": {"virtualhost": {"fqdn": format!("p{i}.example.com")},
                     "routes": [{"services": [{"name": "s0", "port": 80}]}]}})
    };
    let mut cache = Cache::default();
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s0", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}});
    cache.insert(object(service).expect("service"));
    for i in 0..5 {
        cache.insert(object(proxy(i)).expect("proxy"));
    }
    let mut engine = Engine::new(config.clone());
    let before = engine.apply(&cache).snapshot.expect("snapshot");
    let scopes = |s: &Snapshot| {
        s.of(type_url::SCOPED_ROUTE)
            .map(|t| t.resources.clone())
            .unwrap_or_default()
    };
    assert_eq!(scopes(&before).len(), 5);
    let routes = before.of(type_url::ROUTE).expect("routes");
    assert!(!routes.resources.contains_key(dag::HTTP_LISTENER));
    cache.insert(object(proxy(5)).expect("proxy"));
    let after = engine.apply(&cache).snapshot.expect("snapshot");
    let full = Snapshot::build(&envoy::translate(&dag::build(&cache, &config), &cache))
        .expect("full snapshot");
    assert_eq!(*after, full, "the incremental result is the full one");
    let (old, new) = (scopes(&before), scopes(&after));
    assert_eq!(new.len(), 6);
    for (name, r) in &old {
        assert_eq!(
            new.get(name).map(|n| &n.version),
            Some(&r.version),
            "{name} changed"
        );
    }
    assert!(new.contains_key("ingress_http/p5.example.com"));
    for t in [type_url::LISTENER, type_url::ROUTE, type_url::CLUSTER] {
        assert_eq!(before.of(t), after.of(t), "{t} changed");
    }
}

/// Changes of every kind the patch handles, each checked against the full
/// build, and each patched (not rebuilt): roots, includes, duplicates,
/// orphans, Services, Secrets, EndpointSlices.
#[test]
fn changes_of_proxies_services_secrets_and_slices_are_patched() {
    let config = BuilderConfig {
        root_namespaces: vec!["default".into(), "team-a".into()],
        fallback_certificate: Some(("default".into(), "tls".into())),
        https_access_log: Some(dag::AccessLog {
            path: "/dev/stdout".into(),
            format: dag::AccessLogFormat::Envoy,
        }),
        ..BuilderConfig::default()
    };
    let mut cache = Cache::default();
    let (cert, key) = pem();
    fn put(cache: &mut Cache, v: Value) {
        cache.insert(object(v).expect("object"));
    }
    for ns in NAMESPACES {
        for s in ["s0", "s1"] {
            put(
                &mut cache,
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s, "namespace": ns},
                "spec": {"ports": [{"port": 80, "name": "http"}]}}),
            );
        }
    }
    let root = |name: &str, fqdn: &str, service: &str, include: Option<&str>| {
        let mut spec = json!({"virtualhost": {"fqdn": fqdn, "tls": {"secretName": "tls"}},
            "routes": [{"conditions": [{"prefix": "/"}], "services": [{"name": service, "port": 80}]}]});
        if let Some(child) = include {
            spec["includes"] = json!([{"name": child, "conditions": [{"prefix": "/c"}]}]);
        }
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
               "metadata": {"name": name, "namespace": "default"}, "spec": spec})
    };
    let child = |name: &str, service: &str| {
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"routes": [{"services": [{"name": service, "port": 80}]}]}})
    };
    let secret = |crt: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "tls", "namespace": "default"}, "data": {"tls.crt": b64(crt), "tls.key": b64(key)}})
    };
    put(&mut cache, secret(cert));
    for i in 0..6 {
        put(
            &mut cache,
            root(
                &format!("r{i}"),
                &format!("r{i}.example.com"),
                "s0",
                Some(&format!("c{i}")),
            ),
        );
        put(&mut cache, child(&format!("c{i}"), "s1"));
    }
    let mut engine = Engine::new(config.clone());
    check(&mut engine, &cache, &config).expect("first build");
    assert!(!engine.last_patched());
    type Change = Box<dyn Fn(&mut Cache)>;
    let slice = |ip: &str| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "s0-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "s0"}},
        "addressType": "IPv4", "ports": [{"port": 8080, "name": "http"}],
        "endpoints": [{"addresses": [ip]}]})
    };
    let steps: Vec<(&str, Change)> = vec![
        (
            "route change",
            Box::new(move |c| put(c, root("r1", "r1.example.com", "s1", Some("c1")))),
        ),
        ("child change", Box::new(move |c| put(c, child("c2", "s0")))),
        (
            "child removed",
            Box::new(|c| {
                c.remove(Kind::HTTPProxy, &Key::new("default", "c3"));
            }),
        ),
        (
            "include dropped: child orphaned",
            Box::new(move |c| put(c, root("r4", "r4.example.com", "s0", None))),
        ),
        (
            "duplicate fqdn",
            Box::new(move |c| put(c, root("r5", "r0.example.com", "s0", Some("c5")))),
        ),
        (
            "duplicate resolved",
            Box::new(move |c| put(c, root("r5", "r5.example.com", "s0", Some("c5")))),
        ),
        (
            "root in a namespace not allowed",
            Box::new(|c| {
                put(
                    c,
                    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "x", "namespace": "team-b"},
            "spec": {"virtualhost": {"fqdn": "x.example.com"}, "routes": [{"services": [{"name": "s0", "port": 80}]}]}}),
                )
            }),
        ),
        (
            "root becomes a child",
            Box::new(move |c| put(c, child("r0", "s0"))),
        ),
        (
            "service removed",
            Box::new(|c| {
                c.remove(Kind::Service, &Key::new("default", "s1"));
            }),
        ),
        (
            "service back",
            Box::new(|c| {
                put(
                    c,
                    json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s1", "namespace": "default"}, "spec": {"ports": [{"port": 80, "name": "http"}]}}),
                )
            }),
        ),
        (
            "certificate broken",
            Box::new(move |c| put(c, secret("garbage"))),
        ),
        ("certificate fixed", Box::new(move |c| put(c, secret(cert)))),
        ("endpoints", Box::new(move |c| put(c, slice("10.0.0.1")))),
        (
            "endpoints moved",
            Box::new(move |c| put(c, slice("10.0.0.2"))),
        ),
        (
            "root removed",
            Box::new(|c| {
                c.remove(Kind::HTTPProxy, &Key::new("default", "r2"));
            }),
        ),
        (
            "fallback certificate on",
            Box::new(move |c| {
                let mut v = root("r3", "r3.example.com", "s0", Some("c3"));
                v["spec"]["virtualhost"]["tls"]["enableFallbackCertificate"] = json!(true);
                put(c, v);
            }),
        ),
        (
            "fallback certificate off",
            Box::new(move |c| put(c, root("r3", "r3.example.com", "s0", Some("c3")))),
        ),
        (
            "tcp proxy",
            Box::new(|c| {
                put(
                    c,
                    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                    "metadata": {"name": "t", "namespace": "default"},
                    "spec": {"virtualhost": {"fqdn": "t.example.com", "tls": {"secretName": "tls"}},
                             "tcpproxy": {"services": [{"name": "s0", "port": 80}]}}}),
                )
            }),
        ),
    ];
    for (what, change) in steps {
        change(&mut cache);
        check(&mut engine, &cache, &config).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(engine.last_patched(), "{what}: patched");
    }
}

#[test]
fn an_ingress_and_a_proxy_share_a_host() {
    let mut cache = Cache::default();
    for v in [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s0", "namespace": "default"},
            "spec": {"ports": [{"port": 80, "name": "http"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "ing", "namespace": "default"},
            "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/ing",
                "pathType": "Prefix", "backend": {"service": {"name": "s0", "port": {"number": 80}}}}]}}]}}),
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"virtualhost": {"fqdn": "a.example.com"},
                     "routes": [{"services": [{"name": "s0", "port": 80}]}]}}),
    ] {
        cache.insert(object(v).expect("object"));
    }
    let config = BuilderConfig::default();
    let mut engine = Engine::new(config.clone());
    for _ in 0..2 {
        check(&mut engine, &cache, &config).expect("equal");
    }
    let routes =
        engine.apply(&cache).dag.listeners[dag::HTTP_LISTENER].virtual_hosts["a.example.com"]
            .routes
            .len();
    assert_eq!(routes, 2, "the Ingress route and the proxy's");
}
