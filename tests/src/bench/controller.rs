//! The controller under measurement, ours or upstream Contour, as a process
//! pinned with `taskset` (the same CPUs for both), serving xDS over mutual
//! TLS from the same throw-away PKI; and `/proc` readers for its memory and
//! CPU time.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::Result;
use crate::{ApiServer, XdsPki, free_port, process, tools};

/// Which controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// This repository's `contour serve` (release build in benches).
    Ours,
    /// Upstream Contour (`tests/tools/install.sh upstream_contour`), its defaults.
    Upstream,
}

impl Target {
    /// `ours` or `upstream`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Upstream => "upstream",
        }
    }

    /// How its Envoy follows it: each side's own bootstrap default (ours one
    /// delta ADS stream, upstream a stream per type); `OURS_XDS_MODE=ads`
    /// (or `per-type`) changes ours.
    pub fn xds_mode(self) -> crate::contour::XdsMode {
        use crate::contour::XdsMode;
        match self {
            Target::Upstream => XdsMode::PerType,
            Target::Ours => std::env::var("OURS_XDS_MODE")
                .ok()
                .and_then(|v| XdsMode::from_flag(&v))
                .unwrap_or_default(),
        }
    }

    /// Extra flags for experiments (`BENCH_OURS_ARGS`, `BENCH_UPSTREAM_ARGS`).
    pub fn extra_args(self) -> Vec<String> {
        let var = match self {
            Target::Ours => "BENCH_OURS_ARGS",
            Target::Upstream => "BENCH_UPSTREAM_ARGS",
        };
        std::env::var(var)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// How tables call it: ours with the settings that are not its
    /// defaults (`OURS_XDS_MODE`, `BENCH_OURS_ARGS`), if any.
    pub fn label(self) -> String {
        match self {
            Target::Ours => {
                let mut settings = self.extra_args();
                let mode = self.xds_mode();
                if mode != crate::contour::XdsMode::default() {
                    settings.push(mode.flag().into());
                }
                match settings.is_empty() {
                    true => "ours".into(),
                    false => format!("ours ({})", settings.join(", ")),
                }
            }
            Target::Upstream => format!("upstream {}", upstream_version()),
        }
    }
}

/// Upstream Contour's version (`tests/tools/versions.env`).
pub fn upstream_version() -> &'static str {
    tools::version("CONTOUR_VERSION").unwrap_or("v1.33.8")
}

/// Upstream Contour's binary, or an error naming the install command.
pub fn upstream_binary() -> Result<PathBuf> {
    let bin = std::env::var_os("UPSTREAM_CONTOUR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            tools::cache_dir()
                .join(format!("contour-{}", upstream_version()))
                .join("bin/contour")
        });
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} missing: run `bash tests/tools/install.sh upstream_contour`",
            bin.display()
        )
        .into())
    }
}

/// The CPUs both controllers are pinned to: `$BENCH_CPUS` (a `taskset -c`
/// list), else the first two CPUs (the "2 cores"). `none` disables.
pub fn bench_cpus() -> Option<String> {
    match std::env::var("BENCH_CPUS") {
        Ok(v) if v == "none" || v.is_empty() => None,
        Ok(v) => Some(v),
        Err(_) => {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            Some(if n >= 2 { "0,1".into() } else { "0".into() })
        }
    }
}

/// Upstream's CRDs that ours do not define (it watches ExtensionServices and
/// reads ContourConfigurations); ours stay as they are.
pub async fn install_upstream_crds(client: &kube::Client) -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use serde::Deserialize;
    let src = tools::upstream_contour(upstream_version())?;
    let text = std::fs::read_to_string(src.join("examples/contour/01-crds.yaml"))?;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let mut applied = false;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let crd = CustomResourceDefinition::deserialize(doc)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        if name.starts_with("extensionservices.") || name.starts_with("contourconfigurations.") {
            crds.patch(
                &name,
                &kube::api::PatchParams::apply("bench").force(),
                &kube::api::Patch::Apply(&crd),
            )
            .await?;
            applied = true;
        }
    }
    if applied {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

/// Memory and CPU time of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcStat {
    /// Resident set (`VmRSS`), MiB.
    pub rss_mib: f64,
    /// Peak resident set (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// User + system CPU time, seconds.
    pub cpu_secs: f64,
}

/// Reads `/proc/PID/status` and `/proc/PID/stat`; `None` when the process is gone.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field
    // 3, utime 14, stime 15 (clock ticks, USER_HZ = 100 on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(ProcStat {
        rss_mib: kib("VmRSS:") / 1024.0,
        peak_rss_mib: kib("VmHWM:") / 1024.0,
        cpu_secs: (ticks(11) + ticks(12)) / 100.0,
    })
}

/// One reading of a [`Sampler`].
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the sampler's start.
    pub t: f64,
    /// The reading.
    pub stat: ProcStat,
}

