//! Envoy's access log as `contour serve` configures it (upstream's flags):
//! by default each request is a line in Envoy's default text format on its
//! stdout; `--accesslog-format=json` makes it one JSON object per request
//! with upstream's fields.

mod common;

use std::time::{Duration, Instant};

use common::{TestResult, ground};
use contour_tests::TestNet;
use contour_tests::k8s::service_for;
use serde_json::{Value, json};

async fn serve_one(g: &common::Ground, host: &str, backend: &str) -> TestResult {
    let b = TestNet::shared()?.backend(backend)?;
    for m in service_for("web", &[b.addr]) {
        g.apply(&m).await?;
    }
    g.apply(
        &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "web"},
        "spec": {"virtualhost": {"fqdn": host},
                 "routes": [{"services": [{"name": "web", "port": 80}]}]}}),
    )
    .await?;
    g.expect(host, "/logged", (200, backend)).await
}

/// Waits for a line of Envoy's output that `pick` accepts.
async fn line<F: Fn(&str) -> bool>(g: &common::Ground, pick: F) -> Result<String, String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(l) = g.envoy.log().lines().find(|l| pick(l)) {
            return Ok(l.to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "no such access log line; Envoy's output:\n{}",
        common::tail(&g.envoy.log(), 20)
    ))
}

#[tokio::test]
async fn requests_are_logged_in_envoys_format_by_default() -> TestResult {
    let g = ground("alog-text", &[]).await?;
    serve_one(&g, "text.example.com", "alog-text").await?;
    let l = line(&g, |l| l.contains("\"GET /logged HTTP/1.1\" 200")).await?;
    assert!(l.contains("text.example.com"), "{l}");
    Ok(())
}

#[tokio::test]
async fn json_access_logs_carry_upstreams_fields() -> TestResult {
    let g = ground("alog-json", &["--accesslog-format=json"]).await?;
    serve_one(&g, "json.example.com", "alog-json").await?;
    let l = line(&g, |l| {
        l.starts_with('{')
            && l.contains("json.example.com")
            && l.contains("/logged")
            && l.contains("\"response_code\":200")
    })
    .await?;
    let v: Value = serde_json::from_str(&l)?;
    assert_eq!(v["authority"], "json.example.com", "{l}");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/logged");
    assert_eq!(v["response_code"], 200);
    assert!(
        v["upstream_cluster"]
            .as_str()
            .is_some_and(|c| c.contains("web")),
        "{l}"
    );
    Ok(())
}
