//! `contour envoy shutdown-manager` and `contour envoy shutdown`: Envoy's
//! graceful drain when its pod stops (upstream Contour's
//! `cmd/contour/shutdownmanager.go`, flags and defaults as there).
//!
//! The `shutdown-manager` sidecar serves `/healthz` and `/shutdown` on
//! `--serve-port` (8090) (`manager.rs`). The Envoy container's `preStop` is
//! an HTTP GET of `/shutdown`, which answers only once the ready file
//! (`--ready-file`, `/admin/ok`) exists. The sidecar's own `preStop` runs
//! `contour envoy shutdown` (`drain.rs`): it makes Envoy fail its health
//! checks over the admin interface (`--admin-address`, the unix socket
//! `/admin/admin.sock`), polls the ingress listeners' open connections
//! (`stats.rs`) until at most `--min-open-connections` are left, then writes
//! the ready file; `/shutdown` answers and the kubelet stops Envoy.
//!
//! Where we differ: `--admin-port` (upstream: deprecated and unused) reaches
//! the admin on TCP 127.0.0.1, as `contour bootstrap --admin-port` puts it,
//! and `--admin-address` may be `host:port`; `--serve-address` (ours) picks
//! the interface of the server; a ready file that cannot be written is an
//! error (exit 1; upstream logs it and exits 0); the open connections are
//! read from `/stats` rather than `/stats/prometheus` (the same gauges).

mod admin;
mod drain;
mod manager;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use admin::{AdminAddress, AdminClient};
pub use drain::{DrainPlan, EnvoyAdmin, HEALTHCHECK_FAIL_RETRY_DELAYS, drain, drained};
pub use manager::{READY_FILE_CHECK_INTERVAL, router, wait_for_file};
pub use stats::{IGNORED_PREFIXES, STATS_PATH, open_connections};

/// Port of the shutdown-manager's server.
pub const DEFAULT_SERVE_PORT: u16 = 8090;
/// The file that tells `/shutdown` the drain is done.
pub const DEFAULT_READY_FILE: &str = "/admin/ok";
/// Envoy's admin socket, as `contour bootstrap` writes it.
pub const DEFAULT_ADMIN_ADDRESS: &str = "/admin/admin.sock";

/// Errors of `contour envoy`.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The async runtime did not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The server's address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("serving on {addr}: {source}")]
    Serve {
        /// The address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The admin interface could not be reached.
    #[error("connecting to Envoy's admin interface at {address}: {source}")]
    Connect {
        /// The admin address.
        address: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP exchange with the admin interface failed.
    #[error("HTTP to Envoy's admin interface at {address}: {source}")]
    Http {
        /// The admin address.
        address: String,
        /// Cause.
        source: hyper::Error,
    },
    /// An admin request did not complete in time.
    #[error("{method} {path} on Envoy's admin interface at {address}: no answer after {after:?}")]
    Timeout {
        /// The admin address.
        address: String,
        /// HTTP method.
        method: String,
        /// Path and query.
        path: String,
        /// The time waited.
        after: Duration,
    },
    /// An admin request did not answer 200.
    #[error(
        "{method} {path} on Envoy's admin interface at {address} returned HTTP status {status}"
    )]
    Status {
        /// The admin address.
        address: String,
        /// HTTP method.
        method: String,
        /// Path and query.
        path: String,
        /// The status code.
        status: u16,
    },
    /// A response body could not be read.
    #[error("reading the answer to {path} from Envoy's admin interface at {address}: {source}")]
    Body {
        /// The admin address.
        address: String,
        /// Path and query.
        path: String,
        /// Cause.
        source: axum::Error,
    },
    /// A request could not be built.
    #[error("building an admin request: {0}")]
    Request(axum::http::Error),
    /// Envoy's stats hold no `http.<prefix>.downstream_cx_active` gauge.
    #[error("no http.<prefix>.downstream_cx_active gauge in Envoy's stats")]
    StatMissing,
    /// A `downstream_cx_active` gauge is not a count.
    #[error("line {line} of Envoy's stats is not a count of connections: {text:?}")]
    StatValue {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The ready file could not be written.
    #[error("writing the ready file {path}: {source}")]
    ReadyFile {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// A duration flag: Go's syntax (`5s`, `1m30s`, `250ms`); `0s` is zero.
fn duration_flag(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || t == "infinity" || t == "infinite" {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(crate::dag::builder::parse_duration(t)?.unwrap_or(Duration::ZERO))
}

/// `contour envoy`: Envoy's sidecar commands.
#[derive(clap::Args, Debug, Clone)]
pub struct EnvoyArgs {
    /// The command.
    #[command(subcommand)]
    pub command: EnvoyCommand,
}

/// The sub-commands of `contour envoy`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum EnvoyCommand {
    /// Start envoy shutdown-manager.
    ShutdownManager(ManagerArgs),
    /// Initiate a shutdown sequence which configures Envoy to begin draining connections.
    Shutdown(ShutdownArgs),
}

/// Flags of `contour envoy shutdown-manager` (upstream's names and defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct ManagerArgs {
    /// Port to serve the http server on.
    #[arg(long, default_value_t = DEFAULT_SERVE_PORT)]
    pub serve_port: u16,
    /// Address to serve the http server on (default: every interface).
    #[arg(long)]
    pub serve_address: Option<IpAddr>,
    /// File to poll while waiting shutdown to be completed.
    #[arg(long, default_value = DEFAULT_READY_FILE)]
    pub ready_file: PathBuf,
}

/// Flags of `contour envoy shutdown` (upstream's names and defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct ShutdownArgs {
    /// Envoy admin interface address: a unix socket path, or host:port.
    #[arg(long, default_value = DEFAULT_ADMIN_ADDRESS)]
    pub admin_address: String,
    /// Envoy admin interface port on 127.0.0.1 (as `contour bootstrap
    /// --admin-port`); wins over --admin-address.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// Time to wait before polling Envoy for open connections.
    #[arg(long, value_parser = duration_flag, default_value = "0s")]
    pub check_delay: Duration,
    /// Time to poll Envoy for open connections.
    #[arg(long, value_parser = duration_flag, default_value = "5s")]
    pub check_interval: Duration,
    /// Time to wait before draining Envoy connections.
    #[arg(long, value_parser = duration_flag, default_value = "0s")]
    pub drain_delay: Duration,
    /// Min number of open connections when polling Envoy.
    #[arg(long, default_value_t = 0)]
    pub min_open_connections: u64,
    /// File to write when shutdown is completed.
    #[arg(long, default_value = DEFAULT_READY_FILE)]
    pub ready_file: PathBuf,
}

