//! Rebuild + translate for 1k / 5k / 10k HTTPProxies with services, TLS and
//! includes (`make bench`). Deterministic input.

use std::hint::black_box;

use contour::cache::{Cache, Object};
use contour::dag::{self, BuilderConfig};
use contour::envoy;
use contour::incremental::Engine;
use contour::xds::snapshot::Snapshot;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;

fn object(v: serde_json::Value) -> Option<Object> {
    let kind = v["kind"].as_str()?.to_string();
    Some(match kind.as_str() {
        "HTTPProxy" => Object::HTTPProxy(serde_json::from_value(v).ok()?),
        "Service" => Object::Service(serde_json::from_value(v).ok()?),
        "Secret" => Object::Secret(serde_json::from_value(v).ok()?),
        "EndpointSlice" => Object::EndpointSlice(serde_json::from_value(v).ok()?),
        _ => return None,
    })
}

/// `n` root proxies in 100 namespaces: two services each, every third with
/// TLS, every second including a child proxy under `/child`.
pub fn cache_with(n: usize) -> Cache {
    let mut cache = Cache::default();
    let key = rcgen::KeyPair::generate().ok();
    let cert = key.as_ref().and_then(|k| {
        rcgen::CertificateParams::new(vec!["example.com".to_string()])
            .ok()?
            .self_signed(k)
            .ok()
    });
    let (cert_pem, key_pem) = (
        cert.map(|c| c.pem()).unwrap_or_default(),
        key.map(|k| k.serialize_pem()).unwrap_or_default(),
    );
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let mut objects = Vec::new();
    for ns in 0..100 {
        let ns = format!("ns{ns}");
        objects.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "tls", "namespace": ns}, "data": {"tls.crt": b64(&cert_pem), "tls.key": b64(&key_pem)}}));
    }
    for i in 0..n {
        let ns = format!("ns{}", i % 100);
        for s in [format!("app{i}"), format!("canary{i}")] {
            objects.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s, "namespace": ns},
                "spec": {"ports": [{"port": 80, "name": "http"}]}}));
            objects.push(json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("{s}-x"), "namespace": ns, "labels": {"kubernetes.io/service-name": s}},
                "addressType": "IPv4", "ports": [{"port": 8080, "name": "http"}],
                "endpoints": [{"addresses": [format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)]}]}));
        }
        let mut spec = json!({
            "virtualhost": {"fqdn": format!("p{i}.example.com")},
            "routes": [
                {"conditions": [{"prefix": "/"}], "services": [{"name": format!("app{i}"), "port": 80, "weight": 90},
                                                               {"name": format!("canary{i}"), "port": 80, "weight": 10}]},
                {"conditions": [{"prefix": "/api"}, {"header": {"name": "x-version", "exact": "2"}}],
                 "services": [{"name": format!("app{i}"), "port": 80}], "timeoutPolicy": {"response": "5s"}}
            ]
        });
        if i % 3 == 0 {
            spec["virtualhost"]["tls"] = json!({"secretName": "tls"});
        }
        if i % 2 == 0 {
            spec["includes"] =
                json!([{"name": format!("child{i}"), "conditions": [{"prefix": "/child"}]}]);
            objects.push(
                json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
                "metadata": {"name": format!("child{i}"), "namespace": ns},
                "spec": {"routes": [{"services": [{"name": format!("app{i}"), "port": 80}]}]}}),
            );
        }
        objects.push(
            json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": format!("p{i}"), "namespace": ns}, "spec": spec}),
        );
    }
    for o in objects.into_iter().filter_map(object) {
        cache.insert(o);
    }
    cache
}

/// Proxies per run: `$REBUILD_SIZES` (comma-separated; the same variable as
/// upstream's side, `tests/tools/upstream-rebuild/run.sh`), else 1k/5k/10k.
fn sizes() -> Vec<usize> {
    std::env::var("REBUILD_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1_000, 5_000, 10_000])
}

fn rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild_and_translate");
    group.sample_size(10);
    for n in sizes() {
        let cache = cache_with(n);
        let config = BuilderConfig::default();
        group.bench_with_input(BenchmarkId::from_parameter(n), &cache, |b, cache| {
            b.iter(|| {
                let built = dag::build(black_box(cache), &config);
                black_box(envoy::translate(&built, cache))
            })
        });
    }
    group.finish();
    // The breakdown at 5k (or at the largest size asked for, if smaller).
    let parts = sizes().into_iter().max().unwrap_or(5_000).min(5_000);
    let mut group = c.benchmark_group(format!("parts_{parts}"));
    group.sample_size(10);
    let cache = cache_with(parts);
    let config = BuilderConfig::default();
    group.bench_function("build", |b| {
        b.iter(|| dag::build(black_box(&cache), &config))
    });
    let built = dag::build(&cache, &config);
    group.bench_function("translate", |b| {
        b.iter(|| envoy::translate(black_box(&built), &cache))
    });
    group.bench_function("listeners", |b| {
        b.iter(|| envoy::listener::listeners(black_box(&built)))
    });
    group.bench_function("routes", |b| {
        b.iter(|| envoy::route::route_configurations(black_box(&built)))
    });
    group.bench_function("clusters", |b| {
        b.iter(|| envoy::cluster::clusters(black_box(&built)))
    });
    group.finish();
}

