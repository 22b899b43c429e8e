//! The Grafana dashboards the chart ships query only metrics our binaries
//! really expose: every metric name in a dashboard expression is found in a
//! live scrape of `contour serve`'s `/metrics` or Envoy's
//! `/stats/prometheus`, taken after real traffic through Envoy and with
//! valid, invalid and orphaned HTTPProxies and IngressRoutes in the cluster.

mod common;

use std::collections::BTreeSet;

use common::{TestResult, ground};
use contour_tests::TestNet;
use contour_tests::k8s::service_for;
use serde_json::{Value, json};

/// Every string under an `expr` key.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "expr"
                    && let Some(s) = child.as_str()
                {
                    out.push(s.to_string());
                }
                exprs(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| exprs(c, out)),
        _ => {}
    }
}

/// The metric names an expression reads (identifiers of our two prefixes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut word = String::new();
    // Inside `by (...)`/`without (...)`: label names, not metrics.
    let (mut grouping, mut in_group) = (false, false);
    for ch in expr.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        // A label name is followed by `=`/`!=`/`=~`; a metric name is not.
        let is_label = ch == '=' || ch == '!' || in_group;
        if !is_label && (word.starts_with("contour_") || word.starts_with("envoy_")) {
            out.insert(word.clone());
        }
        if !word.is_empty() {
            grouping = word == "by" || word == "without";
        }
        word.clear();
        match ch {
            '(' if grouping => in_group = true,
            ')' if in_group => in_group = false,
            ' ' => {}
            _ => grouping = false,
        }
    }
    out
}

/// Names present in a Prometheus text scrape: sample names, and the sample
/// names the `# TYPE` lines promise (a labelled family with no sample yet).
fn scraped(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                out.insert(name.to_string());
                match kind {
                    "counter" if !name.ends_with("_total") => {
                        out.insert(format!("{name}_total"));
                    }
                    "histogram" => {
                        for s in ["_bucket", "_sum", "_count"] {
                            out.insert(format!("{name}{s}"));
                        }
                    }
                    _ => {}
                }
            }
        } else if !line.starts_with('#')
            && let Some(name) = line.split(['{', ' ']).next()
            && !name.is_empty()
        {
            out.insert(name.to_string());
        }
    }
    out
}

#[test]
fn expressions_are_parsed_for_metric_names() {
    let names = metric_names(
        r#"sum by (le, envoy_cluster_name) (rate(contour_dagrebuild_seconds_bucket{namespace=~"$namespace",envoy_http_conn_manager_prefix="x"}[5m]))"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["contour_dagrebuild_seconds_bucket"]
    );
    let s = scraped("# TYPE contour_x counter\n# TYPE contour_h histogram\nenvoy_y{a=\"b\"} 1\n");
    for n in ["contour_x_total", "contour_h_bucket", "envoy_y"] {
        assert!(s.contains(n), "{n}");
    }
}

#[tokio::test]
async fn every_dashboard_metric_exists_in_a_live_scrape() -> TestResult {
    let g = ground("dashboards", &[]).await?;
    let backend = TestNet::shared()?.backend("dash")?;
    for m in service_for("web", &[backend.addr]) {
        g.apply(&m).await?;
    }
    for m in [
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "ok"},
            "spec": {"virtualhost": {"fqdn": "dash.example.com"},
                     "routes": [{"services": [{"name": "web", "port": 80}]}]}}),
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "bad"},
            "spec": {"virtualhost": {"fqdn": "bad.example.com"},
                     "routes": [{"services": [{"name": "missing", "port": 80}]}]}}),
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "orphan"},
            "spec": {"routes": [{"services": [{"name": "web", "port": 80}]}]}}),
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
            "metadata": {"name": "ok"},
            "spec": {"virtualhost": {"fqdn": "ir.example.com"},
                     "routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}]}}),
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
            "metadata": {"name": "bad"},
            "spec": {"virtualhost": {"fqdn": "irbad.example.com"},
                     "routes": [{"match": "/", "services": [{"name": "missing", "port": 80}]}]}}),
        json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
            "metadata": {"name": "orphan"},
            "spec": {"routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}]}}),
    ] {
        g.apply(&m).await?;
    }
    g.expect("dash.example.com", "/", (200, "dash")).await?;
    g.expect("ir.example.com", "/", (200, "dash")).await?;

    let http = reqwest::Client::new();
    let contour = http
        .get(format!("http://127.0.0.1:{}/metrics", g.contour.http_port))
        .send()
        .await?
        .text()
        .await?;
    let envoy = http
        .get(format!(
            "http://127.0.0.1:{}/stats/prometheus",
            g.envoy.admin_port()
        ))
        .send()
        .await?
        .text()
        .await?;
    let mut live = scraped(&contour);
    live.extend(scraped(&envoy));

    let dir = contour_tests::tools::repo_root().join("helm/contour-operator/dashboards");
    let mut checked = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let board: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let mut all = Vec::new();
        exprs(&board, &mut all);
        assert!(!all.is_empty(), "{} has no queries", path.display());
        for e in &all {
            for name in metric_names(e) {
                checked += 1;
                if !live.contains(&name) {
                    missing.push(format!(
                        "{}: {name}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ));
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
    assert!(
        missing.is_empty(),
        "dashboard metrics not exposed:\n{}",
        missing.join("\n")
    );
    Ok(())
}