impl ShutdownArgs {
    /// The drain these flags describe.
    pub fn plan(&self) -> DrainPlan {
        DrainPlan {
            drain_delay: self.drain_delay,
            check_delay: self.check_delay,
            check_interval: self.check_interval,
            min_open_connections: self.min_open_connections,
            retry_delays: HEALTHCHECK_FAIL_RETRY_DELAYS.to_vec(),
        }
    }
}

/// Runs a `contour envoy` command.
pub async fn run(command: EnvoyCommand) -> Result<(), ShutdownError> {
    match command {
        EnvoyCommand::ShutdownManager(args) => run_manager(args).await,
        EnvoyCommand::Shutdown(args) => run_shutdown(args).await,
    }
}

/// `contour envoy shutdown-manager`: serves until SIGTERM or Ctrl-C, without
/// waiting for `/shutdown` requests still in flight.
pub async fn run_manager(args: ManagerArgs) -> Result<(), ShutdownError> {
    let listener = manager::bind(args.serve_address, args.serve_port).await?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| format!("port {}", args.serve_port));
    tracing::info!(address = %addr, ready_file = %args.ready_file.display(), "started envoy shutdown manager");
    let app = router(args.ready_file, READY_FILE_CHECK_INTERVAL);
    tokio::select! {
        served = async { axum::serve(listener, app).await } => {
            served.map_err(|source| ShutdownError::Serve { addr, source })?;
        }
        () = stop_signal() => tracing::info!("stopped"),
    }
    Ok(())
}

/// `contour envoy shutdown`: drains Envoy, then writes the ready file.
pub async fn run_shutdown(args: ShutdownArgs) -> Result<(), ShutdownError> {
    let admin = AdminAddress::from_flags(&args.admin_address, args.admin_port);
    tracing::info!(admin = %admin, ready_file = %args.ready_file.display(), "starting envoy shutdown");
    let open = drain(&AdminClient::new(admin), &args.plan()).await;
    tokio::fs::write(&args.ready_file, b"")
        .await
        .map_err(|source| ShutdownError::ReadyFile {
            path: args.ready_file.clone(),
            source,
        })?;
    tracing::info!(ready_file = %args.ready_file.display(), open_connections = open, "wrote the ready file");
    Ok(())
}

async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// A fresh directory for one test, removed when dropped.
#[cfg(test)]
struct TestDir(PathBuf);

#[cfg(test)]
impl std::ops::Deref for TestDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
fn test_dir(name: &str) -> std::io::Result<TestDir> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "contour-shutdown-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(TestDir(dir))
}

#[cfg(test)]
mod tests;
