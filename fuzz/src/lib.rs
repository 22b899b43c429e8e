//! Drivers of the fuzz targets (see `fuzz_targets/`): each takes one input
//! and panics when an invariant breaks.
//!
//! - [`dag`]: the builder, the Envoy translation and the incremental
//!   engine on a structured object set and a sequence of changes.
//! - [`json`]: the same on objects parsed from raw JSON.
//! - [`xds`]: the state-of-the-world and delta xDS stream state machines on
//!   sequences of requests and snapshots.

pub mod check;
pub mod model;
pub mod xds;

use contour::cache::{Cache, Object};
use contour::dag::{self, BuilderConfig};
use contour::envoy;
use contour::incremental::Engine;
use contour::xds::snapshot::Snapshot;

/// Builds `cache` the full way (twice: it must be deterministic) and
/// incrementally, and checks the translation.
fn build_and_check(engine: &mut Engine, cache: &Cache, config: &BuilderConfig) {
    let full = dag::build(cache, config);
    assert_eq!(
        full,
        dag::build(cache, config),
        "the build is not deterministic"
    );
    let resources = envoy::translate(&full, cache);
    check::resources(&resources);
    if let Err(e) = resources.to_json() {
        panic!("resources do not encode as JSON: {e}");
    }
    let snapshot = match Snapshot::build(&resources) {
        Ok(s) => s,
        Err(e) => panic!("no snapshot: {e}"),
    };
    check_ads_forms(&snapshot);
    let out = engine.apply(cache);
    assert!(
        out.dag == full,
        "the incremental DAG differs from the full build"
    );
    let got = match out.snapshot {
        Ok(s) => s,
        Err(e) => panic!("no incremental snapshot: {e}"),
    };
    for (t, want) in &snapshot.types {
        assert!(
            got.types.get(t) == Some(want),
            "the incremental snapshot differs for {t}"
        );
    }
    assert_eq!(got.types.len(), snapshot.types.len());
}

/// Every listener and cluster has an ADS form: it rewrites, stays
/// canonical, and has no reference left to rewrite.
fn check_ads_forms(snapshot: &Snapshot) {
    use contour::envoy::{ads::ads_form, canonical::canonical_from_bytes};
    use contour::xds::type_url;
    for t in [type_url::LISTENER, type_url::CLUSTER] {
        let type_name = contour::envoy::message_name(t);
        for r in snapshot
            .of(t)
            .map(|ts| ts.resources.values())
            .into_iter()
            .flatten()
        {
            let ads = match ads_form(type_name, &r.value) {
                Ok(Some(ads)) => ads,
                Ok(None) => continue,
                Err(e) => panic!("{}: no ADS form: {e}", r.name),
            };
            match canonical_from_bytes(type_name, &ads) {
                Ok(again) => assert!(again == ads, "{}: the ADS form is not canonical", r.name),
                Err(e) => panic!("{}: the ADS form does not decode: {e}", r.name),
            }
            assert!(
                matches!(ads_form(type_name, &ads), Ok(None)),
                "{}: the ADS form still has a per-type source",
                r.name
            );
        }
    }
}

/// The `dag_translate` target.
pub fn dag(s: &model::Scenario) {
    let config = s.config.build();
    let mut cache = Cache::default();
    let mut engine = Engine::new(config.clone());
    for o in s.initial.0.iter().filter_map(model::Obj::object) {
        cache.insert(o);
    }
    build_and_check(&mut engine, &cache, &config);
    for o in s.more.0.iter().filter_map(model::Obj::object) {
        cache.insert(o);
    }
    build_and_check(&mut engine, &cache, &config);
    for step in &s.steps.0 {
        match step {
            model::Step::Put(o) => {
                if let Some(o) = o.object() {
                    cache.insert(o);
                }
            }
            model::Step::Delete(..) => {
                if let Some((kind, key)) = step.delete_key() {
                    cache.remove(kind, &key);
                }
            }
        }
        build_and_check(&mut engine, &cache, &config);
    }
}

/// The `json_build` target: JSON documents one after the other (any
/// whitespace between); the first byte picks the builder settings. Each
/// document that deserializes as the kind it names goes into the cache.
pub fn json(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let config = BuilderConfig {
        fallback_certificate: (first & 1 != 0).then(|| ("default".into(), "tls".into())),
        root_namespaces: if first & 2 != 0 {
            vec!["default".into()]
        } else {
            vec![]
        },
        enable_external_name_service: first & 4 != 0,
        ingress_class_name: (first & 8 != 0).then(|| "contour".into()),
        // Single, scoped, or auto moving between them at 1–4 hosts.
        route_layout: match (first >> 4) & 7 {
            0 | 1 => contour::dag::RouteLayout::Single,
            2 | 3 => contour::dag::RouteLayout::Scoped,
            n => contour::dag::RouteLayout::Auto {
                scoped_from: usize::from(n) - 3,
            },
        },
        ..BuilderConfig::default()
    };
    let mut cache = Cache::default();
    let mut engine = Engine::new(config.clone());
    let docs = serde_json::Deserializer::from_slice(rest).into_iter::<serde_json::Value>();
    let mut n = 0;
    for doc in docs {
        let Ok(doc) = doc else { break };
        n += 1;
        if n > 32 {
            break;
        }
        if let Some(o) = model::object(doc) {
            cache.insert(o);
        }
        // Check after every few documents: a sequence of inserts.
        if n % 4 == 0 {
            build_and_check(&mut engine, &cache, &config);
        }
    }
    build_and_check(&mut engine, &cache, &config);
}

/// Every object kind's JSON from a scenario (used to seed `json_build`).
pub fn scenario_json(s: &model::Scenario) -> Vec<serde_json::Value> {
    s.initial
        .0
        .iter()
        .chain(&s.more.0)
        .map(model::Obj::json)
        .collect()
}

/// Whether an object deserializes (for tests of the model).
pub fn deserializes(o: &model::Obj) -> Option<Object> {
    o.object()
}
