//! What Envoy pays to serve one new host among N, by route layout: every
//! host in one RouteConfiguration (RDS, what Contour sends today) or one
//! scope per host (scoped RDS keyed on the host as sent, or on a key two Lua
//! filters choose), each over state-of-the-world or delta ADS; and how each
//! layout matches hosts (port, case, wildcard, default host, a path the host
//! lacks). Our xDS server with hand-made snapshots and a real Envoy; no API
//! server and no controller, so the figures are Envoy's alone (publish →
//! first 200). It decides issue 7's P1/P4 design question; see BENCHMARKS.md.
//!
//! `make bench-layout`; `LAYOUT_HOSTS` (5000), `LAYOUT_SAMPLES` (30).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contour::envoy::json::{from_json, to_json};
use contour::envoy::scoped;
use contour::xds::server::{LogObserver, Published, XdsServer};
use contour::xds::snapshot::{TypeSnapshot, VersionedResource};
use contour::xds::{Snapshot, type_url};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use prost::{Message, Name};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Result, env_or, err, ms, percentile};
use crate::contour::ads_bootstrap_with;
use crate::{Envoy, free_port};

/// How Envoy gets its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One RouteConfiguration holding every host.
    Rds,
    /// A ScopedRouteConfiguration per host (its route table inline), keyed
    /// on the host as sent.
    Scoped,
    /// The same keyed on a header two Lua filters set: the lower-cased
    /// host if it has a scope, else `*.<parent>` if that has one, else `*`
    /// (the fallback a single route table gives). The filters and the
    /// scopes' metadata are `contour serve --route-layout=scoped`'s
    /// (`contour::envoy::scoped`).
    ScopedLua,
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Hosts served before sampling.
    pub hosts: usize,
    /// Hosts added one at a time.
    pub samples: usize,
    /// The layout.
    pub layout: Layout,
    /// Delta (incremental) ADS instead of state of the world.
    pub delta: bool,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The settings.
    pub config: Config,
    /// Start → every preloaded host served.
    pub initial: Duration,
    /// Publish → first 200 of each new host, sorted.
    pub took: Vec<Duration>,
    /// Status of the first host asked for as `HOST`, `HOST:8080`,
    /// `UPPER-CASED HOST`, of a host under the wildcard host, of an
    /// unknown host (the default host `*` serves it), and of a path the
    /// narrow host has no route for (404).
    pub probes: [Option<u16>; 6],
    /// One request at a time to the first host: latency p50 and p99, µs.
    pub request_us: (f64, f64),
    /// Envoy's CPU time per request (direct responses, 16 at a time), µs.
    pub cpu_us_per_request: f64,
    /// Envoy's `update_duration` histogram line of the route subscription.
    pub envoy_update: String,
}

fn host(i: usize) -> String {
    format!("h{i}.layout.example.com")
}

/// The wildcard host among the preloaded ones.
const WILDCARD: &str = "*.wild.layout.example.com";

/// A host with only its marker route: another path on it must be a 404,
/// not the answer of a host it would fall back to.
const NARROW: &str = "narrow.layout.example.com";

/// A host like one of Contour's: its name with and without a port, a route
/// to a cluster and the path the bench asks for, which answers 200 (201 on
/// the wildcard host, 202 on the default host, so that a new host is only
/// "served" once its own table has it).
fn vhost_of(name: &str) -> Value {
    let (domains, marker) = match name {
        "*" => (json!(["*"]), 202),
        WILDCARD => (json!([name, format!("{name}:*")]), 201),
        _ => (json!([name, format!("{name}:*")]), 200),
    };
    let mut routes = vec![
        json!({"name": "marker", "match": {"prefix": "/marker"}, "direct_response": {"status": marker}}),
    ];
    if name != NARROW {
        routes.push(json!({"name": "backend", "match": {"prefix": "/"},
            "route": {"cluster": "backend", "timeout": "0s", "idle_timeout": "300s"}}));
    }
    json!({"name": name, "domains": domains, "routes": routes})
}

