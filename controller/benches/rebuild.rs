//! Rebuild + translate for 1k / 5k / 10k HTTPProxies with services, TLS and
//! includes (`make bench`). Deterministic input.

use std::hint::black_box;

use contour::cache::{Cache, Object};
use contour::dag::{self, BuilderConfig};
use contour::envoy;
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

fn rebuild(c: &mut Criterion) {
    let mut group = c.benchmark_group("rebuild_and_translate");
    group.sample_size(10);
    for n in [1_000, 5_000, 10_000] {
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
    let mut group = c.benchmark_group("parts_5000");
    group.sample_size(10);
    let cache = cache_with(5_000);
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

criterion_group!(benches, rebuild);
criterion_main!(benches);
