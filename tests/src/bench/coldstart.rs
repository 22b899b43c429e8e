//! Scenario 2 of issue 7, cold start: with N HTTPProxies, their Services
//! (+ EndpointSlices) and many Secrets (TLS for every third proxy; the rest
//! half Helm-release-like — large, incompressible — and half small Opaque)
//! already in the API server, start the controller and measure
//!
//! - the time from spawning the process to the first *complete* snapshot an
//!   ADS client has received and ACKed (every cluster, every endpoint, all N
//!   virtual hosts in `ingress_http`, every `https/<fqdn>` route
//!   configuration and every TLS secret — counted in what it received),
//! - the time until a real Envoy (from `contour bootstrap`: over ADS for
//!   ours, its default; per type for upstream, whose bootstrap knows no other
//!   way) has every cluster active and answers sampled hosts (not 404),
//! - peak RSS (`VmHWM`), steady RSS (after a settle time) and CPU seconds.
//!
//! Status writes are not waited for (upstream writes them at 5 requests/s).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::controller::{Sample, Sampler, install_upstream_crds};
use super::objects::{self, Rng};
use super::plot::{LineChart, Series};
use super::report::{Table, num, ratio, write_csv};
use super::xds::{self, Client};
use super::{Common, Controller, Result, Target, env_or, err};
use crate::k8s::install_crds;
use crate::{ApiServer, TestNet};

/// Sizes and switches.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTPProxies (`COLDSTART_PROXIES`, 10000).
    pub proxies: usize,
    /// Services, each with an EndpointSlice (`COLDSTART_SERVICES`, 10000).
    pub services: usize,
    /// Secrets in all (`COLDSTART_SECRETS`, 30000).
    pub secrets: usize,
    /// Helm-release payload size range, KiB (`COLDSTART_HELM_MIN_KIB` 4, `_MAX_KIB` 64).
    pub helm_kib: (usize, usize),
    /// Namespaces the objects are spread over (`COLDSTART_NAMESPACES`, 100).
    pub namespaces: usize,
    /// Controllers to run, in order (`TARGETS`).
    pub targets: Vec<Target>,
    /// Start a real Envoy too (`COLDSTART_ENVOY`, 1).
    pub envoy: bool,
    /// Time after the complete snapshot before steady RSS is read (`COLDSTART_SETTLE_SECS`, 15).
    pub settle: Duration,
    /// Longest wait for the complete snapshot (`COLDSTART_TIMEOUT_SECS`, 300).
    pub timeout: Duration,
    /// Concurrency, seed, output directory and file name prefix.
    pub common: Common,
}

impl Config {
    /// The sizes, overridden by the environment.
    pub fn from_env() -> Config {
        Config {
            proxies: env_or("COLDSTART_PROXIES", 10_000),
            services: env_or("COLDSTART_SERVICES", 10_000),
            secrets: env_or("COLDSTART_SECRETS", 30_000),
            helm_kib: (
                env_or("COLDSTART_HELM_MIN_KIB", 4),
                env_or("COLDSTART_HELM_MAX_KIB", 64),
            ),
            namespaces: env_or("COLDSTART_NAMESPACES", 100),
            targets: super::targets_from_env(),
            envoy: env_or("COLDSTART_ENVOY", 1) != 0,
            settle: Duration::from_secs(env_or("COLDSTART_SETTLE_SECS", 15)),
            timeout: Duration::from_secs(env_or("COLDSTART_TIMEOUT_SECS", 300)),
            common: Common::from_env("coldstart"),
        }
    }
}

/// What the complete snapshot must hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected {
    /// Clusters (= EDS resources).
    pub clusters: usize,
    /// Virtual hosts in `ingress_http`.
    pub vhosts: usize,
    /// TLS virtual hosts (`https/<fqdn>` route configurations, secrets).
    pub tls: usize,
}

impl Expected {
    fn complete(&self, s: &xds::State) -> bool {
        s.clusters >= self.clusters
            && s.endpoints >= self.clusters
            && s.http_vhosts >= self.vhosts
            // `ingress_http` and the TLS hosts' (plain hosts as scopes:
            // the TLS hosts' alone).
            && s.routes + usize::from(s.scopes > 0) > self.tls
            && s.secrets >= self.tls
    }
}

