//! `contour`: serve, bootstrap, certgen and cli.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use contour::logging::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "contour",
    version,
    about = "Contour: Kubernetes ingress control plane for Envoy"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Log level (an EnvFilter directive).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch Kubernetes and serve xDS to Envoy.
    Serve,
    /// Write Envoy's bootstrap configuration.
    Bootstrap(contour::bootstrap::BootstrapArgs),
    /// Generate the mTLS CA and certificates.
    Certgen(contour::certgen::CertgenArgs),
    /// Query a running Contour over xDS (lds, rds, cds, eds, sds).
    Cli,
    /// Print the version.
    Version,
}

/// Logs a failed subcommand's error and turns it into the exit code.
fn exit<E: std::error::Error>(command: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(command, error = %e, "failed");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Version => {
            println!("contour {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Bootstrap(args) => exit("bootstrap", contour::bootstrap::run(&args)),
        Command::Certgen(args) => exit("certgen", contour::certgen::run(&args)),
        other => {
            tracing::error!(command = ?other, "this subcommand is not available in this build yet");
            ExitCode::from(2)
        }
    }
}
