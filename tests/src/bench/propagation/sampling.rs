//! Running the scenario: a controller and Envoy started on the preloaded
//! world, the wait for its steady state, and the samples.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

use super::steady::SteadyClient;
use super::world::steady_proxy;
use super::{
    Config, Outcome, PRELOADED, Readiness, SAMPLED, Sample, SteadyCounts, World, grow, world,
};
use crate::ApiServer;
use crate::bench::controller::install_upstream_crds;
use crate::bench::report::num;
use crate::bench::{Controller, Result, Target};
use crate::k8s::apply;

/// Removes the status of every preloaded proxy a controller has written
/// (the CRD defaults it back to `NotReconciled`, as after a create); returns how many.
async fn wipe_statuses(cfg: &Config, client: &kube::Client, ar: &ApiResource) -> Result<usize> {
    let all: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    let list = all.list(&ListParams::default().labels(PRELOADED)).await?;
    let with: Vec<(String, String)> = list
        .items
        .iter()
        .filter(|o| {
            let s = &o.data["status"]["currentStatus"];
            !s.is_null() && s != "NotReconciled"
        })
        .filter_map(|o| Some((o.metadata.namespace.clone()?, o.metadata.name.clone()?)))
        .collect();
    let n = with.len();
    let mut results = futures::stream::iter(with)
        .map(|(ns, name)| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, ar);
            async move {
                api.patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": null})),
                )
                .await
            }
        })
        .buffer_unordered(cfg.common.concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(n)
}

/// (valid, total) statuses of the preloaded proxies.
async fn count_valid(all: &Api<DynamicObject>) -> Result<(usize, usize)> {
    let list = all.list(&ListParams::default().labels(PRELOADED)).await?;
    let valid = list
        .items
        .iter()
        .filter(|o| o.data["status"]["currentStatus"] == "valid")
        .count();
    Ok((valid, list.items.len()))
}

pub(super) fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()?)
}

