//! Scenario 3 of issue 7, endpoint churn: C clusters (Services with an
//! EndpointSlice each, routed by HTTPProxies with several routes), K ADS
//! clients following the controller, then R EndpointSlice updates per second
//! for S seconds (a random slice gets a new port, so every update is
//! recognisable in the pushed ClusterLoadAssignment). Measured: bytes and
//! responses pushed per change per client, propagation (patch sent → the
//! change arrived at all K clients) p50/p99, controller CPU.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::controller::install_upstream_crds;
use super::objects::{self, Rng};
use super::plot::{BarChart, LineChart, Series};
use super::report::{Table, csv_ms, num, ratio, write_csv};
use super::xds::{self, Client, Matcher, Watch};
use super::{Common, Controller, Result, Target, env_list, env_or, err, ms, percentile};
use crate::k8s::{install_crds, resource_of};
use crate::{ApiServer, TestNet};

/// Sizes and switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// Cluster counts, ascending; objects are added between sizes (`CHURN_CLUSTERS`,
    /// 1000,8000: the 8000, and 1000 to show bytes per change do not grow).
    pub clusters: Vec<usize>,
    /// ADS clients (`CHURN_CLIENTS`, 10).
    pub clients: usize,
    /// EndpointSlice updates per second (`CHURN_RATE`, 20).
    pub rate: f64,
    /// Seconds of churn (`CHURN_SECS`, 60).
    pub secs: f64,
    /// Routes (= Services) per HTTPProxy (`CHURN_ROUTES_PER_PROXY`, 4).
    pub routes_per_proxy: usize,
    /// Namespaces (`CHURN_NAMESPACES`, 100).
    pub namespaces: usize,
    /// Controllers, in order (`TARGETS`).
    pub targets: Vec<Target>,
    /// Quiet time after the clients are in sync (`CHURN_SETTLE_SECS`, 5).
    pub settle: Duration,
    /// Longest wait for the clients' first complete snapshot (`CHURN_TIMEOUT_SECS`, 300).
    pub timeout: Duration,
    /// Concurrency, seed, output directory and file name prefix.
    pub common: Common,
}

impl Config {
    /// The sizes, overridden by the environment.
    pub fn from_env() -> Config {
        let mut clusters = env_list("CHURN_CLUSTERS", &[1000, 8000]);
        clusters.sort_unstable();
        Config {
            clusters,
            clients: env_or("CHURN_CLIENTS", 10),
            rate: env_or("CHURN_RATE", 20.0),
            secs: env_or("CHURN_SECS", 60.0),
            routes_per_proxy: env_or("CHURN_ROUTES_PER_PROXY", 4),
            namespaces: env_or("CHURN_NAMESPACES", 100),
            targets: super::targets_from_env(),
            settle: Duration::from_secs(env_or("CHURN_SETTLE_SECS", 5)),
            timeout: Duration::from_secs(env_or("CHURN_TIMEOUT_SECS", 300)),
            common: Common::from_env("churn"),
        }
    }
}

/// One EndpointSlice update and what became of it.
#[derive(Debug, Clone)]
pub struct Update {
    /// Sequence number.
    pub seq: usize,
    /// Which Service's slice.
    pub service: usize,
    /// Patch sent → the change's arrival at each client (`None`: never).
    pub per_client: Vec<Option<Duration>>,
    /// The API server's answer to the patch.
    pub api: Duration,
    /// A later update of the same slice arrived first (this one was coalesced away).
    pub superseded: bool,
}

impl Update {
    /// Patch sent → arrived at the last client (`None` if one never got it).
    pub fn to_all(&self) -> Option<Duration> {
        self.per_client
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max())
    }
}

/// The measurements of one controller at one size.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which.
    pub target: Target,
    /// Clusters.
    pub clusters: usize,
    /// Clients.
    pub clients: usize,
    /// Every update.
    pub updates: Vec<Update>,
    /// Bytes received per type during the churn, all clients.
    pub bytes: [u64; xds::TYPES],
    /// Responses received per type during the churn, all clients.
    pub responses: [u64; xds::TYPES],
    /// Controller CPU seconds during the churn.
    pub cpu_secs: f64,
    /// Length of the churn window (first patch → last arrival), s.
    pub window_s: f64,
    /// RSS at the end, MiB.
    pub rss_mib: f64,
    /// Spawn → all clients had a complete snapshot, s.
    pub synced_s: f64,
}

