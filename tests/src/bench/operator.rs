//! Scenario 6 of issue 7, the operator: a ContourDeployment is created and
//! `contour_operator::reconcile` runs in-process against the real API
//! server until every child is applied (first reconcile), then reconciles
//! the unchanged instance again and again (the no-op reconcile: what a
//! resync or an unrelated event costs). Requests are counted on the wire
//! (reads = GET, writes = everything else); CPU is this process's.
//!
//! Upstream Contour has no operator that reconciles a ContourDeployment
//! this way (its Gateway provisioner is a different design), so this
//! scenario reports ours only.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_operator::build::{Scope, managed_kinds};
use contour_operator::names::Names;

use super::controller::proc_stat;
use super::plot::{LineChart, Series};
use super::report::{Table, num, write_csv};
use super::{Result, env_or, ms, percentile};
use crate::ApiServer;

/// Sizes.
#[derive(Debug, Clone)]
pub struct Config {
    /// ContourDeployments, one after the other (`OPERATOR_INSTANCES`, 3).
    pub instances: usize,
    /// No-op reconciles per instance (`OPERATOR_NOOP_RUNS`, 30).
    pub noop_runs: usize,
    /// Where CSV and PNG go.
    pub out_dir: PathBuf,
    /// File name prefix.
    pub name: String,
}

impl Config {
    /// The defaults, overridden by the environment.
    pub fn from_env() -> Config {
        Config {
            instances: env_or("OPERATOR_INSTANCES", 3),
            noop_runs: env_or("OPERATOR_NOOP_RUNS", 30),
            out_dir: super::out_dir_from_env(),
            name: "operator".into(),
        }
    }
}

/// Requests counted by [`Counting`].
#[derive(Debug, Default)]
pub struct Requests {
    /// GETs (get, list).
    pub reads: AtomicU64,
    /// Everything else (apply, patch, delete, create).
    pub writes: AtomicU64,
}

impl Requests {
    fn take(&self) -> (u64, u64) {
        (
            self.reads.swap(0, Ordering::SeqCst),
            self.writes.swap(0, Ordering::SeqCst),
        )
    }
}

/// A tower layer counting requests by method.
#[derive(Clone)]
pub struct Counting(pub Arc<Requests>);

/// The service of [`Counting`].
pub struct Counted<S> {
    inner: S,
    counts: Arc<Requests>,
}

impl<S> tower::Layer<S> for Counting {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.0.clone(),
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, req: http::Request<B>) -> S::Future {
        if req.method() == http::Method::GET {
            self.counts.reads.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.writes.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.call(req)
    }
}

async fn counting_client(api: &ApiServer) -> Result<(Client, Arc<Requests>)> {
    crate::init_crypto();
    let kc = kube::config::Kubeconfig::read_from(api.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let counts = Arc::new(Requests::default());
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&Counting(counts.clone()))
        .build();
    Ok((client, counts))
}

/// One reconcile's cost.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Wall time.
    pub took: Duration,
    /// GET requests.
    pub reads: u64,
    /// Other requests.
    pub writes: u64,
    /// CPU seconds of this process during it.
    pub cpu_secs: f64,
}

/// One instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its name.
    pub name: String,
    /// Create → first reconcile returned (every child applied).
    pub first: Run,
    /// Children found afterwards (labelled, in every managed kind).
    pub children: usize,
    /// Writes the first reconcile reported.
    pub reported_writes: u32,
    /// The no-op reconciles.
    pub noop: Vec<Run>,
}

