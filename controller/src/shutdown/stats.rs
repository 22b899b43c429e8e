//! How many downstream connections Envoy's ingress listeners still hold,
//! read from the text output of the admin interface's `/stats`.
//!
//! Every HTTP connection manager keeps a gauge
//! `http.<stat_prefix>.downstream_cx_active`. Our listeners use their names
//! as stat prefixes (`ingress_http`, `ingress_https`, see
//! `envoy/listener.rs`); Envoy's own admin interface is `admin` and the
//! bootstrap's `stats-health` listener is `stats`. As upstream
//! (`parseOpenConnections` in `cmd/contour/shutdownmanager.go`), every prefix
//! counts except the admin, stats and health ones, so any HTTP listener a
//! future version adds is drained too. TCP proxies (TLS passthrough) keep no
//! such gauge and are not counted, as upstream.

use super::ShutdownError;

/// The admin path that lists only the gauges [`open_connections`] reads:
/// `/stats?filter=^http\..*\.downstream_cx_active$`, percent-encoded (upstream
/// sends the same regex to `/stats/prometheus`).
pub const STATS_PATH: &str = "/stats?filter=%5Ehttp%5C..%2A%5C.downstream_cx_active%24";

/// Stat prefixes whose connections are not client traffic (upstream's list:
/// the admin interface, the admin listener and the stats/health listeners).
pub const IGNORED_PREFIXES: [&str; 5] = ["admin", "envoy-admin", "stats", "health", "stats-health"];

/// The sum of `http.<prefix>.downstream_cx_active` over every prefix not in
/// [`IGNORED_PREFIXES`]. Lines that are not such a gauge (counters,
/// histograms, text readouts, blank lines) are skipped.
///
/// Errors: no such gauge at all ([`ShutdownError::StatMissing`]; Envoy always
/// has `http.admin.downstream_cx_active`, so the text is not Envoy's stats),
/// or one whose value is not a non-negative integer
/// ([`ShutdownError::StatValue`]); guessing could end the drain too early.
pub fn open_connections(stats: &str) -> Result<u64, ShutdownError> {
    let mut found = false;
    let mut open = 0u64;
    for (index, line) in stats.lines().enumerate() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let Some(prefix) = active_gauge_prefix(name.trim()) else {
            continue;
        };
        let value = value.trim();
        let count: u64 = value.parse().map_err(|_| ShutdownError::StatValue {
            line: index + 1,
            text: line.trim().to_string(),
        })?;
        found = true;
        if !IGNORED_PREFIXES.contains(&prefix) {
            open = open.saturating_add(count);
        }
    }
    if found {
        Ok(open)
    } else {
        Err(ShutdownError::StatMissing)
    }
}

/// `ingress_http` for `http.ingress_http.downstream_cx_active`; `None` for
/// any other stat.
fn active_gauge_prefix(name: &str) -> Option<&str> {
    let prefix = name
        .strip_prefix("http.")?
        .strip_suffix(".downstream_cx_active")?;
    (!prefix.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Envoy 1.40 answers to [`STATS_PATH`] with `contour serve`'s
    /// listeners and the bootstrap's stats listener.
    const ENVOY: &str = "http.admin.downstream_cx_active: 1\n\
                         http.ingress_http.downstream_cx_active: 2\n\
                         http.ingress_https.downstream_cx_active: 3\n\
                         http.stats.downstream_cx_active: 4\n";

    #[test]
    fn ingress_listeners_are_summed_and_admin_and_stats_are_not() {
        assert_eq!(open_connections(ENVOY).ok(), Some(5));
    }

    #[test]
    fn only_the_admin_and_stats_listeners_means_nothing_to_drain() {
        let text = "http.admin.downstream_cx_active: 1\nhttp.stats.downstream_cx_active: 7\n";
        assert_eq!(open_connections(text).ok(), Some(0));
    }

    #[test]
    fn every_non_ignored_prefix_counts_as_upstream() {
        let text = "http.http-80.downstream_cx_active: 4\n\
                    http.http-81.downstream_cx_active: 4\n\
                    http.https-443.downstream_cx_active: 4\n\
                    http.envoy-admin.downstream_cx_active: 7\n\
                    http.health.downstream_cx_active: 77\n\
                    http.stats-health.downstream_cx_active: 777\n\
                    http.my.dotted.prefix.downstream_cx_active: 1\n";
        assert_eq!(open_connections(text).ok(), Some(13));
    }

    #[test]
    fn unfiltered_output_counts_only_the_active_gauges() {
        // What `/stats` gives without the filter: counters, other gauges,
        // per-listener stats, TCP proxy stats, histograms and text readouts.
        let text = "cluster.contour.upstream_cx_active: 1\n\
                    http.ingress_http.downstream_cx_active: 2\n\
                    http.ingress_http.downstream_cx_http1_active: 2\n\
                    http.ingress_http.downstream_cx_total: 90\n\
                    http.ingress_http.downstream_cx_active_extra: 50\n\
                    listener.0.0.0.0_8080.downstream_cx_active: 2\n\
                    listener.admin.http.admin.downstream_cx_active: 8\n\
                    tcp.ingress_https.downstream_cx_total: 3\n\
                    server.version_text: \"1.40.0: release\"\n\
                    http.ingress_http.downstream_cx_length_ms: P0(nan,0) P25(nan,1)\n\
                    http.admin.downstream_cx_active: 1\n";
        assert_eq!(open_connections(text).ok(), Some(2));
    }

    #[test]
    fn odd_spacing_crlf_and_a_missing_final_newline_are_fine() {
        let text = "  http.ingress_http.downstream_cx_active:3  \r\n\r\n\
                    http.ingress_https.downstream_cx_active :  4";
        assert_eq!(open_connections(text).ok(), Some(7));
    }

    #[test]
    fn output_without_any_active_gauge_is_an_error() {
        for text in [
            "",
            "\n\n",
            "!!##$$##!!",
            "cluster.contour.upstream_cx_active: 1\n",
            "http..downstream_cx_active: 3\n",
            "<html>not found</html>",
        ] {
            assert!(
                matches!(open_connections(text), Err(ShutdownError::StatMissing)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_gauge_that_is_not_a_count_is_an_error_naming_the_line() {
        for value in ["-1", "x", "", "1.5", "18446744073709551616"] {
            let text = format!(
                "http.admin.downstream_cx_active: 0\nhttp.ingress_http.downstream_cx_active: {value}\n"
            );
            match open_connections(&text) {
                Err(ShutdownError::StatValue { line, text }) => {
                    assert_eq!(line, 2);
                    assert!(text.starts_with("http.ingress_http"), "{text}");
                }
                other => panic!("{value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let text = format!(
            "http.a.downstream_cx_active: {max}\nhttp.b.downstream_cx_active: {max}\n",
            max = u64::MAX
        );
        assert_eq!(open_connections(&text).ok(), Some(u64::MAX));
    }

    #[test]
    fn the_stats_path_encodes_upstreams_filter() {
        let decoded = STATS_PATH
            .replace("%5E", "^")
            .replace("%5C", "\\")
            .replace("%2A", "*")
            .replace("%24", "$");
        assert_eq!(decoded, "/stats?filter=^http\\..*\\.downstream_cx_active$");
    }
}
