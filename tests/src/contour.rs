//! The `contour` binary of this workspace, built (or found up to date) by
//! cargo on first use, so tests run the CLI exactly as users do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::{HarnessError, Result};

/// Path of the `contour` binary, after `cargo build -p contour --bin contour`
/// (same target directory and profile as the tests; a no-op when fresh).
pub fn bin() -> Result<&'static Path> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| build().map_err(|e| e.to_string()))
        .as_deref()
        .map_err(|e| HarnessError::Command {
            command: "cargo build -p contour --bin contour".into(),
            stderr: e.to_string(),
        })
}

/// Runs `contour ARGS` to completion (text logs) and returns its output.
pub fn run(args: &[&str]) -> Result<Output> {
    Ok(Command::new(bin()?)
        .args(["--log-format", "text"])
        .args(args)
        .env("NO_COLOR", "1")
        .output()?)
}

/// Like [`run`], but an error (with stderr) unless the exit status is 0.
pub fn run_ok(args: &[&str]) -> Result<Output> {
    let out = run(args)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(HarnessError::Command {
            command: format!("contour {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn build() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::tools::repo_root()).args([
        "build",
        "-j",
        "1",
        "-p",
        "contour",
        "--bin",
        "contour",
        "--message-format",
        "json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd.output()?;
    let failed = |why: &str| HarnessError::Command {
        command: "cargo build -p contour --bin contour".into(),
        stderr: format!("{why}\n{}", String::from_utf8_lossy(&out.stderr)),
    };
    if !out.status.success() {
        return Err(failed("the build failed"));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "contour")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| failed("cargo reported no `contour` executable"))
}
