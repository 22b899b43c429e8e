//! End to end: `contour serve` (a real process) watches the real API server
//! and a real Envoy follows it over ADS with mutual TLS; requests go through
//! Envoy to backends in the test network namespace.

use std::time::{Duration, Instant};

use contour_tests::k8s::{apply, delete, service_for};
use contour_tests::{ApiServer, TestNet, free_port};
use serde_json::{Value, json};

mod common;

use common::{TestResult, XdsMode, get, ground, ground_full, ground_with, tail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpproxy_ingress_and_ingressroute_route_live_through_envoy() -> TestResult {
    let net = TestNet::shared()?;
    let (a, b) = (net.backend("alpha")?, net.backend("beta")?);
    let g = ground("e2e-routing", &[]).await?;
    for m in service_for("alpha", &[a.addr])
        .iter()
        .chain(service_for("beta", &[b.addr]).iter())
    {
        g.apply(m).await?;
    }
    let host = format!("proxy.{}.example.com", g.ns);
    let proxy = |default: &str| {
        json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "web"},
            "spec": {
                "virtualhost": {"fqdn": host},
                "routes": [
                    {"conditions": [{"prefix": "/"}], "services": [{"name": default, "port": 80}]},
                    {"conditions": [{"prefix": "/b"}], "services": [{"name": "beta", "port": 80}]},
                    {"conditions": [{"prefix": "/h"}, {"header": {"name": "x-team", "exact": "beta"}}],
                     "services": [{"name": "beta", "port": 80}]}
                ]
            }
        })
    };
    g.apply(&proxy("alpha")).await?;
    g.expect(&host, "/", (200, "alpha")).await?;
    g.expect(&host, "/b/x", (200, "beta")).await?;
    g.expect(&host, "/h", (200, "alpha")).await?;
    let with_header = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/h", g.listen))
        .header("Host", &host)
        .header("x-team", "beta")
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(with_header["backend"], "beta");

    // A change is served without restarting Envoy; a delete gives 404.
    g.apply(&proxy("beta")).await?;
    g.expect(&host, "/", (200, "beta")).await?;

    // The seed's kuard examples: an Ingress and an IngressRoute.
    let ingress_host = format!("ingress.{}.example.com", g.ns);
    g.apply(&json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "kuard"},
        "spec": {"rules": [{"host": ingress_host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "alpha", "port": {"number": 80}}}}
        ]}}]}
    }))
    .await?;
    let ir_host = format!("ir.{}.example.com", g.ns);
    g.apply(&json!({
        "apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
        "metadata": {"name": "kuard"},
        "spec": {"virtualhost": {"fqdn": ir_host}, "routes": [
            {"match": "/", "services": [{"name": "beta", "port": 80}]}
        ]}
    }))
    .await?;
    g.expect(&ingress_host, "/", (200, "alpha")).await?;
    g.expect(&ir_host, "/", (200, "beta")).await?;

    // With other hosts still served (upstream drops the listener when no
    // host is left), a deleted proxy's host gets Envoy's 404.
    delete(&g.client, &g.ns, &proxy("beta")).await?;
    g.expect(&host, "/", (404, "")).await?;
    g.expect(&ingress_host, "/", (200, "alpha")).await?;

    // Status and metrics.
    let ns_label = format!("{{namespace=\"{}\"}}", g.ns);
    let start = Instant::now();
    loop {
        let total = g
            .contour
            .metric(&format!("contour_ingressroute_total{ns_label}"))
            .await?;
        if total == Some(1.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "contour_ingressroute_total{ns_label} = {total:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ir: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        g.client.clone(),
        &g.ns,
        &contour_tests::k8s::resource_of(
            &json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute"}),
        )?,
    );
    let start = Instant::now();
    loop {
        let o = ir.get("kuard").await?;
        if o.data["status"]["currentStatus"] == "valid" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "IngressRoute status: {}",
            o.data["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, dot) = g.contour.get("/debug/dag").await?;
    assert_eq!(code, 200);
    assert!(dot.contains(&ir_host), "{dot}");
    Ok(())
}

/// Sends rounds of 20 requests to `url` until the set of backends that
/// answered a round satisfies `done`, for up to 15 s.
async fn backends_until(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&std::collections::BTreeSet<String>) -> bool,
) -> TestResult {
    let start = Instant::now();
    loop {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            if let Ok(r) = client.get(url).send().await {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                seen.insert(v["backend"].as_str().unwrap_or_default().to_string());
            }
        }
        if done(&seen) {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(15) {
            return Err(format!("{what}: {seen:?}").into());
        }
    }
}

/// Sends `n` requests and counts the answers per backend.
async fn spread(port: u16, host: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (_, backend) = get(port, host, "/").await;
        *counts.entry(backend).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_includes_redirects_and_rewrites_behave() -> TestResult {
    let net = TestNet::shared()?;
    let (a, b) = (net.backend("alpha")?, net.backend("beta")?);
    let team = net.backend("team")?;
    // Upstream's per-type bootstrap (the other tests follow over one ADS
    // stream, delta unless they say otherwise).
    let g = ground_full("e2e-features", &[], None, XdsMode::PerType).await?;
    let api = ApiServer::shared()?;
    let other = api.namespace("e2e-features-team").await?;
    for m in service_for("alpha", &[a.addr])
        .iter()
        .chain(service_for("beta", &[b.addr]).iter())
    {
        g.apply(m).await?;
    }
    for m in service_for("team", &[team.addr]) {
        apply(&g.client, &other, &m).await?;
    }
    let host = format!("features.{}.example.com", g.ns);
    g.apply(&json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "root"},
        "spec": {
            "virtualhost": {"fqdn": host},
            "includes": [{"name": "child", "namespace": other, "conditions": [{"prefix": "/team"}]}],
            "routes": [
                {"conditions": [{"prefix": "/"}], "services": [
                    {"name": "alpha", "port": 80, "weight": 80},
                    {"name": "beta", "port": 80, "weight": 20}
                ]},
                {"conditions": [{"prefix": "/old"}], "requestRedirectPolicy": {
                    "scheme": "https", "hostname": "new.example.com", "statusCode": 301, "path": "/new"
                }},
                {"conditions": [{"prefix": "/v1/api"}], "pathRewritePolicy": {
                    "replacePrefix": [{"replacement": "/api"}]
                }, "services": [{"name": "beta", "port": 80}]}
            ]
        }
    }))
    .await?;
    apply(
        &g.client,
        &other,
        &json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "child"},
            "spec": {"routes": [{"services": [{"name": "team", "port": 80}]}]}
        }),
    )
    .await?;

    g.expect(&host, "/team/x", (200, "team")).await?;
    // Per type: LDS, CDS, RTDS, RDS and one EDS stream per cluster.
    let streams = g.xds_streams().await?;
    assert!(streams >= 7, "{streams} streams from Envoy to Contour");

    // 80/20 split within tolerance over 300 requests.
    let counts = spread(g.listen, &host, 300).await;
    let alpha = counts.get("alpha").copied().unwrap_or(0) as f64 / 300.0;
    assert!(
        (0.68..=0.92).contains(&alpha),
        "alpha share {alpha:.2} outside 0.68..0.92: {counts:?}"
    );
    assert_eq!(
        counts.get("alpha").copied().unwrap_or(0) + counts.get("beta").copied().unwrap_or(0),
        300,
        "every request answered by a weighted backend: {counts:?}"
    );

    // Redirect: 301 to the new location, no backend involved.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let resp = no_follow
        .get(format!("http://127.0.0.1:{}/old/page", g.listen))
        .header("Host", &host)
        .send()
        .await?;
    assert_eq!(resp.status(), 301);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("https://new.example.com/new")
    );

    // Prefix rewrite: the backend sees /api/... for /v1/api/...
    let body: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/v1/api/users", g.listen))
        .header("Host", &host)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body["backend"], "beta");
    assert_eq!(body["path"], "/api/users");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_termination_and_endpoint_changes_are_followed() -> TestResult {
    let net = TestNet::shared()?;
    let (one, two) = (net.backend("one")?, net.backend("two")?);
    let https = free_port()?;
    let g = ground_with("e2e-tls", &[], Some(https)).await?;
    let host = format!("secure.{}.example.com", g.ns);

    // A Service whose endpoints are spread over two EndpointSlices.
    let mut objects = service_for("app", &[one.addr]);
    let second = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "app-2", "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": two.addr.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": [two.addr.ip().to_string()], "conditions": {"ready": false}}]
    });
    objects.push(second.clone());
    let ca = contour_tests::pki::Ca::new("tls-test-ca")?;
    let serving = ca.server(&host, &[host.as_str()])?;
    objects.push(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "web-tls"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": serving.cert_pem, "tls.key": serving.key_pem}
    }));
    objects.push(json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "secure"},
        "spec": {
            "virtualhost": {"fqdn": host, "tls": {"secretName": "web-tls"}},
            "routes": [{"services": [{"name": "app", "port": 80}]}]
        }
    }));
    for o in &objects {
        g.apply(o).await?;
    }

    // HTTPS with SNI, verified against the test CA.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{https}").parse()?;
    let tls_client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes())?)
        .resolve(&host, addr)
        .build()?;
    let url = format!("https://{host}:{https}/secure");
    let start = Instant::now();
    let body: Value = loop {
        match tls_client.get(&url).send().await {
            Ok(r) if r.status() == 200 => break r.json().await?,
            other => {
                if start.elapsed() > Duration::from_secs(15) {
                    return Err(format!(
                        "HTTPS never answered 200: {other:?}\n{}",
                        tail(&g.envoy.log(), 30)
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(body["backend"], "one");
    // Plain HTTP on the same host is redirected to HTTPS (upstream behaviour).
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let plain = no_follow
        .get(format!("http://127.0.0.1:{}/", g.listen))
        .header("Host", &host)
        .send()
        .await?;
    assert_eq!(plain.status(), 301);

    // Endpoint changes: mark the second endpoint ready → both serve; remove
    // the first slice → only the second serves.
    let mut ready = second.clone();
    ready["endpoints"][0]["conditions"]["ready"] = json!(true);
    g.apply(&ready).await?;
    backends_until(&tls_client, &url, "both endpoints never served", |seen| {
        seen.contains("one") && seen.contains("two")
    })
    .await?;
    delete(&g.client, &g.ns, &objects[1]).await?;
    backends_until(
        &tls_client,
        &url,
        "traffic never left the removed endpoint",
        |seen| seen.len() == 1 && seen.contains("two"),
    )
    .await?;
    // LDS, CDS, RTDS, the cluster's EDS, both route configurations and the
    // certificate's SDS all come over the one ADS stream.
    assert_eq!(g.xds_streams().await?, 1, "streams from Envoy to Contour");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_of_the_world_ads_follows_changes_and_removals() -> TestResult {
    let net = TestNet::shared()?;
    let (a, b) = (net.backend("alpha")?, net.backend("beta")?);
    let g = ground_full("e2e-sotw", &[], None, XdsMode::Ads).await?;
    for m in service_for("alpha", &[a.addr])
        .iter()
        .chain(service_for("beta", &[b.addr]).iter())
    {
        g.apply(m).await?;
    }
    let (one, two) = (
        format!("one.{}.example.com", g.ns),
        format!("two.{}.example.com", g.ns),
    );
    let proxy = |name: &str, host: &str, service: &str| {
        json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": name},
            "spec": {"virtualhost": {"fqdn": host},
                     "routes": [{"services": [{"name": service, "port": 80}]}]}
        })
    };
    g.apply(&proxy("one", &one, "alpha")).await?;
    g.apply(&proxy("two", &two, "beta")).await?;
    g.expect(&one, "/", (200, "alpha")).await?;
    g.expect(&two, "/", (200, "beta")).await?;
    g.apply(&proxy("one", &one, "beta")).await?;
    g.expect(&one, "/", (200, "beta")).await?;
    // Removing the only user of a cluster removes it from Envoy (it is
    // left out of the next response), while the other host keeps serving.
    delete(&g.client, &g.ns, &proxy("two", &two, "beta")).await?;
    g.apply(&proxy("one", &one, "alpha")).await?;
    g.expect(&one, "/", (200, "alpha")).await?;
    g.expect(&two, "/", (404, "")).await?;
    let start = Instant::now();
    loop {
        let clusters = g.envoy.admin_get("/clusters").await?;
        if !clusters.contains(&format!("{}/beta/80/", g.ns)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the unused cluster stayed in Envoy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acks = g
        .contour
        .metric("contour_xds_ack_total{type=\"Cluster\"}")
        .await?;
    assert!(acks.unwrap_or(0.0) >= 2.0, "ACKs counted: {acks:?}");
    // All of it over one state-of-the-world ADS stream, as `contour
    // bootstrap --xds-mode ads` wrote it.
    assert_eq!(g.xds_streams().await?, 1, "streams from Envoy to Contour");
    let dump = g.envoy.admin_get("/config_dump").await?;
    assert!(
        dump.contains("\"GRPC\""),
        "not a state-of-the-world bootstrap"
    );
    assert!(!dump.contains("\"DELTA_GRPC\""), "a delta bootstrap");
    Ok(())
}
