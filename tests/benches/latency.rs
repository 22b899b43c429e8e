//! End-to-end latency and memory (`make bench`, `make bench-compare`): with N
//! HTTPProxies preloaded into the real API server and a real Envoy following
//! the controller, how long from applying a new HTTPProxy to (a) the first
//! 200 through Envoy and (b) the proxy's status reading `valid`, and the
//! controller's resident memory. Prints p50/p99 per N as a Markdown table.
//!
//! `LATENCY_SIZES=1000,5000`, `LATENCY_SAMPLES=40`, and
//! `LATENCY_TARGETS=ours,upstream` (upstream Contour, built by
//! `tests/tools/install.sh upstream_contour`, run with its defaults against
//! the same API server, same Envoy and bootstrap) override the defaults.

#![allow(clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use contour_tests::contour::XdsMode;
use contour_tests::k8s::{apply, install_crds, service_for};
use contour_tests::{ApiServer, ContourServe, TestNet, XdsPki, free_port, process, tools};
use futures::StreamExt;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn proxy(name: &str, host: &str, service: &str) -> Value {
    json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name},
        "spec": {"virtualhost": {"fqdn": host}, "routes": [
            {"conditions": [{"prefix": "/"}], "services": [{"name": service, "port": 80}]},
            {"conditions": [{"prefix": "/api"}, {"header": {"name": "x-canary", "present": true}}],
             "services": [{"name": service, "port": 80}], "timeoutPolicy": {"response": "5s"}}
        ]}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Ours,
    Upstream,
}

/// A running controller: ours through the harness, or upstream's binary.
enum Controller {
    Ours(ContourServe),
    Upstream(std::process::Child),
}

