//! The `contour-operator` command line. Lives in the library so that test
//! crates build the same binary under their own name.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use contour::logging::{self, LogFormat};
use contour::serve::leader::LeaderConfig;
use tokio::sync::watch;

use crate::Context;
use crate::leader::Ended;
use crate::validate::Images;

/// Where a pod finds its own namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn duration(s: &str) -> Result<Duration, String> {
    crate::validate::parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 15s"))
}

#[derive(Parser, Debug)]
#[command(
    name = "contour-operator",
    version,
    about = "Reconciles ContourDeployment resources"
)]
struct Cli {
    /// Print the version and exit.
    #[arg(long)]
    print_version: bool,
    /// Path to a kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Image with our `contour` binary, for instances that name none.
    #[arg(long, env = "CONTOUR_IMAGE")]
    contour_image: Option<String>,
    /// Envoy's image, for instances that name none.
    #[arg(long, env = "ENVOY_IMAGE")]
    envoy_image: Option<String>,
    /// Reconcile only the ContourDeployments of this namespace (default: all).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_address: String,
    /// Reconcile without electing a leader (run one replica only).
    #[arg(long)]
    disable_leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "contour-operator")]
    leader_election_id: String,
    /// Namespace of the leader Lease (default: the pod's own).
    #[arg(long, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// How long a lease lasts without renewal.
    #[arg(long, value_parser = duration, default_value = "15s")]
    leader_election_lease_duration: Duration,
    /// How long the leader tries to renew before it steps down.
    #[arg(long, value_parser = duration, default_value = "10s")]
    leader_election_renew_deadline: Duration,
    /// Time between election attempts.
    #[arg(long, value_parser = duration, default_value = "2s")]
    leader_election_retry_period: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Log level (an EnvFilter directive).
    #[arg(long, default_value = "info")]
    log_level: String,
}

impl Cli {
    fn leader_config(&self) -> LeaderConfig {
        let namespace = self
            .leader_election_namespace
            .clone()
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|s| s.trim().to_string())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "contour-operator".into());
        LeaderConfig {
            namespace,
            name: self.leader_election_id.clone(),
            identity: format!("{host}_{}", std::process::id()),
            lease_duration: self.leader_election_lease_duration,
            renew_deadline: self.leader_election_renew_deadline,
            retry: self.leader_election_retry_period,
        }
    }
}

async fn client(cli: &Cli) -> Result<kube::Client, String> {
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| e.to_string())?
        }
        None => kube::Config::infer().await.map_err(|e| e.to_string())?,
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Fires on SIGTERM or SIGINT.
fn signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        contour::serve::shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

async fn run(cli: Cli) -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match client(&cli).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes client");
            return ExitCode::from(1);
        }
    };
    let defaults = Images::default();
    let images = Images {
        contour: cli.contour_image.clone().unwrap_or(defaults.contour),
        envoy: cli.envoy_image.clone().unwrap_or(defaults.envoy),
    };
    tracing::info!(contour_image = %images.contour, envoy_image = %images.envoy, "starting");
    let metrics = crate::metrics::OperatorMetrics::new();
    let listener = match tokio::net::TcpListener::bind(&cli.metrics_address).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %cli.metrics_address, error = %e, "cannot listen for metrics");
            return ExitCode::from(1);
        }
    };
    tokio::spawn(crate::metrics::serve(listener, metrics.clone()));
    let ctx = Context {
        client,
        images,
        pruned: Default::default(),
    };
    if cli.disable_leader_election {
        crate::controller::run_with_metrics(ctx, cli.namespace.clone(), metrics).await;
        tracing::info!("stopped");
        return ExitCode::SUCCESS;
    }
    let config = cli.leader_config();
    tracing::info!(lease = %config.name, namespace = %config.namespace, identity = %config.identity, "leader election on");
    match crate::leader::run_elected(ctx, cli.namespace.clone(), metrics, config, signals()).await {
        Ended::Stopped => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        // The pod restarts and waits as a standby.
        Ended::LostLeadership => ExitCode::from(1),
    }
}

/// Parses the process arguments and runs the operator.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_version {
        println!("contour-operator {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init(cli.log_format, &cli.log_level);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            tracing::error!(error = %e, "no runtime");
            ExitCode::from(1)
        }
    }
}