fn vhost(i: usize) -> Value {
    vhost_of(&host(i))
}

fn resource<M: Message + Name + Default>(name: &str, v: &Value) -> Result<Arc<VersionedResource>> {
    let m: M = from_json(v)?;
    Ok(Arc::new(VersionedResource::new(
        name.to_string(),
        M::type_url(),
        m.encode_to_vec(),
    )))
}

/// The scope of host `name` (its key is the name; the Lua layout's route
/// table also drops the key header before a request goes upstream, and its
/// host carries the metadata by which the filters see a scope was found).
fn scope_of(name: &str, layout: Layout) -> Result<Arc<VersionedResource>> {
    let mut vhost = vhost_of(name);
    let mut table = json!({"name": name});
    if layout == Layout::ScopedLua {
        table["request_headers_to_remove"] = json!([scoped::SCOPE_HEADER]);
        let mut found = json!({scoped::HOST_FILTER: {"scope": true}});
        if name.starts_with("*.") {
            found[scoped::WILDCARD_FILTER] = json!({"scope": true});
        }
        vhost["metadata"] = json!({"filter_metadata": found});
    }
    table["virtual_hosts"] = json!([vhost]);
    resource::<ScopedRouteConfiguration>(
        name,
        &json!({"name": name, "key": {"fragments": [{"string_key": name}]},
            "route_configuration": table}),
    )
}

fn scope(i: usize, layout: Layout) -> Result<Arc<VersionedResource>> {
    scope_of(&host(i), layout)
}

/// `hosts` numbered hosts, then the wildcard and the default host (Envoy
/// tries exact domains before wildcards, whatever the order).
fn route_table(hosts: usize) -> Result<Arc<VersionedResource>> {
    let mut vhosts: Vec<Value> = (0..hosts).map(vhost).collect();
    vhosts.push(vhost_of(NARROW));
    vhosts.push(vhost_of(WILDCARD));
    vhosts.push(vhost_of("*"));
    resource::<RouteConfiguration>(
        "ingress_http",
        &json!({"name": "ingress_http", "virtual_hosts": vhosts}),
    )
}

fn listener(port: u16, layout: Layout) -> Result<Value> {
    let ads = json!({"ads": {}, "resource_api_version": "V3"});
    let router = json!({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}});
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress_http",
        // Before scope selection too: `host:port` finds the scope of `host`.
        "strip_any_host_port": true,
        "http_filters": [router]
    });
    // The whole value is the key: a separator that cannot occur in a host,
    // element 0.
    let key = |header: &str| {
        json!({"fragments": [{"header_value_extractor":
            {"name": header, "element_separator": ",", "index": 0}}]})
    };
    let scoped = |header: &str| {
        json!({
            "name": "ingress_scopes",
            "scope_key_builder": key(header),
            "rds_config_source": ads,
            "scoped_rds": {"scoped_rds_config_source": ads}
        })
    };
    match layout {
        Layout::Rds => {
            hcm["rds"] = json!({"route_config_name": "ingress_http", "config_source": ads});
        }
        Layout::Scoped => hcm["scoped_routes"] = scoped(":authority"),
        Layout::ScopedLua => {
            hcm["scoped_routes"] = scoped(scoped::SCOPE_HEADER);
            let mut filters = scoped::lua_filters()
                .iter()
                .map(to_json)
                .collect::<std::result::Result<Vec<Value>, _>>()?;
            filters.push(router);
            hcm["http_filters"] = Value::Array(filters);
        }
    }
    Ok(json!({
        "name": "ingress_http",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm}]}]
    }))
}

