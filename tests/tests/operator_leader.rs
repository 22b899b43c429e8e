//! Operator leader election against a real API server: of two replicas only
//! the lease holder reconciles; when it dies without releasing the lease,
//! the standby takes over after the lease expires and reconciles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use contour::serve::leader::LeaderConfig;
use contour_operator::leader::{Ended, run_elected};
use contour_operator::metrics::OperatorMetrics;
use contour_tests::operator::{create, ctx, setup, status};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use tokio::sync::watch;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config(ns: &str, identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: ns.into(),
        name: "contour-operator".into(),
        identity: identity.into(),
        // Short for a quick takeover, with room for a loaded machine's
        // pauses before a healthy leader would lose it.
        lease_duration: Duration::from_secs(5),
        renew_deadline: Duration::from_secs(4),
        retry: Duration::from_millis(200),
    }
}

fn reconciles(m: &OperatorMetrics) -> f64 {
    m.render()
        .lines()
        .filter(|l| l.starts_with("contour_operator_reconcile_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("contour-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

async fn until<F, Fut>(what: &str, limit: Duration, mut f: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !f().await {
        if started.elapsed() > limit {
            return Err(format!("{what}: not within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_standby_takes_over() -> TestResult {
    let (client, ns) = setup("op-leader").await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let (_stop_tx, stop) = watch::channel(false);
    let a_metrics = OperatorMetrics::new();
    let a = tokio::spawn(run_elected(
        ctx(&client),
        Some(ns.clone()),
        a_metrics.clone(),
        config(&ns, "replica-a"),
        stop.clone(),
    ));
    until("a leads", Duration::from_secs(10), || async {
        holder(&leases).await.as_deref() == Some("replica-a")
    })
    .await?;
    let b_metrics = OperatorMetrics::new();
    let b = tokio::spawn(run_elected(
        ctx(&client),
        Some(ns.clone()),
        b_metrics.clone(),
        config(&ns, "replica-b"),
        stop.clone(),
    ));

    create(&client, &ns, "first", json!({})).await?;
    until("first reconciled", Duration::from_secs(20), || async {
        status(&client, &ns, "first")
            .await
            .is_ok_and(|s| s["observedGeneration"] == 1)
    })
    .await?;
    // The reconcile is counted after it wrote the status: wait for the count.
    until(
        "a counted its reconcile",
        Duration::from_secs(5),
        || async { reconciles(&a_metrics) >= 1.0 },
    )
    .await?;
    assert_eq!(reconciles(&b_metrics), 0.0, "the standby reconciled");

    // The leader dies without releasing its lease.
    a.abort();
    let took = until("b leads", Duration::from_secs(15), || async {
        holder(&leases).await.as_deref() == Some("replica-b")
    })
    .await?;
    eprintln!("standby took over after {took:?}");
    create(&client, &ns, "second", json!({})).await?;
    until("second reconciled", Duration::from_secs(20), || async {
        status(&client, &ns, "second")
            .await
            .is_ok_and(|s| s["observedGeneration"] == 1)
    })
    .await?;
    until(
        "b counted its reconcile",
        Duration::from_secs(5),
        || async { reconciles(&b_metrics) >= 1.0 },
    )
    .await?;
    assert!(!b.is_finished());

    // Someone else takes the lease: b stops reconciling and says why. b
    // renews it meanwhile, so a write from a stale read is refused (409):
    // read again and retry, as a real contender would.
    let mut attempts = 0;
    loop {
        let mut lease = leases.get("contour-operator").await?;
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = Some("replica-c".into());
            spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            ));
            spec.lease_duration_seconds = Some(3600);
        }
        match leases
            .replace("contour-operator", &Default::default(), &lease)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 409 && attempts < 20 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), b).await??;
    assert_eq!(ended, Ended::LostLeadership);
    let _ = Arc::strong_count(&b_metrics);
    Ok(())
}