/// The measurements of one controller.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which.
    pub target: Target,
    /// Spawn → first xDS response, s.
    pub first_response_s: Option<f64>,
    /// Spawn → complete snapshot at the ADS client, s.
    pub complete_s: f64,
    /// Spawn → Envoy has every cluster and answers the sampled hosts, s.
    pub envoy_complete_s: Option<f64>,
    /// CPU seconds used until the complete snapshot.
    pub cpu_at_complete: f64,
    /// CPU seconds until the end of the settle time.
    pub cpu_total: f64,
    /// Peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// RSS after the settle time, MiB.
    pub steady_rss_mib: f64,
    /// Bytes the ADS client received until complete.
    pub bytes_to_complete: u64,
    /// RSS/CPU every 100 ms from spawn.
    pub samples: Vec<Sample>,
}

/// The preloaded world.
pub struct World {
    /// What a complete snapshot holds.
    pub expected: Expected,
    /// Hosts Envoy is probed with.
    pub probe_hosts: Vec<String>,
    /// Objects created.
    pub objects: usize,
    /// Bytes of Secret payload created.
    pub secret_bytes: usize,
    /// Time the preload took.
    pub preload: Duration,
    _backend: crate::Backend,
}

/// Creates the objects.
pub async fn preload(cfg: &Config, api: &ApiServer) -> Result<World> {
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let nss = objects::namespaces(api, "cs", cfg.namespaces.min(cfg.proxies.max(1))).await?;
    let net = TestNet::shared()?;
    let backend = net.backend("coldstart")?;
    let ip = match backend.addr.ip() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => return Err(err("the test network is IPv4")),
    };
    let mut rng = Rng::new(cfg.common.seed);
    let nns = nss.len();
    let services = cfg.services.max(1);
    let mut secrets: Vec<(String, Value)> = Vec::new();
    let mut svcs: Vec<(String, Value)> = Vec::new();
    let mut proxies: Vec<(String, Value)> = Vec::new();
    // A few certificates, shared by the TLS Secrets.
    let ca = crate::pki::Ca::new("bench-ca")?;
    let pairs: Vec<crate::pki::CertPair> = (0..8)
        .map(|_| ca.server("bench", &["*.bench.example.com"]))
        .collect::<crate::Result<_>>()?;
    let mut clusters = BTreeSet::new();
    let mut tls = 0;
    let mut probe_hosts = Vec::new();
    let probe_every = (cfg.proxies / 16).max(1);
    for i in 0..cfg.proxies {
        let s = i % services;
        let ns = &nss[s % nns];
        let second = if s + nns < services { s + nns } else { s };
        let names = vec![format!("app{s}"), format!("app{second}")];
        clusters.insert(s);
        clusters.insert(second);
        let fqdn = format!("p{i}.{ns}.bench.example.com");
        let secret = (i % 3 == 0 && tls < cfg.secrets).then(|| format!("tls-{i}"));
        if let Some(name) = &secret {
            let pair = &pairs[i % pairs.len()];
            secrets.push((
                ns.clone(),
                objects::tls_secret(name, &pair.cert_pem, &pair.key_pem),
            ));
            tls += 1;
        }
        if i % probe_every == 0 || i + 1 == cfg.proxies {
            probe_hosts.push(fqdn.clone());
        }
        proxies.push((
            ns.clone(),
            objects::proxy(
                &format!("p{i}"),
                &fqdn,
                &names,
                secret.as_deref(),
                None,
                &mut rng,
            ),
        ));
    }
    for s in 0..services.min(cfg.services) {
        let ns = &nss[s % nns];
        let name = format!("app{s}");
        svcs.push((ns.clone(), objects::service(&name)));
        svcs.push((
            ns.clone(),
            objects::endpoint_slice(&name, &[ip], backend.addr.port()),
        ));
    }
    let rest = cfg.secrets.saturating_sub(tls);
    let helm = rest / 2;
    let (lo, hi) = (
        cfg.helm_kib.0.max(1),
        cfg.helm_kib.1.max(cfg.helm_kib.0.max(1)),
    );
    let mut secret_bytes = 0;
    for k in 0..rest {
        let ns = &nss[k % nns];
        if k < helm {
            // Skewed towards the small end, as release sizes are.
            let u = rng.unit();
            let size = (lo as f64 + (hi - lo) as f64 * u * u) as usize * 1024;
            secret_bytes += size;
            secrets.push((
                ns.clone(),
                objects::helm_release_secret(
                    &format!("sh.helm.release.v1.app{k}.v1"),
                    size,
                    &mut rng,
                ),
            ));
        } else {
            secret_bytes += 600;
            secrets.push((
                ns.clone(),
                objects::opaque_secret(&format!("settings-{k}"), &mut rng),
            ));
        }
    }
    let objects = secrets.len() + svcs.len() + proxies.len();
    eprintln!(
        "coldstart: creating {} proxies, {} services (+ EndpointSlices), {} secrets ({tls} TLS, {helm} Helm-like, {:.0} MiB of secret payload)",
        proxies.len(),
        svcs.len() / 2,
        secrets.len(),
        secret_bytes as f64 / 1048576.0
    );
    let started = Instant::now();
    let mut all = secrets;
    all.extend(svcs);
    all.extend(proxies);
    objects::create_all(&client, all, cfg.common.concurrency).await?;
    let preload = started.elapsed();
    eprintln!(
        "coldstart: preloaded {objects} objects in {:.1} s",
        preload.as_secs_f64()
    );
    Ok(World {
        expected: Expected {
            clusters: clusters.len(),
            vhosts: cfg.proxies,
            tls,
        },
        probe_hosts,
        objects,
        secret_bytes,
        preload,
        _backend: backend,
    })
}

