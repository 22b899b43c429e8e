//! `contour-operator`: reconciles ContourDeployment resources.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use contour::logging::{self, LogFormat};
use contour_operator::Context;
use contour_operator::validate::Images;

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
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Log level (an EnvFilter directive).
    #[arg(long, default_value = "info")]
    log_level: String,
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_version {
        println!("contour-operator {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init(cli.log_format, &cli.log_level);
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
    let metrics = contour_operator::metrics::OperatorMetrics::new();
    let listener = match tokio::net::TcpListener::bind(&cli.metrics_address).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %cli.metrics_address, error = %e, "cannot listen for metrics");
            return ExitCode::from(1);
        }
    };
    tokio::spawn(contour_operator::metrics::serve(listener, metrics.clone()));
    contour_operator::controller::run_with_metrics(
        Context { client, images },
        cli.namespace.clone(),
        metrics,
    )
    .await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