/// Reads a process's [`ProcStat`] every `interval` until stopped.
pub struct Sampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling `pid`; times are relative to `start`.
    pub fn start(pid: u32, start: Instant, interval: Duration) -> Sampler {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                if let Some(stat) = proc_stat(pid) {
                    out.push(Sample {
                        t: start.elapsed().as_secs_f64(),
                        stat,
                    });
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.changed() => break,
                }
            }
            out
        });
        Sampler { stop, task }
    }

    /// Stops and returns the readings.
    pub async fn finish(self) -> Vec<Sample> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// A running controller; killed on drop.
pub struct Controller {
    child: Option<Child>,
    /// Which one.
    pub target: Target,
    /// xDS port on 127.0.0.1 (mutual TLS).
    pub xds_port: u16,
    /// The PKI: clients use `envoy_cert`/`envoy_key`, verify against `ca`.
    pub pki: XdsPki,
    /// Envoy's HTTP listener port (in the config it serves).
    pub http_listen: u16,
    /// When the process was spawned.
    pub started: Instant,
    log: PathBuf,
}

impl Controller {
    /// Spawns `target` against the shared API server, its leader Lease in
    /// `ns`, pinned to [`bench_cpus`]. Does not wait for anything: callers
    /// time from [`Controller::started`].
    pub fn start(target: Target, api: &ApiServer, ns: &str) -> Result<Controller> {
        let pki = XdsPki::new(&format!("{}-{ns}", target.name()))?;
        let xds_port = free_port()?;
        let (http_listen, https_listen) = (free_port()?, free_port()?);
        let log = process::run_dir()?.join(format!("bench-{}-{ns}.log", target.name()));
        let mut args: Vec<String> = vec![
            "serve".into(),
            format!("--kubeconfig={}", api.kubeconfig().display()),
            "--xds-address=127.0.0.1".into(),
            format!("--xds-port={xds_port}"),
            format!("--contour-cafile={}", pki.ca.display()),
            format!("--contour-cert-file={}", pki.contour_cert.display()),
            format!("--contour-key-file={}", pki.contour_key.display()),
            "--http-address=127.0.0.1".into(),
            format!("--http-port={}", free_port()?),
            "--envoy-service-http-address=127.0.0.1".into(),
            format!("--envoy-service-http-port={http_listen}"),
            format!("--envoy-service-https-port={https_listen}"),
            format!("--leader-election-resource-namespace={ns}"),
        ];
        let bin = match target {
            Target::Ours => {
                args.insert(1, "--log-format=text".into());
                args.push("--log-level=warn".into());
                crate::contour::binary()?
            }
            Target::Upstream => {
                args.extend([
                    "--envoy-service-https-address=127.0.0.1".to_string(),
                    "--health-address=127.0.0.1".into(),
                    format!("--health-port={}", free_port()?),
                    "--debug-http-address=127.0.0.1".into(),
                    format!("--debug-http-port={}", free_port()?),
                    "--stats-address=127.0.0.1".into(),
                    format!("--stats-port={}", free_port()?),
                ]);
                upstream_binary()?
            }
        };
        args.extend(target.extra_args());
        // `BENCH_WRAP` runs the controller under a profiler (e.g.
        // `heaptrack -o /tmp/ht`); its RSS readings are then the wrapper's.
        let mut program: Vec<std::ffi::OsString> = std::env::var("BENCH_WRAP")
            .unwrap_or_default()
            .split_whitespace()
            .map(Into::into)
            .collect();
        program.push(bin.clone().into());
        if let Some(cpus) = bench_cpus() {
            program.splice(0..0, ["taskset".into(), "-c".into(), cpus.into()]);
        }
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]);
        cmd.args(&args).env("CONTOUR_NAMESPACE", ns);
        let started = Instant::now();
        let child = process::spawn(cmd, &log)?;
        Ok(Controller {
            child: Some(child),
            target,
            xds_port,
            pki,
            http_listen,
            started,
            log,
        })
    }

    /// Process id (taskset execs the controller, so it is the controller's).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Current memory and CPU time (zeros once it is gone).
    pub fn stat(&self) -> ProcStat {
        proc_stat(self.pid()).unwrap_or_default()
    }

    /// An error unless the process still runs (with its log's tail).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(format!(
                "{} exited with {status}:\n{}",
                self.target.name(),
                process::tail(&self.log, 30)
            )
            .into());
        }
        Ok(())
    }

    /// The last lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        process::tail(&self.log, n)
    }

    /// Waits until the xDS port accepts TCP connections.
    pub async fn wait_xds_port(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.xds_port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "{}: xDS port closed after {timeout:?}\n{}",
                    self.target.name(),
                    self.log_tail(20)
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops it (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            process::kill(&mut c);
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}
