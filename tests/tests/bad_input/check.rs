//! The machinery of the catalogue: what an entry is, what it expects, how
//! the expectations are checked against the API server, the contour log and
//! Envoy, and how a whole catalogue is applied and waited for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contour_tests::k8s::{apply, resource_of};
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::common::{Ground, tail};

/// Upstream's descriptions.
pub const VALID_PROXY: &str = "Valid HTTPProxy";
pub const INVALID_PROXY: &str = "At least one error present, see Errors for details";
pub const ORPHANED_PROXY: &str =
    "this HTTPProxy is not part of a delegation chain from a root HTTPProxy";
pub const VALID_ROUTE: &str = "valid IngressRoute";
pub const ORPHANED_ROUTE: &str =
    "this IngressRoute is not part of a delegation chain from a root IngressRoute";

/// One hostile or malformed input: the objects to apply (namespace,
/// manifest), in order, and what must follow.
pub struct Entry {
    /// Short name, used in failure reports.
    pub name: &'static str,
    /// The kind of the object under test (for counting).
    pub kind: &'static str,
    /// (namespace, manifest), applied in order.
    pub objects: Vec<(String, Value)>,
    /// What must hold once the objects are applied.
    pub expect: Vec<Expect>,
}

/// An expected outcome.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The API server refuses `objects[object]`; its message contains `says`.
    Refused { object: usize, says: String },
    /// An HTTPProxy's status: `current` ("valid", "invalid", "orphaned") with
    /// upstream's description, and (for invalid ones) this error among the
    /// errors of the `Valid` condition: (type, reason, message), exact.
    Proxy {
        ns: String,
        name: String,
        current: &'static str,
        error: Option<(&'static str, &'static str, String)>,
    },
    /// An HTTPProxy carries this warning (type, reason, message), exact.
    ProxyWarning {
        ns: String,
        name: String,
        warning: (&'static str, &'static str, String),
    },
    /// An HTTPProxy is invalid with an `EnvoyRejected` error (Envoy's words
    /// are Envoy's).
    Rejected { ns: String, name: String },
    /// An IngressRoute's status, exact.
    Route {
        ns: String,
        name: String,
        current: &'static str,
        description: String,
    },
    /// Contour never wrote a status: the object still carries the API
    /// server's default (`NotReconciled`).
    Ignored {
        kind: &'static str,
        ns: String,
        name: String,
    },
    /// One line of contour's log contains every one of these strings.
    Logged(Vec<String>),
    /// A plain HTTP GET through Envoy (Host header) answers `code` from
    /// `backend` ("" for none).
    Http {
        host: String,
        path: String,
        header: Option<(String, String)>,
        code: u16,
        backend: &'static str,
    },
    /// An HTTPS GET through Envoy (SNI = host, verified against `ca`)
    /// answers `code` from `backend`.
    Https {
        port: u16,
        host: String,
        path: String,
        code: u16,
        backend: &'static str,
        ca: String,
    },
}

// Constructors that read like the outcome they stand for.

pub fn refused(object: usize, says: impl Into<String>) -> Expect {
    Expect::Refused {
        object,
        says: says.into(),
    }
}

pub fn valid(ns: &str, name: &str) -> Expect {
    Expect::Proxy {
        ns: ns.into(),
        name: name.into(),
        current: "valid",
        error: None,
    }
}