/// Polls Envoy until every cluster is active and every probe host answers
/// (anything but 404); returns when that was first seen.
async fn envoy_complete(
    envoy: &crate::Envoy,
    listen: u16,
    clusters: usize,
    hosts: &[String],
    deadline: Instant,
) -> Option<Instant> {
    // TLS hosts answer 301 on HTTP: not followed.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let mut pending: Vec<&String> = hosts.iter().collect();
    loop {
        let active = envoy
            .admin_get("/stats?filter=^cluster_manager.active_clusters$")
            .await
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("cluster_manager.active_clusters: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
            })
            .unwrap_or(0);
        if active >= clusters {
            let mut still = Vec::new();
            for h in pending {
                let ok = http
                    .get(format!("http://127.0.0.1:{listen}/"))
                    .header("Host", h.as_str())
                    .send()
                    .await
                    .is_ok_and(|r| r.status() != 404);
                if !ok {
                    still.push(h);
                }
            }
            pending = still;
            if pending.is_empty() {
                return Some(Instant::now());
            }
        }
        if Instant::now() > deadline {
            let status = match pending.first() {
                Some(h) => http
                    .get(format!("http://127.0.0.1:{listen}/"))
                    .header("Host", h.as_str())
                    .send()
                    .await
                    .map(|r| r.status().to_string())
                    .unwrap_or_else(|e| e.to_string()),
                None => String::new(),
            };
            eprintln!(
                "Envoy incomplete: {active} of {clusters} clusters active, {} hosts pending (first: {status})",
                pending.len()
            );
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one controller against the preloaded world.
pub async fn measure(
    cfg: &Config,
    api: &ApiServer,
    world: &World,
    target: Target,
) -> Result<Outcome> {
    if target == Target::Upstream {
        install_upstream_crds(&api.admin_client().await?).await?;
    }
    // A Lease of its own: no wait for a predecessor's lease to expire.
    let lease_ns = api
        .namespace(&format!("cs-lease-{}", target.name()))
        .await?;
    let mut ctl = Controller::start(target, api, &lease_ns)?;
    let t0 = ctl.started;
    let sampler = Sampler::start(ctl.pid(), t0, Duration::from_millis(100));
    let client = Client::start(
        xds::Target {
            port: ctl.xds_port,
            pki: Some(ctl.pki.clone()),
            delta: target.xds_mode() == crate::contour::XdsMode::DeltaAds,
        },
        &format!("coldstart-{}", target.name()),
        true,
        cfg.timeout,
    );
    let envoy_task = if cfg.envoy {
        ctl.wait_xds_port(Duration::from_secs(60)).await?;
        let (port, pki, listen) = (ctl.xds_port, ctl.pki.clone(), ctl.http_listen);
        let mode = target.xds_mode();
        let (clusters, hosts) = (world.expected.clusters, world.probe_hosts.clone());
        let deadline = t0 + cfg.timeout;
        Some(tokio::spawn(async move {
            let envoy = crate::contour::envoy_from_bootstrap(port, &pki, mode)
                .await
                .ok()?;
            let at = envoy_complete(&envoy, listen, clusters, &hosts, deadline).await;
            Some((envoy, at))
        }))
    } else {
        None
    };
    let expected = world.expected;
    let done = client.wait_for(cfg.timeout, |s| expected.complete(s)).await;
    let state = client.state();
    if !done {
        ctl.check_alive()?;
        return Err(format!(
            "{}: no complete snapshot after {:?}: received {state:?}, expected {expected:?}\n{}",
            target.name(),
            cfg.timeout,
            ctl.log_tail(20)
        )
        .into());
    }
    let complete_at = state.last_response.unwrap_or_else(Instant::now);
    let cpu_at_complete = ctl.stat().cpu_secs;
    let bytes_to_complete: u64 = client.counters().iter().map(|c| c.1).sum();
    eprintln!(
        "coldstart {}: complete snapshot after {:.2} s",
        target.name(),
        (complete_at - t0).as_secs_f64()
    );
    let mut envoy_complete_s = None;
    let mut envoy = None;
    if let Some(task) = envoy_task {
        if let Ok(Some((e, at))) = task.await {
            envoy_complete_s = at.map(|at| (at - t0).as_secs_f64());
            envoy = Some(e);
        }
        eprintln!(
            "coldstart {}: Envoy complete after {envoy_complete_s:?} s",
            target.name()
        );
    }
    let settle_until = complete_at.max(Instant::now()) + cfg.settle;
    tokio::time::sleep_until(settle_until.into()).await;
    ctl.check_alive()?;
    let end = ctl.stat();
    let samples = sampler.finish().await;
    drop(envoy);
    drop(client);
    ctl.stop();
    let peak = samples
        .iter()
        .map(|s| s.stat.peak_rss_mib)
        .fold(end.peak_rss_mib, f64::max);
    Ok(Outcome {
        target,
        first_response_s: state.first_response.map(|t| (t - t0).as_secs_f64()),
        complete_s: (complete_at - t0).as_secs_f64(),
        envoy_complete_s,
        cpu_at_complete,
        cpu_total: end.cpu_secs,
        peak_rss_mib: peak,
        steady_rss_mib: end.rss_mib,
        bytes_to_complete,
        samples,
    })
}

/// Preloads, then measures every target in turn.
pub async fn run(cfg: &Config) -> Result<(World, Vec<Outcome>)> {
    let api = ApiServer::shared()?;
    let world = preload(cfg, api).await?;
    let mut out = Vec::new();
    for &t in &cfg.targets {
        out.push(measure(cfg, api, &world, t).await?);
        // Let the API server settle between controllers.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok((world, out))
}

fn pick(outcomes: &[Outcome], t: Target, f: impl Fn(&Outcome) -> Option<f64>) -> Option<f64> {
    outcomes.iter().find(|o| o.target == t).and_then(f)
}

/// The Markdown table (one row per controller, then ours/upstream).
pub fn table(cfg: &Config, world: &World, outcomes: &[Outcome]) -> String {
    let mut t = Table::new(&[
        "controller",
        "first xDS response",
        "complete snapshot (ADS client)",
        "Envoy complete",
        "CPU s to complete",
        "CPU s incl. settle",
        "peak RSS",
        "steady RSS",
        "bytes to complete",
    ]);
    let metrics: [fn(&Outcome) -> Option<f64>; 8] = [
        |o| o.first_response_s,
        |o| Some(o.complete_s),
        |o| o.envoy_complete_s,
        |o| Some(o.cpu_at_complete),
        |o| Some(o.cpu_total),
        |o| Some(o.peak_rss_mib),
        |o| Some(o.steady_rss_mib),
        |o| Some(o.bytes_to_complete as f64),
    ];
    for o in outcomes {
        t.row(vec![
            o.target.label(),
            o.first_response_s
                .map(|v| format!("{v:.2} s"))
                .unwrap_or("–".into()),
            format!("{:.2} s", o.complete_s),
            o.envoy_complete_s
                .map(|v| format!("{v:.2} s"))
                .unwrap_or("–".into()),
            format!("{:.2}", o.cpu_at_complete),
            format!("{:.2}", o.cpu_total),
            format!("{:.0} MiB", o.peak_rss_mib),
            format!("{:.0} MiB", o.steady_rss_mib),
            format!("{:.1} MB", o.bytes_to_complete as f64 / 1e6),
        ]);
    }
    if outcomes.iter().any(|o| o.target == Target::Upstream)
        && outcomes.iter().any(|o| o.target == Target::Ours)
    {
        let mut row = vec!["ratio ours/upstream".to_string()];
        for m in metrics {
            row.push(ratio(
                pick(outcomes, Target::Ours, m),
                pick(outcomes, Target::Upstream, m),
            ));
        }
        t.row(row);
    }
    format!(
        "Cold start: {} HTTPProxies ({} TLS), {} Services + EndpointSlices, {} Secrets ({:.0} MiB payload); {} objects preloaded in {:.0} s; settle {} s\n\n{}",
        cfg.proxies,
        world.expected.tls,
        cfg.services,
        cfg.secrets,
        world.secret_bytes as f64 / 1048576.0,
        world.objects,
        world.preload.as_secs_f64(),
        cfg.settle.as_secs(),
        t.markdown()
    )
}

/// Target checks of issue 7 (P2), as text.
pub fn verdict(outcomes: &[Outcome]) -> String {
    let Some(o) = outcomes.iter().find(|o| o.target == Target::Ours) else {
        return String::new();
    };
    let mut s = format!(
        "P2 ≤ 5 s to full snapshot: {} ({:.2} s); peak RSS ≤ 300 MB: {} ({:.0} MB)",
        if o.complete_s <= 5.0 { "met" } else { "MISSED" },
        o.complete_s,
        if o.peak_rss_mib * 1.048576 <= 300.0 {
            "met"
        } else {
            "MISSED"
        },
        o.peak_rss_mib * 1.048576
    );
    if let Some(u) = outcomes.iter().find(|o| o.target == Target::Upstream) {
        let r = o.peak_rss_mib / u.peak_rss_mib;
        s += &format!(
            "; peak RSS ≤ ¼ of upstream: {} ({r:.2})",
            if r <= 0.25 { "met" } else { "MISSED" }
        );
    }
    s
}

/// Writes `{name}_summary.csv`, `{name}_timeline.csv` and `{name}_rss.png`,
/// `{name}_cpu.png`; returns the paths.
pub fn write_outputs(cfg: &Config, outcomes: &[Outcome]) -> Result<Vec<PathBuf>> {
    let dir = &cfg.common.out_dir;
    let mut paths = Vec::new();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.target.name().into(),
                cfg.proxies.to_string(),
                cfg.services.to_string(),
                cfg.secrets.to_string(),
                o.first_response_s.map(num).unwrap_or_default(),
                num(o.complete_s),
                o.envoy_complete_s.map(num).unwrap_or_default(),
                num(o.cpu_at_complete),
                num(o.cpu_total),
                num(o.peak_rss_mib),
                num(o.steady_rss_mib),
                o.bytes_to_complete.to_string(),
            ]
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.common.name),
        &[
            "controller",
            "proxies",
            "services",
            "secrets",
            "first_response_s",
            "complete_snapshot_s",
            "envoy_complete_s",
            "cpu_s_to_complete",
            "cpu_s_total",
            "peak_rss_mib",
            "steady_rss_mib",
            "bytes_to_complete",
        ],
        &rows,
    )?);
    let timeline: Vec<Vec<String>> = outcomes
        .iter()
        .flat_map(|o| {
            o.samples.iter().map(move |s| {
                vec![
                    o.target.name().to_string(),
                    format!("{:.2}", s.t),
                    format!("{:.1}", s.stat.rss_mib),
                    format!("{:.2}", s.stat.cpu_secs),
                ]
            })
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_timeline.csv", cfg.common.name),
        &["controller", "t_s", "rss_mib", "cpu_s"],
        &timeline,
    )?);
    let series = |f: fn(&Sample) -> f64| -> Vec<Series> {
        outcomes
            .iter()
            .map(|o| Series {
                name: format!("{} (complete at {:.1} s)", o.target.label(), o.complete_s),
                points: o.samples.iter().map(|s| (s.t, f(s))).collect(),
            })
            .collect()
    };
    let title = format!(
        "Cold start: {} proxies, {} services, {} secrets",
        cfg.proxies, cfg.services, cfg.secrets
    );
    let rss = dir.join(format!("{}_rss.png", cfg.common.name));
    LineChart {
        title: title.clone(),
        x_label: "seconds since the controller was started".into(),
        y_label: "controller RSS (MiB)".into(),
        series: series(|s| s.stat.rss_mib),
        log_y: false,
        markers: false,
    }
    .save(&rss)?;
    paths.push(rss);
    let cpu = dir.join(format!("{}_cpu.png", cfg.common.name));
    LineChart {
        title,
        x_label: "seconds since the controller was started".into(),
        y_label: "controller CPU time used (s)".into(),
        series: series(|s| s.stat.cpu_secs),
        log_y: false,
        markers: false,
    }
    .save(&cpu)?;
    paths.push(cpu);
    Ok(paths)
}

/// The bench binary's body: run, print, write.
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
