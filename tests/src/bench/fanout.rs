//! Scenario 4 of issue 7, fan-out: N ADS clients (lightweight, ACKing like
//! Envoy) follow the controller with R routes (one HTTPProxy each) loaded;
//! one HTTPProxy's route changes at a time and the clock runs until the new
//! route has reached every client. Also: controller memory per connection
//! (RSS with one client vs with N, after each settled), bytes pushed per
//! change, and the first change after the start (upstream's start-up status
//! backlog delays it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::controller::install_upstream_crds;
use super::objects::{self, Rng};
use super::plot::{BarChart, LineChart, Series};
use super::report::{Table, csv_ms, num, ratio, write_csv};
use super::xds::{self, Client, Matcher, Watch};
use super::{Common, Controller, Result, Target, env_or, ms, percentile};
use crate::k8s::{install_crds, resource_of};
use crate::{ApiServer, TestNet};

/// Sizes and switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// Routes = HTTPProxies (`FANOUT_ROUTES`, 5000).
    pub routes: usize,
    /// Services they share (`FANOUT_SERVICES`, routes / 10).
    pub services: usize,
    /// ADS clients (`FANOUT_CLIENTS`, 100).
    pub clients: usize,
    /// Changes measured (`FANOUT_CHANGES`, 30).
    pub changes: usize,
    /// Pause between changes (`FANOUT_GAP_MS`, 300).
    pub gap: Duration,
    /// Namespaces (`FANOUT_NAMESPACES`, 100).
    pub namespaces: usize,
    /// Controllers, in order (`TARGETS`).
    pub targets: Vec<Target>,
    /// Quiet time before each RSS reading (`FANOUT_SETTLE_SECS`, 5).
    pub settle: Duration,
    /// Longest wait for a snapshot or a change (`FANOUT_TIMEOUT_SECS`, 300).
    pub timeout: Duration,
    /// Concurrency, seed, output directory and file name prefix.
    pub common: Common,
}

impl Config {
    /// The sizes, overridden by the environment.
    pub fn from_env() -> Config {
        let routes = env_or("FANOUT_ROUTES", 5000usize);
        Config {
            routes,
            services: env_or("FANOUT_SERVICES", (routes / 10).max(1)),
            clients: env_or("FANOUT_CLIENTS", 100),
            changes: env_or("FANOUT_CHANGES", 30),
            gap: Duration::from_millis(env_or("FANOUT_GAP_MS", 300)),
            namespaces: env_or("FANOUT_NAMESPACES", 100),
            targets: super::targets_from_env(),
            settle: Duration::from_secs(env_or("FANOUT_SETTLE_SECS", 5)),
            timeout: Duration::from_secs(env_or("FANOUT_TIMEOUT_SECS", 300)),
            common: Common::from_env("fanout"),
        }
    }
}

/// One change and when each client had it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Sequence number (0: the first change after the start).
    pub seq: usize,
    /// Patch sent → arrival at each client (`None`: not within the timeout).
    pub per_client: Vec<Option<Duration>>,
}

impl Change {
    /// Patch sent → arrival at the last client.
    pub fn to_all(&self) -> Option<Duration> {
        self.per_client
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max())
    }
}

/// The measurements of one controller.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which.
    pub target: Target,
    /// Routes.
    pub routes: usize,
    /// Clients.
    pub clients: usize,
    /// Spawn → the first client had every route, s.
    pub first_synced_s: f64,
    /// The other clients connected → all in sync, s.
    pub all_synced_s: f64,
    /// The first change after the start (before the samples).
    pub first_change: Change,
    /// The measured changes.
    pub changes: Vec<Change>,
    /// RSS with one client, settled, MiB.
    pub rss_one_mib: f64,
    /// RSS with every client, settled, MiB.
    pub rss_all_mib: f64,
    /// Peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// Bytes per type received during the measured changes, all clients.
    pub bytes: [u64; xds::TYPES],
    /// Responses per type during the measured changes, all clients.
    pub responses: [u64; xds::TYPES],
    /// Controller CPU seconds during the measured changes.
    pub cpu_secs: f64,
}