async fn get_status(http: &reqwest::Client, listen: u16, host: &str) -> Option<u16> {
    http.get(format!("http://127.0.0.1:{listen}/"))
        .header("Host", host)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Polls until every host answers 200; when that was first seen.
async fn wait_hosts(
    http: &reqwest::Client,
    listen: u16,
    hosts: &[String],
    deadline: Instant,
) -> Option<Instant> {
    let mut pending: Vec<&String> = hosts.iter().collect();
    loop {
        let mut still = Vec::new();
        for h in pending {
            if get_status(http, listen, h).await != Some(200) {
                still.push(h);
            }
        }
        pending = still;
        if pending.is_empty() {
            return Some(Instant::now());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Apply (at `t0`) → first 200 for `host`, polled every 1 ms.
async fn wait_200(
    http: &reqwest::Client,
    listen: u16,
    host: &str,
    t0: Instant,
    timeout: Duration,
) -> Option<Duration> {
    loop {
        if get_status(http, listen, host).await == Some(200) {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Apply (at `t0`) → status `valid` for `name`, polled every 2 ms.
async fn wait_valid(
    api: &Api<DynamicObject>,
    name: &str,
    t0: Instant,
    timeout: Duration,
) -> Option<Duration> {
    loop {
        if let Ok(o) = api.get(name).await
            && o.data["status"]["currentStatus"] == "valid"
        {
            return Some(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
/// Waits for the preloaded statuses; gives up at `deadline`, or earlier when
/// the write rate seen over 20 s projects the end past `deadline`.
async fn wait_statuses(
    all: &Api<DynamicObject>,
    ctl: &mut Controller,
    deadline: Instant,
    ready: &mut Readiness,
) -> Result<bool> {
    let mut first: Option<(Instant, usize)> = None;
    loop {
        ctl.check_alive()?;
        let (valid, total) = count_valid(all).await?;
        let now = Instant::now();
        ready.statuses_valid = valid;
        ready.statuses_total = total;
        if valid >= total {
            ready.statuses_s = Some((now - ctl.started).as_secs_f64());
            return Ok(true);
        }
        if valid > 0 && first.is_none() {
            first = Some((now, valid));
        }
        if let Some((t1, v1)) = first {
            let window = (now - t1).as_secs_f64();
            if window >= 1.0 {
                ready.status_rate = Some((valid - v1) as f64 / window);
            }
            if window >= 20.0
                && let Some(rate) = ready.status_rate
            {
                let left = (total - valid) as f64 / rate.max(1e-3);
                if now + Duration::from_secs_f64(left.min(1e6)) > deadline {
                    let why = format!(
                        "not live within the {:.0} s cap: {valid} of {total} statuses written after {:.0} s at {rate:.1}/s (≈ {:.0} s more needed)",
                        (deadline - ctl.started).as_secs_f64(),
                        (now - ctl.started).as_secs_f64(),
                        left
                    );
                    ready.not_live = Some(why);
                    return Ok(false);
                }
            }
        }
        if now > deadline {
            ready.not_live = Some(format!(
                "not live within the {:.0} s cap: {valid} of {total} statuses written",
                (deadline - ctl.started).as_secs_f64()
            ));
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs one controller at the current size.
pub async fn measure(
    cfg: &Config,
    api: &ApiServer,
    w: &mut World,
    target: Target,
) -> Result<Outcome> {
    let admin = api.admin_client().await?;
    if target == Target::Upstream {
        install_upstream_crds(&admin).await?;
    }
    let size = w.created;
    w.runs += 1;
    let run = w.runs;
    let all: Api<DynamicObject> = Api::all_with(admin.clone(), &w.proxy_ar);
    let samples_api: Api<DynamicObject> =
        Api::namespaced_with(admin.clone(), &w.steady_ns, &w.proxy_ar);
    let mut ready = Readiness::default();
    if cfg.wipe_status {
        ready.wiped = wipe_statuses(cfg, &admin, &w.proxy_ar).await?;
    }
    // A Lease of its own: no wait for a predecessor's lease to expire.
    let lease_ns = api
        .namespace(&format!("prop-lease-{}", target.name()))
        .await?;
    let mut ctl = Controller::start(target, api, &lease_ns)?;
    let t0 = ctl.started;
    let deadline = t0 + cfg.ready_cap;
    let since = |t: Instant| (t - t0).as_secs_f64();
    ctl.wait_xds_port(Duration::from_secs(60)).await?;
    let envoy =
        crate::contour::envoy_from_bootstrap(ctl.xds_port, &ctl.pki, target.xds_mode()).await?;
    let listen = ctl.http_listen;
    let http = http_client()?;
    let mut outcome = Outcome {
        target,
        preloaded: size,
        planned: cfg.samples,
        samples: Vec::new(),
        ready: Readiness::default(),
        steady: SteadyCounts::default(),
        cpu_secs: 0.0,
        rss_mib: 0.0,
        wall_s: 0.0,
    };
    // (1) The preloaded set is served.
    ready.live_s = wait_hosts(&http, listen, &w.probe_hosts(), deadline)
        .await
        .map(since);
    eprintln!(
        "propagation {} {size}: preloaded set live after {:?} s",
        target.name(),
        ready.live_s
    );
    // (2) Its statuses are written.
    let mut steady =
        ready.live_s.is_some() && wait_statuses(&all, &mut ctl, deadline, &mut ready).await?;
    eprintln!(
        "propagation {} {size}: {} of {} statuses valid after {:.1} s{}",
        target.name(),
        ready.statuses_valid,
        ready.statuses_total,
        t0.elapsed().as_secs_f64(),
        ready
            .status_rate
            .map(|r| format!(" ({r:.1}/s)"))
            .unwrap_or_default()
    );
    // (3) A first new proxy is served and valid.
    if steady {
        let name = format!("warm-{run}");
        let host = format!("warm{run}.{}.bench.example.com", w.steady_ns);
        let m = steady_proxy(&name, &host, SAMPLED, &mut w.rng);
        let t1 = Instant::now();
        apply(&admin, &w.steady_ns, &m).await?;
        let left = deadline.saturating_duration_since(t1) + Duration::from_secs(5);
        let (a, b) = tokio::join!(
            wait_200(&http, listen, &host, t1, left),
            wait_valid(&samples_api, &name, t1, left)
        );
        if a.is_some() && b.is_some() {
            ready.first_new_s = Some(since(Instant::now()));
        } else {
            steady = false;
        }
    }
    if ready.live_s.is_none() {
        ready.not_live = Some(format!(
            "preloaded hosts not served within the {:.0} s cap",
            cfg.ready_cap.as_secs_f64()
        ));
    } else if !steady && ready.not_live.is_none() {
        ready.not_live = Some(format!(
            "no new proxy served within the {:.0} s cap",
            cfg.ready_cap.as_secs_f64()
        ));
    }
    if let Some(why) = &ready.not_live {
        eprintln!("propagation {} {size}: {why}", target.name());
    }
    if steady {
        eprintln!(
            "propagation {} {size}: steady after {:.1} s; {} samples",
            target.name(),
            t0.elapsed().as_secs_f64(),
            cfg.samples
        );
        let client = SteadyClient::start(listen, w.steady_host.clone(), cfg.steady_every)?;
        // Diagnosis: an ADS client beside Envoy timestamps when the route
        // configuration carrying a new host leaves the controller.
        let probe = std::env::var_os("PROPAGATION_XDS_PROBE").map(|_| {
            let target = crate::bench::xds::Target {
                port: ctl.xds_port,
                pki: Some(ctl.pki.clone()),
                delta: target.xds_mode() == crate::contour::XdsMode::DeltaAds,
            };
            crate::bench::xds::Client::start(target, "probe", false, Duration::from_secs(10))
        });
        let mut delivered = Vec::new();
        let cpu_before = ctl.stat().cpu_secs;
        let mut misses = 0;
        for seq in 0..cfg.samples {
            let name = format!("s{run}-{seq}");
            let host = format!("s{run}-{seq}.{}.bench.example.com", w.steady_ns);
            let m = steady_proxy(&name, &host, SAMPLED, &mut w.rng);
            if let Some(p) = &probe {
                p.watch(
                    seq as u64,
                    crate::bench::xds::Watch {
                        type_index: 3,
                        name_prefix: None,
                        matcher: crate::bench::xds::Matcher::Bytes(host.clone().into_bytes()),
                    },
                );
            }
            let t1 = Instant::now();
            apply(&admin, &w.steady_ns, &m).await?;
            let apply_took = t1.elapsed();
            let (first_200, valid) = tokio::join!(
                wait_200(&http, listen, &host, t1, cfg.sample_timeout),
                wait_valid(&samples_api, &name, t1, cfg.sample_timeout)
            );
            outcome.samples.push(Sample {
                seq,
                apply: apply_took,
                first_200,
                valid,
            });
            if let Some(at) = probe.as_ref().and_then(|p| p.seen(seq as u64, true)) {
                delivered.push(at.saturating_duration_since(t1));
            }
            misses = if first_200.is_none() { misses + 1 } else { 0 };
            if misses >= 3 {
                eprintln!(
                    "propagation {} {size}: 3 samples in a row not served within {:?}: stopping",
                    target.name(),
                    cfg.sample_timeout
                );
                break;
            }
            tokio::time::sleep(cfg.gap).await;
        }
        if probe.is_some() {
            delivered.sort_unstable();
            let at = |q: f64| match delivered.is_empty() {
                true => "–".to_string(),
                false => num(crate::bench::ms(crate::bench::percentile(&delivered, q))),
            };
            eprintln!(
                "propagation {} {size}: apply → route configuration at an ADS probe ({} samples): p50 {} p90 {} p99 {} ms",
                target.name(),
                delivered.len(),
                at(0.5),
                at(0.9),
                at(0.99)
            );
        }
        outcome.steady = client.finish().await;
        outcome.cpu_secs = ctl.stat().cpu_secs - cpu_before;
    }
    ctl.check_alive()?;
    if std::env::var_os("PROPAGATION_ENVOY_STATS").is_some() {
        // Where Envoy's time goes: its own update timings, for the record.
        match envoy
            .admin_get("/stats?filter=update_duration|update_time|rds.*update_success|cds.update_success&usedonly")
            .await
        {
            Ok(s) => eprintln!("propagation {} {size}: envoy stats\n{s}", target.name()),
            Err(e) => eprintln!("propagation {} {size}: envoy stats: {e}", target.name()),
        }
    }
    outcome.rss_mib = ctl.stat().rss_mib;
    outcome.wall_s = t0.elapsed().as_secs_f64();
    drop(envoy);
    ctl.stop();
    // Leave no samples for the next controller to serve.
    samples_api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(SAMPLED),
        )
        .await?;
    outcome.ready = ready;
    Ok(outcome)
}

/// Grows the world size by size and measures every target at each.
pub async fn run(cfg: &Config) -> Result<Vec<Outcome>> {
    let api = ApiServer::shared()?;
    let mut w = world(cfg, api).await?;
    let mut out = Vec::new();
    for &size in &cfg.sizes {
        grow(cfg, api, &mut w, size).await?;
        for &t in &cfg.targets {
            let o = measure(cfg, api, &mut w, t).await?;
            eprintln!(
                "propagation {} {size}: {} of {} served; first 200 p50 {} p99 {}; valid p99 {}; steady client {} requests, {} bad; run {:.0} s",
                t.name(),
                o.samples.iter().filter(|s| s.first_200.is_some()).count(),
                o.planned,
                o.first_200_ms(0.5).map(num).unwrap_or("–".into()),
                o.first_200_ms(0.99).map(num).unwrap_or("–".into()),
                o.valid_ms(0.99).map(num).unwrap_or("–".into()),
                o.steady.requests,
                o.steady.bad(),
                o.wall_s
            );
            out.push(o);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok(out)
}
