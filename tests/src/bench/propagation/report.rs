//! The results: the Markdown table, the verdict against issue 7's targets,
//! and the CSV files and charts.

use std::path::PathBuf;
use std::time::Duration;

use super::{Config, Outcome};
use crate::bench::plot::{LineChart, Series};
use crate::bench::report::{Table, csv_ms, num, ratio, write_csv};
use crate::bench::{Result, Target, ms, percentile};

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "–".into())
}

fn fmt_s(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} s")).unwrap_or_else(|| "–".into())
}

type Metric = fn(&Outcome) -> Option<f64>;

const LATENCIES: [Metric; 8] = [
    |o| o.first_200_ms(0.5),
    |o| o.first_200_ms(0.9),
    |o| o.first_200_ms(0.99),
    |o| o.first_200_ms(1.0),
    |o| o.valid_ms(0.5),
    |o| o.valid_ms(0.9),
    |o| o.valid_ms(0.99),
    |o| o.valid_ms(1.0),
];

/// The Markdown table: one row per (size, controller), ratios per size, notes.
pub fn table(cfg: &Config, outcomes: &[Outcome]) -> String {
    let mut t = Table::new(&[
        "controller",
        "preloaded",
        "samples served",
        "steady after (statuses written)",
        "first 200 p50",
        "p90",
        "p99",
        "max",
        "status valid p50",
        "p90",
        "p99",
        "max",
        "steady client: requests",
        "non-200/404 + errors",
        "RSS",
    ]);
    let mut notes = Vec::new();
    let mut sizes: Vec<usize> = outcomes.iter().map(|o| o.preloaded).collect();
    sizes.dedup();
    for size in sizes {
        let at: Vec<&Outcome> = outcomes.iter().filter(|o| o.preloaded == size).collect();
        for o in &at {
            let served = o.planned - o.not_served();
            let mut row = vec![
                o.target.label(),
                size.to_string(),
                format!("{served} / {}", o.planned),
            ];
            match &o.ready.not_live {
                Some(_) => {
                    row.push(format!(
                        "not live within {:.0} s ({} of {} written{})",
                        cfg.ready_cap.as_secs_f64(),
                        o.ready.statuses_valid,
                        o.ready.statuses_total,
                        o.ready
                            .status_rate
                            .map(|r| format!(", {r:.1}/s"))
                            .unwrap_or_default()
                    ));
                    row.extend((0..8).map(|_| "–".to_string()));
                    row.push("–".into());
                    row.push("–".into());
                }
                None => {
                    row.push(format!(
                        "{} ({})",
                        fmt_s(o.ready.first_new_s),
                        fmt_s(o.ready.statuses_s)
                    ));
                    row.extend(LATENCIES.iter().map(|m| fmt_ms(m(o))));
                    row.push(o.steady.requests.to_string());
                    row.push(format!(
                        "{} + {}{}",
                        o.steady.other,
                        o.steady.errors,
                        if o.steady.not_found > 0 {
                            format!(" (and {} × 404)", o.steady.not_found)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            row.push(format!("{:.0} MiB", o.rss_mib));
            t.row(row);
            if let Some(why) = &o.ready.not_live {
                notes.push(format!("{} at {size}: {why}.", o.target.label()));
            }
            if !o.steady.examples.is_empty() {
                notes.push(format!(
                    "{} at {size}: the steady client saw {}.",
                    o.target.label(),
                    o.steady.examples.join(", ")
                ));
            }
        }
        let ours = at.iter().find(|o| o.target == Target::Ours);
        let up = at.iter().find(|o| o.target == Target::Upstream);
        if let (Some(o), Some(u)) = (ours, up) {
            let mut row = vec![
                "ratio ours/upstream".to_string(),
                size.to_string(),
                String::new(),
                ratio(o.ready.first_new_s, u.ready.first_new_s),
            ];
            row.extend(LATENCIES.iter().map(|m| ratio(m(o), m(u))));
            row.push(String::new());
            row.push(String::new());
            row.push(ratio(Some(o.rss_mib), Some(u.rss_mib)));
            t.row(row);
        }
    }
    let mut out = format!(
        "Route propagation: N HTTPProxies preloaded (two routes, a Service + EndpointSlice each; plus the steady client's proxy), then {} new HTTPProxies one at a time (each to an existing Service); apply → first 200 through Envoy (1 ms polls) and → status valid (2 ms polls); steady client every {} ms. Statuses wiped before each run: {}. Steady-state cap {} s.\n\n{}",
        cfg.samples,
        cfg.steady_every.as_millis(),
        if cfg.wipe_status { "yes" } else { "no" },
        cfg.ready_cap.as_secs(),
        t.markdown()
    );
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

/// Target checks of issue 7 (P1), as text.
pub fn verdict(outcomes: &[Outcome]) -> String {
    let ours: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.target == Target::Ours)
        .collect();
    let Some(big) = ours.iter().max_by_key(|o| o.preloaded) else {
        return String::new();
    };
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    let (p50, p99, v99) = (
        big.first_200_ms(0.5),
        big.first_200_ms(0.99),
        big.valid_ms(0.99),
    );
    let all_served = big.not_served() == 0;
    let mut s = format!(
        "P1 at {} preloaded: first 200 p50 ≤ 50 ms: {} ({}); p99 ≤ 250 ms: {} ({}); status valid p99 ≤ 1 s: {} ({})",
        big.preloaded,
        met(all_served && p50.is_some_and(|v| v <= 50.0)),
        fmt_ms(p50),
        met(all_served && p99.is_some_and(|v| v <= 250.0)),
        fmt_ms(p99),
        met(big.not_valid() == 0 && v99.is_some_and(|v| v <= 1000.0)),
        fmt_ms(v99)
    );
    if outcomes.iter().any(|o| o.target == Target::Upstream) {
        let mut parts = Vec::new();
        for o in &ours {
            let Some(u) = outcomes
                .iter()
                .find(|u| u.target == Target::Upstream && u.preloaded == o.preloaded)
            else {
                continue;
            };
            match (o.first_200_ms(0.5), u.first_200_ms(0.5)) {
                (Some(a), Some(b)) => {
                    let (a99, b99) = (
                        o.first_200_ms(0.99).unwrap_or(a),
                        u.first_200_ms(0.99).unwrap_or(b),
                    );
                    parts.push(format!(
                        "at {}: {} (p50 {:.1}× faster, p99 {:.1}×)",
                        o.preloaded,
                        met(b / a >= 5.0 && b99 / a99 >= 5.0),
                        b / a,
                        b99 / a99
                    ));
                }
                (Some(_), None) => parts.push(format!(
                    "at {}: upstream served no sample ({})",
                    o.preloaded,
                    u.ready.not_live.as_deref().unwrap_or("timed out")
                )),
                _ => {}
            }
        }
        s += &format!("; ≥ 5× better than upstream: {}", parts.join("; "));
    }
    s
}

/// Writes `{name}_summary.csv`, `{name}_samples.csv`, `{name}_latency.png`
/// (first 200) and `{name}_status.png` (status valid); returns the paths.
pub fn write_outputs(cfg: &Config, outcomes: &[Outcome]) -> Result<Vec<PathBuf>> {
    let dir = &cfg.common.out_dir;
    let mut paths = Vec::new();
    let opt = |v: Option<f64>| v.map(num).unwrap_or_default();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let r = &o.ready;
            let mut row = vec![
                o.target.name().to_string(),
                o.preloaded.to_string(),
                o.planned.to_string(),
                (o.planned - o.not_served()).to_string(),
                (o.planned - o.not_valid()).to_string(),
            ];
            row.extend(LATENCIES.iter().map(|m| opt(m(o))));
            row.extend([
                opt((!o.samples.is_empty()).then(|| ms(percentile(&o.apply_sorted(), 0.5)))),
                o.steady.requests.to_string(),
                o.steady.ok.to_string(),
                o.steady.not_found.to_string(),
                o.steady.other.to_string(),
                o.steady.errors.to_string(),
                r.wiped.to_string(),
                opt(r.live_s),
                opt(r.statuses_s),
                opt(r.first_new_s),
                r.statuses_valid.to_string(),
                r.statuses_total.to_string(),
                opt(r.status_rate),
                num(o.cpu_secs),
                num(o.rss_mib),
                num(o.wall_s),
                r.not_live.clone().unwrap_or_default(),
            ]);
            row
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_summary.csv", cfg.common.name),
        &[
            "controller",
            "preloaded",
            "samples",
            "served",
            "status_valid",
            "first_200_p50_ms",
            "first_200_p90_ms",
            "first_200_p99_ms",
            "first_200_max_ms",
            "status_valid_p50_ms",
            "status_valid_p90_ms",
            "status_valid_p99_ms",
            "status_valid_max_ms",
            "apply_p50_ms",
            "steady_requests",
            "steady_200",
            "steady_404",
            "steady_other",
            "steady_errors",
            "statuses_wiped",
            "live_after_s",
            "statuses_written_after_s",
            "first_new_served_after_s",
            "statuses_valid",
            "statuses_total",
            "status_writes_per_s",
            "controller_cpu_s_samples",
            "rss_mib",
            "run_wall_s",
            "not_live",
        ],
        &rows,
    )?);
    let samples: Vec<Vec<String>> = outcomes
        .iter()
        .flat_map(|o| {
            o.samples.iter().map(move |s| {
                vec![
                    o.target.name().to_string(),
                    o.preloaded.to_string(),
                    s.seq.to_string(),
                    format!("{:.2}", ms(s.apply)),
                    csv_ms(s.first_200),
                    csv_ms(s.valid),
                ]
            })
        })
        .collect();
    paths.push(write_csv(
        dir,
        &format!("{}_samples.csv", cfg.common.name),
        &[
            "controller",
            "preloaded",
            "sample",
            "apply_ms",
            "first_200_ms",
            "status_valid_ms",
        ],
        &samples,
    )?);
    let curves = |f: fn(&Outcome) -> Vec<Duration>| -> Vec<Series> {
        outcomes
            .iter()
            .filter(|o| !o.samples.is_empty())
            .map(|o| {
                let v = f(o);
                let n = v.len().max(2) as f64 - 1.0;
                Series {
                    name: format!("{}, {} preloaded", o.target.label(), o.preloaded),
                    points: v
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (100.0 * i as f64 / n, ms(*d).max(0.01)))
                        .collect(),
                }
            })
            .collect()
    };
    let latency = dir.join(format!("{}_latency.png", cfg.common.name));
    LineChart {
        title: "New HTTPProxy: apply -> first 200 through Envoy".into(),
        x_label: "percentile of samples".into(),
        y_label: "apply -> first 200 (ms, log)".into(),
        series: curves(Outcome::first_200_sorted),
        log_y: true,
        markers: false,
    }
    .save(&latency)?;
    paths.push(latency);
    let status = dir.join(format!("{}_status.png", cfg.common.name));
    LineChart {
        title: "New HTTPProxy: apply -> status valid".into(),
        x_label: "percentile of samples".into(),
        y_label: "apply -> status valid (ms, log)".into(),
        series: curves(Outcome::valid_sorted),
        log_y: true,
        markers: false,
    }
    .save(&status)?;
    paths.push(status);
    Ok(paths)
}