impl Outcome {
    /// (RSS with N − RSS with 1) / (N − 1), KiB.
    pub fn kib_per_connection(&self) -> f64 {
        if self.clients <= 1 {
            return f64::NAN;
        }
        (self.rss_all_mib - self.rss_one_mib) * 1024.0 / (self.clients - 1) as f64
    }
    /// Sorted "to all clients" latencies.
    pub fn to_all_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.changes.iter().filter_map(Change::to_all).collect();
        v.sort();
        v
    }
    /// Sorted per-client arrivals.
    pub fn per_client_sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .changes
            .iter()
            .flat_map(|c| c.per_client.iter().flatten().copied())
            .collect();
        v.sort();
        v
    }
    /// Changes some client never got.
    pub fn missed(&self) -> usize {
        self.changes.iter().filter(|c| c.to_all().is_none()).count()
    }
    /// Bytes of all types per change per client.
    pub fn bytes_per_change(&self) -> f64 {
        self.bytes.iter().sum::<u64>() as f64
            / self.changes.len().max(1) as f64
            / self.clients.max(1) as f64
    }
    /// Controller CPU ms per change.
    pub fn cpu_ms_per_change(&self) -> f64 {
        self.cpu_secs * 1e3 / self.changes.len().max(1) as f64
    }
}

/// The preloaded world.
pub struct World {
    proxies: Vec<(String, String, String)>, // (namespace, name, service)
    preload: Duration,
}

fn route_manifest(name: &str, ns: &str, service: &str, prefix: &str) -> Value {
    let fqdn = format!("{name}.{ns}.bench.example.com");
    let mut rng = Rng::new(0);
    objects::proxy(
        name,
        &fqdn,
        &[service.to_string()],
        None,
        Some(prefix),
        &mut rng,
    )
}

/// Creates the Services, EndpointSlices and HTTPProxies.
pub async fn preload(cfg: &Config, api: &ApiServer) -> Result<World> {
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let services = cfg.services.max(1);
    let nss = objects::namespaces(api, "fan", cfg.namespaces.min(services)).await?;
    let net = TestNet::shared()?;
    let base = net.backend_ip().octets();
    let mut objs: Vec<(String, Value)> = Vec::new();
    for s in 0..services {
        let ns = &nss[s % nss.len()];
        let name = format!("app{s}");
        let addr = std::net::Ipv4Addr::new(base[0], base[1], base[2], 2 + (s % 240) as u8);
        objs.push((ns.clone(), objects::service(&name)));
        objs.push((ns.clone(), objects::endpoint_slice(&name, &[addr], 8080)));
    }
    let mut proxies = Vec::new();
    for j in 0..cfg.routes {
        let s = j % services;
        let ns = nss[s % nss.len()].clone();
        let (name, svc) = (format!("r{j}"), format!("app{s}"));
        objs.push((ns.clone(), route_manifest(&name, &ns, &svc, "/fanout-init")));
        proxies.push((ns, name, svc));
    }
    let n = objs.len();
    let preload = objects::create_all(&client, objs, cfg.common.concurrency).await?;
    eprintln!(
        "fanout: preloaded {n} objects in {:.1} s",
        preload.as_secs_f64()
    );
    Ok(World { proxies, preload })
}

async fn change(
    admin: &kube::Client,
    clients: &[Client],
    world: &World,
    (tag, seq): (&str, usize),
    rng: &mut Rng,
    timeout: Duration,
) -> Result<Change> {
    let (ns, name, svc) = &world.proxies[rng.below(world.proxies.len() as u64) as usize];
    // Unique per controller too: the next controller changes the same
    // proxies in the same order, and an unchanged object sends no event.
    let prefix = format!("/fanout-{tag}-{seq:06}");
    let id = 1_000_000 + seq as u64;
    xds::watch_all(
        clients,
        id,
        &Watch {
            type_index: 3,
            name_prefix: None,
            matcher: Matcher::Bytes(prefix.clone().into_bytes()),
        },
    );
    let manifest = route_manifest(name, ns, svc, &prefix);
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(admin.clone(), ns, &resource_of(&manifest)?);
    let t0 = Instant::now();
    api.patch(name, &PatchParams::default(), &Patch::Merge(&manifest))
        .await?;
    let seen = xds::wait_watch(clients, id, timeout).await;
    Ok(Change {
        seq,
        per_client: seen
            .iter()
            .map(|s| s.map(|s| s.saturating_duration_since(t0)))
            .collect(),
    })
}

