//! The preloaded world: namespaces, the backend, the steady proxy, and the
//! HTTPProxies (with a Service + EndpointSlice each) added size by size.

use std::net::Ipv4Addr;

use kube::api::ApiResource;
use serde_json::{Value, json};

use super::{Config, PRELOADED};
use crate::bench::objects::{self, Rng};
use crate::bench::{Result, err};
use crate::k8s::{install_crds, resource_of};
use crate::{ApiServer, TestNet};

/// The preloaded world (grows with the sizes).
pub struct World {
    nss: Vec<String>,
    ip: Ipv4Addr,
    port: u16,
    pub(super) created: usize,
    /// Namespace of the steady proxy and of the samples.
    pub steady_ns: String,
    /// Host the steady client GETs.
    pub steady_host: String,
    pub(super) runs: usize,
    pub(super) rng: Rng,
    pub(super) proxy_ar: ApiResource,
    _backend: crate::Backend,
}

impl World {
    /// Hosts probed for "the preloaded set is live": 16 spread over the
    /// preloaded proxies, the last one, and the steady host.
    pub fn probe_hosts(&self) -> Vec<String> {
        let n = self.created;
        let mut out: Vec<String> = (0..n)
            .step_by((n / 16).max(1))
            .chain(n.checked_sub(1))
            .map(|i| self.fqdn(i))
            .collect();
        out.dedup();
        out.push(self.steady_host.clone());
        out
    }

    fn fqdn(&self, i: usize) -> String {
        format!("p{i}.{}.bench.example.com", self.nss[i % self.nss.len()])
    }
}

fn labelled(mut m: Value, selector: &str) -> Value {
    let (k, v) = selector.split_once('=').unwrap_or((selector, ""));
    m["metadata"]["labels"] = json!({ k: v });
    m
}

/// An HTTPProxy of the steady Service (two routes, like the preloaded ones).
pub(super) fn steady_proxy(name: &str, fqdn: &str, label: &str, rng: &mut Rng) -> Value {
    let svcs = ["steady".to_string(), "steady".to_string()];
    labelled(objects::proxy(name, fqdn, &svcs, None, None, rng), label)
}

/// Creates namespaces, the backend and the steady proxy + Service.
pub async fn world(cfg: &Config, api: &ApiServer) -> Result<World> {
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let max = cfg.sizes.iter().copied().max().unwrap_or(0);
    let nss = objects::namespaces(api, "prop", cfg.namespaces.min(max).max(1)).await?;
    let backend = TestNet::shared()?.backend("propagation")?;
    let ip = match backend.addr.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => return Err(err("the test network is IPv4")),
    };
    let port = backend.addr.port();
    let steady_ns = nss[0].clone();
    let steady_host = format!("steady.{steady_ns}.bench.example.com");
    let mut rng = Rng::new(cfg.common.seed);
    let proxy_ar = resource_of(&objects::proxy("x", "x", &[], None, None, &mut rng))?;
    objects::create_all(
        &client,
        vec![
            (steady_ns.clone(), objects::service("steady")),
            (
                steady_ns.clone(),
                objects::endpoint_slice("steady", &[ip], port),
            ),
            (
                steady_ns.clone(),
                steady_proxy("steady", &steady_host, PRELOADED, &mut rng),
            ),
        ],
        4,
    )
    .await?;
    Ok(World {
        nss,
        ip,
        port,
        created: 0,
        steady_ns,
        steady_host,
        runs: 0,
        rng,
        proxy_ar,
        _backend: backend,
    })
}

/// Adds HTTPProxies (with a Service + EndpointSlice each) up to `size`.
pub async fn grow(cfg: &Config, api: &ApiServer, w: &mut World, size: usize) -> Result<()> {
    if size <= w.created {
        return Ok(());
    }
    let client = api.admin_client().await?;
    let nns = w.nss.len();
    let mut objs: Vec<(String, Value)> = Vec::new();
    let mut proxies = Vec::new();
    for i in w.created..size {
        let ns = w.nss[i % nns].clone();
        let name = format!("app{i}");
        objs.push((ns.clone(), objects::service(&name)));
        objs.push((ns.clone(), objects::endpoint_slice(&name, &[w.ip], w.port)));
        // The second route goes to an earlier Service of the same namespace.
        let second = if i >= nns { i - nns } else { i };
        let svcs = vec![name, format!("app{second}")];
        let m = objects::proxy(&format!("p{i}"), &w.fqdn(i), &svcs, None, None, &mut w.rng);
        proxies.push((ns, labelled(m, PRELOADED)));
    }
    objs.extend(proxies);
    let n = objs.len();
    let took = objects::create_all(&client, objs, cfg.common.concurrency).await?;
    eprintln!(
        "propagation: created {n} objects (up to {size} proxies) in {:.1} s",
        took.as_secs_f64()
    );
    w.created = size;
    Ok(())
}
