//! A real Envoy 1.40 process.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{HarnessError, Result, free_port, process, tools};

static ENVOYS: AtomicU32 = AtomicU32::new(0);

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    admin_port: u16,
    admin_url: String,
    log: PathBuf,
    config_path: PathBuf,
}

impl Envoy {
    /// Starts Envoy with a bootstrap (YAML or JSON). The admin listener is
    /// added on a free loopback port and must not be in `bootstrap`.
    /// Returns once Envoy reports `LIVE` on `/ready`.
    pub async fn start(bootstrap: &serde_json::Value) -> Result<Envoy> {
        let admin_port = free_port()?;
        let mut config = bootstrap.clone();
        if let Some(obj) = config.as_object_mut() {
            obj.insert(
                "admin".into(),
                serde_json::json!({
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
                }),
            );
        }
        Self::launch(&config, format!("http://127.0.0.1:{admin_port}")).await
    }

    /// Starts Envoy with a bootstrap exactly as given (its own admin).
    /// `admin_url` (`http://host:port`) must answer the admin paths, e.g.
    /// the admin listener or a listener that forwards `/ready` to it; the
    /// call returns once `{admin_url}/ready` says `LIVE`.
    pub async fn start_as_is(bootstrap: &serde_json::Value, admin_url: &str) -> Result<Envoy> {
        Self::launch(bootstrap, admin_url.trim_end_matches('/').to_string()).await
    }

    async fn launch(config: &serde_json::Value, admin_url: String) -> Result<Envoy> {
        let bin = tools::envoy()?;
        let n = ENVOYS.fetch_add(1, Ordering::SeqCst);
        let dir = process::run_dir()?.join(format!("envoy-{n}"));
        std::fs::create_dir_all(&dir)?;
        let config_path = dir.join("bootstrap.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(config)?)?;
        let log = dir.join("envoy.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&config_path)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "info",
            ])
            .args([
                "--service-node",
                &format!("test-envoy-{n}"),
                "--service-cluster",
                "contour-test",
            ]);
        // Extra Envoy flags for experiments (benches), e.g.
        // `--ignore-unknown-dynamic-fields`.
        if let Ok(extra) = std::env::var("ENVOY_EXTRA_ARGS") {
            cmd.args(extra.split_whitespace());
        }
        let child = process::spawn(cmd, &log)?;
        let admin_port = admin_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let mut envoy = Envoy {
            child,
            admin_port,
            admin_url,
            log,
            config_path,
        };
        envoy.wait_live().await?;
        Ok(envoy)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The admin port (of the admin URL).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Path of the bootstrap file Envoy runs with.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET a path of the admin interface and return the body.
    pub async fn admin_get(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.admin_url);
        Ok(reqwest::get(url).await?.text().await?)
    }

    async fn wait_live(&mut self) -> Result<()> {
        let start = Instant::now();
        // Envoy turns LIVE when its first xDS fetches are done or timed out
        // (15s each when the control plane is unreachable).
        let timeout = Duration::from_secs(60);
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HarnessError::NotReady {
                    component: "envoy",
                    seconds: start.elapsed().as_secs(),
                    log: format!("exited with {status}\n{}", problems(&self.log)),
                });
            }
            if self
                .admin_get("/ready")
                .await
                .is_ok_and(|body| body.trim() == "LIVE")
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(HarnessError::NotReady {
            component: "envoy",
            seconds: timeout.as_secs(),
            log: process::tail(&self.log, 30),
        })
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        process::kill(&mut self.child);
    }
}

/// The error lines of an Envoy log (the last 30 lines when there are none).
fn problems(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[critical]") || l.contains("[error]"))
        .collect();
    if errors.is_empty() {
        process::tail(log, 30)
    } else {
        errors.join("\n")
    }
}