pub fn invalid(
    ns: &str,
    name: &str,
    r#type: &'static str,
    reason: &'static str,
    message: impl Into<String>,
) -> Expect {
    Expect::Proxy {
        ns: ns.into(),
        name: name.into(),
        current: "invalid",
        error: Some((r#type, reason, message.into())),
    }
}

pub fn orphaned(ns: &str, name: &str) -> Expect {
    Expect::Proxy {
        ns: ns.into(),
        name: name.into(),
        current: "orphaned",
        error: Some(("Orphaned", "Orphaned", ORPHANED_PROXY.into())),
    }
}

pub fn warned(
    ns: &str,
    name: &str,
    r#type: &'static str,
    reason: &'static str,
    message: impl Into<String>,
) -> Expect {
    Expect::ProxyWarning {
        ns: ns.into(),
        name: name.into(),
        warning: (r#type, reason, message.into()),
    }
}

pub fn rejected(ns: &str, name: &str) -> Expect {
    Expect::Rejected {
        ns: ns.into(),
        name: name.into(),
    }
}

pub fn route_status(
    ns: &str,
    name: &str,
    current: &'static str,
    description: impl Into<String>,
) -> Expect {
    Expect::Route {
        ns: ns.into(),
        name: name.into(),
        current,
        description: description.into(),
    }
}

pub fn ignored(kind: &'static str, ns: &str, name: &str) -> Expect {
    Expect::Ignored {
        kind,
        ns: ns.into(),
        name: name.into(),
    }
}

pub fn logged(parts: &[&str]) -> Expect {
    Expect::Logged(parts.iter().map(|s| s.to_string()).collect())
}

pub fn serves(host: &str, path: &str, backend: &'static str) -> Expect {
    Expect::Http {
        host: host.into(),
        path: path.into(),
        header: None,
        code: 200,
        backend,
    }
}

pub fn answers(host: &str, path: &str, code: u16) -> Expect {
    Expect::Http {
        host: host.into(),
        path: path.into(),
        header: None,
        code,
        backend: "",
    }
}

/// [`serves`] or [`answers`] (`backend` "") with one more request header.
pub fn with_header(
    host: &str,
    path: &str,
    header: (&str, &str),
    code: u16,
    backend: &'static str,
) -> Expect {
    Expect::Http {
        host: host.into(),
        path: path.into(),
        header: Some((header.0.into(), header.1.into())),
        code,
        backend,
    }
}

pub fn serves_tls(port: u16, host: &str, path: &str, backend: &'static str, ca: &str) -> Expect {
    Expect::Https {
        port,
        host: host.into(),
        path: path.into(),
        code: 200,
        backend,
        ca: ca.into(),
    }
}

// Manifests.

pub fn proxy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
           "metadata": {"name": name}, "spec": spec})
}

pub fn ingressroute(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
           "metadata": {"name": name}, "spec": spec})
}

pub fn ingress(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name}, "spec": spec})
}

pub fn delegation(name: &str, secret: &str, targets: &[&str]) -> Value {
    json!({"apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
           "metadata": {"name": name},
           "spec": {"delegations": [{"secretName": secret, "targetNamespaces": targets}]}})
}

pub fn tls_secret(name: &str, cert: &str, key: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
           "type": "kubernetes.io/tls", "stringData": {"tls.crt": cert, "tls.key": key}})
}

/// A root HTTPProxy for `fqdn` with one route to `service` port 80.
pub fn root(name: &str, fqdn: &str, service: &str) -> Value {
    proxy(
        name,
        json!({"virtualhost": {"fqdn": fqdn},
               "routes": [{"services": [{"name": service, "port": 80}]}]}),
    )
}

/// A root IngressRoute for `fqdn` with one route `/` to `service` port 80.
pub fn root_route(name: &str, fqdn: &str, service: &str) -> Value {
    ingressroute(
        name,
        json!({"virtualhost": {"fqdn": fqdn},
               "routes": [{"match": "/", "services": [{"name": service, "port": 80}]}]}),
    )
}

/// Applies (server-side, raw JSON) `manifest` in `ns`; the API server's
/// refusal as text.
pub async fn try_apply(g: &Ground, ns: &str, manifest: &Value) -> Result<(), String> {
    apply(&g.client, ns, manifest)
        .await
        .map_err(|e| e.to_string())
}

/// The live object (kind, ns, name), if any.
pub async fn live(g: &Ground, kind: &str, ns: &str, name: &str) -> Result<Value, String> {
    let api_version = match kind {
        "IngressRoute" => "contour.heptio.com/v1beta1",
        _ => "projectcontour.io/v1",
    };
    let ar = resource_of(&json!({"apiVersion": api_version, "kind": kind}))
        .map_err(|e| e.to_string())?;
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(g.client.clone(), ns, &ar);
    let o = api.get(name).await.map_err(|e| e.to_string())?;
    serde_json::to_value(o).map_err(|e| e.to_string())
}

fn has_problem(list: &Value, want: &(&'static str, &'static str, String)) -> bool {
    list.as_array().is_some_and(|ps| {
        ps.iter().any(|p| {
            p["type"] == want.0
                && p["reason"] == want.1
                && p["message"] == want.2.as_str()
                && p["status"] == "True"
        })
    })
}

