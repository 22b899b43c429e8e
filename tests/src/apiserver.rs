//! One real etcd + kube-apiserver per test binary, RBAC on, like envtest.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::pki::{Ca, CertPair};
use crate::{HarnessError, Result, free_port, process, tools};

const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running API server shared by the tests of one binary.
pub struct ApiServer {
    url: String,
    ca_pem: String,
    admin: CertPair,
    kubeconfig: PathBuf,
    dir: PathBuf,
    children: Mutex<Vec<Child>>,
    /// How to start etcd and the API server again ([`ApiServer::start`]).
    commands: Vec<(PathBuf, Vec<String>, PathBuf)>,
    etcd_port: u16,
}

static SHARED: OnceLock<std::result::Result<ApiServer, String>> = OnceLock::new();
static NAMESPACES: AtomicU32 = AtomicU32::new(0);

impl ApiServer {
    /// The API server of this test binary, started on first use.
    pub fn shared() -> Result<&'static ApiServer> {
        let started = SHARED.get_or_init(|| {
            // Start outside any async runtime the calling test may be in.
            std::thread::spawn(|| Self::launch().map_err(|e| e.to_string()))
                .join()
                .unwrap_or_else(|_| Err("the start-up thread panicked".to_string()))
        });
        started
            .as_ref()
            .map_err(|e| HarnessError::SharedStartFailed(e.clone()))
    }

    /// The `https://127.0.0.1:PORT` address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Path of an admin kubeconfig (for kubectl and helm).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The CA that signed the serving certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Directory with this server's files and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client with cluster-admin rights (group `system:masters`).
    pub async fn admin_client(&self) -> Result<Client> {
        let kc = Kubeconfig::from_yaml(&kubeconfig_yaml(
            &self.url,
            &self.ca_pem,
            UserAuth::Cert(&self.admin),
        ))?;
        client_from(kc).await
    }

    /// A client that authenticates as `system:serviceaccount:NS:NAME`, with
    /// exactly the rights RBAC gives that account. Creates the account if it
    /// does not exist.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let kc = Kubeconfig::from_yaml(
            &self
                .service_account_kubeconfig_yaml(namespace, name)
                .await?,
        )?;
        client_from(kc).await
    }

    /// A kubeconfig (YAML) that acts as ServiceAccount `namespace/name`
    /// (created if missing) with a one-hour token.
    pub async fn service_account_kubeconfig_yaml(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String> {
        let admin = self.admin_client().await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        if accounts.get_opt(name).await?.is_none() {
            let sa = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            accounts.create(&PostParams::default(), &sa).await?;
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let issued = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?;
        let token = issued.status.map(|s| s.token).unwrap_or_default();
        Ok(kubeconfig_yaml(
            &self.url,
            &self.ca_pem,
            UserAuth::Token(&token),
        ))
    }

    /// Creates a fresh namespace named after `prefix` and returns its name.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        let n = NAMESPACES.fetch_add(1, Ordering::SeqCst);
        let mut base: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(50)
            .collect();
        base = base.trim_matches('-').to_string();
        let name = format!("{base}-{n}");
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.admin_client().await?)
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name)
    }

    /// An outage of the whole control plane: kills etcd and the API server
    /// (SIGKILL), waits `outage`, starts both again on the same ports and
    /// data, and returns once the API server is ready. Every client and
    /// watch sees the outage; use it in a test binary of its own.
    pub async fn restart(&self, outage: Duration) -> Result<()> {
        self.stop();
        tokio::time::sleep(outage).await;
        self.start().await
    }

    /// The first half of [`ApiServer::restart`]: kills etcd and the API
    /// server (SIGKILL) and returns at once; every request fails from now
    /// on, until [`ApiServer::start`].
    pub fn stop(&self) {
        if let Ok(mut children) = self.children.lock() {
            for c in children.iter_mut() {
                process::kill(c);
            }
            children.clear();
        }
    }

    /// The second half of [`ApiServer::restart`]: starts etcd and the API
    /// server again on the same ports and data, and returns once the API
    /// server is ready.
    pub async fn start(&self) -> Result<()> {
        for (i, (bin, args, log)) in self.commands.iter().enumerate() {
            let mut cmd = Command::new(bin);
            cmd.args(args);
            let child = process::spawn(cmd, log)?;
            if let Ok(mut children) = self.children.lock() {
                children.push(child);
            }
            let started = Instant::now();
            loop {
                let ready = if i == 0 {
                    let port = self.etcd_port;
                    tokio::task::spawn_blocking(move || etcd_healthy(port))
                        .await
                        .unwrap_or(false)
                } else {
                    match self.admin_client().await {
                        Ok(client) => match http::Request::get("/readyz").body(Vec::new()) {
                            Ok(r) => client.request_text(r).await.is_ok_and(|t| t.trim() == "ok"),
                            Err(_) => false,
                        },
                        Err(_) => false,
                    }
                };
                if ready {
                    break;
                }
                if started.elapsed() > START_TIMEOUT {
                    return Err(HarnessError::NotReady {
                        component: if i == 0 { "etcd" } else { "kube-apiserver" },
                        seconds: START_TIMEOUT.as_secs(),
                        log: process::tail(log, 30),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    fn launch() -> Result<ApiServer> {
        let etcd_bin = tools::etcd()?;
        let apiserver_bin = tools::kube_apiserver()?;
        let dir = process::run_dir()?.join("apiserver");
        std::fs::create_dir_all(dir.join("etcd"))?;

        let ca = Ca::new("contour-rs-test-ca")?;
        let serving = ca.server(
            "kube-apiserver",
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ],
        )?;
        let admin = ca.client("admin", Some("system:masters"))?;
        let (sa_key, sa_pub) = crate::pki::key_pair_pem()?;
        let write = |name: &str, body: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, body)?;
            Ok(p)
        };
        let ca_file = write("ca.crt", &ca.cert_pem())?;
        let tls_cert = write("apiserver.crt", &serving.cert_pem)?;
        let tls_key = write("apiserver.key", &serving.key_pem)?;
        let sa_file = write("sa.key", &sa_key)?;
        let sa_pub_file = write("sa.pub", &sa_pub)?;

        let etcd_port = free_port()?;
        let peer_port = free_port()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            "--name=test".into(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=test={peer_url}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let mut etcd = Command::new(&etcd_bin);
        etcd.args(&etcd_args);
        let etcd_log = dir.join("etcd.log");
        let mut children = vec![process::spawn(etcd, &etcd_log)?];
        wait_until("etcd", &etcd_log, &mut children[0], || {
            etcd_healthy(etcd_port)
        })?;

        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let api_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("certs").display()),
            format!("--tls-cert-file={}", tls_cert.display()),
            format!("--tls-private-key-file={}", tls_key.display()),
            format!("--client-ca-file={}", ca_file.display()),
            format!("--service-account-key-file={}", sa_pub_file.display()),
            format!("--service-account-signing-key-file={}", sa_file.display()),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            "--endpoint-reconciler-type=none".into(),
            "--enable-priority-and-fairness=false".into(),
            "--v=1".into(),
        ];
        let mut api = Command::new(&apiserver_bin);
        api.args(&api_args);
        let api_log = dir.join("kube-apiserver.log");
        children.push(process::spawn(api, &api_log)?);

        let kubeconfig = dir.join("admin.kubeconfig");
        let ca_pem = ca.cert_pem();
        std::fs::write(
            &kubeconfig,
            kubeconfig_yaml(&url, &ca_pem, UserAuth::Cert(&admin)),
        )?;
        let server = ApiServer {
            url,
            ca_pem,
            admin,
            kubeconfig,
            dir: dir.clone(),
            children: Mutex::new(Vec::new()),
            commands: vec![
                (etcd_bin, etcd_args, etcd_log),
                (apiserver_bin, api_args, api_log.clone()),
            ],
            etcd_port,
        };

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime.block_on(server.admin_client())?;
        let mut api_child = children
            .pop()
            .ok_or_else(|| std::io::Error::other("no child"))?;
        wait_until("kube-apiserver", &api_log, &mut api_child, || {
            runtime.block_on(async {
                let req = http::Request::get("/readyz").body(Vec::new());
                match req {
                    Ok(r) => client
                        .request_text(r)
                        .await
                        .map(|t| t.trim() == "ok")
                        .unwrap_or(false),
                    Err(_) => false,
                }
            })
        })?;
        children.push(api_child);
        if let Ok(mut c) = server.children.lock() {
            c.extend(children);
        }
        Ok(server)
    }
}

fn wait_until(
    component: &'static str,
    log: &Path,
    child: &mut Child,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if ready() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(HarnessError::NotReady {
                component,
                seconds: start.elapsed().as_secs(),
                log: format!("exited with {status}\n{}", process::tail(log, 30)),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(HarnessError::NotReady {
        component,
        seconds: START_TIMEOUT.as_secs(),
        log: process::tail(log, 30),
    })
}

fn etcd_healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

enum UserAuth<'a> {
    Cert(&'a CertPair),
    Token(&'a str),
}

fn kubeconfig_yaml(url: &str, ca_pem: &str, user: UserAuth<'_>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let user = match user {
        UserAuth::Cert(c) => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&c.cert_pem),
            b64(&c.key_pem)
        ),
        UserAuth::Token(t) => format!("    token: {t}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\nusers:\n- name: user\n  user:\n{user}contexts:\n- name: test\n  context:\n    cluster: test\n    user: user\ncurrent-context: test\n",
        b64(ca_pem)
    )
}

async fn client_from(kc: Kubeconfig) -> Result<Client> {
    crate::init_crypto();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}
