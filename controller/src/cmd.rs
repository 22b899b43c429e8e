//! The `contour` command line: serve, bootstrap, certgen, cli and envoy. Lives in
//! the library so that test crates can build the same binary under their own
//! name (`contour-under-test`) without a second cargo invocation.

use std::process::ExitCode;

use crate::logging::{self, LogFormat};
use clap::{Parser, Subcommand};

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
    Serve(Box<crate::serve::ServeArgs>),
    /// Write Envoy's bootstrap configuration.
    Bootstrap(crate::bootstrap::BootstrapArgs),
    /// Generate the mTLS CA and certificates.
    Certgen(crate::certgen::CertgenArgs),
    /// Stream resources from a running Contour over xDS (lds, rds, cds, eds, sds).
    Cli(crate::cli::CliArgs),
    /// Sub-command for envoy actions (shutdown-manager, shutdown).
    Envoy(crate::shutdown::EnvoyArgs),
    /// Print the version.
    Version,
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
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

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Version => {
            println!("contour {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Bootstrap(args) => exit("bootstrap", crate::bootstrap::run(&args)),
        Command::Certgen(args) => exit("certgen", crate::certgen::run(&args)),
        Command::Envoy(args) => exit(
            "envoy",
            runtime()
                .map_err(crate::shutdown::ShutdownError::Runtime)
                .and_then(|rt| rt.block_on(crate::shutdown::run(args.command))),
        ),
        Command::Serve(args) => {
            crate::process::prepare_serve();
            let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
                rt.block_on(crate::serve::run(*args))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "contour serve failed");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cli(args) => {
            let mut stdout = std::io::stdout();
            let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
                rt.block_on(crate::cli::run(args, &mut stdout))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("contour cli: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