impl Expect {
    /// Checks a non-`Refused` expectation once: `Err` says what was seen.
    pub async fn check(&self, g: &Ground) -> Result<(), String> {
        match self {
            Expect::Refused { .. } => Ok(()),
            Expect::Proxy {
                ns,
                name,
                current,
                error,
            } => {
                let o = live(g, "HTTPProxy", ns, name).await?;
                let s = &o["status"];
                let description = match *current {
                    "valid" => VALID_PROXY,
                    "invalid" => INVALID_PROXY,
                    _ => ORPHANED_PROXY,
                };
                let cond = &s["conditions"][0];
                let truth = if *current == "valid" { "True" } else { "False" };
                let ok = s["currentStatus"] == *current
                    && s["description"] == description
                    && cond["type"] == "Valid"
                    && cond["status"] == truth
                    && o["metadata"]["generation"] == cond["observedGeneration"]
                    && match error {
                        None => cond.get("errors").is_none(),
                        Some(e) => has_problem(&cond["errors"], e),
                    };
                if ok {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            }
            Expect::ProxyWarning { ns, name, warning } => {
                let o = live(g, "HTTPProxy", ns, name).await?;
                let s = &o["status"];
                if has_problem(&s["conditions"][0]["warnings"], warning) {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            }
            Expect::Rejected { ns, name } => {
                let o = live(g, "HTTPProxy", ns, name).await?;
                let s = &o["status"];
                let rejected = s["conditions"][0]["errors"]
                    .as_array()
                    .is_some_and(|es| es.iter().any(|e| e["type"] == "EnvoyRejected"));
                if s["currentStatus"] == "invalid" && rejected {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            }
            Expect::Route {
                ns,
                name,
                current,
                description,
            } => {
                let o = live(g, "IngressRoute", ns, name).await?;
                let s = &o["status"];
                if s["currentStatus"] == *current && s["description"] == description.as_str() {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            }
            Expect::Ignored { kind, ns, name } => {
                let o = live(g, kind, ns, name).await?;
                let s = &o["status"];
                if s["currentStatus"] == "NotReconciled" || s.is_null() {
                    Ok(())
                } else {
                    Err(format!("status {s}"))
                }
            }
            Expect::Logged(parts) => {
                let log = strip_ansi(&g.contour.log());
                if log
                    .lines()
                    .any(|l| parts.iter().all(|p| l.contains(p.as_str())))
                {
                    Ok(())
                } else {
                    Err("no such line in contour's log".into())
                }
            }
            Expect::Http {
                host,
                path,
                header,
                code,
                backend,
            } => {
                let got = http_get(g.listen, host, path, header.as_ref()).await;
                if got.0 == *code && got.1 == *backend {
                    Ok(())
                } else {
                    Err(format!("got {got:?}"))
                }
            }
            Expect::Https {
                port,
                host,
                path,
                code,
                backend,
                ca,
            } => https_get(*port, host, path, ca).await.and_then(|got| {
                if got.0 == *code && got.1 == *backend {
                    Ok(())
                } else {
                    Err(format!("got {got:?}"))
                }
            }),
        }
    }
}

/// GET through Envoy's HTTP listener with a Host header and maybe one more
/// header, without following redirects: (status, backend name or "").
pub async fn http_get(
    port: u16,
    host: &str,
    path: &str,
    header: Option<&(String, String)>,
) -> (u16, String) {
    let Ok(client) = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return (0, String::new());
    };
    let mut req = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Host", host);
    if let Some((k, v)) = header {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (
                code,
                body["backend"].as_str().unwrap_or_default().to_string(),
            )
        }
        Err(_) => (0, String::new()),
    }
}

/// GET `https://host:port/path` on loopback: (status, backend name or "").
pub async fn https_get(
    port: u16,
    host: &str,
    path: &str,
    ca: &str,
) -> Result<(u16, String), String> {
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.as_bytes()).map_err(|e| e.to_string())?,
        )
        .resolve(host, addr)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let r = client
        .get(format!("https://{host}:{port}{path}"))
        .send()
        .await
        .map_err(|e| format!("HTTPS: {e}"))?;
    let code = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    Ok((
        code,
        body["backend"].as_str().unwrap_or_default().to_string(),
    ))
}

/// `s` without ANSI colour sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How a catalogue run went.
pub struct Report {
    /// Entries by kind.
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Objects the API server refused.
    pub refused: usize,
    /// How long until every expectation held.
    pub settled: Duration,
}

/// Applies every entry's objects, then waits up to `secs` until every
/// expectation holds; fails naming every entry that did not get there.
pub async fn run(g: &Ground, entries: &[Entry], secs: u64) -> Result<Report, String> {
    // Printed in full (the test's own error is shown Debug-escaped).
    run_quietly(g, entries, secs)
        .await
        .inspect_err(|e| eprintln!("{e}"))
}