fn snapshot(cfg: &Config, port: u16) -> Result<Snapshot> {
    let one = |r: Arc<VersionedResource>| TypeSnapshot::new([(r.name.clone(), r)]);
    let mut types = BTreeMap::new();
    types.insert(
        type_url::LISTENER,
        one(resource::<Listener>(
            "ingress_http",
            &listener(port, cfg.layout)?,
        )?),
    );
    let backend = json!({"name": "backend", "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]}});
    types.insert(
        type_url::CLUSTER,
        one(resource::<Cluster>("backend", &backend)?),
    );
    match cfg.layout {
        Layout::Rds => {
            types.insert(type_url::ROUTE, one(route_table(cfg.hosts)?));
        }
        Layout::Scoped | Layout::ScopedLua => {
            let mut scopes = (0..cfg.hosts)
                .map(|i| scope(i, cfg.layout))
                .collect::<Result<Vec<_>>>()?;
            scopes.push(scope_of(NARROW, cfg.layout)?);
            scopes.push(scope_of(WILDCARD, cfg.layout)?);
            scopes.push(scope_of("*", cfg.layout)?);
            let scopes = scopes.into_iter().map(|r| (r.name.clone(), r));
            types.insert(type_url::SCOPED_ROUTE, TypeSnapshot::new(scopes));
        }
    }
    Ok(Snapshot { types })
}

async fn status(http: &reqwest::Client, port: u16, host: &str) -> Option<u16> {
    status_at(http, port, host, "/marker").await
}

async fn status_at(http: &reqwest::Client, port: u16, host: &str, path: &str) -> Option<u16> {
    http.get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

fn publish(tx: &watch::Sender<Published>, snapshot: Snapshot) -> Result<Instant> {
    let at = Instant::now();
    tx.send(Published {
        snapshot: Arc::new(snapshot),
        at: Some(at),
    })
    .map_err(|_| err("the xDS server stopped"))?;
    Ok(at)
}

async fn until_served(
    http: &reqwest::Client,
    port: u16,
    host: &str,
    since: Instant,
    cap: Duration,
) -> Result<Duration> {
    loop {
        if status(http, port, host).await == Some(200) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > cap {
            return Err(err(format!("{host} not served within {cap:?}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs one layout: serves `hosts`, then adds `samples` hosts one at a time.
pub async fn run(cfg: Config) -> Result<Outcome> {
    if cfg.hosts == 0 {
        return Err(err("at least one host"));
    }
    let listen = free_port()?;
    let xds_port = free_port()?;
    let (tx, rx) = watch::channel(Published::default());
    let server = XdsServer::new(rx, Arc::new(LogObserver));
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", xds_port)).await?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let serving = tokio::spawn(contour::xds::transport::serve(
        server.routes(),
        tcp,
        None,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    let start = publish(&tx, snapshot(&cfg, listen)?)?;
    let envoy = Envoy::start(&ads_bootstrap_with(xds_port, None, cfg.delta)).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let initial = until_served(
        &http,
        listen,
        &host(cfg.hosts - 1),
        start,
        Duration::from_secs(120),
    )
    .await?;
    let first = host(0);
    let probes = [
        status(&http, listen, &first).await,
        status(&http, listen, &format!("{first}:8080")).await,
        status(&http, listen, &first.to_uppercase()).await,
        status(&http, listen, "any.wild.layout.example.com").await,
        status(&http, listen, "nowhere.layout.example.com").await,
        status_at(&http, listen, NARROW, "/other").await,
    ];
    let request_us = request_latency(&http, listen, &first, 2000).await?;
    let cpu_us_per_request = request_cpu(&envoy, listen, &first, 20_000).await?;
    let mut took = Vec::with_capacity(cfg.samples);
    for s in 0..cfg.samples {
        let i = cfg.hosts + s;
        let mut snap = (*tx.borrow().snapshot).clone();
        let (kind, r) = match cfg.layout {
            Layout::Rds => (type_url::ROUTE, route_table(i + 1)?),
            Layout::Scoped | Layout::ScopedLua => (type_url::SCOPED_ROUTE, scope(i, cfg.layout)?),
        };
        snap.types.entry(kind).or_default().insert(r);
        let at = publish(&tx, snap)?;
        took.push(until_served(&http, listen, &host(i), at, Duration::from_secs(10)).await?);
        // Let Envoy settle (ACK, old table freed) before the next change.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    took.sort_unstable();
    let stats = envoy
        .admin_get("/stats?filter=rds.*update_duration")
        .await?;
    let envoy_update = stats
        .lines()
        .find(|l| l.contains("update_duration"))
        .unwrap_or_default()
        .to_string();
    drop(envoy);
    let _ = stop_tx.send(true);
    serving.abort();
    Ok(Outcome {
        config: cfg,
        initial,
        took,
        probes,
        request_us,
        cpu_us_per_request,
        envoy_update,
    })
}

/// Envoy's CPU time per request over `n` requests for `host`'s marker (a
/// direct response: routing and the HTTP filters, no upstream), 16 at a
/// time, in µs.
async fn request_cpu(envoy: &Envoy, port: u16, host: &str, n: usize) -> Result<f64> {
    let cpu = || {
        super::controller::proc_stat(envoy.pid())
            .map(|s| s.cpu_secs)
            .ok_or_else(|| err("Envoy is gone"))
    };
    let before = cpu()?;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let host = host.to_string();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut bad = 0usize;
                for _ in 0..n / 16 {
                    if status(&http, port, &host).await != Some(200) {
                        bad += 1;
                    }
                }
                bad
            })
        })
        .collect();
    let mut bad = 0;
    for t in tasks {
        bad += t.await.unwrap_or(n);
    }
    if bad > 0 {
        return Err(err(format!("{bad} of {n} requests were not answered 200")));
    }
    Ok((cpu()? - before) * 1e6 / (n / 16 * 16) as f64)
}

/// `n` requests one after the other on one connection: p50 and p99 in µs.
async fn request_latency(
    http: &reqwest::Client,
    port: u16,
    host: &str,
    n: usize,
) -> Result<(f64, f64)> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        if status(http, port, host).await != Some(200) {
            return Err(err(format!("{host} stopped answering 200")));
        }
        took.push(t.elapsed());
    }
    took.sort_unstable();
    let us = |q: f64| percentile(&took, q).as_secs_f64() * 1e6;
    Ok((us(0.5), us(0.99)))
}

/// The table of outcomes (markdown).
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| layout | ADS | hosts | samples | preloaded set served | new host p50 | p90 | max | `host:8080` | `HOST` upper-cased | under the wildcard (201) | unknown: default host (202) | a path its host lacks (404) | one request p50 | p99 | Envoy CPU per request |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let code = |c: Option<u16>| c.map(|c| c.to_string()).unwrap_or_else(|| "–".into());
    for o in outcomes {
        let c = o.config;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {} | {} | {} | {:.0} µs | {:.0} µs | {:.1} µs |\n",
            match c.layout {
                Layout::Rds => "one RouteConfiguration",
                Layout::Scoped => "a scope per host",
                Layout::ScopedLua => "a scope per host, Lua-chosen key",
            },
            if c.delta {
                "delta"
            } else {
                "state of the world"
            },
            c.hosts,
            o.took.len(),
            o.initial.as_secs_f64(),
            ms(percentile(&o.took, 0.5)),
            ms(percentile(&o.took, 0.9)),
            ms(percentile(&o.took, 1.0)),
            code(o.probes[1]),
            code(o.probes[2]),
            code(o.probes[3]),
            code(o.probes[4]),
            code(o.probes[5]),
            o.request_us.0,
            o.request_us.1,
            o.cpu_us_per_request,
        ));
    }
    out
}

/// `make bench-layout`: every layout × ADS flavour at `LAYOUT_HOSTS`.
pub async fn main() -> Result<()> {
    let hosts = env_or("LAYOUT_HOSTS", 5000);
    let samples = env_or("LAYOUT_SAMPLES", 30);
    let mut outcomes = Vec::new();
    for layout in [Layout::Rds, Layout::Scoped, Layout::ScopedLua] {
        for delta in [false, true] {
            let o = run(Config {
                hosts,
                samples,
                layout,
                delta,
            })
            .await?;
            eprintln!("{layout:?} delta={delta}: envoy {}", o.envoy_update);
            outcomes.push(o);
        }
    }
    println!("{}", table(&outcomes));
    Ok(())
}
