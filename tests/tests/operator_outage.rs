//! The API server goes away in the middle of a reconcile: the operator's
//! controller (run in-process against the real API server) retries the
//! instance with a growing, bounded backoff while etcd and kube-apiserver
//! are down — neither a hot loop nor giving up — never exits, and once the
//! control plane is back converges: every child with the right content, the
//! status Available and not Degraded, and its watches resumed (a change made
//! after the outage is applied). Failed attempts are counted on the
//! operator's own `/metrics`. (Its own test binary: the outage hits every
//! client of the shared API server.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::Notify;

use contour_crds::ContourDeployment;
use contour_operator::metrics::OperatorMetrics;
use contour_tests::ApiServer;
use contour_tests::operator::{condition, create, ctx, mark_rolled_out, setup, status};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long etcd and the API server stay down before they are started again.
const OUTAGE: Duration = Duration::from_secs(8);

/// Holds the operator's `at`-th write for `hold`, telling the test when it
/// is in flight: the outage then starts in the middle of the reconcile.
#[derive(Clone)]
struct Stall(Arc<StallState>);

struct StallState {
    writes: AtomicU32,
    at: u32,
    hold: Duration,
    reached: Notify,
}

struct Stalled<S> {
    inner: S,
    state: Arc<StallState>,
}

impl<S> tower::Layer<S> for Stall {
    type Service = Stalled<S>;
    fn layer(&self, inner: S) -> Stalled<S> {
        Stalled {
            inner,
            state: self.0.clone(),
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Stalled<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;
    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let stall = req.method() != http::Method::GET
            && self.state.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.state.at;
        let state = self.state.clone();
        // The client's futures are lazy: nothing is sent before they are
        // first polled, i.e. after the hold.
        let response = self.inner.call(req);
        Box::pin(async move {
            if stall {
                state.reached.notify_one();
                tokio::time::sleep(state.hold).await;
            }
            response.await
        })
    }
}

/// The operator's client: admin rights, its `at`-th write held for `hold`.
async fn stalling_client(
    server: &ApiServer,
    at: u32,
    hold: Duration,
) -> Result<(Client, Arc<StallState>), Box<dyn std::error::Error>> {
    contour_tests::init_crypto();
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    let state = Arc::new(StallState {
        writes: AtomicU32::new(0),
        at,
        hold,
        reached: Notify::new(),
    });
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&Stall(state.clone()))
        .build();
    Ok((client, state))
}

/// One sample of a counter in the OpenMetrics text (0 if absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const FAILED: &str = "contour_operator_reconcile_total{result=\"error\"}";
const SUCCEEDED: &str = "contour_operator_reconcile_total{result=\"success\"}";