async fn run_quietly(g: &Ground, entries: &[Entry], secs: u64) -> Result<Report, String> {
    let mut problems = Vec::new();
    let mut by_kind = BTreeMap::new();
    let mut refused = 0;
    for e in entries {
        *by_kind.entry(e.kind).or_insert(0) += 1;
        for (i, (ns, manifest)) in e.objects.iter().enumerate() {
            let want = e.expect.iter().find_map(|x| match x {
                Expect::Refused { object, says } if *object == i => Some(says.as_str()),
                _ => None,
            });
            match (try_apply(g, ns, manifest).await, want) {
                (Ok(()), None) => {}
                (Err(m), Some(says)) if m.contains(says) => refused += 1,
                (Err(m), Some(says)) => problems.push(format!(
                    "{}: object {i} refused, but not with {says:?}: {m}",
                    e.name
                )),
                (Ok(()), Some(says)) => problems.push(format!(
                    "{}: object {i} accepted, expected a refusal saying {says:?}",
                    e.name
                )),
                (Err(m), None) => problems.push(format!("{}: object {i} refused: {m}", e.name)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let start = Instant::now();
    let all: Vec<(&str, &Expect)> = entries
        .iter()
        .flat_map(|e| e.expect.iter().map(move |x| (e.name, x)))
        .filter(|(_, x)| !matches!(x, Expect::Refused { .. }))
        .collect();
    // Wait on what fails; once nothing does, every expectation is checked
    // again in one round, so that none holds only because it was looked at
    // before Contour got to it.
    let mut pending = all.clone();
    let mut confirming = false;
    loop {
        let mut left = Vec::new();
        let mut seen = Vec::new();
        for (name, x) in &pending {
            if let Err(m) = x.check(g).await {
                seen.push(format!("{name}: {x:?}\n    seen: {m}"));
                left.push((*name, *x));
            }
        }
        match (left.is_empty(), confirming) {
            (true, true) => {
                return Ok(Report {
                    by_kind,
                    refused,
                    settled: start.elapsed(),
                });
            }
            (true, false) => {
                confirming = true;
                pending = all.clone();
                continue;
            }
            (false, _) => {
                confirming = false;
            }
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let seen: Vec<String> = seen.iter().map(|s| shorten(s, 600)).collect();
            return Err(format!(
                "{} expectation(s) not met within {secs} s:\n{}\n--- Envoy's refusals ---\n{}\n--- contour log (tail) ---\n{}\n--- envoy log (tail) ---\n{}",
                seen.len(),
                seen.join("\n"),
                refusals(&g.contour.log()).join("\n"),
                shorten(&tail(&g.contour.log(), 20), 4000),
                shorten(&tail(&g.envoy.log(), 20), 4000)
            ));
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `s`, cut in the middle when longer than `max` bytes.
pub fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut head = max / 2;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - max / 2;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{} [...] {}", &s[..head], &s[tail..])
}

/// The reasons of Envoy's refusals in contour's log (Envoy quotes the whole
/// resource first; the reason is at the end), each once.
pub fn refusals(log: &str) -> Vec<String> {
    let log = strip_ansi(log);
    let mut out: Vec<String> = Vec::new();
    for (i, _) in log.match_indices("Envoy rejected configuration") {
        let rest = &log[i..];
        let end = rest.find("\n20").unwrap_or(rest.len());
        let entry = &rest[..end];
        let reason = entry.rsplit("\n: ").next().unwrap_or(entry);
        let reason = shorten(reason, 400);
        if !out.contains(&reason) {
            out.push(reason);
        }
    }
    out
}

/// Contour serve is alive (its process runs, `/healthz` answers) and never
/// panicked.
pub async fn alive_and_sane(g: &Ground) -> Result<(), String> {
    let pid = g.contour.pid().ok_or("contour serve has no process")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("contour serve (pid {pid}) is gone: {e}"))?;
    // The state follows the parenthesised command name; Z = exited.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    if state.starts_with('Z') {
        return Err(format!(
            "contour serve exited:\n{}",
            tail(&g.contour.log(), 40)
        ));
    }
    match g.contour.get("/healthz").await {
        Ok((200, _)) => {}
        other => return Err(format!("/healthz: {other:?}")),
    }
    let log = g.contour.log();
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        return Err(format!("contour serve panicked: {line}"));
    }
    Ok(())
}
