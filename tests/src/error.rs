use std::path::PathBuf;

/// Errors of the test ground.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A component binary is not installed.
    #[error(
        "{component} not found at {path}: run `make tools` (tests/tools/install.sh) to build/install it"
    )]
    MissingTool {
        /// Which component.
        component: &'static str,
        /// Where it was expected.
        path: PathBuf,
    },
    /// A process did not become ready.
    #[error("{component} did not become ready within {seconds}s; last log lines:\n{log}")]
    NotReady {
        /// Which component.
        component: &'static str,
        /// How long we waited.
        seconds: u64,
        /// Tail of its log.
        log: String,
    },
    /// The shared API server failed to start earlier in this test binary.
    #[error("the shared API server failed to start: {0}")]
    SharedStartFailed(String),
    /// A helper command failed.
    #[error("command `{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its standard error.
        stderr: String,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Pki(#[from] rcgen::Error),
    /// I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Kubernetes client.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// Kubeconfig handling.
    #[error("kubeconfig: {0}")]
    KubeConfig(#[from] kube::config::KubeconfigError),
    /// YAML.
    #[error("yaml: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// HTTP client.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
}