/// Polls the operator's `/metrics` every 10 ms and records when the count
/// of failed reconciles grows: one instant per failed attempt.
fn watch_failures(
    url: String,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::Mutex<Vec<Instant>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut last = 0.0;
            loop {
                if let Ok(r) = http.get(&url).send().await
                    && let Ok(text) = r.text().await
                {
                    let now = Instant::now();
                    let failed = sample(&text, FAILED);
                    if failed > last {
                        if let Ok(mut s) = seen.lock() {
                            // Several failures between two samples: one
                            // instant each (the interval between is ~0).
                            for _ in 0..(failed - last) as u64 {
                                s.push(now);
                            }
                        }
                        last = failed;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    (task, seen)
}

/// Polls `check` every 100 ms until it returns `Ok(Some(_))`, for at most
/// `limit`; the last "not yet" reason is in the error.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(why) if started.elapsed() > limit => {
                return Err(format!("{what}: not after {limit:?}: {why}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// At most the first 12 of `ds`, in milliseconds.
fn brief(ds: &[Duration]) -> String {
    let shown: Vec<String> = ds
        .iter()
        .take(12)
        .map(|d| d.as_millis().to_string())
        .collect();
    let more = if ds.len() > 12 {
        format!(" … ({} in all)", ds.len())
    } else {
        String::new()
    };
    format!("[{}]{more} ms", shown.join(", "))
}

fn images(d: &Value) -> Vec<String> {
    let pod = &d["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["image"].as_str().map(String::from))
        .collect()
}

/// Every child of instance `name`, with the fields that matter; `Err` says
/// what is missing or wrong.
async fn children_complete(client: &Client, ns: &str, name: &str) -> Result<(), String> {
    let e = |what: &str, err: kube::Error| format!("{what}: {err}");
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    for n in [format!("contour-{name}"), format!("envoy-{name}")] {
        sa.get(&n).await.map_err(|err| e(&n, err))?;
    }
    let cluster_name = format!("contour:{ns}:{name}");
    let cr = Api::<ClusterRole>::all(client.clone())
        .get(&cluster_name)
        .await
        .map_err(|err| e("ClusterRole", err))?;
    let rules = serde_json::to_string(&cr.rules).unwrap_or_default();
    if !rules.contains("httpproxies/status") {
        return Err(format!("ClusterRole rules: {rules}"));
    }
    let crb = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&cluster_name)
        .await
        .map_err(|err| e("ClusterRoleBinding", err))?;
    let subject = crb
        .subjects
        .unwrap_or_default()
        .first()
        .map(|s| s.name.clone());
    if subject.as_deref() != Some(&format!("contour-{name}")) {
        return Err(format!("ClusterRoleBinding subject {subject:?}"));
    }
    let own = format!("contour-{name}");
    Api::<Role>::namespaced(client.clone(), ns)
        .get(&own)
        .await
        .map_err(|err| e("Role", err))?;
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .get(&own)
        .await
        .map_err(|err| e("RoleBinding", err))?;
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(&own)
        .await
        .map_err(|err| e("ConfigMap", err))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut cas = Vec::new();
    for n in [format!("contourcert-{name}"), format!("envoycert-{name}")] {
        let s = secrets.get(&n).await.map_err(|err| e(&n, err))?;
        let data = s.data.unwrap_or_default();
        for key in ["ca.crt", "tls.crt", "tls.key"] {
            if !data.contains_key(key) {
                return Err(format!("{n} has no {key}"));
            }
        }
        cas.push(data.get("ca.crt").map(|b| b.0.clone()));
    }
    if cas[0] != cas[1] {
        return Err("the two certificates have different CAs".into());
    }
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let svc = serde_json::to_value(services.get(&own).await.map_err(|err| e(&own, err))?.spec)
        .unwrap_or_default();
    if svc["ports"][0]["port"] != 8001 {
        return Err(format!("contour Service: {svc}"));
    }
    let envoy = format!("envoy-{name}");
    let envoy_svc = serde_json::to_value(
        services
            .get(&envoy)
            .await
            .map_err(|err| e("envoy Service", err))?
            .spec,
    )
    .unwrap_or_default();
    if envoy_svc["type"] != "LoadBalancer" {
        return Err(format!("envoy Service: {envoy_svc}"));
    }
    let contour = serde_json::to_value(
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get(&own)
            .await
            .map_err(|err| e("contour Deployment", err))?,
    )
    .unwrap_or_default();
    let args = contour["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    let flag = format!("--leader-election-resource-name=contour-{name}");
    if contour["spec"]["replicas"] != 2 || !args.contains(&flag) {
        return Err(format!("contour Deployment: {}", contour["spec"]));
    }
    let ds = serde_json::to_value(
        Api::<DaemonSet>::namespaced(client.clone(), ns)
            .get(&envoy)
            .await
            .map_err(|err| e("envoy DaemonSet", err))?,
    )
    .unwrap_or_default();
    let init = &ds["spec"]["template"]["spec"]["initContainers"][0]["args"];
    if init[0] != "bootstrap" || !init.to_string().contains(&format!("--xds-address={own}")) {
        return Err(format!("envoy DaemonSet: {}", ds["spec"]));
    }
    Ok(())
}

/// Writes the status the DaemonSet controller writes once every Envoy pod
/// of `name` runs its current generation and is ready.
async fn mark_daemonset_ready(client: &Client, ns: &str, name: &str) -> Result<(), String> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let ds = api.get(name).await.map_err(|e| e.to_string())?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {
            "observedGeneration": ds.metadata.generation,
            "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
            "numberMisscheduled": 0, "numberReady": 1, "numberAvailable": 1,
            "updatedNumberScheduled": 1}})),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_mid_reconcile_is_retried_with_backoff_and_converges() -> TestResult {
    let began = Instant::now();
    let server = ApiServer::shared()?;
    let (client, ns) = setup("op-outage").await?;

    // The operator, with its own client whose 4th write (the finalizer is
    // the 1st, then the children's applies) is held for a while.
    let (op_client, stall) = stalling_client(server, 4, Duration::from_millis(500)).await?;
    let metrics = OperatorMetrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics_url = format!("http://{}/metrics", listener.local_addr()?);
    let metrics_server = tokio::spawn(contour_operator::metrics::serve(listener, metrics.clone()));
    let controller = tokio::spawn(contour_operator::controller::run_with_metrics(
        ctx(&op_client),
        Some(ns.clone()),
        metrics,
    ));
    let (watcher, failures) = watch_failures(metrics_url.clone());

    create(&client, &ns, "down", json!({})).await?;
    // The reconcile is applying the children: the control plane goes away.
    tokio::time::timeout(Duration::from_secs(30), stall.reached.notified()).await?;
    let partial = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .list(&Default::default())
        .await?
        .items
        .len();
    let stopped = Instant::now();
    server.stop();
    eprintln!("outage: control plane down mid-reconcile ({partial} of 2 ServiceAccounts applied)");
    tokio::time::sleep(OUTAGE).await;
    let restarting = Instant::now();
    server.start().await?;
    let back = Instant::now();
    eprintln!(
        "outage: down {:?}, API server ready {:?} after the restart began",
        back - stopped,
        back - restarting
    );
    assert!(
        !controller.is_finished() && !metrics_server.is_finished(),
        "the operator stopped during the outage"
    );

    // The failed attempts while nothing answered at all.
    let attempts: Vec<Duration> = failures
        .lock()
        .map(|s| {
            s.iter()
                .filter(|t| **t >= stopped && **t < restarting)
                .map(|t| *t - stopped)
                .collect()
        })
        .unwrap_or_default();
    let intervals: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    let (at, waits) = (brief(&attempts), brief(&intervals));
    eprintln!("outage: {} failed attempts at {at}", attempts.len());
    eprintln!("outage: intervals {waits}");
    // It kept trying: several attempts, the last one late in the outage.
    assert!(
        attempts.len() >= 4,
        "too few attempts during the outage: {at}"
    );
    let last = attempts.last().copied().unwrap_or_default();
    assert!(
        last >= OUTAGE / 3,
        "attempts stopped at {last:?} of an {OUTAGE:?} outage: {at}"
    );
    // Not a hot loop: a handful of attempts, not hundreds.
    assert!(
        attempts.len() <= 12,
        "{} attempts in {OUTAGE:?}: {at}",
        attempts.len()
    );
    // Backoff: the first failures may follow each other at once (a watch
    // event queued during the reconcile), then the waits grow — each at
    // least 1.5 times the one before (less 50 ms: failures are seen through
    // a metrics poll every 10 ms, late on a loaded machine), up to seconds
    // (well below the outage).
    let grown: Vec<Duration> = intervals
        .iter()
        .copied()
        .skip_while(|i| *i < Duration::from_millis(100))
        .collect();
    assert!(
        grown.len() >= 3,
        "fewer than 3 waits of at least 100 ms: {waits}"
    );
    assert!(
        grown.len() + 2 >= intervals.len(),
        "more than two immediate retries: {waits}"
    );
    for w in grown.windows(2) {
        assert!(
            w[1].as_secs_f64() + 0.050 >= 1.5 * w[0].as_secs_f64(),
            "the wait did not grow: {waits}"
        );
    }
    let longest = grown.last().copied().unwrap_or_default();
    assert!(
        longest >= Duration::from_secs(1) && longest < OUTAGE,
        "longest wait {longest:?}: {waits}"
    );

    // Converges once the API server is back: every child, right content.
    eventually("every child", Duration::from_secs(20), || {
        children_complete(&client, &ns, "down")
    })
    .await?;
    let children_back = back.elapsed();
    // Play the Deployment and DaemonSet controllers: the operator sees the
    // rollout (through its watch of the children) and reports Available.
    mark_rolled_out(&client, &ns, "contour-down").await?;
    mark_daemonset_ready(&client, &ns, "envoy-down").await?;
    let st = eventually("Available status", Duration::from_secs(20), || async {
        let st = status(&client, &ns, "down")
            .await
            .map_err(|e| e.to_string())?;
        let ok = condition(&st, "Available")["status"] == "True"
            && condition(&st, "Progressing")["status"] == "False"
            && condition(&st, "Degraded")["status"] == "False"
            && condition(&st, "Degraded")["observedGeneration"] == 1;
        if ok { Ok(st) } else { Err(st.to_string()) }
    })
    .await?;
    let available = back.elapsed();
    assert_eq!(
        condition(&st, "Available")["reason"],
        "MinimumReplicasAvailable"
    );
    assert_eq!(st["ready"], "contour 2/2, envoy 1/1", "{st}");
    assert!(st["certificateExpiry"].is_string(), "{st}");
    eprintln!(
        "converged: children {children_back:?}, Available {available:?} after the API server was back"
    );

    // The watch resumed: a change made now is applied, without any restart.
    Api::<ContourDeployment>::namespaced(client.clone(), &ns)
        .patch(
            "down",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"envoy": {"image": "envoy:v2"}}})),
        )
        .await?;
    let changed = Instant::now();
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    eventually(
        "the change after the outage",
        Duration::from_secs(15),
        || async {
            let ds = daemonsets
                .get("envoy-down")
                .await
                .map_err(|e| e.to_string())?;
            let ds = serde_json::to_value(ds).map_err(|e| e.to_string())?;
            let imgs = images(&ds);
            if imgs.iter().any(|i| i == "envoy:v2") {
                Ok(())
            } else {
                Err(format!("{imgs:?}"))
            }
        },
    )
    .await?;
    eventually(
        "status of generation 2",
        Duration::from_secs(15),
        || async {
            let st = status(&client, &ns, "down")
                .await
                .map_err(|e| e.to_string())?;
            let d = condition(&st, "Degraded");
            if d["observedGeneration"] == 2 && d["status"] == "False" {
                Ok(())
            } else {
                Err(st.to_string())
            }
        },
    )
    .await?;
    eprintln!(
        "watch resumed: a change applied {:?} after it was made",
        changed.elapsed()
    );

    let text = reqwest::get(&metrics_url).await?.text().await?;
    eprintln!(
        "metrics: {} failed, {} successful reconciles",
        sample(&text, FAILED),
        sample(&text, SUCCEEDED)
    );
    assert!(sample(&text, SUCCEEDED) >= 1.0, "{text}");
    assert!(
        !controller.is_finished() && !metrics_server.is_finished(),
        "the operator stopped"
    );
    watcher.abort();
    controller.abort();
    metrics_server.abort();
    eprintln!("took {:?}", began.elapsed());
    Ok(())
}