impl Outcome {
    fn changes(&self) -> f64 {
        self.updates.len().max(1) as f64
    }
    /// Bytes of all types per change per client.
    pub fn bytes_per_change(&self) -> f64 {
        self.bytes.iter().sum::<u64>() as f64 / self.changes() / self.clients.max(1) as f64
    }
    /// EDS bytes per change per client.
    pub fn eds_bytes_per_change(&self) -> f64 {
        self.bytes[1] as f64 / self.changes() / self.clients.max(1) as f64
    }
    /// (responses, bytes) of type `i` per change per client.
    pub fn per_type(&self, i: usize) -> (f64, f64) {
        let d = self.changes() * self.clients.max(1) as f64;
        (self.responses[i] as f64 / d, self.bytes[i] as f64 / d)
    }
    /// Responses (all types) per change per client.
    pub fn responses_per_change(&self) -> f64 {
        self.responses.iter().sum::<u64>() as f64 / self.changes() / self.clients.max(1) as f64
    }
    /// Sorted "to all clients" latencies of the updates that arrived.
    pub fn to_all_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.updates.iter().filter_map(Update::to_all).collect();
        v.sort();
        v
    }
    /// Sorted per-client arrival latencies.
    pub fn per_client_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .updates
            .iter()
            .flat_map(|u| u.per_client.iter().flatten().copied())
            .collect();
        v.sort();
        v
    }
    /// Updates some client never got (excluding superseded ones).
    pub fn missed(&self) -> usize {
        self.updates
            .iter()
            .filter(|u| !u.superseded && u.to_all().is_none())
            .count()
    }
}

/// The preloaded world (grows with the sizes).
pub struct World {
    nss: Vec<String>,
    addresses: Vec<Ipv4Addr>,
    created: usize,
    /// Updates sent so far (all runs): ports stay unique across runs, so a
    /// later controller's updates (same slices, same order) are real changes.
    sent: usize,
    rng: Rng,
}

impl World {
    /// Namespace of Service `k` (and of its proxy).
    pub fn ns_of(&self, k: usize, rpp: usize) -> &str {
        &self.nss[(k / rpp.max(1)) % self.nss.len()]
    }
}

/// Creates namespaces; no objects yet.
pub async fn world(cfg: &Config, api: &ApiServer) -> Result<World> {
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let max = cfg.clusters.iter().copied().max().unwrap_or(1);
    let n = cfg.namespaces.min(max / cfg.routes_per_proxy.max(1)).max(1);
    let nss = objects::namespaces(api, "churn", n).await?;
    let net = TestNet::shared()?;
    let base = net.backend_ip().octets();
    // Endpoint addresses inside the test network's /24 (never contacted:
    // no Envoy routes traffic in this scenario).
    let addresses = (2..250u8)
        .map(|d| Ipv4Addr::new(base[0], base[1], base[2], d))
        .collect();
    Ok(World {
        nss,
        addresses,
        created: 0,
        sent: 0,
        rng: Rng::new(cfg.common.seed),
    })
}

/// Adds Services, EndpointSlices and HTTPProxies up to `clusters`.
pub async fn grow(cfg: &Config, api: &ApiServer, w: &mut World, clusters: usize) -> Result<()> {
    let rpp = cfg.routes_per_proxy.max(1);
    let target = clusters.div_ceil(rpp) * rpp;
    if target <= w.created {
        return Ok(());
    }
    let client = api.admin_client().await?;
    let mut objs: Vec<(String, Value)> = Vec::new();
    let mut proxies = Vec::new();
    for k in w.created..target {
        let ns = w.ns_of(k, rpp).to_string();
        let name = format!("app{k}");
        let addrs: Vec<Ipv4Addr> = (0..3)
            .map(|m| w.addresses[(k * 3 + m) % w.addresses.len()])
            .collect();
        objs.push((ns.clone(), objects::service(&name)));
        objs.push((ns.clone(), objects::endpoint_slice(&name, &addrs, 8080)));
        if k % rpp == 0 {
            let j = k / rpp;
            let svcs: Vec<String> = (k..k + rpp).map(|s| format!("app{s}")).collect();
            let fqdn = format!("c{j}.{ns}.bench.example.com");
            proxies.push((
                ns,
                objects::proxy(&format!("c{j}"), &fqdn, &svcs, None, None, &mut w.rng),
            ));
        }
    }
    objs.extend(proxies);
    let n = objs.len();
    let took = objects::create_all(&client, objs, cfg.common.concurrency).await?;
    eprintln!(
        "churn: created {n} objects (up to {target} clusters) in {:.1} s",
        took.as_secs_f64()
    );
    w.created = target;
    Ok(())
}

