//! Bad input (issue 8, items 1 and 5): a catalogue of malformed and hostile
//! objects applied to the real API server, followed by a real `contour
//! serve` and a real Envoy. For each: the precise status Contour writes (or,
//! for kinds without a status, the log line naming the object and what Envoy
//! serves), or the API server's refusal; contour serve never panics or
//! exits; steady routes of every kind keep serving, and routes applied after
//! all the bad ones go live. The multi-tenant rules are tests of their own
//! (`bad_input/tenancy.rs`).

use std::time::Instant;

use contour_tests::k8s::{apply, service_for};
use contour_tests::pki::Ca;
use contour_tests::{ApiServer, TestNet, free_port};
use serde_json::json;

#[path = "bad_input/cat_others.rs"]
mod cat_others;
#[path = "bad_input/cat_proxy.rs"]
mod cat_proxy;
#[path = "bad_input/cat_routes.rs"]
mod cat_routes;
#[path = "bad_input/cat_tls.rs"]
mod cat_tls;
#[path = "bad_input/catalogue.rs"]
mod catalogue;
#[path = "bad_input/check.rs"]
mod check;
mod common;
#[path = "bad_input/tenancy.rs"]
mod tenancy;

use check::*;
use common::{TestResult, ground_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_of_bad_input() -> TestResult {
    let started = Instant::now();
    let net = TestNet::shared()?;
    let (steady, fresh) = (net.backend("steady")?, net.backend("fresh")?);
    let api = ApiServer::shared()?;
    let m = api.namespace("bad-main").await?;
    let o = api.namespace("bad-other").await?;
    let https = free_port()?;
    let g = ground_with(
        "bad-input",
        &[&format!("--watch-namespaces={m},{o}")],
        Some(https),
    )
    .await?;

    // Steady routes of every kind, and a Service for the late route.
    for ns in [&m, &o] {
        for x in service_for("steady", &[steady.addr]) {
            apply(&g.client, ns, &x).await?;
        }
    }
    for x in service_for("fresh", &[fresh.addr]) {
        apply(&g.client, &m, &x).await?;
    }
    let host = |n: &str| format!("{n}.{m}.example.com");
    let steady_objects = [
        root("steady", &host("steady"), "steady"),
        root_route("steady-ir", &host("steady-ir"), "steady"),
        ingress(
            "steady-ing",
            json!({"rules": [{"host": host("steady-ing"), "http": {"paths": [{"path": "/",
                "pathType": "Prefix", "backend": {"service": {"name": "steady", "port": {"number": 80}}}}]}}]}),
        ),
    ];
    for x in &steady_objects {
        apply(&g.client, &m, x).await?;
    }
    let steady_expect = vec![
        valid(&m, "steady"),
        route_status(&m, "steady-ir", "valid", VALID_ROUTE),
        serves(&host("steady"), "/", "steady"),
        serves(&host("steady-ir"), "/", "steady"),
        serves(&host("steady-ing"), "/", "steady"),
    ];
    let steady_entry = |name| Entry {
        name,
        kind: "steady",
        objects: vec![],
        expect: steady_expect.clone(),
    };
    run(&g, &[steady_entry("steady before")], 30).await?;

    // The catalogue.
    let ctx = catalogue::Ctx {
        m: m.clone(),
        o: o.clone(),
        https,
        ca: Ca::new("bad-input-ca")?,
        steady: steady.addr,
    };
    let mut entries = catalogue::all(&ctx)?;
    // BAD_INPUT_ONLY=name,name runs only those entries (to debug one).
    match std::env::var("BAD_INPUT_ONLY") {
        Ok(only) => entries.retain(|e| only.split(',').any(|n| n == e.name)),
        Err(_) => assert!(entries.len() >= 50, "{} entries", entries.len()),
    }
    let applied = Instant::now();
    let secs = std::env::var("BAD_INPUT_SECS").map_or(Ok(120), |s| s.parse())?;
    let report = run(&g, &entries, secs).await?;
    let settled = applied.elapsed();

    // Unrelated routes still serve, and routes applied after every bad
    // object go live (no watch stalled, rebuilds and pushes continue).
    run(&g, &[steady_entry("steady after")], 30).await?;
    let late = Instant::now();
    run(
        &g,
        &[Entry {
            name: "late routes",
            kind: "steady",
            objects: vec![
                (m.clone(), root("late", &host("late"), "fresh")),
                (m.clone(), root_route("late-ir", &host("late-ir"), "fresh")),
                (
                    m.clone(),
                    ingress(
                        "late-ing",
                        json!({"rules": [{"host": host("late-ing"), "http": {"paths": [{"path": "/",
                            "pathType": "Prefix", "backend": {"service": {"name": "fresh", "port": {"number": 80}}}}]}}]}),
                    ),
                ),
            ],
            expect: vec![
                valid(&m, "late"),
                route_status(&m, "late-ir", "valid", VALID_ROUTE),
                serves(&host("late"), "/", "fresh"),
                serves(&host("late-ir"), "/", "fresh"),
                serves(&host("late-ing"), "/", "fresh"),
            ],
        }],
        30,
    )
    .await?;
    let late = late.elapsed();
    alive_and_sane(&g).await?;
    eprintln!(
        "catalogue: {} entries {:?}, {} refused by the API server; settled in {settled:.1?} \
         (checks {:.1?}); late routes live in {late:.1?}; total {:.1?}",
        entries.len(),
        report.by_kind,
        report.refused,
        report.settled,
        started.elapsed()
    );
    Ok(())
}

/// A proxy that passes Contour's checks but not Envoy's (nested counted
/// repetitions whose product RE2 refuses): the refusal is blamed on that
/// proxy alone, although Envoy's message quotes the whole route
/// configuration, and what Envoy serves stays as it was. Until the proxy is
/// fixed Envoy keeps its last accepted routes (see RELIABILITY.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_envoy_is_blamed_on_its_proxy_alone() -> TestResult {
    let net = TestNet::shared()?;
    let steady = net.backend("steady")?;
    let api = ApiServer::shared()?;
    let m = api.namespace("bad-nack").await?;
    let g = ground_with("bad-nack", &[&format!("--watch-namespaces={m}")], None).await?;
    for x in service_for("steady", &[steady.addr]) {
        apply(&g.client, &m, &x).await?;
    }
    let host = |n: &str| format!("{n}.{m}.example.com");
    let bystanders = || {
        vec![
            valid(&m, "steady"),
            valid(&m, "bystander"),
            serves(&host("steady"), "/", "steady"),
            serves(&host("bystander"), "/", "steady"),
        ]
    };
    let entry = |name, objects, expect| Entry {
        name,
        kind: "HTTPProxy",
        objects,
        expect,
    };
    run(
        &g,
        &[entry(
            "before",
            vec![
                (m.clone(), root("steady", &host("steady"), "steady")),
                (m.clone(), root("bystander", &host("bystander"), "steady")),
            ],
            bystanders(),
        )],
        30,
    )
    .await?;
    let regex = |r: &str| {
        proxy(
            "nested",
            json!({"virtualhost": {"fqdn": host("nested")},
                   "routes": [{"conditions": [{"regex": r}], "services": [{"name": "steady", "port": 80}]}]}),
        )
    };
    let mut expect = bystanders();
    expect.push(rejected(&m, "nested"));
    expect.push(answers(&host("nested"), "/x", 404));
    run(
        &g,
        &[entry(
            "refused by Envoy",
            vec![(m.clone(), regex("/x(?:[a-z]{100}){100}"))],
            expect,
        )],
        30,
    )
    .await?;
    let mut expect = bystanders();
    expect.push(valid(&m, "nested"));
    expect.push(serves(&host("nested"), "/x", "steady"));
    run(
        &g,
        &[entry("fixed", vec![(m.clone(), regex("/x.*"))], expect)],
        30,
    )
    .await?;
    alive_and_sane(&g).await?;
    Ok(())
}

