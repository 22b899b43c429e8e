//! `status.loadBalancer` of Ingresses and HTTPProxies, against the real API
//! server and `contour serve`: from `--ingress-status-address`, or else
//! followed from Envoy's Service as its load balancer address changes; only
//! objects of the served ingress class get it.
//!
//! Each controller watches only its own namespace: two controllers of one
//! class with different addresses would (as upstream's do) keep rewriting
//! each other's objects.

mod common;

use std::time::{Duration, Instant};

use common::{Ground, TestResult, XdsMode, ground_isolated, tail};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

fn resource(kind: &str) -> ApiResource {
    match kind {
        "Ingress" => ApiResource::erase::<k8s_openapi::api::networking::v1::Ingress>(&()),
        _ => ApiResource::erase::<contour_crds::HTTPProxy>(&()),
    }
}

/// Waits until `kind/name` carries `want` as `status.loadBalancer.ingress`;
/// on failure shows the controller's log.
async fn expect_address(g: &Ground, kind: &str, name: &str, want: Value) -> TestResult {
    let api: Api<DynamicObject> = Api::namespaced_with(g.client.clone(), &g.ns, &resource(kind));
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(15) {
        last = api.get(name).await?.data["status"]["loadBalancer"]["ingress"].clone();
        if last == want {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{kind} {name}: status.loadBalancer.ingress is {last}, wanted {want}\n--- contour log (tail) ---\n{}",
        tail(&g.contour.log(), 400)
    )
    .into())
}

fn ingress(name: &str, class: Option<&str>) -> Value {
    let mut spec = json!({"rules": [{"host": format!("{name}.example.com"), "http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]});
    if let Some(c) = class {
        spec["ingressClassName"] = json!(c);
    }
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name}, "spec": spec})
}

fn proxy(name: &str) -> Value {
    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
           "metadata": {"name": name},
           "spec": {"virtualhost": {"fqdn": format!("{name}.example.com")},
                    "routes": [{"services": [{"name": "web", "port": 80}]}]}})
}

#[tokio::test]
async fn the_flag_address_reaches_ingresses_and_proxies_of_our_class() -> TestResult {
    let g = ground_isolated(
        "lb-flag",
        &["--ingress-status-address=10.9.8.7,lb.example.net"],
        XdsMode::default(),
    )
    .await?;
    g.apply(&ingress("mine", None)).await?;
    g.apply(&ingress("theirs", Some("other"))).await?;
    g.apply(&proxy("px")).await?;
    let want = json!([{"ip": "10.9.8.7"}, {"hostname": "lb.example.net"}]);
    expect_address(&g, "Ingress", "mine", want.clone()).await?;
    expect_address(&g, "HTTPProxy", "px", want).await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(g.client.clone(), &g.ns, &resource("Ingress"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let theirs = api.get("theirs").await?.data["status"]["loadBalancer"].clone();
    assert!(
        theirs.is_null() || theirs == json!({}),
        "another class's Ingress got an address: {theirs}"
    );
    Ok(())
}

#[tokio::test]
async fn the_envoy_services_address_is_followed() -> TestResult {
    // Envoy's Service lives in a namespace of its own, as in a cluster.
    let api_server = contour_tests::ApiServer::shared()?;
    let envoy_ns = api_server.namespace("lb-envoy").await?;
    let g = ground_isolated(
        "lb-svc",
        &[
            "--envoy-service-name=envoy-lb",
            &format!("--envoy-service-namespace={envoy_ns}"),
        ],
        XdsMode::default(),
    )
    .await?;
    g.apply(&ingress("web", None)).await?;
    g.apply(&proxy("px")).await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(g.client.clone(), &envoy_ns);
    services
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "envoy-lb"},
                "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]}}))?,
        )
        .await?;
    // The cloud's load balancer controller publishes an address.
    let publish = |lb: Value| {
        let services = services.clone();
        async move {
            services
                .patch_status(
                    "envoy-lb",
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": lb}}})),
                )
                .await
        }
    };
    publish(json!([{"hostname": "lb-1.example.net"}])).await?;
    let first = json!([{"hostname": "lb-1.example.net"}]);
    expect_address(&g, "Ingress", "web", first.clone()).await?;
    expect_address(&g, "HTTPProxy", "px", first).await?;
    // It changes: every object follows.
    publish(json!([{"ip": "192.0.2.10"}])).await?;
    let second = json!([{"ip": "192.0.2.10"}]);
    expect_address(&g, "Ingress", "web", second.clone()).await?;
    expect_address(&g, "HTTPProxy", "px", second.clone()).await?;
    // A new object gets the current address.
    g.apply(&ingress("late", None)).await?;
    expect_address(&g, "Ingress", "late", second).await?;
    Ok(())
}