/// Runs one controller at the current size.
pub async fn measure(
    cfg: &Config,
    api: &ApiServer,
    w: &mut World,
    clusters: usize,
    target: Target,
) -> Result<Outcome> {
    let rpp = cfg.routes_per_proxy.max(1);
    let clusters = w.created.min(clusters.div_ceil(rpp) * rpp);
    let admin = api.admin_client().await?;
    if target == Target::Upstream {
        install_upstream_crds(&admin).await?;
    }
    // A Lease of its own: no wait for a predecessor's lease to expire.
    let lease_ns = api
        .namespace(&format!("churn-lease-{}", target.name()))
        .await?;
    let mut ctl = Controller::start(target, api, &lease_ns)?;
    let xt = xds::Target {
        port: ctl.xds_port,
        pki: Some(ctl.pki.clone()),
        delta: target.xds_mode() == crate::contour::XdsMode::DeltaAds,
    };
    let clients: Vec<Client> = (0..cfg.clients.max(1))
        .map(|i| Client::start(xt.clone(), &format!("churn-{i}"), false, cfg.timeout))
        .collect();
    // Everything created so far is served (also a bigger world than this size).
    let want = w.created;
    for c in &clients {
        let ok = c
            .wait_for(cfg.timeout, |s| s.clusters >= want && s.endpoints >= want)
            .await;
        if !ok {
            ctl.check_alive()?;
            return Err(format!(
                "{}: a client never got {want} clusters: {:?}\n{}",
                target.name(),
                c.state(),
                ctl.log_tail(20)
            )
            .into());
        }
    }
    let synced_s = ctl.started.elapsed().as_secs_f64();
    eprintln!(
        "churn {} {clusters}: {} clients in sync after {synced_s:.1} s",
        target.name(),
        clients.len()
    );
    tokio::time::sleep(cfg.settle).await;

    let ar = resource_of(&objects::endpoint_slice("x", &[], 1))?;
    let before = xds::sum_counters(&clients);
    let cpu_before = ctl.stat().cpu_secs;
    let n_updates = ((cfg.rate * cfg.secs).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / cfg.rate.max(0.001));
    // A slice is not picked again while its last update may be in flight.
    let quiet = Duration::from_secs_f64((clusters as f64 / cfg.rate / 4.0).clamp(0.0, 2.0));
    let mut last_touch: HashMap<usize, Instant> = HashMap::new();
    let mut rng = Rng::new(cfg.common.seed ^ clusters as u64 ^ 0xC0FFEE);
    let start = Instant::now();
    let mut sent = Vec::with_capacity(n_updates);
    for u in 0..n_updates {
        tokio::time::sleep_until((start + interval * u as u32).into()).await;
        let mut k = rng.below(clusters as u64) as usize;
        for _ in 0..20 {
            if last_touch.get(&k).is_none_or(|t| t.elapsed() >= quiet) {
                break;
            }
            k = rng.below(clusters as u64) as usize;
        }
        last_touch.insert(k, Instant::now());
        let port = 20_000 + ((w.sent + u) % 40_000) as u16;
        let ns = w.ns_of(k, rpp).to_string();
        let watch = Watch {
            type_index: 1,
            name_prefix: Some(format!("{ns}/app{k}/")),
            matcher: Matcher::EndpointPort(u32::from(port)),
        };
        xds::watch_all(&clients, u as u64, &watch);
        let api_ns: kube::Api<DynamicObject> = kube::Api::namespaced_with(admin.clone(), &ns, &ar);
        let t0 = Instant::now();
        let task = tokio::spawn(async move {
            let r = api_ns
                .patch(
                    &format!("app{k}-x"),
                    &PatchParams::default(),
                    &Patch::Merge(objects::endpoint_slice_port_patch(port)),
                )
                .await;
            (r.map(|_| ()).map_err(|e| e.to_string()), t0.elapsed())
        });
        sent.push((u, k, t0, task));
    }
    // Drain: wait for each update at every client (15 s at most in all).
    let drain_deadline = Instant::now() + Duration::from_secs(15);
    w.sent += sent.len();
    let mut updates = Vec::with_capacity(sent.len());
    let mut last_arrival = start;
    for (u, k, t0, task) in sent {
        let (r, api) = task.await.map_err(|e| err(e.to_string()))?;
        if let Err(e) = r {
            return Err(format!("patching app{k}-x: {e}").into());
        }
        let left = drain_deadline.saturating_duration_since(Instant::now());
        let seen = xds::wait_watch(&clients, u as u64, left).await;
        for s in seen.iter().flatten() {
            last_arrival = last_arrival.max(*s);
        }
        updates.push(Update {
            seq: u,
            service: k,
            per_client: seen
                .iter()
                .map(|s| s.map(|s| s.saturating_duration_since(t0)))
                .collect(),
            api,
            superseded: false,
        });
    }
    // An update whose slice was updated again and arrived is superseded.
    let arrived_later: Vec<(usize, usize)> = updates
        .iter()
        .filter(|u| u.to_all().is_some())
        .map(|u| (u.service, u.seq))
        .collect();
    for u in updates.iter_mut() {
        if u.to_all().is_none() {
            u.superseded = arrived_later
                .iter()
                .any(|(s, q)| *s == u.service && *q > u.seq);
        }
    }
    // Let any trailing push land, then read the counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = xds::sum_counters(&clients);
    let end = ctl.stat();
    ctl.check_alive()?;
    let delta = xds::counters_delta(&after, &before);
    drop(clients);
    ctl.stop();
    Ok(Outcome {
        target,
        clusters,
        clients: cfg.clients.max(1),
        updates,
        bytes: delta.map(|d| d.1),
        responses: delta.map(|d| d.0),
        cpu_secs: end.cpu_secs - cpu_before,
        window_s: (last_arrival.max(start + interval * n_updates as u32) - start).as_secs_f64(),
        rss_mib: end.rss_mib,
        synced_s,
    })
}

