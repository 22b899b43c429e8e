//! Envoy's graceful drain, as an Envoy pod runs it: `contour serve` gives a
//! real Envoy (bootstrapped by `contour bootstrap`, admin on a unix socket,
//! `/ready` on the stats listener) its `ingress_http` listener; the
//! `shutdown-manager` sidecar serves `/shutdown`; `contour envoy shutdown`
//! fails Envoy's health checks and holds the ready file back while a client
//! keeps a connection open on the listener.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use contour_tests::k8s::{apply, install_crds};
use contour_tests::{ApiServer, ContourServe, Envoy, XdsPki, contour, free_port, process};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Error = Box<dyn std::error::Error>;

/// `contour ARGS` as a background process, its output in `log`.
fn spawn_contour(args: &[&str], log: &Path) -> Result<Child, Error> {
    let mut cmd = Command::new(contour::binary()?);
    cmd.args(["--log-format", "text"])
        .args(args)
        .env("NO_COLOR", "1");
    Ok(process::spawn(cmd, log)?)
}

/// Polls `check` every 50 ms until it gives `Some`, for up to `secs`.
async fn until<T, F, Fut>(secs: u64, what: &str, mut check: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return Err(format!("{what}: not within {secs} s").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `url`: (status, body), `None` when nothing answers.
async fn get(http: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let r = http.get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// Sends one HTTP/1.1 request on a kept-alive connection and reads the
/// whole response (headers, then `content-length` bytes of body).
async fn exchange(stream: &mut TcpStream, host: &str) -> Result<String, Error> {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Ok(text);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await??;
        if n == 0 {
            return Err(format!("connection closed mid-response: {text:?}").into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Envoy's `http.ingress_http.downstream_cx_active`, read through the stats listener.
async fn ingress_http_active(http: &reqwest::Client, stats: u16) -> Option<u64> {
    let url = format!(
        "http://127.0.0.1:{stats}/stats?filter=%5Ehttp%5C.ingress_http%5C.downstream_cx_active%24"
    );
    let (_, text) = get(http, &url).await?;
    text.lines()
        .find_map(|l| l.strip_prefix("http.ingress_http.downstream_cx_active:"))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_envoys_health_checks_and_waits_for_the_open_connection() -> TestResult {
    // contour serve, and an Envoy bootstrapped as in a pod.
    contour_tests::init_crypto();
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    install_crds(&client).await?;
    let ns = api.namespace("envoy-shutdown").await?;
    let pki = XdsPki::new(&ns)?;
    let listen = free_port()?;
    let serve = ContourServe::start(
        api,
        Some(&pki),
        &[
            &format!("--envoy-service-http-port={listen}"),
            &format!("--leader-election-resource-namespace={ns}"),
        ],
    )
    .await?;
    let dir = process::run_dir()?.join("envoy-shutdown");
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("admin.sock");
    let ready_file = dir.join("ok");
    let stats = free_port()?;
    let s = |p: &Path| p.display().to_string();
    let out = contour::run_ok(&[
        "bootstrap",
        "-",
        "--admin-address",
        &s(&socket),
        "--xds-port",
        &serve.xds_port.to_string(),
        "--stats-address",
        "127.0.0.1",
        "--stats-port",
        &stats.to_string(),
        "--envoy-cafile",
        &s(&pki.ca),
        "--envoy-cert-file",
        &s(&pki.envoy_cert),
        "--envoy-key-file",
        &s(&pki.envoy_key),
    ])?;
    let bootstrap: Value = serde_json::from_slice(&out.stdout)?;
    let envoy = Envoy::start_as_is(&bootstrap, &format!("http://127.0.0.1:{stats}")).await?;

    let host = format!("drain.{ns}.example.com");
    apply(
        &client,
        &ns,
        &json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "drain"},
            "spec": {
                "virtualhost": {"fqdn": host},
                "routes": [{"conditions": [{"prefix": "/"}],
                            "directResponsePolicy": {"statusCode": 200, "body": "still here"}}]
            }
        }),
    )
    .await?;
    // No pooled connections: the only client connection left open on
    // ingress_http is the test's own.
    let http = &reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let route = &format!("http://127.0.0.1:{listen}/");
    let host = &host;
    until(20, "the route through ingress_http", || async move {
        let r = http.get(route).header("Host", host).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .map_err(|e| format!("{e}\n--- envoy log ---\n{}", last_lines(&envoy.log(), 40)))?;

    // (1) Before the shutdown, the readiness probe's /ready says LIVE.
    let ready_url = &format!("http://127.0.0.1:{stats}/ready");
    assert_eq!(
        get(http, ready_url).await,
        Some((200, "LIVE\n".to_string()))
    );

    // The sidecar.
    let serve_port = free_port()?;
    let mut manager = spawn_contour(
        &[
            "envoy",
            "shutdown-manager",
            "--serve-address",
            "127.0.0.1",
            "--serve-port",
            &serve_port.to_string(),
            "--ready-file",
            &s(&ready_file),
        ],
        &dir.join("shutdown-manager.log"),
    )?;
    let manager_url = &format!("http://127.0.0.1:{serve_port}");
    until(10, "shutdown-manager /healthz", || async move {
        (get(http, &format!("{manager_url}/healthz")).await? == (200, "OK".to_string()))
            .then_some(())
    })
    .await?;

    // A client with a kept-alive connection on ingress_http.
    let mut conn = TcpStream::connect(("127.0.0.1", listen)).await?;
    let first = exchange(&mut conn, host).await?;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(
        !first.to_ascii_lowercase().contains("connection: close"),
        "{first}"
    );
    until(10, "one open connection on ingress_http", || async move {
        (ingress_http_active(http, stats).await? == 1).then_some(())
    })
    .await?;

    // The Envoy container's preStop: GET /shutdown, which must wait.
    let waiting_for_shutdown = tokio::spawn({
        let url = format!("{manager_url}/shutdown");
        let http = http.clone();
        async move { get(&http, &url).await }
    });
    // The sidecar's preStop.
    let shutdown_log = dir.join("shutdown.log");
    let mut shutdown = spawn_contour(
        &[
            "envoy",
            "shutdown",
            "--admin-address",
            &s(&socket),
            "--check-interval",
            "100ms",
            "--ready-file",
            &s(&ready_file),
        ],
        &shutdown_log,
    )?;

    // (2) Envoy fails its health checks at once...
    until(10, "/ready failing", || async move {
        (get(http, ready_url).await?.0 == 503).then_some(())
    })
    .await?;
    // ...but while the connection is open, the drain goes on: no ready
    // file, no answer on /shutdown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = || process::tail(&shutdown_log, 40);
    assert!(
        shutdown.try_wait()?.is_none(),
        "shutdown ended early:\n{}",
        log()
    );
    assert!(!ready_file.exists(), "ready file written early:\n{}", log());
    assert!(
        !waiting_for_shutdown.is_finished(),
        "/shutdown answered early"
    );
    assert!(
        std::fs::read_to_string(&shutdown_log)?.contains("open_connections=1"),
        "{}",
        log()
    );

    // Envoy drains the connection: the next response says close, and the
    // client closes, as HTTP/1.1 clients do.
    let second = exchange(&mut conn, host).await?;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(
        second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    drop(conn);

    // (3) The drain ends, the ready file is written, /shutdown answers.
    let status = until(10, "contour envoy shutdown to exit", || {
        let done = shutdown.try_wait().ok().flatten();
        async move { done }
    })
    .await
    .map_err(|e| format!("{e}\n{}", log()))?;
    process::forget(shutdown.id());
    assert!(status.success(), "{status}\n{}", log());
    assert!(ready_file.is_file());
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting_for_shutdown).await??;
    assert_eq!(answer, Some((200, "OK".to_string())));

    // (4) Envoy's health check still fails: the kubelet may now stop it.
    assert_eq!(
        get(http, ready_url).await,
        Some((503, "DRAINING\n".to_string()))
    );
    assert_eq!(ingress_http_active(http, stats).await, Some(0));

    process::kill(&mut manager);
    drop(envoy);
    drop(serve);
    Ok(())
}
