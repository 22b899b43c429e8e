//! End to end, `contour serve --route-layout=scoped`: the plain-HTTP hosts
//! reach a real Envoy as one scoped route configuration each, over delta
//! ADS and over per-type streams, and Envoy answers every request as it
//! would from one route configuration (host case and port ignored,
//! wildcard and default hosts, 404 for a path the host does not route);
//! and `--route-layout=auto` moving between the layouts at its threshold.

use std::time::{Duration, Instant};

use contour::cli::{CliArgs, Format, Resource};
use contour_tests::TestNet;
use contour_tests::k8s::{delete, service_for};
use serde_json::{Value, json};

mod common;

use common::{Ground, TestResult, XdsMode, ground_isolated, tail};

/// This test's own ingress class: the other tests' controllers on the same
/// API server ignore its objects (its default host would change their
/// 404s), and its controller ignores theirs.
const CLASS: &str = "scoped-e2e";

fn proxy(name: &str, host: &str, routes: Value) -> Value {
    json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name},
        "spec": {"ingressClassName": CLASS, "virtualhost": {"fqdn": host}, "routes": routes}
    })
}

fn ingress(name: &str, host: Option<&str>, service: &str) -> Value {
    let mut rule = json!({"http": {"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": 80}}}}]}});
    if let Some(h) = host {
        rule["host"] = json!(h);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {"ingressClassName": CLASS, "rules": [rule]}
    })
}