/// Grows the world size by size and measures every target at each.
pub async fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let api = ApiServer::shared()?;
    let mut w = world(cfg, api).await?;
    let mut out = Vec::new();
    for &size in &cfg.clusters {
        grow(cfg, api, &mut w, size).await?;
        for &t in &cfg.targets {
            let o = measure(cfg, api, &mut w, size, t).await?;
            eprintln!(
                "churn {} {}: {:.0} B/change/client, to-all p99 {:.1} ms, missed {}; per change per client: {}",
                t.name(),
                o.clusters,
                o.bytes_per_change(),
                ms(percentile(&o.to_all_sorted(), 0.99)),
                o.missed(),
                (0..xds::TYPES)
                    .map(|i| {
                        let (r, b) = o.per_type(i);
                        format!("{} {r:.2} responses {b:.0} B", xds::type_short(i))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            out.push(o);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    Ok(out)
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", ms(d))
}

/// The Markdown table: one row per (size, controller), ratios per size.
pub fn table(cfg: &Config, outcomes: &[Outcome]) -> String {
    let mut t = Table::new(&[
        "controller",
        "clusters",
        "updates",
        "bytes / change / client",
        "EDS bytes / change / client",
        "responses / change / client",
        "to all clients p50",
        "p99",
        "max",
        "per client p99",
        "missed",
        "controller CPU (s, % of a core)",
        "RSS",
    ]);
    type M = fn(&Outcome) -> f64;
    let metrics: [M; 9] = [
        |o| o.bytes_per_change(),
        |o| o.eds_bytes_per_change(),
        |o| o.responses_per_change(),
        |o| ms(percentile(&o.to_all_sorted(), 0.5)),
        |o| ms(percentile(&o.to_all_sorted(), 0.99)),
        |o| ms(percentile(&o.to_all_sorted(), 1.0)),
        |o| ms(percentile(&o.per_client_sorted(), 0.99)),
        |o| o.cpu_secs,
        |o| o.rss_mib,
    ];
    let mut sizes: Vec<usize> = outcomes.iter().map(|o| o.clusters).collect();
    sizes.dedup();
    for size in sizes {
        let at: Vec<&Outcome> = outcomes.iter().filter(|o| o.clusters == size).collect();
        for o in &at {
            let all = o.to_all_sorted();
            t.row(vec![
                o.target.label(),
                o.clusters.to_string(),
                o.updates.len().to_string(),
                format!("{:.0}", o.bytes_per_change()),
                format!("{:.0}", o.eds_bytes_per_change()),
                format!("{:.2}", o.responses_per_change()),
                fmt_ms(percentile(&all, 0.5)),
                fmt_ms(percentile(&all, 0.99)),
                fmt_ms(percentile(&all, 1.0)),
                fmt_ms(percentile(&o.per_client_sorted(), 0.99)),
                o.missed().to_string(),
                format!(
                    "{:.1} s, {:.0} %",
                    o.cpu_secs,
                    100.0 * o.cpu_secs / o.window_s.max(0.001)
                ),
                format!("{:.0} MiB", o.rss_mib),
            ]);
        }
        let ours = at.iter().find(|o| o.target == Target::Ours);
        let up = at.iter().find(|o| o.target == Target::Upstream);
        if let (Some(o), Some(u)) = (ours, up) {
            let mut row = vec![
                "ratio ours/upstream".to_string(),
                size.to_string(),
                String::new(),
            ];
            for (i, m) in metrics.iter().enumerate() {
                row.push(ratio(Some(m(o)), Some(m(u))));
                if i == 6 {
                    row.push(String::new()); // missed
                }
            }
            t.row(row);
        }
    }
    format!(
        "Endpoint churn: {} ADS clients, {} EndpointSlice updates/s for {} s, {} routes per HTTPProxy\n\n{}",
        cfg.clients,
        cfg.rate,
        cfg.secs,
        cfg.routes_per_proxy,
        t.markdown()
    )
}

/// Target checks of issue 7 (P3), as text.
pub fn verdict(outcomes: &[Outcome]) -> String {
    let ours: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.target == Target::Ours)
        .collect();
    let Some(big) = ours.iter().max_by_key(|o| o.clusters) else {
        return String::new();
    };
    let p99 = ms(percentile(&big.to_all_sorted(), 0.99));
    let mut s = format!(
        "P3 p99 ≤ 50 ms at {} clusters: {} ({p99:.1} ms)",
        big.clusters,
        if p99 <= 50.0 && big.missed() == 0 {
            "met"
        } else {
            "MISSED"
        }
    );
    if let Some(small) = ours.iter().min_by_key(|o| o.clusters)
        && small.clusters != big.clusters
    {
        let r = big.bytes_per_change() / small.bytes_per_change().max(1.0);
        s += &format!(
            "; bytes per change independent of cluster count: {} ({:.0} B at {} vs {:.0} B at {}, ×{r:.2})",
            if r <= 1.5 { "met" } else { "MISSED" },
            small.bytes_per_change(),
            small.clusters,
            big.bytes_per_change(),
            big.clusters
        );
    }
    s
}

/// Writes `{name}_summary.csv`, `{name}_updates.csv`, `{name}_latency.png`
/// and `{name}_bytes.png`; returns the paths.
pub fn write_outputs(cfg: &Config, outcomes: &[Outcome]) -> Result<Vec<PathBuf>> {
    let dir = &cfg.common.out_dir;
    let mut paths = Vec::new();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let all = o.to_all_sorted();
            vec![
                o.target.name().into(),
                o.clusters.to_string(),
                o.clients.to_string(),
                o.updates.len().to_string(),
                num(o.bytes_per_change()),
                num(o.eds_bytes_per_change()),
                num(o.responses_per_change()),
                num(ms(percentile(&all, 0.5))),
                num(ms(percentile(&all, 0.99))),
                num(ms(percentile(&all, 1.0))),
                num(ms(percentile(&o.per_client_sorted(), 0.99))),
                o.missed().to_string(),
                num(o.cpu_secs),
                num(o.window_s),
                num(o.rss_mib),
                num(o.synced_s),
            ]
            .into_iter()
            .chain((0..xds::TYPES).map(|i| num(o.per_type(i).0)))
            .chain((0..xds::TYPES).map(|i| num(o.per_type(i).1)))
            .collect()
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.common.name),
        &[
            "controller",
            "clusters",
            "clients",
            "updates",
            "bytes_per_change_per_client",
            "eds_bytes_per_change_per_client",
            "responses_per_change_per_client",
            "to_all_p50_ms",
            "to_all_p99_ms",
            "to_all_max_ms",
            "per_client_p99_ms",
            "missed",
            "controller_cpu_s",
            "window_s",
            "rss_mib",
            "clients_synced_after_s",
            "cds_responses_per_change_client",
            "eds_responses_per_change_client",
            "lds_responses_per_change_client",
            "rds_responses_per_change_client",
            "sds_responses_per_change_client",
            "cds_bytes_per_change_client",
            "eds_bytes_per_change_client",
            "lds_bytes_per_change_client",
            "rds_bytes_per_change_client",
            "sds_bytes_per_change_client",
        ],
        &rows,
    )?);
    let per_update: Vec<Vec<String>> = outcomes
        .iter()
        .flat_map(|o| {
            o.updates.iter().map(move |u| {
                vec![
                    o.target.name().to_string(),
                    o.clusters.to_string(),
                    u.seq.to_string(),
                    format!("app{}", u.service),
                    format!("{:.2}", ms(u.api)),
                    csv_ms(u.to_all()),
                    u.per_client.iter().flatten().count().to_string(),
                    u.superseded.to_string(),
                ]
            })
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_updates.csv", cfg.common.name),
        &[
            "controller",
            "clusters",
            "update",
            "service",
            "api_ms",
            "to_all_clients_ms",
            "clients_reached",
            "superseded",
        ],
        &per_update,
    )?);
    let latency = dir.join(format!("{}_latency.png", cfg.common.name));
    LineChart {
        title: format!(
            "Endpoint change -> all {} clients ({}/s for {} s)",
            cfg.clients, cfg.rate, cfg.secs
        ),
        x_label: "percentile of updates".into(),
        y_label: "propagation (ms, log)".into(),
        series: outcomes
            .iter()
            .map(|o| {
                let v = o.to_all_sorted();
                let n = v.len().max(2) as f64 - 1.0;
                Series {
                    name: format!("{}, {} clusters", o.target.label(), o.clusters),
                    points: v
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (100.0 * i as f64 / n, ms(*d).max(0.01)))
                        .collect(),
                }
            })
            .collect(),
        log_y: true,
        markers: false,
    }
    .save(&latency)?;
    paths.push(latency);
    let mut sizes: Vec<usize> = outcomes.iter().map(|o| o.clusters).collect();
    sizes.dedup();
    let mut targets: Vec<Target> = Vec::new();
    for o in outcomes {
        if !targets.contains(&o.target) {
            targets.push(o.target);
        }
    }
    let bytes = dir.join(format!("{}_bytes.png", cfg.common.name));
    BarChart {
        title: "Bytes pushed per endpoint change, per client".into(),
        y_label: "bytes (log)".into(),
        categories: sizes.iter().map(|s| format!("{s} clusters")).collect(),
        series: targets
            .iter()
            .map(|t| {
                (
                    t.label(),
                    sizes
                        .iter()
                        .map(|s| {
                            outcomes
                                .iter()
                                .find(|o| o.target == *t && o.clusters == *s)
                                .map(Outcome::bytes_per_change)
                                .unwrap_or(f64::NAN)
                        })
                        .collect(),
                )
            })
            .collect(),
        log_y: true,
    }
    .save(&bytes)?;
    paths.push(bytes);
    Ok(paths)
}

/// The bench binary's body.
pub async fn main() -> Result<()> {
    crate::init_crypto();
    let cfg = Config::from_env();
    let outcomes = run(&cfg).await?;
    println!("{}", table(&cfg, &outcomes));
    println!("{}\n", verdict(&outcomes));
    for p in write_outputs(&cfg, &outcomes)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
