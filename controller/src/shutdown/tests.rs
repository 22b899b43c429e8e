//! The flags, and `contour envoy shutdown` against a fake admin interface
//! over a unix socket and over TCP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Parser, Debug)]
struct Envoy {
    #[command(subcommand)]
    command: EnvoyCommand,
}

fn parse(args: &[&str]) -> Result<EnvoyCommand, clap::Error> {
    Envoy::try_parse_from(std::iter::once("envoy").chain(args.iter().copied())).map(|e| e.command)
}

#[test]
fn defaults_are_upstreams() -> TestResult {
    match parse(&["shutdown-manager"])? {
        EnvoyCommand::ShutdownManager(m) => {
            assert_eq!(m.serve_port, 8090);
            assert_eq!(m.serve_address, None);
            assert_eq!(m.ready_file, PathBuf::from("/admin/ok"));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["shutdown"])? {
        EnvoyCommand::Shutdown(s) => {
            assert_eq!(s.admin_address, "/admin/admin.sock");
            assert_eq!(s.admin_port, None);
            assert_eq!(s.ready_file, PathBuf::from("/admin/ok"));
            assert_eq!(
                s.plan(),
                DrainPlan {
                    drain_delay: Duration::ZERO,
                    check_delay: Duration::ZERO,
                    check_interval: Duration::from_secs(5),
                    min_open_connections: 0,
                    retry_delays: HEALTHCHECK_FAIL_RETRY_DELAYS.to_vec(),
                }
            );
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn flags_take_go_durations() -> TestResult {
    let cmd = parse(&[
        "shutdown",
        "--check-interval=250ms",
        "--check-delay=1m30s",
        "--drain-delay=2s",
        "--min-open-connections=3",
        "--admin-port=9001",
        "--ready-file=/tmp/ok",
    ])?;
    let EnvoyCommand::Shutdown(s) = cmd else {
        panic!("{cmd:?}");
    };
    let plan = s.plan();
    assert_eq!(plan.check_interval, Duration::from_millis(250));
    assert_eq!(plan.check_delay, Duration::from_secs(90));
    assert_eq!(plan.drain_delay, Duration::from_secs(2));
    assert_eq!(plan.min_open_connections, 3);
    assert_eq!(
        AdminAddress::from_flags(&s.admin_address, s.admin_port),
        AdminAddress::Tcp("127.0.0.1:9001".into())
    );
    for bad in ["5", "-1s", "soon", "infinity", "", "1x"] {
        assert!(
            parse(&["shutdown", &format!("--check-interval={bad}")]).is_err(),
            "{bad:?}"
        );
    }
    assert!(parse(&["shutdown", "--min-open-connections=-1"]).is_err());
    assert!(parse(&["shutdown-manager", "--serve-address=localhost"]).is_err());
    Ok(())
}

/// A fake admin interface: `/stats` reports `open` connections on
/// `ingress_http` and counts one down per call.
#[derive(Clone, Default)]
struct FakeEnvoy {
    failed: Arc<AtomicBool>,
    open: Arc<AtomicU64>,
}

fn fake_admin(envoy: FakeEnvoy) -> Router {
    async fn fail(State(e): State<FakeEnvoy>) -> &'static str {
        e.failed.store(true, Ordering::SeqCst);
        "OK\n"
    }
    async fn stats(State(e): State<FakeEnvoy>) -> (StatusCode, String) {
        let open = e
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            })
            .unwrap_or_default();
        (
            StatusCode::OK,
            format!(
                "http.admin.downstream_cx_active: 1\nhttp.ingress_http.downstream_cx_active: {open}\n"
            ),
        )
    }
    Router::new()
        .route("/healthcheck/fail", post(fail))
        .route("/stats", get(stats))
        .with_state(envoy)
}

fn shutdown_args(admin_address: String, ready_file: PathBuf) -> ShutdownArgs {
    ShutdownArgs {
        admin_address,
        admin_port: None,
        check_delay: Duration::ZERO,
        check_interval: Duration::from_millis(5),
        drain_delay: Duration::ZERO,
        min_open_connections: 0,
        ready_file,
    }
}

#[tokio::test]
async fn shutdown_over_the_unix_socket_fails_health_checks_drains_and_writes_the_file() -> TestResult
{
    let dir = test_dir("unix")?;
    let socket = dir.join("admin.sock");
    let envoy = FakeEnvoy::default();
    envoy.open.store(3, Ordering::SeqCst);
    let listener = tokio::net::UnixListener::bind(&socket)?;
    let server = tokio::spawn(axum::serve(listener, fake_admin(envoy.clone())).into_future());

    let ready = dir.join("ok");
    let args = shutdown_args(socket.display().to_string(), ready.clone());
    tokio::time::timeout(Duration::from_secs(10), run_shutdown(args)).await??;
    assert!(envoy.failed.load(Ordering::SeqCst));
    assert_eq!(envoy.open.load(Ordering::SeqCst), 0);
    assert!(ready.is_file());
    server.abort();
    Ok(())
}

#[tokio::test]
async fn shutdown_over_tcp_and_an_unwritable_ready_file_is_an_error() -> TestResult {
    let dir = test_dir("tcp")?;
    let envoy = FakeEnvoy::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(axum::serve(listener, fake_admin(envoy.clone())).into_future());

    let mut args = shutdown_args(DEFAULT_ADMIN_ADDRESS.into(), dir.join("missing").join("ok"));
    args.admin_port = Some(port);
    let result = tokio::time::timeout(Duration::from_secs(10), run_shutdown(args)).await?;
    assert!(envoy.failed.load(Ordering::SeqCst));
    match result {
        Err(ShutdownError::ReadyFile { path, .. }) => assert!(path.ends_with("missing/ok")),
        other => panic!("{other:?}"),
    }
    server.abort();
    Ok(())
}

#[tokio::test]
async fn admin_errors_say_where_and_what() -> TestResult {
    let dir = test_dir("errors")?;
    let missing = AdminClient::new(AdminAddress::Unix(dir.join("none.sock")));
    let err = missing
        .fail_health_checks()
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("connecting to Envoy's admin interface at unix:")),
        "{err:?}"
    );

    // A server without the paths: 404 and 405 are errors naming the request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(
        axum::serve(
            listener,
            Router::new().route("/stats", post(|| async { "" })),
        )
        .into_future(),
    );
    let client = AdminClient::new(AdminAddress::Tcp(addr.to_string()));
    match client.fail_health_checks().await {
        Err(ShutdownError::Status {
            status: 404,
            method,
            path,
            ..
        }) => {
            assert_eq!(
                (method.as_str(), path.as_str()),
                ("POST", "/healthcheck/fail")
            );
        }
        other => panic!("{other:?}"),
    }
    match client.stats().await {
        Err(ShutdownError::Status {
            status: 405, path, ..
        }) => assert_eq!(path, STATS_PATH),
        other => panic!("{other:?}"),
    }
    server.abort();
    Ok(())
}