/// Runs one controller.
pub async fn measure(
    cfg: &Config,
    api: &ApiServer,
    world: &World,
    target: Target,
) -> Result<Outcome> {
    let admin = api.admin_client().await?;
    if target == Target::Upstream {
        install_upstream_crds(&admin).await?;
    }
    // A Lease of its own: no wait for a predecessor's lease to expire.
    let lease_ns = api
        .namespace(&format!("fan-lease-{}", target.name()))
        .await?;
    let mut ctl = Controller::start(target, api, &lease_ns)?;
    let xt = xds::Target {
        port: ctl.xds_port,
        pki: Some(ctl.pki.clone()),
        delta: target.xds_mode() == crate::contour::XdsMode::DeltaAds,
    };
    let services = cfg.services.max(1).min(cfg.routes.max(1));
    let routes = cfg.routes;
    let first = Client::start(xt.clone(), "fanout-0", true, cfg.timeout);
    let ok = first
        .wait_for(cfg.timeout, |s| {
            s.http_vhosts >= routes && s.clusters >= services && s.endpoints >= services
        })
        .await;
    if !ok {
        ctl.check_alive()?;
        return Err(format!(
            "{}: the first client never got {routes} routes: {:?}\n{}",
            target.name(),
            first.state(),
            ctl.log_tail(20)
        )
        .into());
    }
    let first_synced_s = ctl.started.elapsed().as_secs_f64();
    tokio::time::sleep(cfg.settle).await;
    let rss_one_mib = ctl.stat().rss_mib;
    let t_rest = Instant::now();
    let mut clients = vec![first];
    for i in 1..cfg.clients.max(1) {
        clients.push(Client::start(
            xt.clone(),
            &format!("fanout-{i}"),
            false,
            cfg.timeout,
        ));
    }
    for c in &clients[1..] {
        let ok = c
            .wait_for(cfg.timeout, |s| {
                s.routes + s.scopes >= 1 && s.clusters >= services && s.endpoints >= services
            })
            .await;
        if !ok {
            return Err(
                format!("{}: a client never synced: {:?}", target.name(), c.state()).into(),
            );
        }
    }
    let all_synced_s = t_rest.elapsed().as_secs_f64();
    eprintln!(
        "fanout {}: 1 client in sync after {first_synced_s:.1} s, {} more after {all_synced_s:.1} s",
        target.name(),
        clients.len() - 1
    );
    tokio::time::sleep(cfg.settle).await;
    let rss_all_mib = ctl.stat().rss_mib;
    let mut rng = Rng::new(cfg.common.seed ^ 0xFA17);
    let tag = target.name();
    let first_change = change(&admin, &clients, world, (tag, 0), &mut rng, cfg.timeout).await?;
    eprintln!(
        "fanout {}: first change after the start reached all clients after {:?}",
        target.name(),
        first_change.to_all()
    );
    tokio::time::sleep(cfg.gap).await;
    let before = xds::sum_counters(&clients);
    let cpu_before = ctl.stat().cpu_secs;
    let mut changes = Vec::new();
    for seq in 1..=cfg.changes {
        changes.push(
            change(
                &admin,
                &clients,
                world,
                (tag, seq),
                &mut rng,
                Duration::from_secs(60),
            )
            .await?,
        );
        tokio::time::sleep(cfg.gap).await;
    }
    let after = xds::sum_counters(&clients);
    let end = ctl.stat();
    ctl.check_alive()?;
    let delta = xds::counters_delta(&after, &before);
    drop(clients);
    ctl.stop();
    Ok(Outcome {
        target,
        routes,
        clients: cfg.clients.max(1),
        first_synced_s,
        all_synced_s,
        first_change,
        changes,
        rss_one_mib,
        rss_all_mib,
        peak_rss_mib: end.peak_rss_mib,
        bytes: delta.map(|d| d.1),
        responses: delta.map(|d| d.0),
        cpu_secs: end.cpu_secs - cpu_before,
    })
}