/// Counts the labelled children of an instance.
pub async fn count_children(client: &Client, ns: &str, name: &str) -> Result<usize> {
    let names = Names::new(ns, name);
    let selector = ListParams::default().labels(&names.owner_selector());
    let mut n = 0;
    for (resource, scope) in managed_kinds() {
        let api: Api<DynamicObject> = match scope {
            Scope::Own => Api::namespaced_with(client.clone(), ns, &resource),
            Scope::AnyNamespace | Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        // ServiceMonitors: no CRD here, so the list fails; nothing to count.
        if let Ok(list) = api.list_metadata(&selector).await {
            n += list.items.len();
        }
    }
    Ok(n)
}

async fn timed(
    ctx: &contour_operator::Context,
    cd: &ContourDeployment,
    counts: &Requests,
) -> Result<(Run, contour_operator::Report)> {
    let me = std::process::id();
    counts.take();
    let cpu0 = proc_stat(me).map(|s| s.cpu_secs).unwrap_or(0.0);
    let t0 = Instant::now();
    let report = contour_operator::reconcile(ctx, cd)
        .await
        .map_err(|e| super::err(format!("reconcile: {e}")))?;
    let took = t0.elapsed();
    let cpu1 = proc_stat(me).map(|s| s.cpu_secs).unwrap_or(0.0);
    let (reads, writes) = counts.take();
    Ok((
        Run {
            took,
            reads,
            writes,
            cpu_secs: cpu1 - cpu0,
        },
        report,
    ))
}

/// Runs the scenario.
pub async fn run(cfg: &Config) -> Result<Vec<Instance>> {
    let api = ApiServer::shared()?;
    let admin = api.admin_client().await?;
    crate::k8s::install_crds(&admin).await?;
    let ns = api.namespace("op-bench").await?;
    let (client, counts) = counting_client(api).await?;
    let ctx = contour_operator::Context {
        client: client.clone(),
        images: contour_operator::validate::Images {
            contour: "contour:bench".into(),
            envoy: "envoy:bench".into(),
        },
    };
    let cds: Api<ContourDeployment> = Api::namespaced(admin.clone(), &ns);
    let mut out = Vec::new();
    for i in 0..cfg.instances.max(1) {
        let name = format!("bench-{i}");
        let cd: ContourDeployment = serde_json::from_value(json!({
            "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
            "metadata": {"name": name}, "spec": {}}))?;
        let t0 = Instant::now();
        let created = cds.create(&Default::default(), &cd).await?;
        let (mut first, report) = timed(&ctx, &created, &counts).await?;
        first.took = t0.elapsed();
        let children = count_children(&admin, &ns, &name).await?;
        let mut noop = Vec::new();
        for _ in 0..cfg.noop_runs {
            let current = cds.get(&name).await?;
            let (run, _) = timed(&ctx, &current, &counts).await?;
            noop.push(run);
        }
        eprintln!(
            "operator {name}: first reconcile {:.1} ms ({children} children), no-op p50 {:.1} ms",
            ms(first.took),
            ms(percentile(&sorted(&noop), 0.5))
        );
        out.push(Instance {
            name,
            first,
            children,
            reported_writes: report.writes,
            noop,
        });
    }
    Ok(out)
}

fn sorted(runs: &[Run]) -> Vec<Duration> {
    let mut v: Vec<Duration> = runs.iter().map(|r| r.took).collect();
    v.sort();
    v
}

fn mean(runs: &[Run], f: fn(&Run) -> f64) -> f64 {
    runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
}

/// The Markdown table.
pub fn table(cfg: &Config, instances: &[Instance]) -> String {
    let mut t = Table::new(&[
        "instance",
        "create → all children applied",
        "children",
        "requests (reads / writes)",
        "CPU",
        "no-op reconcile p50",
        "p99",
        "no-op requests (reads / writes)",
        "no-op CPU",
    ]);
    for i in instances {
        let s = sorted(&i.noop);
        t.row(vec![
            i.name.clone(),
            format!("{:.1} ms", ms(i.first.took)),
            i.children.to_string(),
            format!("{} / {}", i.first.reads, i.first.writes),
            format!("{:.1} ms", i.first.cpu_secs * 1e3),
            format!("{:.1} ms", ms(percentile(&s, 0.5))),
            format!("{:.1} ms", ms(percentile(&s, 0.99))),
            format!(
                "{:.1} / {:.1}",
                mean(&i.noop, |r| r.reads as f64),
                mean(&i.noop, |r| r.writes as f64)
            ),
            format!("{:.1} ms", mean(&i.noop, |r| r.cpu_secs) * 1e3),
        ]);
    }
    format!(
        "Operator: {} ContourDeployment(s) created one after another in one namespace, {} no-op reconciles each; ours only (upstream has no equivalent)\n\n{}",
        cfg.instances,
        cfg.noop_runs,
        t.markdown()
    )
}

/// Writes `{name}_summary.csv`, `{name}_runs.csv` and `{name}_noop.png`.
pub fn write_outputs(cfg: &Config, instances: &[Instance]) -> Result<Vec<PathBuf>> {
    let dir = &cfg.out_dir;
    let mut paths = Vec::new();
    let rows: Vec<Vec<String>> = instances
        .iter()
        .map(|i| {
            let s = sorted(&i.noop);
            vec![
                i.name.clone(),
                num(ms(i.first.took)),
                i.children.to_string(),
                i.first.reads.to_string(),
                i.first.writes.to_string(),
                i.reported_writes.to_string(),
                num(i.first.cpu_secs * 1e3),
                num(ms(percentile(&s, 0.5))),
                num(ms(percentile(&s, 0.99))),
                num(mean(&i.noop, |r| r.reads as f64)),
                num(mean(&i.noop, |r| r.writes as f64)),
                num(mean(&i.noop, |r| r.cpu_secs) * 1e3),
            ]
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.name),
        &[
            "instance",
            "first_reconcile_ms",
            "children",
            "first_reads",
            "first_writes",
            "first_reported_writes",
            "first_cpu_ms",
            "noop_p50_ms",
            "noop_p99_ms",
            "noop_reads",
            "noop_writes",
            "noop_cpu_ms",
        ],
        &rows,
    )?);
    let runs: Vec<Vec<String>> = instances
        .iter()
        .flat_map(|i| {
            std::iter::once(("first", 0usize, i.first))
                .chain(i.noop.iter().enumerate().map(|(k, r)| ("noop", k + 1, *r)))
                .map(|(kind, k, r)| {
                    vec![
                        i.name.clone(),
                        kind.to_string(),
                        k.to_string(),
                        format!("{:.2}", ms(r.took)),
                        r.reads.to_string(),
                        r.writes.to_string(),
                        format!("{:.2}", r.cpu_secs * 1e3),
                    ]
                })
                .collect::<Vec<_>>()
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_runs.csv", cfg.name),
        &["instance", "kind", "run", "ms", "reads", "writes", "cpu_ms"],
        &runs,
    )?);
    let png = dir.join(format!("{}_noop.png", cfg.name));
    LineChart {
        title: "Operator: reconcile of an unchanged ContourDeployment".into(),
        x_label: "reconcile # (0 = first, applies every child)".into(),
        y_label: "wall time (ms, log)".into(),
        series: instances
            .iter()
            .map(|i| Series {
                name: i.name.clone(),
                points: std::iter::once((0.0, ms(i.first.took)))
                    .chain(
                        i.noop
                            .iter()
                            .enumerate()
                            .map(|(k, r)| ((k + 1) as f64, ms(r.took))),
                    )
                    .collect(),
            })
            .collect(),
        log_y: true,
        markers: true,
    }
    .save(&png)?;
    paths.push(png);
    Ok(paths)
}

/// The bench binary's body.
pub async fn main() -> Result<()> {
    crate::init_crypto();
    let cfg = Config::from_env();
    let instances = run(&cfg).await?;
    println!("{}", table(&cfg, &instances));
    for p in write_outputs(&cfg, &instances)? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
