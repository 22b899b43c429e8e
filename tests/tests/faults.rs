//! Faults against real components (issue 8): the status leader killed with
//! -9 (the other replica writes status within 20 s, with default lease
//! settings); Envoy restarted (its first answers after it reports LIVE are
//! already the full configuration); the xDS certificates rotated on disk
//! under traffic (no failed request, the routes keep following changes).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::TestResult;
use contour_tests::k8s::service_for;
use contour_tests::{ApiServer, ContourServe, TestNet};
use serde_json::{Value, json};

fn proxy(name: &str, host: &str) -> Value {
    json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": name},
        "spec": {"virtualhost": {"fqdn": host},
                 "routes": [{"services": [{"name": "web", "port": 80}]}]}})
}

/// A client sending requests to `host` every 20 ms until stopped; counts
/// requests and those that were not a 200.
struct Steady {
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Steady {
    fn start(port: u16, host: &str) -> Steady {
        let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (sent, failed, stop, host) =
                (sent.clone(), failed.clone(), stop.clone(), host.to_string());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let (code, _) = common::get(port, &host, "/").await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if code != 200 {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Steady {
            sent,
            failed,
            stop,
            task,
        }
    }

    async fn finish(self) -> Result<(u64, u64), tokio::task::JoinError> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await?;
        Ok((
            self.sent.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        ))
    }
}

async fn valid(client: &kube::Client, ns: &str, name: &str) -> bool {
    let api: kube::Api<contour_crds::HTTPProxy> = kube::Api::namespaced(client.clone(), ns);
    api.get(name)
        .await
        .is_ok_and(|p| p.status.is_some_and(|s| s.current_status == "valid"))
}

#[tokio::test]
async fn a_killed_leaders_status_writes_resume_on_the_other_replica_within_20s() -> TestResult {
    // Two replicas with default lease settings (15 s lease, 2 s retry), as
    // deployed, watching only their namespace (other tests' controllers
    // share this API server and must not write these statuses).
    contour_tests::init_crypto();
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    contour_tests::k8s::install_crds(&client).await?;
    let ns = api.namespace("fault-leader").await?;
    let pki = contour_tests::XdsPki::new(&ns)?;
    let flags = [
        format!("--leader-election-resource-namespace={ns}"),
        format!("--watch-namespaces={ns}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut first = ContourServe::start(api, Some(&pki), &flags).await?;
    let mut second = ContourServe::start(api, Some(&pki), &flags).await?;
    let apply = |m: Value| {
        let (client, ns) = (client.clone(), ns.clone());
        async move { contour_tests::k8s::apply(&client, &ns, &m).await }
    };
    for m in service_for("web", &["10.213.0.2:80".parse()?]) {
        apply(m).await?;
    }
    apply(proxy("one", "one.example.com")).await?;
    let started = Instant::now();
    let leader_first = loop {
        let a = first.metric("contour_leader").await?.unwrap_or(0.0);
        let b = second.metric("contour_leader").await?.unwrap_or(0.0);
        if a + b == 1.0 {
            break a == 1.0;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no single leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while !valid(&client, &ns, "one").await {
        assert!(started.elapsed() < Duration::from_secs(30), "no status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Kill the leader (-9: its lease is not released).
    let survivor = if leader_first {
        first.kill();
        &second
    } else {
        second.kill();
        &first
    };
    let killed = Instant::now();
    apply(proxy("two", "two.example.com")).await?;
    while !valid(&client, &ns, "two").await {
        // The lease (15 s) runs out, the survivor's next try (every 2 s)
        // takes it, then it writes: 30 s leaves room for a loaded machine.
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no status written 30 s after the leader was killed; survivor's log:\n{}",
            common::tail(&survivor.log(), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed.elapsed();
    eprintln!("status written {took:?} after the leader was killed");
    assert_eq!(survivor.metric("contour_leader").await?, Some(1.0));
    // It had to wait for the dead leader's lease to expire.
    assert!(
        took > Duration::from_secs(5),
        "taken over too soon: {took:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_restarted_envoy_has_the_full_configuration_once_live() -> TestResult {
    let g = common::ground_scoped("fault-envoy", &[], None).await?;
    let b = TestNet::shared()?.backend("fault-envoy")?;
    for m in service_for("web", &[b.addr]) {
        apply(&g, &m).await?;
    }
    let hosts: Vec<String> = (0..20).map(|i| format!("h{i}.example.com")).collect();
    for (i, h) in hosts.iter().enumerate() {
        apply(&g, &proxy(&format!("p{i}"), h)).await?;
    }
    for h in &hosts {
        common::eventually_within(g.listen, h, "/", (200, "fault-envoy"), 15).await?;
    }
    let (port, xds, pki) = (g.listen, g.contour.xds_port, g.pki.clone());
    drop(g.envoy);
    let envoy = contour_tests::contour::envoy_from_bootstrap(
        xds,
        &pki,
        contour_tests::contour::XdsMode::PerType,
    )
    .await?;
    // LIVE means the initial fetch is done: every host answers at once.
    for h in &hosts {
        let got = common::get(port, h, "/").await;
        assert_eq!(
            got,
            (200, "fault-envoy".to_string()),
            "{h} after the restart\n{}",
            common::tail(&envoy.log(), 20)
        );
    }
    Ok(())
}

async fn apply(g: &common::Ground, m: &Value) -> TestResult {
    contour_tests::k8s::apply(&g.client, &g.ns, m).await?;
    Ok(())
}

#[tokio::test]
async fn rotated_xds_certificates_lose_no_request() -> TestResult {
    let (pki, ca) = contour_tests::XdsPki::with_ca("fault-rotate")?;
    let g = common::ground_scoped("fault-rotate", &[], Some(pki)).await?;
    let b = TestNet::shared()?.backend("fault-rotate")?;
    for m in service_for("web", &[b.addr]) {
        g.apply(&m).await?;
    }
    g.apply(&proxy("steady", "steady.example.com")).await?;
    g.expect("steady.example.com", "/", (200, "fault-rotate"))
        .await?;
    let steady = Steady::start(g.listen, "steady.example.com");

    // New leaves from the same CA, written over the files both sides read.
    let server = ca.server("contour", &["contour"])?;
    let client = ca.client("envoy", None)?;
    std::fs::write(&g.pki.contour_cert, &server.cert_pem)?;
    std::fs::write(&g.pki.contour_key, &server.key_pem)?;
    std::fs::write(&g.pki.envoy_cert, &client.cert_pem)?;
    std::fs::write(&g.pki.envoy_key, &client.key_pem)?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // xDS still works with the new certificates: a new route arrives.
    g.apply(&proxy("after", "after.example.com")).await?;
    g.expect("after.example.com", "/", (200, "fault-rotate"))
        .await?;
    let (sent, failed) = steady.finish().await?;
    eprintln!("steady client: {sent} requests, {failed} failed");
    assert!(sent > 20, "only {sent} requests");
    assert_eq!(failed, 0, "requests failed during the rotation");
    Ok(())
}