/// Preloads, then measures every target.
pub async fn run(cfg: &Config) -> Result<(World, Vec<Outcome>)> {
    let api = ApiServer::shared()?;
    let world = preload(cfg, api).await?;
    let mut out = Vec::new();
    for &t in &cfg.targets {
        out.push(measure(cfg, api, &world, t).await?);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok((world, out))
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1} ms", ms(d))
}

/// The Markdown table.
pub fn table(cfg: &Config, world: &World, outcomes: &[Outcome]) -> String {
    let mut t = Table::new(&[
        "controller",
        "change → all clients p50",
        "p99",
        "max",
        "per client p50",
        "missed",
        "first change after start",
        "RSS, 1 client",
        &format!("RSS, {} clients", cfg.clients),
        "per connection",
        "bytes / change / client",
        "CPU / change",
        "clients in sync after",
    ]);
    type M = fn(&Outcome) -> Option<f64>;
    let metrics: [M; 12] = [
        |o| Some(ms(percentile(&o.to_all_sorted(), 0.5))),
        |o| Some(ms(percentile(&o.to_all_sorted(), 0.99))),
        |o| Some(ms(percentile(&o.to_all_sorted(), 1.0))),
        |o| Some(ms(percentile(&o.per_client_sorted(), 0.5))),
        |_| None,
        |o| o.first_change.to_all().map(ms),
        |o| Some(o.rss_one_mib),
        |o| Some(o.rss_all_mib),
        |o| Some(o.kib_per_connection()),
        |o| Some(o.bytes_per_change()),
        |o| Some(o.cpu_ms_per_change()),
        |o| Some(o.all_synced_s),
    ];
    for o in outcomes {
        let all = o.to_all_sorted();
        t.row(vec![
            o.target.label(),
            fmt_ms(percentile(&all, 0.5)),
            fmt_ms(percentile(&all, 0.99)),
            fmt_ms(percentile(&all, 1.0)),
            fmt_ms(percentile(&o.per_client_sorted(), 0.5)),
            o.missed().to_string(),
            o.first_change
                .to_all()
                .map(fmt_ms)
                .unwrap_or_else(|| format!("> {} s", cfg.timeout.as_secs())),
            format!("{:.0} MiB", o.rss_one_mib),
            format!("{:.0} MiB", o.rss_all_mib),
            format!("{:.0} KiB", o.kib_per_connection()),
            format!("{:.0}", o.bytes_per_change()),
            format!("{:.1} ms", o.cpu_ms_per_change()),
            format!("{:.1} s", o.all_synced_s),
        ]);
    }
    let ours = outcomes.iter().find(|o| o.target == Target::Ours);
    let up = outcomes.iter().find(|o| o.target == Target::Upstream);
    if let (Some(o), Some(u)) = (ours, up) {
        let mut row = vec!["ratio ours/upstream".to_string()];
        for m in metrics {
            row.push(ratio(m(o), m(u)));
        }
        t.row(row);
    }
    format!(
        "Fan-out: {} routes (one HTTPProxy each, {} Services), {} ADS clients, {} changes; {} objects preloaded in {:.0} s\n\n{}",
        cfg.routes,
        cfg.services,
        cfg.clients,
        cfg.changes,
        world.proxies.len() + 2 * cfg.services,
        world.preload.as_secs_f64(),
        t.markdown()
    )
}

/// Target checks of issue 7 (P4), as text.
pub fn verdict(outcomes: &[Outcome]) -> String {
    let Some(o) = outcomes.iter().find(|o| o.target == Target::Ours) else {
        return String::new();
    };
    let p99 = ms(percentile(&o.to_all_sorted(), 0.99));
    let kib = o.kib_per_connection();
    format!(
        "P4 p99 ≤ 100 ms: {} ({p99:.1} ms); ≤ 100 KB per connection: {} ({:.0} KB)",
        if p99 <= 100.0 && o.missed() == 0 {
            "met"
        } else {
            "MISSED"
        },
        if kib * 1.024 <= 100.0 {
            "met"
        } else {
            "MISSED"
        },
        kib * 1.024
    )
}

