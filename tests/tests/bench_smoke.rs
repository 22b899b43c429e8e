//! The end-to-end benchmarks of issue 7 with tiny sizes, against ours only,
//! so that they cannot rot: each scenario's function runs, produces sane
//! numbers and writes its CSV and PNG files (into a temporary directory).
//! The real runs are `make bench-propagation`, `bench-coldstart`, `bench-churn`,
//! `bench-fanout` and `bench-operator` (figures in BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use contour_tests::bench::{
    Common, Target, churn, coldstart, fanout, layout, operator, propagation,
};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The scenarios share one API server and start controllers that watch
/// every namespace: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-smoke-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_files(paths: &[PathBuf], dir: &Path) {
    assert!(!paths.is_empty());
    for p in paths {
        assert!(
            p.starts_with(dir),
            "{} outside {}",
            p.display(),
            dir.display()
        );
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 50, "{} is {len} bytes", p.display());
        if p.extension().is_some_and(|e| e == "png") {
            let head = std::fs::read(p).unwrap_or_default();
            assert!(head.starts_with(b"\x89PNG"), "{} is not a PNG", p.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coldstart_smoke() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let dir = out_dir("coldstart");
    let cfg = coldstart::Config {
        proxies: 20,
        services: 20,
        secrets: 30,
        helm_kib: (1, 4),
        namespaces: 2,
        targets: vec![Target::Ours],
        envoy: true,
        settle: Duration::from_secs(1),
        timeout: Duration::from_secs(60),
        common: Common::fixed("coldstart", dir.clone()),
    };
    let (world, outcomes) = coldstart::run(&cfg).await?;
    assert_eq!(world.expected.vhosts, 20);
    assert_eq!(world.expected.tls, 7);
    let o = &outcomes[0];
    assert!(o.complete_s > 0.0 && o.complete_s < 60.0, "{o:?}");
    assert!(o.envoy_complete_s.is_some(), "Envoy never had the config");
    assert!(o.bytes_to_complete > 1000);
    assert!(o.peak_rss_mib > 1.0 && o.steady_rss_mib > 1.0);
    assert!(o.cpu_total > 0.0);
    let table = coldstart::table(&cfg, &world, &outcomes);
    assert!(table.contains("| ours |"), "{table}");
    assert_files(&coldstart::write_outputs(&cfg, &outcomes)?, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_smoke() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let dir = out_dir("churn");
    let cfg = churn::Config {
        clusters: vec![20],
        clients: 2,
        rate: 20.0,
        secs: 3.0,
        routes_per_proxy: 4,
        namespaces: 2,
        targets: vec![Target::Ours],
        settle: Duration::from_millis(500),
        timeout: Duration::from_secs(60),
        common: Common::fixed("churn", dir.clone()),
    };
    let outcomes = churn::run(&cfg).await?;
    let o = &outcomes[0];
    assert_eq!(o.updates.len(), 60);
    assert!(o.responses[1] > 0, "no EDS responses: {o:?}");
    assert!(o.bytes_per_change() > 0.0);
    let arrived = o.updates.iter().filter(|u| u.to_all().is_some()).count();
    assert!(
        arrived >= 54,
        "only {arrived} of 60 updates reached both clients"
    );
    assert!(o.cpu_secs > 0.0);
    assert!(churn::table(&cfg, &outcomes).contains("| ours | 20 |"));
    assert_files(&churn::write_outputs(&cfg, &outcomes)?, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_smoke() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let dir = out_dir("fanout");
    let cfg = fanout::Config {
        routes: 20,
        services: 2,
        clients: 3,
        changes: 3,
        gap: Duration::from_millis(100),
        namespaces: 2,
        targets: vec![Target::Ours],
        settle: Duration::from_millis(500),
        timeout: Duration::from_secs(60),
        common: Common::fixed("fanout", dir.clone()),
    };
    let (world, outcomes) = fanout::run(&cfg).await?;
    let o = &outcomes[0];
    assert!(o.first_change.to_all().is_some(), "{o:?}");
    assert_eq!(o.changes.len(), 3);
    assert_eq!(o.missed(), 0, "every client received every change: {o:?}");
    assert!(o.responses[3] >= 3 * 3, "RDS responses: {:?}", o.responses);
    assert!(o.kib_per_connection().is_finite());
    assert!(fanout::table(&cfg, &world, &outcomes).contains("| ours |"));
    assert_files(&fanout::write_outputs(&cfg, &outcomes)?, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_smoke() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let dir = out_dir("operator");
    let cfg = operator::Config {
        instances: 1,
        noop_runs: 3,
        out_dir: dir.clone(),
        name: "operator".into(),
    };
    let instances = operator::run(&cfg).await?;
    let i = &instances[0];
    assert!(i.children >= 14, "{i:?}");
    assert!(i.first.writes >= 14, "{i:?}");
    assert_eq!(i.noop.len(), 3);
    assert!(i.noop.iter().all(|r| r.writes == 0), "a no-op wrote: {i:?}");
    assert!(i.noop.iter().all(|r| r.reads > 0));
    assert!(operator::table(&cfg, &instances).contains("bench-0"));
    assert_files(&operator::write_outputs(&cfg, &instances)?, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_smoke() -> TestResult {
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let dir = out_dir("propagation");
    let cfg = propagation::Config {
        sizes: vec![0, 20],
        samples: 5,
        namespaces: 2,
        targets: vec![Target::Ours],
        ready_cap: Duration::from_secs(60),
        sample_timeout: Duration::from_secs(20),
        steady_every: Duration::from_millis(5),
        gap: Duration::from_millis(20),
        wipe_status: true,
        common: Common::fixed("propagation", dir.clone()),
    };
    let outcomes = propagation::run(&cfg).await?;
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert!(o.ready.not_live.is_none(), "{o:?}");
        assert_eq!(o.samples.len(), 5, "{o:?}");
        assert_eq!(o.not_served(), 0, "{o:?}");
        assert_eq!(o.not_valid(), 0, "{o:?}");
        assert_eq!(o.ready.statuses_total, o.preloaded + 1, "{o:?}");
        assert!(o.steady.requests > 0 && o.steady.ok > 0, "{o:?}");
        assert_eq!(o.steady.bad(), 0, "steady client: {:?}", o.steady);
        assert!(o.rss_mib > 1.0);
    }
    // The second run found the first run's statuses and wiped them.
    assert_eq!(outcomes[1].ready.wiped, 1, "{:?}", outcomes[1].ready);
    let table = propagation::table(&cfg, &outcomes);
    assert!(table.contains("| ours | 20 |"), "{table}");
    assert_files(&propagation::write_outputs(&cfg, &outcomes)?, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The layout bench needs no API server: every layout at 10 hosts, over
/// delta ADS. How each matches hosts is what the bench reports: a scope key
/// is the exact host (no upper case, no wildcard or default host to fall
/// back to); the Lua-chosen key gives back what one route table does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_smoke() -> TestResult {
    use layout::Layout;
    let mut outcomes = Vec::new();
    for (layout, want) in [
        (Layout::Rds, [200, 200, 200, 201, 202, 404]),
        (Layout::Scoped, [200, 200, 404, 404, 404, 404]),
        (Layout::ScopedLua, [200, 200, 200, 201, 202, 404]),
    ] {
        let o = layout::run(layout::Config {
            hosts: 10,
            samples: 3,
            layout,
            delta: true,
        })
        .await?;
        assert_eq!(o.took.len(), 3, "{o:?}");
        assert!(o.took.iter().all(|t| *t > Duration::ZERO), "{o:?}");
        assert_eq!(o.probes, want.map(Some), "{layout:?}: {o:?}");
        assert!(
            o.request_us.0 > 0.0 && o.request_us.1 >= o.request_us.0,
            "{o:?}"
        );
        outcomes.push(o);
    }
    assert!(
        outcomes[0]
            .envoy_update
            .contains("rds.ingress_http.update_duration")
    );
    assert!(
        outcomes[1]
            .envoy_update
            .contains("scoped_rds.ingress_scopes.update_duration")
    );
    let table = layout::table(&outcomes);
    assert!(
        table.contains("| a scope per host | delta | 10 | 3 |"),
        "{table}"
    );
    Ok(())
}

/// The benches' ADS client in its delta form follows `contour serve
/// --route-layout=scoped` as Envoy would: clusters, endpoints, listeners,
/// then every scope (wildcard); a new host reaches it as one scope, and a
/// route watch sees it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_client_follows_the_scoped_layout() -> TestResult {
    use contour_tests::bench::xds::{self, Client, Matcher, Watch};
    use contour_tests::k8s::{apply, install_crds, service_for};
    use contour_tests::{ApiServer, ContourServe, XdsPki};
    let _one = ONE_AT_A_TIME.lock().await;
    contour_tests::init_crypto();
    let api = ApiServer::shared()?;
    let kube = api.admin_client().await?;
    install_crds(&kube).await.map_err(|e| e.to_string())?;
    let ns = api.namespace("bench-delta").await?;
    let pki = XdsPki::new(&ns)?;
    let flags = [
        format!("--watch-namespaces={ns}"),
        format!("--leader-election-resource-namespace={ns}"),
        "--route-layout=scoped".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let contour = ContourServe::start(api, Some(&pki), &flags).await?;
    let addr: std::net::SocketAddr = "192.0.2.10:8080".parse()?;
    for m in service_for("app", &[addr]) {
        apply(&kube, &ns, &m).await.map_err(|e| e.to_string())?;
    }
    let proxy = |name: &str| {
        serde_json::json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": name},
            "spec": {"virtualhost": {"fqdn": format!("{name}.{ns}.example.com")},
                     "routes": [{"services": [{"name": "app", "port": 80}]}]}
        })
    };
    apply(&kube, &ns, &proxy("one"))
        .await
        .map_err(|e| e.to_string())?;
    let target = xds::Target {
        port: contour.xds_port,
        pki: Some(pki.clone()),
        delta: true,
    };
    let client = Client::start(target, "delta-smoke", true, Duration::from_secs(10));
    let synced = client
        .wait_for(Duration::from_secs(20), |s| {
            s.http_vhosts >= 1 && s.clusters >= 1 && s.endpoints >= 1 && s.listeners >= 1
        })
        .await;
    assert!(synced, "{:?}", client.state());
    assert_eq!(client.state().routes, 0, "no route configuration named");
    let before = client.counters();
    client.watch(
        1,
        Watch {
            type_index: xds::RDS,
            name_prefix: Some("ingress_http/".into()),
            matcher: Matcher::Bytes(format!("two.{ns}.example.com").into_bytes()),
        },
    );
    apply(&kube, &ns, &proxy("two"))
        .await
        .map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    while client.seen(1, false).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new scope never came: {:?}",
            client.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = client.counters();
    let srds = xds::counters_delta(&after, &before)[xds::SRDS];
    // One response with the new scope alone, not every scope again.
    assert_eq!(srds.2, 1, "scopes sent for one new host: {srds:?}");
    assert_eq!(client.state().http_vhosts, 2);
    assert!(client.state().errors.is_empty(), "{:?}", client.state());
    Ok(())
}
