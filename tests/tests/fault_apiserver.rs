//! The control plane's outage under traffic, against real components: etcd
//! and the API server are killed and restarted while a steady client sends
//! requests through Envoy. Envoy keeps serving what it has (no failed
//! request), `contour serve` keeps running, its watches resume, and a change
//! made as soon as the API server is back is applied. (Its own test binary:
//! the outage hits every client of the shared API server.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{TestResult, ground};
use contour_tests::k8s::service_for;
use contour_tests::{ApiServer, TestNet};
use serde_json::{Value, json};

fn proxy(name: &str, host: &str) -> Value {
    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name},
        "spec": {"virtualhost": {"fqdn": host},
                 "routes": [{"services": [{"name": "web", "port": 80}]}]}})
}

#[tokio::test]
async fn an_api_server_outage_loses_no_request_and_no_update() -> TestResult {
    let g = ground("fault-api", &[]).await?;
    let b = TestNet::shared()?.backend("fault-api")?;
    for m in service_for("web", &[b.addr]) {
        g.apply(&m).await?;
    }
    g.apply(&proxy("steady", "steady.example.com")).await?;
    g.expect("steady.example.com", "/", (200, "fault-api"))
        .await?;

    // A steady client, counting every request that is not a 200.
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (sent, failed, stop, port) = (sent.clone(), failed.clone(), stop.clone(), g.listen);
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (code, _) = common::get(port, "steady.example.com", "/").await;
                sent.fetch_add(1, Ordering::SeqCst);
                if code != 200 {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    ApiServer::shared()?.restart(Duration::from_secs(3)).await?;
    // Changed as soon as the API server is back, while contour's watches
    // are still reconnecting.
    g.apply(&proxy("after", "after.example.com")).await?;
    g.expect_within("after.example.com", "/", (200, "fault-api"), 60)
        .await?;
    stop.store(true, Ordering::SeqCst);
    client.await?;

    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("steady client: {sent} requests, {failed} failed");
    assert!(sent > 100, "the client sent only {sent} requests");
    assert_eq!(failed, 0, "requests failed during the outage");
    assert!(
        !g.contour.log().contains("panicked"),
        "contour panicked:\n{}",
        common::tail(&g.contour.log(), 30)
    );
    // Status writes resumed too: the new proxy is marked valid.
    let started = std::time::Instant::now();
    loop {
        let api: kube::Api<contour_crds::HTTPProxy> =
            kube::Api::namespaced(g.client.clone(), &g.ns);
        let current = api
            .get("after")
            .await
            .ok()
            .and_then(|p| p.status)
            .map(|s| s.current_status);
        if current.as_deref() == Some("valid") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "status not written after the outage: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
