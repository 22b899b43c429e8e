//! `contour-operator`.

use std::process::ExitCode;

use clap::Parser;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.print_version {
        println!("contour-operator {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    eprintln!("contour-operator: the reconciler is not available in this build yet");
    ExitCode::from(2)
}
