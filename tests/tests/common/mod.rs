//! Shared ground of the end-to-end tests: one `contour serve` process and one
//! Envoy following it over ADS with mutual TLS, in a fresh namespace.

#![allow(dead_code)]

use std::time::{Duration, Instant};

pub use contour_tests::contour::XdsMode;
use contour_tests::k8s::{apply, install_crds};
use contour_tests::{ApiServer, ContourServe, Envoy, XdsPki, free_port};
use serde_json::Value;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// GET through Envoy with a Host header: (status, backend name or "").
pub async fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let client = reqwest::Client::new();
    match client.get(&url).header("Host", host).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (
                status,
                body["backend"].as_str().unwrap_or_default().to_string(),
            )
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls until `get` returns `want`, for up to 15 s.
pub async fn eventually(
    port: u16,
    host: &str,
    path: &str,
    want: (u16, &str),
) -> Result<(), String> {
    eventually_within(port, host, path, want, 15).await
}

/// Polls until `get` returns `want`, for up to `secs`.
pub async fn eventually_within(
    port: u16,
    host: &str,
    path: &str,
    want: (u16, &str),
    secs: u64,
) -> Result<(), String> {
    let start = Instant::now();
    let mut last = (0, String::new());
    while start.elapsed() < Duration::from_secs(secs) {
        last = get(port, host, path).await;
        if last.0 == want.0 && last.1 == want.1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{host}{path}: wanted {want:?}, last got {last:?} after {secs} s"
    ))
}

pub struct Ground {
    pub client: kube::Client,
    pub ns: String,
    pub contour: ContourServe,
    pub envoy: Envoy,
    pub listen: u16,
    pub pki: XdsPki,
}

pub async fn ground(name: &str, extra: &[&str]) -> Result<Ground, Box<dyn std::error::Error>> {
    ground_with(name, extra, None).await
}

pub async fn ground_with(
    name: &str,
    extra: &[&str],
    https_port: Option<u16>,
) -> Result<Ground, Box<dyn std::error::Error>> {
    ground_full(name, extra, https_port, XdsMode::default()).await
}

/// The ground with every option: an HTTPS listener port, how Envoy follows.
pub async fn ground_full(
    name: &str,
    extra: &[&str],
    https_port: Option<u16>,
    follow: XdsMode,
) -> Result<Ground, Box<dyn std::error::Error>> {
    ground_inner(name, extra, https_port, follow, None, false).await
}

/// The ground whose controller watches only its own namespace (so the
/// statuses there are written by it alone, not by other tests' controllers
/// on the same API server), with the caller's xDS certificates if given
/// (e.g. to rotate them).
pub async fn ground_scoped(
    name: &str,
    extra: &[&str],
    pki: Option<XdsPki>,
) -> Result<Ground, Box<dyn std::error::Error>> {
    ground_inner(name, extra, None, XdsMode::PerType, pki, true).await
}

/// The ground whose controller watches only its own namespace, followed
/// as `follow` says.
pub async fn ground_isolated(
    name: &str,
    extra: &[&str],
    follow: XdsMode,
) -> Result<Ground, Box<dyn std::error::Error>> {
    ground_inner(name, extra, None, follow, None, true).await
}

async fn ground_inner(
    name: &str,
    extra: &[&str],
    https_port: Option<u16>,
    follow: XdsMode,
    pki: Option<XdsPki>,
    scoped: bool,
) -> Result<Ground, Box<dyn std::error::Error>> {
    contour_tests::init_crypto();
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let ns = api.namespace(name).await?;
    let pki = match pki {
        Some(p) => p,
        None => XdsPki::new(&ns)?,
    };
    let listen = free_port()?;
    let mut flags = vec![
        format!("--envoy-service-http-port={listen}"),
        format!("--leader-election-resource-namespace={ns}"),
    ];
    if let Some(p) = https_port {
        flags.push(format!("--envoy-service-https-port={p}"));
    }
    if scoped {
        flags.push(format!("--watch-namespaces={ns}"));
    }
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let contour = ContourServe::start(api, Some(&pki), &flags).await?;
    let envoy =
        contour_tests::contour::envoy_from_bootstrap(contour.xds_port, &pki, follow).await?;
    Ok(Ground {
        client,
        ns,
        contour,
        envoy,
        listen,
        pki,
    })
}

impl Ground {
    pub async fn apply(&self, manifest: &Value) -> TestResult {
        apply(&self.client, &self.ns, manifest).await?;
        Ok(())
    }

    /// gRPC streams Envoy has open to Contour: active requests of the
    /// `contour` cluster (its stats name is upstream's alt_stat_name,
    /// `<namespace>_contour_<port>`).
    #[allow(dead_code)]
    pub async fn xds_streams(&self) -> Result<u64, Box<dyn std::error::Error>> {
        let stats = self
            .envoy
            .admin_get("/stats?filter=upstream_rq_active")
            .await?;
        stats
            .lines()
            .filter(|l| l.contains("_contour_"))
            .find_map(|l| l.split_once(".upstream_rq_active: ").map(|(_, v)| v))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                format!("no upstream_rq_active for the contour cluster in {stats}").into()
            })
    }

    pub async fn expect(&self, host: &str, path: &str, want: (u16, &str)) -> TestResult {
        self.expect_within(host, path, want, 15).await
    }

    /// [`Ground::expect`] with a longer wait (e.g. for Envoy's reconnect backoff).
    pub async fn expect_within(
        &self,
        host: &str,
        path: &str,
        want: (u16, &str),
        secs: u64,
    ) -> TestResult {
        eventually_within(self.listen, host, path, want, secs)
            .await
            .map_err(|e| {
                format!(
                    "{e}\n--- contour log (tail) ---\n{}\n--- envoy log (tail) ---\n{}",
                    tail(&self.contour.log(), 40),
                    tail(&self.envoy.log(), 40)
                )
            })?;
        Ok(())
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
