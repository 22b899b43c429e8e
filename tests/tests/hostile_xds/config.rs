//! The configuration the tests load: HTTPProxies with direct-response routes.

use serde_json::{Value, json};

use super::common::{Ground, TestResult};

/// Proxy `i`: a virtual host with `routes` direct-response routes carrying a
/// body of `body` bytes each, plus a marker route at `marker`.
pub fn proxy(ns: &str, i: usize, routes: usize, body: usize, marker: &str) -> Value {
    let mut rs: Vec<Value> = (0..routes)
        .map(|r| {
            json!({
                "conditions": [{"prefix": format!("/r{r}")}],
                "directResponsePolicy": {"statusCode": 200, "body": "x".repeat(body)}
            })
        })
        .collect();
    rs.push(json!({
        "conditions": [{"prefix": marker}],
        "directResponsePolicy": {"statusCode": 204}
    }));
    json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": format!("p{i}")},
        "spec": {"virtualhost": {"fqdn": host(ns, i)}, "routes": rs}
    })
}

pub fn host(ns: &str, i: usize) -> String {
    format!("p{i}.{ns}.example.com")
}

/// Loads `n` proxies and waits until Envoy serves the last one.
pub async fn load(g: &Ground, n: usize, routes: usize, body: usize) -> TestResult {
    for i in 0..n {
        g.apply(&proxy(&g.ns, i, routes, body, "/start")).await?;
    }
    g.expect(&host(&g.ns, n - 1), "/start", (204, "")).await
}