/// A copy of proxy `p{i}` with a different timeout on its `/api` route.
fn changed_proxy(cache: &Cache, i: usize, round: u64) -> Option<Object> {
    let key = contour::cache::Key::new(format!("ns{}", i % 100), format!("p{i}"));
    let mut p = (**cache.httpproxies.get(&key)?).clone();
    let route = p.spec.routes.get_mut(1)?;
    route.timeout_policy.as_mut()?.response = format!("{}s", 5 + round % 2);
    Some(Object::HTTPProxy(p))
}

/// The EndpointSlice of `app{i}` with another address.
fn changed_slice(cache: &Cache, i: usize, round: u64) -> Option<Object> {
    let (ns, name) = (format!("ns{}", i % 100), format!("app{i}"));
    let key = contour::cache::Key::new(ns.clone(), format!("{name}-x"));
    cache.endpoint_slices.get(&key)?;
    let v = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-x"), "namespace": ns, "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "ports": [{"port": 8080, "name": "http"}],
        "endpoints": [{"addresses": [format!("192.168.0.{}", round % 2 + 1)]}]});
    Some(Object::EndpointSlice(serde_json::from_value(v).ok()?))
}

/// The `tls` Secret of `ns0` with a new certificate (rotation), one of
/// two generated up front.
fn changed_secret(pems: &[(String, String)], round: u64) -> Option<Object> {
    let (cert, key) = pems.get(usize::try_from(round % 2).ok()?)?;
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    object(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "tls", "namespace": "ns0"}, "data": {"tls.crt": b64(cert), "tls.key": b64(key)}}),
    )
}

fn pem_pair() -> Option<(String, String)> {
    let key = rcgen::KeyPair::generate().ok()?;
    let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
        .ok()?
        .self_signed(&key)
        .ok()?;
    Some((cert.pem(), key.serialize_pem()))
}

type Change<'a> = &'a dyn Fn(&Cache, u64) -> Option<Object>;

/// One changed object with N proxies loaded: the engine (warm) rebuilds,
/// translates and versions the snapshot; the full path does the same from
/// scratch for comparison.
fn one_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_change");
    group.sample_size(10);
    for n in sizes() {
        let base = cache_with(n);
        let config = BuilderConfig::default();
        let pems: Vec<(String, String)> = (0..2).filter_map(|_| pem_pair()).collect();
        let changes: [(&str, Change<'_>); 3] = [
            ("proxy_route", &|c, r| changed_proxy(c, n / 2, r)),
            ("endpoint_slice", &|c, r| changed_slice(c, n / 2, r)),
            ("secret", &|_, r| changed_secret(&pems, r)),
        ];
        for (what, change) in changes {
            let mut cache = base.clone();
            let mut engine = Engine::new(config.clone());
            black_box(engine.apply(&cache));
            let mut round = 0u64;
            group.bench_function(BenchmarkId::new(format!("engine/{what}"), n), |b| {
                b.iter(|| {
                    round += 1;
                    if let Some(o) = change(&cache, round) {
                        cache.insert(o);
                    }
                    black_box(engine.apply(&cache))
                })
            });
        }
        let cache = base.clone();
        group.bench_function(BenchmarkId::new("full_with_snapshot", n), |b| {
            b.iter(|| {
                let built = dag::build(black_box(&cache), &config);
                let resources = envoy::translate(&built, &cache);
                black_box(Snapshot::build(&resources).ok())
            })
        });
        group.bench_function(BenchmarkId::new("engine_cold", n), |b| {
            b.iter(|| black_box(Engine::new(config.clone()).apply(&cache)))
        });
    }
    group.finish();
}

criterion_group!(benches, rebuild, one_change);
criterion_main!(benches);
