//! End-to-end latency (`make bench`): with N HTTPProxies preloaded into the
//! real API server and a real Envoy following `contour serve`, how long from
//! applying a new HTTPProxy to (a) the first 200 through Envoy and (b) the
//! proxy's status reading `valid`. Prints p50/p99 per N as a Markdown table.
//!
//! `LATENCY_SIZES=1000,5000` and `LATENCY_SAMPLES=40` override the defaults.

#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use contour_tests::contour::ads_bootstrap;
use contour_tests::k8s::{apply, install_crds, service_for};
use contour_tests::{ApiServer, ContourServe, Envoy, TestNet, XdsPki, free_port};
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

async fn run(preload: usize, samples: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let ns = api.namespace(&format!("latency-{preload}")).await?;
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

    let pki = XdsPki::new(&ns)?;
    let listen = free_port()?;
    let flags = [
        format!("--envoy-service-http-port={listen}"),
        format!("--leader-election-resource-namespace={ns}"),
        "--log-level=warn".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let contour = ContourServe::start(api, Some(&pki), &flags).await?;
    let envoy = Envoy::start(&ads_bootstrap(contour.xds_port, Some(&pki))).await?;
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
        if warm.elapsed() > Duration::from_secs(300) {
            return Err(format!("preloaded proxies never served\n{}", envoy.log()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxies: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        &ns,
        &contour_tests::k8s::resource_of(&proxy("x", "x", "x"))?,
    );
    let (mut first_200, mut valid) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let name = format!("new-{i}");
        let host = format!("{name}.{ns}.bench");
        let t0 = Instant::now();
        apply(&client, &ns, &proxy(&name, &host, "bench")).await?;
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
            if t0.elapsed() > Duration::from_secs(60) {
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
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(format!("{name} never valid").into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    drop(envoy);
    drop(contour);
    first_200.sort();
    valid.sort();
    Ok((first_200, valid))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    contour_tests::init_crypto();
    let sizes: Vec<usize> = std::env::var("LATENCY_SIZES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let samples: usize = std::env::var("LATENCY_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    println!(
        "| preloaded proxies | samples | apply → first 200 p50 | p99 | apply → status valid p50 | p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let (first, valid) = run(n, samples).await?;
        println!(
            "| {n} | {samples} | {} | {} | {} | {} |",
            ms(percentile(&first, 0.5)),
            ms(percentile(&first, 0.99)),
            ms(percentile(&valid, 0.5)),
            ms(percentile(&valid, 0.99)),
        );
    }
    Ok(())
}
