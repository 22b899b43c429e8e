//! The `contour` binary under test: built once per test binary, run as a real
//! process (`contour serve`) against the test API server, with a throw-away
//! mTLS PKI, and an Envoy bootstrap that follows it over ADS.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::pki::Ca;
use crate::{ApiServer, HarnessError, Result, free_port, process};

static SERVERS: AtomicU32 = AtomicU32::new(0);

/// The `contour` binary under test: this crate's `contour-under-test`, which
/// cargo builds (with the same features as the tests) before running them.
pub fn binary() -> Result<PathBuf> {
    sibling_binary("contour-under-test")
}

/// The `contour-operator-under-test` binary, found like [`binary`].
pub fn operator_binary() -> Result<PathBuf> {
    sibling_binary("contour-operator-under-test")
}

fn sibling_binary(name: &'static str) -> Result<PathBuf> {
    // Tests live in <target>/<profile>/deps/, binaries (the demo) in
    // <target>/<profile>/.
    let exe = std::env::current_exe()?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(name))
        .collect();
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(HarnessError::MissingTool {
            component: name,
            path: candidates.into_iter().next().unwrap_or_default(),
        }),
    }
}

/// Runs `contour ARGS` to completion (text logs) and returns its output.
pub fn run(args: &[&str]) -> Result<Output> {
    Ok(Command::new(binary()?)
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

/// Files of a throw-away xDS PKI: one CA, Contour's serving pair (`contour`),
/// Envoy's client pair.
#[derive(Debug, Clone)]
pub struct XdsPki {
    /// CA certificate.
    pub ca: PathBuf,
    /// Contour's certificate.
    pub contour_cert: PathBuf,
    /// Contour's key.
    pub contour_key: PathBuf,
    /// Envoy's certificate.
    pub envoy_cert: PathBuf,
    /// Envoy's key.
    pub envoy_key: PathBuf,
}

impl XdsPki {
    /// Creates the files in a new directory under the run directory.
    pub fn new(name: &str) -> Result<XdsPki> {
        Ok(Self::with_ca(name)?.0)
    }

    /// [`XdsPki::new`], also handing out the CA to sign more certificates.
    pub fn with_ca(name: &str) -> Result<(XdsPki, Ca)> {
        let dir = process::run_dir()?.join(format!("pki-{name}"));
        std::fs::create_dir_all(&dir)?;
        let ca = Ca::new("contour-test-ca")?;
        let server = ca.server("contour", &["contour"])?;
        let client = ca.client("envoy", None)?;
        let write = |file: &str, text: &str| -> Result<PathBuf> {
            let p = dir.join(file);
            std::fs::write(&p, text)?;
            Ok(p)
        };
        let pki = XdsPki {
            ca: write("ca.crt", &ca.cert_pem())?,
            contour_cert: write("contour.crt", &server.cert_pem)?,
            contour_key: write("contour.key", &server.key_pem)?,
            envoy_cert: write("envoy.crt", &client.cert_pem)?,
            envoy_key: write("envoy.key", &client.key_pem)?,
        };
        Ok((pki, ca))
    }
}

/// A running `contour serve`; killed on drop.
pub struct ContourServe {
    child: Option<Child>,
    /// xDS port on 127.0.0.1.
    pub xds_port: u16,
    /// Metrics/debug port on 127.0.0.1.
    pub http_port: u16,
    log: PathBuf,
    command: Vec<String>,
    /// A command that runs contour (e.g. `prlimit --nofile=…`), if any.
    wrapper: Vec<String>,
}

impl ContourServe {
    /// Starts `contour serve` against the shared API server with `pki` (or
    /// `--insecure` when `None`) and extra flags; returns once `/metrics` answers.
    pub async fn start(api: &ApiServer, pki: Option<&XdsPki>, extra: &[&str]) -> Result<Self> {
        Self::start_wrapped(api, pki, extra, &[]).await
    }

    /// As [`Self::start`], with contour run by `wrapper` (a command that
    /// ends by executing its arguments, such as `prlimit --nofile=…`).
    pub async fn start_wrapped(
        api: &ApiServer,
        pki: Option<&XdsPki>,
        extra: &[&str],
        wrapper: &[&str],
    ) -> Result<Self> {
        let n = SERVERS.fetch_add(1, Ordering::SeqCst);
        let log = process::run_dir()?.join(format!("contour-{n}.log"));
        let (xds_port, http_port) = (free_port()?, free_port()?);
        let mut command: Vec<String> = vec![
            "serve".into(),
            "--log-format=text".into(),
            format!("--kubeconfig={}", api.kubeconfig().display()),
            "--xds-address=127.0.0.1".into(),
            format!("--xds-port={xds_port}"),
            "--http-address=127.0.0.1".into(),
            format!("--http-port={http_port}"),
            "--envoy-service-http-address=127.0.0.1".into(),
        ];
        // Health follows the metrics socket; debug too unless a test moves it.
        if !extra.iter().any(|a| a.starts_with("--debug-http-port")) {
            command.push(format!("--debug-http-port={http_port}"));
        }
        match pki {
            Some(p) => {
                command.push(format!("--contour-cafile={}", p.ca.display()));
                command.push(format!("--contour-cert-file={}", p.contour_cert.display()));
                command.push(format!("--contour-key-file={}", p.contour_key.display()));
            }
            None => command.push("--insecure".into()),
        }
        if !extra.iter().any(|a| a.starts_with("--log-level")) {
            command.push("--log-level=info,contour=debug".into());
        }
        command.extend(extra.iter().map(|s| s.to_string()));
        let mut me = ContourServe {
            child: None,
            xds_port,
            http_port,
            log,
            command,
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
        };
        me.restart().await?;
        Ok(me)
    }

    /// (Re)starts the process with the same flags and ports.
    pub async fn restart(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            process::kill(&mut c);
        }
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary()?);
                cmd
            }
            None => Command::new(binary()?),
        };
        cmd.args(&self.command);
        self.child = Some(process::spawn(cmd, &self.log)?);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(HarnessError::NotReady {
                    component: "contour",
                    seconds: start.elapsed().as_secs(),
                    log: format!("exited with {status}\n{}", process::tail(&self.log, 30)),
                });
            }
            // The metrics endpoint is always on `http_port` (health may
            // have been moved by a test).
            if self
                .get("/metrics")
                .await
                .is_ok_and(|(code, _)| code == 200)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(HarnessError::NotReady {
            component: "contour",
            seconds: 30,
            log: process::tail(&self.log, 30),
        })
    }

    /// Kills the process (SIGKILL) without waiting for anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::kill(&mut c);
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                // kill(2) through libc needs `unsafe`, which the workspace
                // forbids; the `kill` command does the same.
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            process::kill(&mut c);
        }
    }

    /// GET a path of the metrics/debug endpoint: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.http_port);
        let resp = reqwest::get(url).await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// The value of one sample of `/metrics` (`name{labels}` as printed), if present.
    pub async fn metric(&self, sample: &str) -> Result<Option<f64>> {
        let (_, text) = self.get("/metrics").await?;
        Ok(crate::prometheus::Metrics::parse(&text).value(sample))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ContourServe {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts Envoy from `contour bootstrap --xds-mode <mode>` output, as an
/// envoy pod does: it follows Contour at `127.0.0.1:xds_port` with Envoy's
/// certificate from `pki`; admin on a free loopback port, no stats listener.
pub async fn envoy_from_bootstrap(
    xds_port: u16,
    pki: &XdsPki,
    mode: XdsMode,
) -> Result<crate::Envoy> {
    envoy_from_bootstrap_with(xds_port, Some(pki), mode).await
}

pub use contour::bootstrap::XdsMode;

/// [`envoy_from_bootstrap`], over plain gRPC when `pki` is `None`.
pub async fn envoy_from_bootstrap_with(
    xds_port: u16,
    pki: Option<&XdsPki>,
    mode: XdsMode,
) -> Result<crate::Envoy> {
    let admin = free_port()?;
    let path = |p: &std::path::Path| p.display().to_string();
    let (xds, admin_port) = (xds_port.to_string(), admin.to_string());
    let files = pki.map(|p| (path(&p.ca), path(&p.envoy_cert), path(&p.envoy_key)));
    let mut args = vec![
        "bootstrap",
        "-",
        "--xds-port",
        &xds,
        "--admin-port",
        &admin_port,
        "--stats-port",
        "0",
    ];
    if let Some((ca, cert, key)) = &files {
        args.extend([
            "--envoy-cafile",
            ca.as_str(),
            "--envoy-cert-file",
            cert.as_str(),
            "--envoy-key-file",
            key.as_str(),
        ]);
    }
    args.extend(["--xds-mode", mode.flag()]);
    let out = run_ok(&args)?;
    let bootstrap: Value = serde_json::from_slice(&out.stdout)?;
    crate::Envoy::start_as_is(&bootstrap, &format!("http://127.0.0.1:{admin}")).await
}

/// A minimal hand-written bootstrap (without admin; [`crate::Envoy::start`]
/// adds it) that follows an xDS server at `127.0.0.1:xds_port` over ADS,
/// incremental when `delta` is set, over mTLS when `pki` is given (the
/// layout bench; Contour's own is `contour bootstrap`).
pub fn ads_bootstrap_with(xds_port: u16, pki: Option<&XdsPki>, delta: bool) -> Value {
    let mut contour = json!({
        "name": "contour",
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        },
        "load_assignment": {
            "cluster_name": "contour",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": xds_port
            }}}}]}]
        }
    });
    if let Some(p) = pki {
        contour["transport_socket"] = json!({
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": "contour",
                "common_tls_context": {
                    "tls_certificates": [{
                        "certificate_chain": {"filename": p.envoy_cert.display().to_string()},
                        "private_key": {"filename": p.envoy_key.display().to_string()}
                    }],
                    "validation_context": {
                        "trusted_ca": {"filename": p.ca.display().to_string()},
                        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "contour"}}]
                    }
                }
            }
        });
    }
    json!({
        "dynamic_resources": {
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "ads_config": {
                "api_type": if delta { "DELTA_GRPC" } else { "GRPC" },
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "contour"}}]
            }
        },
        "static_resources": {"clusters": [contour]},
        "layered_runtime": {"layers": [{"name": "static", "static_layer": {}}]}
    })
}