impl Controller {
    fn pid(&self) -> u32 {
        match self {
            Controller::Ours(c) => c.pid().unwrap_or(0),
            Controller::Upstream(c) => c.id(),
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Controller::Upstream(c) = self {
            process::kill(c);
        }
    }
}

/// Upstream's CRDs that ours do not define (it watches ExtensionServices and
/// reads ContourConfigurations); ours stay as they are.
async fn upstream_only_crds(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use serde::Deserialize;
    let src = tools::upstream_contour(tools::version("CONTOUR_VERSION").unwrap_or("v1.33.8"))?;
    let text = std::fs::read_to_string(src.join("examples/contour/01-crds.yaml"))?;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let crd = CustomResourceDefinition::deserialize(doc)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        if name.starts_with("extensionservices.") || name.starts_with("contourconfigurations.") {
            crds.patch(
                &name,
                &kube::api::PatchParams::apply("bench").force(),
                &kube::api::Patch::Apply(&crd),
            )
            .await?;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

async fn start(
    target: Target,
    api: &ApiServer,
    ns: &str,
    listen: u16,
) -> Result<(Controller, u16, Option<XdsPki>)> {
    match target {
        Target::Ours => {
            let pki = XdsPki::new(ns)?;
            let flags = [
                format!("--envoy-service-http-port={listen}"),
                format!("--leader-election-resource-namespace={ns}"),
                "--log-level=warn".to_string(),
            ];
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let c = ContourServe::start(api, Some(&pki), &flags).await?;
            let port = c.xds_port;
            Ok((Controller::Ours(c), port, Some(pki)))
        }
        Target::Upstream => {
            let bin = tools::cache_dir()
                .join(format!(
                    "contour-{}",
                    tools::version("CONTOUR_VERSION").unwrap_or("v1.33.8")
                ))
                .join("bin/contour");
            if !bin.is_file() {
                return Err(format!(
                    "{} missing: run `bash tests/tools/install.sh upstream_contour`",
                    bin.display()
                )
                .into());
            }
            let xds = free_port()?;
            let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
            let mut cmd = Command::new(bin);
            cmd.args(["serve", "--insecure", "--xds-address=127.0.0.1"])
                .arg(format!("--xds-port={xds}"))
                .arg(format!("--kubeconfig={}", api.kubeconfig().display()))
                .arg("--http-address=127.0.0.1")
                .arg(format!("--http-port={}", ports[0]))
                .arg("--health-address=127.0.0.1")
                .arg(format!("--health-port={}", ports[1]))
                .arg(format!("--debug-http-port={}", ports[2]))
                .arg("--stats-address=127.0.0.1")
                .arg(format!("--stats-port={}", ports[3]))
                .arg("--envoy-service-http-address=127.0.0.1")
                .arg(format!("--envoy-service-http-port={listen}"))
                .arg(format!("--leader-election-resource-namespace={ns}"))
                .env("CONTOUR_NAMESPACE", ns);
            let log = process::run_dir()?.join(format!("upstream-{ns}.log"));
            let child = process::spawn(cmd, &log)?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok((Controller::Upstream(child), xds, None))
        }
    }
}

struct Figures {
    first_200: Vec<Duration>,
    valid: Vec<Duration>,
    rss_mib: f64,
}

async fn run(target: Target, preload: usize, samples: usize) -> Result<Figures> {
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    if target == Target::Upstream {
        upstream_only_crds(&client).await?;
    }
    let ns = api
        .namespace(&format!("latency-{target:?}-{preload}").to_ascii_lowercase())
        .await?;
    let net = TestNet::shared()?;
    let backend = net.backend("bench")?;
    for m in service_for("bench", &[backend.addr]) {
        apply(&client, &ns, &m).await?;
    }
    let started = Instant::now();
    futures::stream::iter(0..preload)
        .map(|i| {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                let m = proxy(&format!("pre-{i}"), &format!("pre-{i}.{ns}.bench"), "bench");
                apply(&client, &ns, &m).await
            }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("preload: {e}");
            }
        })
        .await;
    eprintln!(
        "preloaded {preload} proxies in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let listen = free_port()?;
    let (controller, xds_port, pki) = start(target, api, &ns, listen).await?;
    let envoy =
        contour_tests::contour::envoy_from_bootstrap_with(xds_port, pki.as_ref(), XdsMode::PerType)
            .await?;
    let http = reqwest::Client::new();
    // Wait until the preloaded set is live.
    let probe = format!("pre-{}.{ns}.bench", preload.saturating_sub(1));
    let warm = Instant::now();
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{listen}/"))
            .header("Host", &probe)
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) || preload == 0 {
            break;
        }
        if warm.elapsed() > Duration::from_secs(600) {
            return Err(format!("preloaded proxies never served\n{}", envoy.log()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{target:?}: preloaded set live after {:.1} s",
        warm.elapsed().as_secs_f64()
    );
    let proxies: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        &ns,
        &contour_tests::k8s::resource_of(&proxy("x", "x", "x"))?,
    );
    // Measure the steady state: wait until the controller has written the
    // preloaded proxies' statuses (its start-up backlog loads the API server
    // and the CPU the samples share).
    let settle = Instant::now();
    loop {
        let list = proxies.list(&Default::default()).await?;
        let valid = list
            .items
            .iter()
            .filter(|o| o.data["status"]["currentStatus"] == "valid")
            .count();
        if valid >= preload {
            break;
        }
        if settle.elapsed() > Duration::from_secs(900) {
            return Err(format!("only {valid} of {preload} preloaded statuses written").into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!(
        "{target:?}: preloaded statuses written after {:.1} s",
        settle.elapsed().as_secs_f64()
    );
    let (mut first_200, mut valid, mut acked) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        let name = format!("new-{i}");
        let host = format!("{name}.{ns}.bench");
        let t0 = Instant::now();
        apply(&client, &ns, &proxy(&name, &host, "bench")).await?;
        acked.push(t0.elapsed());
        loop {
            let r = http
                .get(format!("http://127.0.0.1:{listen}/"))
                .header("Host", &host)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                first_200.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(120) {
                return Err(format!("{host} never served").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        loop {
            let o = proxies.get(&name).await?;
            if o.data["status"]["currentStatus"] == "valid" {
                valid.push(t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(300) {
                return Err(format!("{name} never valid").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let rss_mib = rss_mib(controller.pid());
    acked.sort();
    eprintln!(
        "{target:?} {preload}: the API server answered the apply after p50 {} / p99 {}",
        ms(percentile(&acked, 0.5)),
        ms(percentile(&acked, 0.99))
    );
    // Where the time went: Envoy applying route updates, and (ours) the
    // rebuild and the push. Envoy's histograms show after a stats flush (5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stats = http
        .get(format!(
            "http://127.0.0.1:{}/stats?filter=update_duration",
            envoy.admin_port()
        ))
        .send()
        .await?
        .text()
        .await?;
    for line in stats.lines().filter(|l| l.contains("update_duration")) {
        eprintln!("{target:?} {preload}: envoy {line}");
    }
    if let Controller::Ours(c) = &controller {
        for name in [
            "contour_dagrebuild_seconds",
            "contour_xds_cache_seconds",
            "contour_xds_push_latency_seconds",
        ] {
            let sum: f64 = sum_metric(c, &format!("{name}_sum")).await;
            let count: f64 = sum_metric(c, &format!("{name}_count")).await;
            if count > 0.0 {
                eprintln!(
                    "{target:?} {preload}: {name} mean {:.2} ms over {count}",
                    sum / count * 1e3
                );
            }
        }
    }
    drop(envoy);
    drop(controller);
    // The API server outlives this run: leave no proxies for the next
    // controller to serve (and, upstream, to write statuses for).
    proxies
        .delete_collection(&Default::default(), &Default::default())
        .await?;
    first_200.sort();
    valid.sort();
    Ok(Figures {
        first_200,
        valid,
        rss_mib,
    })
}

/// The sum of every sample of a metric family (all label sets).
async fn sum_metric(c: &ContourServe, name: &str) -> f64 {
    let Ok((_, text)) = c.get("/metrics").await else {
        return 0.0;
    };
    contour_tests::prometheus::Metrics::parse(&text).total(name)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    contour_tests::init_crypto();
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let sizes: Vec<usize> = env("LATENCY_SIZES", "1000,5000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let samples: usize = env("LATENCY_SAMPLES", "40").parse().unwrap_or(40);
    let targets: Vec<Target> = env("LATENCY_TARGETS", "ours")
        .split(',')
        .filter_map(|t| match t.trim() {
            "ours" => Some(Target::Ours),
            "upstream" => Some(Target::Upstream),
            _ => None,
        })
        .collect();
    println!(
        "| controller | preloaded proxies | samples | apply → first 200 p50 | p99 | apply → status valid p50 | p99 | controller RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        for &t in &targets {
            let f = run(t, n, samples).await?;
            println!(
                "| {} | {n} | {samples} | {} | {} | {} | {} | {:.0} MiB |",
                match t {
                    Target::Ours => "ours",
                    Target::Upstream => "upstream v1.33.8",
                },
                ms(percentile(&f.first_200, 0.5)),
                ms(percentile(&f.first_200, 0.99)),
                ms(percentile(&f.valid, 0.5)),
                ms(percentile(&f.valid, 0.99)),
                f.rss_mib,
            );
        }
    }
    Ok(())
}
