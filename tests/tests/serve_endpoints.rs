//! `contour serve`'s HTTP endpoints split as upstream's flags say: metrics
//! on `--http-port`, health on `--health-port`, the DAG on
//! `--debug-http-port`; and a rate-limited Kubernetes client
//! (`--kubernetes-client-qps`) still follows the cluster and serves routes.

mod common;

use std::time::{Duration, Instant};

use common::{TestResult, ground};
use contour_tests::k8s::service_for;
use contour_tests::{TestNet, free_port};
use serde_json::json;

async fn status(port: u16, path: &str) -> u16 {
    match reqwest::get(format!("http://127.0.0.1:{port}{path}")).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn metrics_health_and_debug_on_their_own_ports() -> TestResult {
    // Free ports are picked, released and bound again: another process of
    // the test run may take one in between. The debug endpoint does not stop
    // serve when its port is taken (it says so in the log); start again then.
    let mut attempt = 0;
    let (g, health, debug) = loop {
        attempt += 1;
        let (health, debug) = (free_port()?, free_port()?);
        let g = ground(
            "endpoints",
            &[
                &format!("--health-port={health}"),
                &format!("--debug-http-port={debug}"),
                "--kubernetes-client-qps=20",
                "--kubernetes-client-burst=5",
            ],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !g.contour.log().contains("could not bind") || attempt == 3 {
            break (g, health, debug);
        }
    };
    let b = TestNet::shared()?.backend("endpoints")?;
    for m in service_for("web", &[b.addr]) {
        g.apply(&m).await?;
    }
    g.apply(
        &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "web"},
        "spec": {"virtualhost": {"fqdn": "ep.example.com"},
                 "routes": [{"services": [{"name": "web", "port": 80}]}]}}),
    )
    .await?;
    g.expect("ep.example.com", "/", (200, "endpoints")).await?;

    let metrics = g.contour.http_port;
    let started = Instant::now();
    while status(health, "/readyz").await != 200 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(health, "/readyz").await, 200);
    assert_eq!(status(health, "/healthz").await, 200);
    assert_eq!(status(health, "/metrics").await, 404);
    assert_eq!(status(metrics, "/metrics").await, 200);
    assert_eq!(status(metrics, "/healthz").await, 404);
    assert_eq!(status(metrics, "/debug/dag").await, 404);
    assert_eq!(
        status(debug, "/debug/dag").await,
        200,
        "contour's log:\n{}",
        common::tail(&g.contour.log(), 20)
    );
    assert_eq!(status(debug, "/metrics").await, 404);
    Ok(())
}
