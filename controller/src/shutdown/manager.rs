//! The HTTP server of `contour envoy shutdown-manager` (upstream's
//! `doShutdownManager`): `/healthz` answers `OK` (the container's liveness
//! probe); `/shutdown` (the Envoy container's `preStop` hook) answers `OK`
//! once the ready file exists, which `contour envoy shutdown` writes when
//! the drain is done. The file is the only link because the two run as
//! different processes: the server, and the `preStop` exec of the same
//! container.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::any;
use tokio::net::TcpListener;

use super::ShutdownError;

/// How often `/shutdown` looks for the ready file (upstream's
/// `shutdownReadyCheckInterval`, not a flag there either).
pub const READY_FILE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct ReadyFile {
    path: Arc<Path>,
    interval: Duration,
}

/// The routes, looking for `ready_file` every `interval`. Any method is
/// accepted, as upstream's handlers do.
pub fn router(ready_file: PathBuf, interval: Duration) -> Router {
    Router::new()
        .route("/healthz", any(|| async { "OK" }))
        .route("/shutdown", any(shutdown))
        .with_state(ReadyFile {
            path: Arc::from(ready_file),
            interval,
        })
}

async fn shutdown(State(ready): State<ReadyFile>) -> &'static str {
    wait_for_file(&ready.path, ready.interval).await;
    tracing::info!(ready_file = %ready.path.display(), "detected the ready file; answering /shutdown");
    "OK"
}

/// Returns once `path` exists, looking every `interval`. A request whose
/// client goes away is dropped with its connection, and this with it.
pub async fn wait_for_file(path: &Path, interval: Duration) {
    let mut first = true;
    loop {
        match tokio::fs::metadata(path).await {
            Ok(_) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if first {
                    tracing::info!(ready_file = %path.display(), check_interval = ?interval, "waiting for the ready file");
                } else {
                    tracing::debug!(ready_file = %path.display(), "no ready file yet");
                }
            }
            Err(e) => {
                tracing::warn!(ready_file = %path.display(), error = %e, "checking for the ready file failed");
            }
        }
        first = false;
        tokio::time::sleep(interval).await;
    }
}

/// Binds `address:port`; without an address, every interface as upstream's
/// `:port` does: IPv6 and IPv4 on `[::]`, or IPv4 only where IPv6 is off.
pub async fn bind(address: Option<IpAddr>, port: u16) -> Result<TcpListener, ShutdownError> {
    let bind_one = |ip: IpAddr| async move {
        let addr = SocketAddr::new(ip, port);
        TcpListener::bind(addr)
            .await
            .map_err(|source| ShutdownError::Bind { addr, source })
    };
    match address {
        Some(ip) => bind_one(ip).await,
        None => match bind_one(IpAddr::V6(Ipv6Addr::UNSPECIFIED)).await {
            Ok(listener) => Ok(listener),
            Err(e) => {
                tracing::debug!(error = %e, "no IPv6; listening on IPv4 only");
                bind_one(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).await
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::super::admin::{AdminAddress, AdminClient};
    use super::super::test_dir;
    use super::*;

    #[tokio::test]
    async fn waits_until_the_file_exists() -> Result<(), Box<dyn std::error::Error>> {
        let dir = test_dir("wait")?;
        let file = dir.join("ok");
        let interval = Duration::from_millis(5);
        let waiting =
            tokio::time::timeout(Duration::from_millis(100), wait_for_file(&file, interval));
        assert!(waiting.await.is_err(), "returned without the file");
        std::fs::write(&file, "")?;
        let found = tokio::time::timeout(Duration::from_secs(5), wait_for_file(&file, interval));
        assert!(found.await.is_ok(), "file not seen");
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_directory_is_waited_for_too() -> Result<(), Box<dyn std::error::Error>> {
        let dir = test_dir("wait-dir")?;
        let file = dir.join("later").join("ok");
        let interval = Duration::from_millis(5);
        let waiter = tokio::spawn({
            let file = file.clone();
            async move { wait_for_file(&file, interval).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished());
        std::fs::create_dir_all(dir.join("later"))?;
        std::fs::write(&file, "")?;
        tokio::time::timeout(Duration::from_secs(5), waiter).await??;
        Ok(())
    }

    #[tokio::test]
    async fn healthz_answers_and_shutdown_answers_once_the_file_exists()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = test_dir("server")?;
        let file = dir.join("ok");
        let listener = bind(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), 0).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            axum::serve(listener, router(file, Duration::from_millis(10))).await
        });
        let client = AdminClient::new(AdminAddress::Tcp(addr.to_string()));

        let (status, body) = client.request(Method::GET, "/healthz").await?;
        assert_eq!((status, &body[..]), (200, &b"OK"[..]));

        let pending = tokio::spawn({
            let client = client.clone();
            async move { client.request(Method::GET, "/shutdown").await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !pending.is_finished(),
            "/shutdown answered without the file"
        );
        std::fs::write(dir.join("ok"), "")?;
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), pending).await???;
        assert_eq!((status, &body[..]), (200, &b"OK"[..]));

        let (status, _) = client.request(Method::GET, "/elsewhere").await?;
        assert_eq!(status, 404);
        server.abort();
        Ok(())
    }
}