/// An object the API server stores but Contour cannot read (a `format:
/// uint32` field beyond 2^32-1, which the API server does not check) leaves
/// the configuration, and its status says so instead of keeping the `valid`
/// it had; fixed, it is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_stops_parsing_loses_its_valid_status() -> TestResult {
    let net = TestNet::shared()?;
    let steady = net.backend("steady")?;
    let api = ApiServer::shared()?;
    let m = api.namespace("bad-parse").await?;
    let g = ground_with("bad-parse", &[&format!("--watch-namespaces={m}")], None).await?;
    for x in service_for("steady", &[steady.addr]) {
        apply(&g.client, &m, &x).await?;
    }
    // An unrelated root keeps the listener (and is checked at every step).
    let steady_host = format!("steady.{m}.example.com");
    apply(&g.client, &m, &root("steady", &steady_host, "steady")).await?;
    let host = format!("parse.{m}.example.com");
    let version = |max: u64| {
        proxy(
            "parse",
            json!({"virtualhost": {"fqdn": host},
                   "routes": [{"internalRedirectPolicy": {"maxInternalRedirects": max},
                               "services": [{"name": "steady", "port": 80}]}]}),
        )
    };
    let entry = |name, max, mut expect: Vec<Expect>| {
        expect.push(valid(&m, "steady"));
        expect.push(serves(&steady_host, "/", "steady"));
        Entry {
            name,
            kind: "HTTPProxy",
            objects: vec![(m.clone(), version(max))],
            expect,
        }
    };
    run(
        &g,
        &[entry(
            "readable",
            3,
            vec![valid(&m, "parse"), serves(&host, "/", "steady")],
        )],
        30,
    )
    .await?;
    let why = "the object does not parse and is not served: invalid value: integer `4294967296`, expected u32";
    run(
        &g,
        &[entry(
            "unreadable",
            4_294_967_296,
            vec![
                invalid(&m, "parse", "SpecError", "SpecNotParsed", why),
                answers(&host, "/", 404),
            ],
        )],
        30,
    )
    .await?;
    run(
        &g,
        &[entry(
            "readable again",
            4,
            vec![valid(&m, "parse"), serves(&host, "/", "steady")],
        )],
        30,
    )
    .await?;
    alive_and_sane(&g).await?;
    Ok(())
}