/// GET through Envoy: status and the backend's JSON body (`null` for none).
async fn fetch(port: u16, host: &str, path: &str) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}{path}");
    match reqwest::Client::new()
        .get(&url)
        .header("Host", host)
        .send()
        .await
    {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

/// Waits until `host` + `path` answers `status` from `backend` ("" for no
/// backend), with both processes' logs on failure.
async fn until(g: &Ground, host: &str, path: &str, status: u16, backend: &str) -> TestResult {
    let start = Instant::now();
    let mut last = (0, Value::Null);
    while start.elapsed() < Duration::from_secs(20) {
        last = fetch(g.listen, host, path).await;
        if last.0 == status && last.1["backend"].as_str().unwrap_or("") == backend {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{host}{path}: wanted {status} from {backend:?}, last got {last:?}\n--- contour ---\n{}\n--- envoy ---\n{}",
        tail(&g.contour.log(), 30),
        tail(&g.envoy.log(), 30)
    )
    .into())
}

async fn routes_like_one_table(name: &str, layout: &str, follow: XdsMode) -> TestResult {
    let net = TestNet::shared()?;
    let backends = [
        net.backend("alpha")?,
        net.backend("beta")?,
        net.backend("gamma")?,
    ];
    let class = format!("--ingress-class-name={CLASS}");
    let layout_flag = format!("--route-layout={layout}");
    let g = ground_isolated(name, &[&layout_flag, &class], follow).await?;
    for b in &backends {
        for m in service_for(&b.name, &[b.addr]) {
            g.apply(&m).await?;
        }
    }
    let zone = format!("{}.example.com", g.ns);
    let web = format!("web.{zone}");
    let narrow = format!("narrow.{zone}");
    let wild = format!("*.wild.{zone}");
    let web_routes = json!([
        {"conditions": [{"prefix": "/"}], "services": [{"name": "alpha", "port": 80}]},
        {"conditions": [{"prefix": "/b"}], "services": [{"name": "beta", "port": 80}]}
    ]);
    g.apply(&proxy("web", &web, web_routes.clone())).await?;
    g.apply(&proxy(
        "narrow",
        &narrow,
        json!([{"conditions": [{"prefix": "/only"}], "services": [{"name": "alpha", "port": 80}]}]),
    ))
    .await?;
    g.apply(&ingress("wild", Some(&wild), "beta")).await?;
    g.apply(&ingress("default", None, "gamma")).await?;

    until(&g, &web, "/", 200, "alpha").await?;
    until(&g, &web, "/b/x", 200, "beta").await?;
    until(&g, &format!("x.wild.{zone}"), "/", 200, "beta").await?;
    until(&g, &format!("unknown.{zone}"), "/", 200, "gamma").await?;
    until(&g, &narrow, "/only", 200, "alpha").await?;

    // The same answers in both layouts: the host's case and port do not
    // matter for exact hosts; a wildcard host answers one lower-case label
    // (upstream's `:authority` match), else 404, and not with a port (its
    // domains do not match one); a path the host does not route is its
    // 404, not the default host's. The one difference (documented): two
    // labels under a wildcard host go to the default host in the scoped
    // layout, where one table answers 404.
    let two_labels = match layout {
        "scoped" => (200, "gamma"),
        _ => (404, ""),
    };
    let cases = [
        (web.to_uppercase(), "/b", 200, "beta"),
        (format!("{web}:8080"), "/", 200, "alpha"),
        (format!("y.wild.{zone}"), "/x", 200, "beta"),
        (format!("y.wild.{zone}:80"), "/", 200, "gamma"),
        (format!("Y.WILD.{zone}"), "/", 404, ""),
        (format!("a.b.wild.{zone}"), "/", two_labels.0, two_labels.1),
        (narrow.clone(), "/other", 404, ""),
        (narrow.clone(), "/only", 200, "alpha"),
        (format!("unknown.{zone}:81"), "/", 200, "gamma"),
    ];
    let mut got = Vec::new();
    for (host, path, _, _) in &cases {
        let (status, body) = fetch(g.listen, host, path).await;
        got.push((status, body["backend"].as_str().unwrap_or("").to_string()));
    }
    let want: Vec<(u16, String)> = cases.iter().map(|c| (c.2, c.3.to_string())).collect();
    assert_eq!(got, want, "for {cases:?}");
    let (_, body) = fetch(g.listen, &format!("y.wild.{zone}"), "/").await;
    // The key header stays inside Envoy; the Host header is the client's.
    assert!(
        !body["headers"]
            .as_array()
            .is_some_and(|h| h.iter().any(|n| n == "x-contour-scope")),
        "the scope header reached the backend: {body}"
    );
    assert_eq!(body["host"], format!("y.wild.{zone}"));
    // A client's own key header changes nothing.
    let spoofed = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/", g.listen))
        .header("Host", &web)
        .header("x-contour-scope", format!("x.wild.{zone}"))
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_eq!(spoofed["backend"], "alpha", "{spoofed}");
    // Changes and removals reach Envoy scope by scope.
    g.apply(&proxy(
        "web",
        &web,
        json!([{"conditions": [{"prefix": "/"}], "services": [{"name": "beta", "port": 80}]}]),
    ))
    .await?;
    until(&g, &web, "/", 200, "beta").await?;
    delete(&g.client, &g.ns, &proxy("web", &web, web_routes)).await?;
    until(&g, &web, "/", 200, "gamma").await?;
    delete(&g.client, &g.ns, &ingress("default", None, "gamma")).await?;
    until(&g, &web, "/", 404, "").await?;
    until(&g, &format!("x.wild.{zone}"), "/", 200, "beta").await?;

    // What Envoy holds: scopes, no `ingress_http` route configuration.
    if layout != "scoped" {
        return Ok(());
    }
    let dump = g.envoy.admin_get("/config_dump").await?;
    assert!(
        dump.contains(&format!("\"ingress_http/narrow.{zone}\"")),
        "no scope of the narrow host in Envoy's config dump"
    );
    assert!(
        !dump.contains("\"route_config_name\": \"ingress_http\""),
        "the listener still names the ingress_http route configuration"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_layout_answers_the_cases() -> TestResult {
    routes_like_one_table("e2e-scoped-single", "single", XdsMode::Ads).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_layout_over_delta_ads_routes_like_one_table() -> TestResult {
    routes_like_one_table("e2e-scoped-delta", "scoped", XdsMode::DeltaAds).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_layout_over_per_type_streams_routes_like_one_table() -> TestResult {
    routes_like_one_table("e2e-scoped-types", "scoped", XdsMode::PerType).await
}

/// `contour cli srds` shows the scopes as Envoy gets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_srds_lists_the_scopes() -> TestResult {
    let class = format!("--ingress-class-name={CLASS}");
    let g = ground_isolated(
        "e2e-scoped-cli",
        &["--route-layout=scoped", &class],
        XdsMode::Ads,
    )
    .await?;
    let net = TestNet::shared()?;
    let alpha = net.backend("alpha")?;
    for m in service_for("alpha", &[alpha.addr]) {
        g.apply(&m).await?;
    }
    let host = format!("cli.{}.example.com", g.ns);
    g.apply(&proxy(
        "cli",
        &host,
        json!([{"services": [{"name": "alpha", "port": 80}]}]),
    ))
    .await?;
    let args = || CliArgs {
        resource: Resource::Srds,
        names: vec![],
        contour: format!("127.0.0.1:{}", g.contour.xds_port),
        cafile: Some(g.pki.ca.clone()),
        cert_file: Some(g.pki.envoy_cert.clone()),
        key_file: Some(g.pki.envoy_key.clone()),
        server_name: "contour".into(),
        output: Format::Yaml,
        once: true,
    };
    let start = Instant::now();
    loop {
        let mut out: Vec<u8> = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), contour::cli::run(args(), &mut out))
            .await
            .map_err(|_| "contour cli srds timed out")??;
        let out = String::from_utf8_lossy(&out);
        if out.contains(&format!("name: ingress_http/{host}")) {
            assert!(out.contains("x-contour-scope"), "{out}");
            return Ok(());
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no scope of {host} in `contour cli srds`:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Envoy's active `ingress_http` listener, as JSON text ("" before it has one).
async fn active_http_listener(g: &Ground) -> Result<String, Box<dyn std::error::Error>> {
    let dump: Value = serde_json::from_str(
        &g.envoy
            .admin_get("/config_dump?resource=dynamic_listeners")
            .await?,
    )?;
    Ok(dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["name"] == "ingress_http")
        .map(|l| l["active_state"]["listener"].to_string())
        .collect())
}

/// Whether Envoy's active `ingress_http` takes its routes from scopes.
fn is_scoped(listener: &str) -> bool {
    listener.contains("\"scoped_routes\"")
}

/// Polls until Envoy's `ingress_http` uses (or not) the scoped layout.
async fn until_layout(g: &Ground, scoped: bool) -> TestResult {
    let start = Instant::now();
    loop {
        let listener = active_http_listener(g).await?;
        if is_scoped(&listener) == scoped {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err(format!(
                "ingress_http never became {}\n--- listener ---\n{listener}\n--- envoy ---\n{}",
                if scoped { "scoped" } else { "one table" },
                tail(&g.envoy.log(), 30)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `--route-layout=auto` (the default): one route table below the
/// threshold, a scope per host from it, and back, with every host served
/// across each move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_layout_moves_at_the_threshold_and_back() -> TestResult {
    let class = format!("--ingress-class-name={CLASS}");
    let g = ground_isolated(
        "e2e-scoped-auto",
        &["--route-layout-threshold=3", &class],
        XdsMode::default(),
    )
    .await?;
    let net = TestNet::shared()?;
    let alpha = net.backend("alpha")?;
    for m in service_for("alpha", &[alpha.addr]) {
        g.apply(&m).await?;
    }
    let routes = json!([{"services": [{"name": "alpha", "port": 80}]}]);
    let hosts: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|h| format!("{h}.{}.example.com", g.ns))
        .collect();
    for (name, host) in ["a", "b"].iter().zip(&hosts) {
        g.apply(&proxy(name, host, routes.clone())).await?;
    }
    for host in &hosts[..2] {
        until(&g, host, "/", 200, "alpha").await?;
    }
    assert!(
        !is_scoped(&active_http_listener(&g).await?),
        "scoped below the threshold"
    );

    g.apply(&proxy("c", &hosts[2], routes.clone())).await?;
    until_layout(&g, true).await?;
    for host in &hosts {
        until(&g, host, "/", 200, "alpha").await?;
    }

    delete(&g.client, &g.ns, &proxy("c", &hosts[2], routes.clone())).await?;
    until_layout(&g, false).await?;
    for host in &hosts[..2] {
        until(&g, host, "/", 200, "alpha").await?;
    }
    until(&g, &hosts[2], "/", 404, "").await?;
    Ok(())
}
