//! Scenario 6 of issue 7, the operator: a ContourDeployment is created and
//! `contour_operator::reconcile` runs in-process against the real API
//! server until every child is applied (first reconcile), then reconciles
//! the unchanged instance again and again (the no-op reconcile: what a
//! resync or an unrelated event costs). Requests are counted on the wire
//! (reads = GET, writes = everything else); CPU is this process's.
//!
//! Upstream's counterpart is its Gateway provisioner, run as a process with
//! a ContourDeployment + GatewayClass + Gateway per instance; see
//! [`super::operator_upstream`] for what it creates and how its reconciles
//! are triggered and measured (from its controller-runtime metrics). The
//! targets are `$TARGETS` (the Makefile passes both), as in every scenario.

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
use super::operator_upstream::{Checks, Outcome};
use super::plot::{LineChart, Series};
use super::report::{Table, num, ratio, write_csv};
use super::{Result, Target, env_or, ms, percentile};
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

/// A client of `api` whose requests are counted (on the wire, by method).
pub async fn counting_client(api: &ApiServer) -> Result<(Client, Arc<Requests>)> {
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

/// The labelled children of an instance, `Kind/name`, in managed-kind order.
pub async fn list_children(client: &Client, ns: &str, name: &str) -> Result<Vec<String>> {
    let names = Names::new(ns, name);
    let selector = ListParams::default().labels(&names.owner_selector());
    let mut out = Vec::new();
    for (resource, scope) in managed_kinds() {
        let api: Api<DynamicObject> = match scope {
            Scope::Own => Api::namespaced_with(client.clone(), ns, &resource),
            Scope::AnyNamespace | Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        // ServiceMonitors: no CRD here, so the list fails; nothing to count.
        if let Ok(list) = api.list_metadata(&selector).await {
            for o in list.items {
                out.push(format!(
                    "{}/{}",
                    resource.kind,
                    o.metadata.name.unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

/// Counts the labelled children of an instance.
pub async fn count_children(client: &Client, ns: &str, name: &str) -> Result<usize> {
    Ok(list_children(client, ns, name).await?.len())
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
        pruned: Default::default(),
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
        let listed = list_children(&admin, &ns, &name).await?;
        if i == 0 {
            eprintln!("ours children of {name}: {}", listed.join(", "));
        }
        let children = listed.len();
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

/// The median (nearest rank) of `f` over instances; `None` when there are none.
fn median(instances: &[Instance], f: impl Fn(&Instance) -> f64) -> Option<f64> {
    let mut v: Vec<f64> = instances.iter().map(f).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * 0.5).round() as usize])
}

/// Every no-op run of every instance.
fn pooled(instances: &[Instance]) -> Vec<Run> {
    instances
        .iter()
        .flat_map(|i| i.noop.iter().copied())
        .collect()
}

const COLUMNS: [&str; 9] = [
    "instance",
    "create → all children applied",
    "children",
    "requests (reads / writes)",
    "CPU",
    "no-op reconcile p50",
    "p99",
    "no-op requests (reads / writes)",
    "no-op CPU",
];

fn instance_row(i: &Instance) -> Vec<String> {
    let s = sorted(&i.noop);
    vec![
        i.name.clone(),
        format!("{:.1} ms", ms(i.first.took)),
        i.children.to_string(),
        format!("{} / {}", i.first.reads, i.first.writes),
        format!("{:.1} ms", i.first.cpu_secs * 1e3),
        format!("{:.2} ms", ms(percentile(&s, 0.5))),
        format!("{:.2} ms", ms(percentile(&s, 0.99))),
        format!(
            "{:.1} / {:.1}",
            mean(&i.noop, |r| r.reads as f64),
            mean(&i.noop, |r| r.writes as f64)
        ),
        format!("{:.1} ms", mean(&i.noop, |r| r.cpu_secs) * 1e3),
    ]
}

/// The Markdown table of ours.
pub fn table(cfg: &Config, instances: &[Instance]) -> String {
    let mut t = Table::new(&COLUMNS);
    for i in instances {
        t.row(instance_row(i));
    }
    format!(
        "Operator, ours: {} ContourDeployment(s) created one after another in one namespace, `contour_operator::reconcile` in-process, {} no-op reconciles each (requests counted on the wire, CPU of this process)\n\n{}",
        cfg.instances,
        cfg.noop_runs,
        t.markdown()
    )
}

fn per_trigger(c: &Checks) -> String {
    if c.triggers_ok() {
        format!("1 × {}", c.per_trigger.len())
    } else {
        format!("{:?}", c.per_trigger)
    }
}

/// The Markdown table of upstream's Gateway provisioner.
pub fn upstream_table(cfg: &Config, up: &Outcome) -> String {
    let mut header: Vec<&str> = COLUMNS.to_vec();
    header.extend([
        "reconciles at create (gateway + class)",
        "reconciles per no-op trigger",
    ]);
    let mut t = Table::new(&header);
    for (i, c) in up.instances.iter().zip(&up.checks) {
        let mut row = instance_row(i);
        row.push(format!(
            "{} + {}",
            c.create_gateway_reconciles, c.create_class_reconciles
        ));
        row.push(per_trigger(c));
        t.row(row);
    }
    let mut rewritten: Vec<&str> = up
        .checks
        .iter()
        .flat_map(|c| c.rewritten.iter().map(String::as_str))
        .collect();
    rewritten.sort();
    rewritten.dedup();
    let rewritten = if rewritten.is_empty() {
        "none".to_string()
    } else {
        rewritten.join(", ")
    };
    let mut updates: Vec<(String, u64)> = Vec::new();
    for (k, n) in up.checks.iter().flat_map(|c| c.noop_updates.iter()) {
        match updates.iter_mut().find(|(u, _)| u == k) {
            Some((_, m)) => *m += n,
            None => updates.push((k.clone(), *n)),
        }
    }
    let runs = (up.checks.len() * cfg.noop_runs).max(1) as f64;
    let updates = if updates.is_empty() {
        "none".to_string()
    } else {
        updates
            .iter()
            .map(|(k, n)| format!("{k} {}", num(*n as f64 / runs)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let errors: u64 = up.checks.iter().map(|c| c.errors).sum();
    let late: usize = up.checks.iter().map(|c| c.late).sum();
    format!(
        "Operator, {}: its Gateway provisioner (`contour gateway-provisioner`, a process pinned like the other benches); {} ContourDeployment + GatewayClass + Gateway created one after another in one namespace (done = Gateway `Accepted: True`, set after every child is ensured), {} no-op reconciles each (trigger: an annotation on the Gateway, ≥ {} ms apart; wall time = `controller_runtime_reconcile_time_seconds`, requests = `rest_client_requests_total` deltas, CPU of the provisioner process); reconcile errors: {errors}, triggers later than the settle time: {late}\n\n{}\nUpdates (PUT) per no-op reconcile, by resource (the API server's `apiserver_request_total`): {updates}; children they changed (resourceVersion): {rewritten}\n",
        Target::Upstream.label(),
        cfg.instances,
        cfg.noop_runs,
        super::operator_upstream::gap().as_millis(),
        t.markdown()
    )
}

/// One controller's figures for the side-by-side table.
fn summary(instances: &[Instance]) -> Vec<Option<f64>> {
    let noop = pooled(instances);
    let s = sorted(&noop);
    let some = !noop.is_empty();
    vec![
        median(instances, |i| ms(i.first.took)),
        median(instances, |i| i.children as f64),
        median(instances, |i| i.first.reads as f64),
        median(instances, |i| i.first.writes as f64),
        median(instances, |i| i.first.cpu_secs * 1e3),
        some.then(|| ms(percentile(&s, 0.5))),
        some.then(|| ms(percentile(&s, 0.99))),
        some.then(|| mean(&noop, |r| r.reads as f64)),
        some.then(|| mean(&noop, |r| r.writes as f64)),
        some.then(|| mean(&noop, |r| r.cpu_secs) * 1e3),
    ]
}

const SUMMARY_COLUMNS: [&str; 10] = [
    "create → all children applied, ms (median)",
    "children",
    "create reads",
    "create writes",
    "create CPU, ms",
    "no-op p50, ms",
    "no-op p99, ms",
    "no-op reads",
    "no-op writes",
    "no-op CPU, ms",
];

/// The side-by-side Markdown table (ours, upstream, ratio ours/upstream).
pub fn compare_table(cfg: &Config, ours: &[Instance], up: &Outcome) -> String {
    let mut header = vec!["controller"];
    header.extend(SUMMARY_COLUMNS);
    let mut t = Table::new(&header);
    let (o, u) = (summary(ours), summary(&up.instances));
    for (label, v) in [(Target::Ours.label(), &o), (Target::Upstream.label(), &u)] {
        let mut row = vec![label];
        row.extend(v.iter().map(|x| x.map(num).unwrap_or_else(|| "–".into())));
        t.row(row);
    }
    let mut row = vec!["ratio ours/upstream".to_string()];
    row.extend(o.iter().zip(&u).map(|(a, b)| ratio(*a, *b)));
    t.row(row);
    format!(
        "Operator side by side: {} instance(s), {} no-op reconciles each; create figures are the median over instances, no-op figures pool every run (reads = GET, writes = the rest; means per reconcile)\n\n{}",
        cfg.instances,
        cfg.noop_runs,
        t.markdown()
    )
}

/// Every table of a run.
pub fn report(cfg: &Config, ours: Option<&[Instance]>, up: Option<&Outcome>) -> String {
    let mut out = Vec::new();
    if let Some(o) = ours {
        out.push(table(cfg, o));
    }
    if let Some(u) = up {
        out.push(upstream_table(cfg, u));
    }
    if let (Some(o), Some(u)) = (ours, up) {
        out.push(compare_table(cfg, o, u));
    }
    out.join("\n")
}

/// Writes `{name}_summary.csv`, `{name}_runs.csv` and `{name}_noop.png` for ours.
pub fn write_outputs(cfg: &Config, instances: &[Instance]) -> Result<Vec<PathBuf>> {
    write_all(cfg, Some(instances), None)
}

/// Writes `{name}_summary.csv`, `{name}_runs.csv`, `{name}_noop.png` and,
/// with both controllers, `{name}_compare.csv`.
pub fn write_all(
    cfg: &Config,
    ours: Option<&[Instance]>,
    up: Option<&Outcome>,
) -> Result<Vec<PathBuf>> {
    let dir = &cfg.out_dir;
    let mut paths = Vec::new();
    // (controller, instance, upstream's checks when upstream)
    let mut all: Vec<(Target, &Instance, Option<&Checks>)> = Vec::new();
    if let Some(o) = ours {
        all.extend(o.iter().map(|i| (Target::Ours, i, None)));
    }
    if let Some(u) = up {
        all.extend(
            u.instances
                .iter()
                .zip(&u.checks)
                .map(|(i, c)| (Target::Upstream, i, Some(c))),
        );
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(t, i, c)| {
            let s = sorted(&i.noop);
            vec![
                t.name().to_string(),
                i.name.clone(),
                num(ms(i.first.took)),
                i.children.to_string(),
                i.first.reads.to_string(),
                i.first.writes.to_string(),
                match c {
                    None => i.reported_writes.to_string(),
                    Some(_) => String::new(),
                },
                num(i.first.cpu_secs * 1e3),
                num(ms(percentile(&s, 0.5))),
                num(ms(percentile(&s, 0.99))),
                num(mean(&i.noop, |r| r.reads as f64)),
                num(mean(&i.noop, |r| r.writes as f64)),
                num(mean(&i.noop, |r| r.cpu_secs) * 1e3),
                c.map(|c| (c.create_gateway_reconciles + c.create_class_reconciles).to_string())
                    .unwrap_or_else(|| "1".into()),
                c.map(|c| c.triggers_ok().to_string())
                    .unwrap_or_else(|| "true".into()),
            ]
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.name),
        &[
            "controller",
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
            "create_reconciles",
            "one_reconcile_per_trigger",
        ],
        &rows,
    )?);
    let runs: Vec<Vec<String>> = all
        .iter()
        .flat_map(|(t, i, c)| {
            let first_reconciles = c
                .map(|c| c.create_gateway_reconciles + c.create_class_reconciles)
                .unwrap_or(1);
            std::iter::once(("first", 0usize, i.first, first_reconciles))
                .chain(i.noop.iter().enumerate().map(|(k, r)| {
                    let n = c.and_then(|c| c.per_trigger.get(k).copied()).unwrap_or(1);
                    ("noop", k + 1, *r, n)
                }))
                .map(|(kind, k, r, n)| {
                    vec![
                        t.name().to_string(),
                        i.name.clone(),
                        kind.to_string(),
                        k.to_string(),
                        format!("{:.3}", ms(r.took)),
                        r.reads.to_string(),
                        r.writes.to_string(),
                        format!("{:.2}", r.cpu_secs * 1e3),
                        n.to_string(),
                    ]
                })
                .collect::<Vec<_>>()
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_runs.csv", cfg.name),
        &[
            "controller",
            "instance",
            "kind",
            "run",
            "ms",
            "reads",
            "writes",
            "cpu_ms",
            "reconciles",
        ],
        &runs,
    )?);
    if let (Some(o), Some(u)) = (ours, up) {
        let (so, su) = (summary(o), summary(&u.instances));
        let cell = |v: Option<f64>| v.map(num).unwrap_or_default();
        let rows: Vec<Vec<String>> = SUMMARY_COLUMNS
            .iter()
            .zip(so.iter().zip(&su))
            .map(|(m, (a, b))| vec![m.to_string(), cell(*a), cell(*b), ratio(*a, *b)])
            .collect();
        paths.push(write_csv(
            dir,
            &format!("{}_compare.csv", cfg.name),
            &["metric", "ours", "upstream", "ratio_ours_upstream"],
            &rows,
        )?);
    }
    let png = dir.join(format!("{}_noop.png", cfg.name));
    LineChart {
        title: "Operator: reconcile of an unchanged instance".into(),
        x_label: "reconcile # (0 = create -> all children applied)".into(),
        y_label: "wall time (ms, log)".into(),
        series: all
            .iter()
            .map(|(t, i, _)| Series {
                name: format!("{} {}", t.name(), i.name),
                points: std::iter::once((0.0, ms(i.first.took)))
                    .chain(
                        i.noop
                            .iter()
                            .enumerate()
                            .map(|(k, r)| ((k + 1) as f64, ms(r.took).max(1e-3))),
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
    let targets = super::targets_from_env();
    if targets.is_empty() {
        return Err(super::err("no target: TARGETS=ours,upstream"));
    }
    let ours = if targets.contains(&Target::Ours) {
        Some(run(&cfg).await?)
    } else {
        None
    };
    let up = if targets.contains(&Target::Upstream) {
        if ours.is_some() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Some(super::operator_upstream::run(&cfg).await?)
    } else {
        None
    };
    println!("{}", report(&cfg, ours.as_deref(), up.as_ref()));
    for p in write_all(&cfg, ours.as_deref(), up.as_ref())? {
        println!("wrote {}", p.display());
    }
    Ok(())
}
