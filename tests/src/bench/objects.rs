//! Deterministic object generators (a seeded SplitMix64), and a bulk create
//! that keeps many requests in flight (plain creates: no server-side apply
//! bookkeeping, so preloading tens of thousands of objects takes a minute).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::Result;
use crate::k8s::resource_of;

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// A Service `name` with port 80 (`http`) → 8080. Headless: the test API
/// server's service range is a /24, far too small for thousands of cluster
/// IPs, and neither controller reads the cluster IP.
pub fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "clusterIP": "None",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    })
}

/// EndpointSlice `{service}-x` of `service`: `addresses` ready on `port`.
pub fn endpoint_slice(service: &str, addresses: &[Ipv4Addr], port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-x"),
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": addresses.iter().map(|a| json!({
            "addresses": [a.to_string()], "conditions": {"ready": true}
        })).collect::<Vec<_>>()
    })
}

/// The EndpointSlice ports field with `port` (a merge patch body).
pub fn endpoint_slice_port_patch(port: u16) -> Value {
    json!({"ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
}

/// An HTTPProxy `name` for `fqdn`: `/` → `services[0]`, then for each further
/// service a `/r{k}` route with a header condition and a timeout; `tls` names
/// the certificate Secret; `extra_prefix` adds one more route (the fan-out
/// bench changes it).
pub fn proxy(
    name: &str,
    fqdn: &str,
    services: &[String],
    tls: Option<&str>,
    extra_prefix: Option<&str>,
    rng: &mut Rng,
) -> Value {
    let mut routes = Vec::new();
    for (k, svc) in services.iter().enumerate() {
        if k == 0 {
            routes.push(json!({"conditions": [{"prefix": "/"}],
                               "services": [{"name": svc, "port": 80}]}));
        } else {
            routes.push(json!({
                "conditions": [{"prefix": format!("/r{k}")},
                               {"header": {"name": "x-canary", "present": true}}],
                "services": [{"name": svc, "port": 80}],
                "timeoutPolicy": {"response": format!("{}s", 1 + rng.below(30))}
            }));
        }
    }
    if let (Some(prefix), Some(svc)) = (extra_prefix, services.first()) {
        routes.push(json!({"conditions": [{"prefix": prefix}],
                           "services": [{"name": svc, "port": 80}]}));
    }
    let mut vhost = json!({"fqdn": fqdn});
    if let Some(secret) = tls {
        vhost["tls"] = json!({"secretName": secret});
    }
    json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name},
        "spec": {"virtualhost": vhost, "routes": routes}
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `kubernetes.io/tls` Secret from PEM text.
pub fn tls_secret(name: &str, cert_pem: &str, key_pem: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name},
        "data": {"tls.crt": b64(cert_pem.as_bytes()), "tls.key": b64(key_pem.as_bytes())}
    })
}

/// A Secret shaped like a Helm release (`helm.sh/release.v1`, labels as Helm
/// writes them, one `release` key of `size` incompressible bytes, as Helm's
/// gzipped manifests are).
pub fn helm_release_secret(name: &str, size: usize, rng: &mut Rng) -> Value {
    let release = b64(&rng.bytes(size));
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": name, "labels": {
            "owner": "helm", "name": name, "status": "deployed",
            "version": (1 + rng.below(20)).to_string()}},
        "data": {"release": b64(release.as_bytes())}
    })
}

/// A small Opaque Secret (application settings: three short keys).
pub fn opaque_secret(name: &str, rng: &mut Rng) -> Value {
    let mut data = serde_json::Map::new();
    for key in ["username", "password", "config"] {
        let len = 16 + rng.below(240) as usize;
        data.insert(key.into(), Value::String(b64(&rng.bytes(len))));
    }
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name}, "data": data
    })
}

/// Creates every `(namespace, manifest)` with `concurrency` requests in
/// flight; an object that already exists is fine. Returns how long it took.
pub async fn create_all(
    client: &Client,
    objects: Vec<(String, Value)>,
    concurrency: usize,
) -> Result<Duration> {
    let started = Instant::now();
    let total = objects.len();
    let mut done = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    let mut last_report = Instant::now();
    let mut results = futures::stream::iter(objects)
        .map(|(ns, manifest)| {
            let client = client.clone();
            async move {
                let ar = resource_of(&manifest)?;
                let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ar);
                let obj: DynamicObject = serde_json::from_value(manifest)?;
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(super::Error::from(e)),
                }
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        done += 1;
        if let Err(e) = r {
            failed += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  created {done}/{total} objects in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    if let Some(e) = first_error {
        return Err(format!("{failed} of {total} creates failed, first: {e}").into());
    }
    Ok(started.elapsed())
}

/// `count` namespaces named `{prefix}{i}-N` (fresh ones).
pub async fn namespaces(api: &crate::ApiServer, prefix: &str, count: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        out.push(api.namespace(&format!("{prefix}{i}")).await?);
    }
    Ok(out)
}
