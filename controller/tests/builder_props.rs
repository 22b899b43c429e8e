//! Properties of the builder on arbitrary object sets: it never panics, it is
//! deterministic, and an invalid or unrelated object never changes what an
//! unrelated virtual host serves.
#![allow(clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use contour::cache::{Cache, Object};
use contour::dag::{self, BuilderConfig, HTTP_LISTENER};
use contour::envoy;
use contour::envoy::canonical::canonical_bytes;
use contour_crds::HTTPProxy;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use k8s_openapi::api::core::v1::Service;
use proptest::prelude::*;
use prost::{Message, Name};
use serde_json::{Value, json};

use common::{FQDNS, NAMESPACES};

const SENTINEL: &str = "sentinel.example.com";

fn service(ns: &str, name: &str, port: i32) -> Object {
    let s: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"port": port}]}
    }))
    .unwrap_or_default();
    Object::Service(s)
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"prefix": "/"})),
        "/[a-z]{1,4}".prop_map(|p| json!({"prefix": p})),
        "[a-z]{1,4}".prop_map(|p| json!({"prefix": p})), // invalid: no leading slash
        "/[a-z]{1,4}".prop_map(|p| json!({"exact": p})),
        Just(json!({"regex": "/api/.*"})),
        Just(json!({"header": {"name": "x-a", "present": true}})),
        Just(json!({"header": {"name": "x-b"}})), // invalid: no match
    ]
}

fn route() -> impl Strategy<Value = Value> {
    common::route(condition(), 3)
}

fn proxy() -> impl Strategy<Value = Value> {
    (
        0..NAMESPACES.len(),
        "[p][0-4]",
        prop::option::of((0..FQDNS.len(), prop::option::of(prop_oneof![Just("tls"), Just("missing"), Just("team-a/tls")])))
            .prop_map(|o| o),
        prop::collection::vec(route(), 0..3),
        prop::collection::vec((0..NAMESPACES.len(), "[p][0-4]", prop::collection::vec(condition(), 0..2)), 0..3),
    )
        .prop_map(|(ns, name, vhost, routes, includes)| {
            let mut spec = json!({"routes": routes});
            if let Some((f, tls)) = vhost {
                spec["virtualhost"] = json!({"fqdn": FQDNS[f]});
                if let Some(secret) = tls {
                    spec["virtualhost"]["tls"] = json!({"secretName": secret});
                }
            }
            spec["includes"] = Value::Array(
                includes
                    .into_iter()
                    .map(|(ins, iname, conds)| json!({"name": iname, "namespace": NAMESPACES[ins], "conditions": conds}))
                    .collect(),
            );
            json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                   "metadata": {"name": name, "namespace": NAMESPACES[ns], "generation": 1}, "spec": spec})
        })
}

fn base_cache() -> Cache {
    let mut cache = Cache::default();
    for ns in NAMESPACES {
        for s in ["s0", "s1", "s2"] {
            cache.insert(service(ns, s, 80));
        }
    }
    cache.insert(service("sentinel", "web", 80));
    cache
}

fn sentinel() -> Object {
    let p: Result<HTTPProxy, _> = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "sentinel", "namespace": "sentinel"},
        "spec": {"virtualhost": {"fqdn": SENTINEL}, "routes": [
            {"conditions": [{"prefix": "/"}], "services": [{"name": "web", "port": 80}]},
            {"conditions": [{"prefix": "/api"}], "services": [{"name": "web", "port": 80}], "timeoutPolicy": {"response": "1s"}}
        ]}
    }));
    Object::HTTPProxy(p.expect("the sentinel proxy is well-formed"))
}

fn insert_all(cache: &mut Cache, proxies: &[Value]) {
    for p in proxies {
        if let Ok(p) = serde_json::from_value::<HTTPProxy>(p.clone()) {
            cache.insert(Object::HTTPProxy(p));
        }
    }
}

/// What the sentinel virtual host serves, as Envoy JSON.
fn sentinel_view(cache: &Cache) -> (Value, BTreeMap<String, Value>) {
    let built = dag::build(cache, &BuilderConfig::default());
    let vhost = built
        .listeners
        .get(HTTP_LISTENER)
        .and_then(|l| l.virtual_hosts.get(SENTINEL))
        .map(|v| envoy::json::to_json(&envoy::route::virtual_host(v)).unwrap_or_default())
        .unwrap_or_default();
    let clusters = envoy::translate(&built, cache)
        .clusters
        .iter()
        .filter(|c| c.name.starts_with("sentinel/"))
        .map(|c| (c.name.clone(), envoy::json::to_json(c).unwrap_or_default()))
        .collect();
    (vhost, clusters)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn builds_are_deterministic_and_never_panic(proxies in prop::collection::vec(proxy(), 0..12)) {
        let mut cache = base_cache();
        insert_all(&mut cache, &proxies);
        let config = BuilderConfig::default();
        let first = dag::build(&cache, &config);
        let second = dag::build(&cache, &config);
        prop_assert_eq!(&first, &second);
        let a = envoy::translate(&first, &cache).to_json();
        let b = envoy::translate(&second, &cache).to_json();
        prop_assert!(a.is_ok());
        prop_assert_eq!(a.ok(), b.ok());
        // Canonical bytes are equal across builds and decode to the resource.
        let (ra, rb) = (envoy::translate(&first, &cache), envoy::translate(&second, &cache));
        for (x, y) in ra.routes.iter().zip(&rb.routes) {
            let name = RouteConfiguration::full_name();
            let cx = canonical_bytes(&name, x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&cx, &canonical_bytes(&name, y).map_err(|e| TestCaseError::fail(e.to_string()))?);
            prop_assert_eq!(&RouteConfiguration::decode(cx.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?, x);
        }
        for l in &ra.listeners {
            let cx = canonical_bytes(&Listener::full_name(), l).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&Listener::decode(cx.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?, l);
        }
        // Every proxy gets exactly one status.
        prop_assert!(first.statuses.len() <= cache.httpproxies.len());
    }

    #[test]
    fn other_objects_never_change_an_unrelated_virtual_host(proxies in prop::collection::vec(proxy(), 0..12)) {
        let mut alone = base_cache();
        alone.insert(sentinel());
        let expected = sentinel_view(&alone);
        prop_assert!(!expected.0.is_null(), "the sentinel must serve on its own");

        let mut crowded = base_cache();
        crowded.insert(sentinel());
        insert_all(&mut crowded, &proxies);
        prop_assert_eq!(sentinel_view(&crowded), expected);
    }
}