/// Writes `{name}_summary.csv`, `{name}_changes.csv`, `{name}_latency.png`
/// and `{name}_memory.png`; returns the paths.
pub fn write_outputs(cfg: &Config, outcomes: &[Outcome]) -> Result<Vec<PathBuf>> {
    let dir = &cfg.common.out_dir;
    let mut paths = Vec::new();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let all = o.to_all_sorted();
            vec![
                o.target.name().into(),
                o.routes.to_string(),
                o.clients.to_string(),
                o.changes.len().to_string(),
                num(ms(percentile(&all, 0.5))),
                num(ms(percentile(&all, 0.99))),
                num(ms(percentile(&all, 1.0))),
                num(ms(percentile(&o.per_client_sorted(), 0.5))),
                o.missed().to_string(),
                o.first_change
                    .to_all()
                    .map(|d| num(ms(d)))
                    .unwrap_or_default(),
                num(o.rss_one_mib),
                num(o.rss_all_mib),
                num(o.kib_per_connection()),
                num(o.peak_rss_mib),
                num(o.bytes_per_change()),
                num(o.cpu_ms_per_change()),
                num(o.first_synced_s),
                num(o.all_synced_s),
            ]
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.common.name),
        &[
            "controller",
            "routes",
            "clients",
            "changes",
            "to_all_p50_ms",
            "to_all_p99_ms",
            "to_all_max_ms",
            "per_client_p50_ms",
            "missed",
            "first_change_after_start_ms",
            "rss_one_client_mib",
            "rss_all_clients_mib",
            "kib_per_connection",
            "peak_rss_mib",
            "bytes_per_change_per_client",
            "cpu_ms_per_change",
            "first_client_synced_s",
            "all_clients_synced_s",
        ],
        &rows,
    )?);
    let per_change: Vec<Vec<String>> = outcomes
        .iter()
        .flat_map(|o| {
            std::iter::once(&o.first_change)
                .chain(o.changes.iter())
                .map(move |c| {
                    let mut v: Vec<Duration> = c.per_client.iter().flatten().copied().collect();
                    v.sort();
                    vec![
                        o.target.name().to_string(),
                        c.seq.to_string(),
                        csv_ms(c.to_all()),
                        format!("{:.2}", ms(percentile(&v, 0.0))),
                        format!("{:.2}", ms(percentile(&v, 0.5))),
                        v.len().to_string(),
                    ]
                })
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_changes.csv", cfg.common.name),
        &[
            "controller",
            "change",
            "to_all_clients_ms",
            "first_client_ms",
            "median_client_ms",
            "clients_reached",
        ],
        &per_change,
    )?);
    let latency = dir.join(format!("{}_latency.png", cfg.common.name));
    LineChart {
        title: format!(
            "One route change -> all {} ADS clients ({} routes)",
            cfg.clients, cfg.routes
        ),
        x_label: "change #".into(),
        y_label: "time to reach every client (ms)".into(),
        series: outcomes
            .iter()
            .map(|o| Series {
                name: o.target.label(),
                points: o
                    .changes
                    .iter()
                    .filter_map(|c| c.to_all().map(|d| (c.seq as f64, ms(d))))
                    .collect(),
            })
            .collect(),
        log_y: outcomes.len() > 1,
        markers: true,
    }
    .save(&latency)?;
    paths.push(latency);
    let memory = dir.join(format!("{}_memory.png", cfg.common.name));
    BarChart {
        title: format!("Controller RSS with 1 and {} ADS clients", cfg.clients),
        y_label: "RSS (MiB)".into(),
        categories: vec!["1 client".into(), format!("{} clients", cfg.clients)],
        series: outcomes
            .iter()
            .map(|o| (o.target.label(), vec![o.rss_one_mib, o.rss_all_mib]))
            .collect(),
        log_y: false,
    }
    .save(&memory)?;
    paths.push(memory);
    Ok(paths)
}

/// The bench binary's body.
pub async fn main() -> Result<()> {
    crate::init_crypto();
    let cfg = Config::from_env();
    let (world, outcomes) = run(&cfg).await?;
    println!("{}", table(&cfg, &world, &outcomes));
    println!("{}\n", verdict(&outcomes));
    for p in write_outputs(&cfg, &outcomes)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
