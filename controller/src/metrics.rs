//! Prometheus metrics of `contour serve`, named as upstream Contour names them
//! (the seed's `contour_ingressroute_*` family, the `contour_httpproxy*`
//! family, DAG rebuilds, events, status writes) plus xDS push/ACK/NACK
//! counters and push latency. Exposed as OpenMetrics text on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cache::{Cache, Key};
use crate::dag::{ObjectKind, ObjectRef, ObjectStatus, Statuses, status::Current};
use crate::xds::Event;
use crate::xds::server::Observer;

fn push_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// A label set.
pub type Labels = Vec<(&'static str, String)>;

type GaugeF = Gauge<f64, AtomicU64>;

fn histogram(start: f64, factor: f64, n: u16) -> impl Fn() -> Histogram + Clone {
    move || Histogram::new(exponential_buckets(start, factor, n))
}

/// Gauges of one routing kind (`contour_httpproxy*` or `contour_ingressroute_*`).
#[derive(Clone, Default)]
struct KindGauges {
    total: Family<Labels, Gauge>,
    root: Family<Labels, Gauge>,
    orphaned: Family<Labels, Gauge>,
    valid: Family<Labels, Gauge>,
    invalid: Family<Labels, Gauge>,
}

/// One status's share of the routing-object gauges.
#[derive(Debug, Clone)]
struct Share {
    kind: ObjectKind,
    namespace: String,
    fqdn: Option<String>,
    current: Current,
}

/// The statuses the gauges last counted, with each one's share.
type Counted = (Statuses, std::collections::HashMap<ObjectRef, Share>);

/// Adds `delta` to a gauge; a label set that drops to zero disappears.
fn bump(family: &Family<Labels, Gauge>, labels: &Labels, delta: i64) {
    let before = family.get_or_create(labels).inc_by(delta);
    if before + delta <= 0 {
        family.remove(labels);
    }
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    /// What `record_statuses` counted last.
    counted: std::sync::Mutex<Option<Counted>>,
    httpproxy: KindGauges,
    ingressroute: KindGauges,
    /// `contour_dagrebuild_total`.
    pub dag_rebuilds: Counter,
    /// `contour_dagrebuild_timestamp` (unix seconds).
    pub dag_rebuild_timestamp: GaugeF,
    /// `contour_ingressroute_dagrebuild_timestamp`, the seed's name.
    pub ingressroute_dag_rebuild_timestamp: GaugeF,
    /// `contour_dagrebuild_seconds`.
    pub dag_rebuild_seconds: Histogram,
    /// `contour_cachehandler_onupdate_duration_seconds`: translate + version.
    pub xds_cache_seconds: Histogram,
    /// `contour_dag_cache_object{kind}`.
    pub cache_objects: Family<Labels, Gauge>,
    /// `contour_eventhandler_operation_total{op,kind}`.
    pub events: Family<Labels, Counter>,
    /// `contour_status_update_total{kind}`.
    pub status_updates: Family<Labels, Counter>,
    /// `contour_status_update_success_total{kind}`.
    pub status_success: Family<Labels, Counter>,
    /// `contour_status_update_failed_total{kind}`.
    pub status_failed: Family<Labels, Counter>,
    /// `contour_status_update_conflict_total{kind}`.
    pub status_conflict: Family<Labels, Counter>,
    /// `contour_status_update_noop_total{kind}`.
    pub status_noop: Family<Labels, Counter>,
    /// `contour_xds_responses_total{type}`.
    pub xds_responses: Family<Labels, Counter>,
    /// `contour_xds_ack_total{type}`.
    pub xds_acks: Family<Labels, Counter>,
    /// `contour_xds_nack_total{type}`.
    pub xds_nacks: Family<Labels, Counter>,
    /// `contour_xds_push_latency_seconds{type}`: snapshot published → sent.
    pub xds_push_latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// `contour_xds_streams`: open xDS streams.
    pub xds_streams: Gauge,
    /// `contour_leader`: 1 while this replica leads (writes status).
    pub leader: Gauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let m = Metrics {
            counted: std::sync::Mutex::new(None),
            httpproxy: KindGauges::default(),
            ingressroute: KindGauges::default(),
            dag_rebuilds: Counter::default(),
            dag_rebuild_timestamp: GaugeF::default(),
            ingressroute_dag_rebuild_timestamp: GaugeF::default(),
            dag_rebuild_seconds: histogram(0.0005, 2.0, 16)(),
            xds_cache_seconds: histogram(0.0005, 2.0, 16)(),
            cache_objects: Family::default(),
            events: Family::default(),
            status_updates: Family::default(),
            status_success: Family::default(),
            status_failed: Family::default(),
            status_conflict: Family::default(),
            status_noop: Family::default(),
            xds_responses: Family::default(),
            xds_acks: Family::default(),
            xds_nacks: Family::default(),
            xds_push_latency: Family::new_with_constructor(push_histogram),
            xds_streams: Gauge::default(),
            leader: Gauge::default(),
            registry: Registry::default(),
        };
        // Known label sets start at 0, so every series exists (and `rate()`
        // works) before its first event.
        for kind in ["HTTPProxy", "IngressRoute"] {
            let labels = vec![("kind", kind.to_string())];
            for f in [
                &m.status_updates,
                &m.status_success,
                &m.status_failed,
                &m.status_conflict,
                &m.status_noop,
            ] {
                let _ = f.get_or_create(&labels);
            }
        }
        for type_ in [
            "Listener",
            "RouteConfiguration",
            "Cluster",
            "ClusterLoadAssignment",
            "Secret",
        ] {
            let labels = vec![("type", type_.to_string())];
            for f in [&m.xds_responses, &m.xds_acks, &m.xds_nacks] {
                let _ = f.get_or_create(&labels);
            }
        }
        let build_info: Family<Labels, Gauge> = Family::default();
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
            .set(1);
        registry.register("contour_build_info", "Build information", build_info);
        let kinds = [
            ("contour_httpproxy", "HTTPProxies", &m.httpproxy),
            ("contour_ingressroute", "IngressRoutes", &m.ingressroute),
        ];
        for (prefix, what, g) in kinds {
            // Upstream v1.0.1 named the IngressRoute gauges `*_total`; the
            // HTTPProxy ones have no suffix.
            let suffix = if prefix == "contour_ingressroute" {
                "_total"
            } else {
                ""
            };
            let name = |part: &str| {
                if part.is_empty() {
                    format!("{prefix}{suffix}")
                } else {
                    format!("{prefix}_{part}{suffix}")
                }
            };
            registry.register(name(""), format!("Total number of {what}"), g.total.clone());
            registry.register(
                name("root"),
                format!("Total number of root {what}"),
                g.root.clone(),
            );
            registry.register(
                name("orphaned"),
                format!("Total number of orphaned {what} which have no root delegating to them"),
                g.orphaned.clone(),
            );
            registry.register(
                name("valid"),
                format!("Total number of valid {what}"),
                g.valid.clone(),
            );
            registry.register(
                name("invalid"),
                format!("Total number of invalid {what}"),
                g.invalid.clone(),
            );
        }
        registry.register(
            "contour_ingressroute_dagrebuild_timestamp",
            "Timestamp of the last DAG rebuild (the seed's name)",
            m.ingressroute_dag_rebuild_timestamp.clone(),
        );
        registry.register(
            "contour_dagrebuild_timestamp",
            "Timestamp of the last DAG rebuild",
            m.dag_rebuild_timestamp.clone(),
        );
        registry.register(
            "contour_dagrebuild",
            "Total number of times DAG has been rebuilt since startup",
            m.dag_rebuilds.clone(),
        );
        registry.register(
            "contour_dagrebuild_seconds",
            "Duration in seconds of DAG rebuilds",
            m.dag_rebuild_seconds.clone(),
        );
        registry.register(
            "contour_cachehandler_onupdate_duration_seconds",
            "Histogram for the runtime of xDS cache regeneration",
            m.xds_cache_seconds.clone(),
        );
        registry.register(
            "contour_dag_cache_object",
            "Total number of items that are currently in the DAG cache",
            m.cache_objects.clone(),
        );
        registry.register(
            "contour_eventhandler_operation",
            "Total number of Kubernetes object changes Contour has received by operation and object kind",
            m.events.clone(),
        );
        for (name, help, family) in [
            (
                "contour_status_update",
                "Total number of status updates by object kind",
                &m.status_updates,
            ),
            (
                "contour_status_update_success",
                "Number of status updates that succeeded by object kind",
                &m.status_success,
            ),
            (
                "contour_status_update_failed",
                "Number of status updates that failed by object kind",
                &m.status_failed,
            ),
            (
                "contour_status_update_conflict",
                "Number of status update conflicts encountered by object kind",
                &m.status_conflict,
            ),
            (
                "contour_status_update_noop",
                "Number of status updates that are no-ops by object kind. This is a subset of successful status updates",
                &m.status_noop,
            ),
            (
                "contour_xds_responses",
                "xDS responses sent, by resource type",
                &m.xds_responses,
            ),
            (
                "contour_xds_ack",
                "xDS versions accepted by Envoy, by resource type",
                &m.xds_acks,
            ),
            (
                "contour_xds_nack",
                "xDS versions rejected by Envoy (NACK), by resource type",
                &m.xds_nacks,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "contour_xds_push_latency_seconds",
            "Time from a snapshot's publication to its push on a stream, by resource type",
            m.xds_push_latency.clone(),
        );
        registry.register(
            "contour_xds_streams",
            "Open xDS streams",
            m.xds_streams.clone(),
        );
        registry.register(
            "contour_leader",
            "1 while this replica holds the leader lease and writes status",
            m.leader.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Brings the routing-object gauges to a build's statuses. Only the
    /// statuses that differ from the last call are counted again (the maps
    /// share what did not change); label sets that no longer occur
    /// disappear.
    pub fn record_statuses(&self, statuses: &Statuses, cache: &Cache) {
        let mut counted = match self.counted.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let (previous, shares) = counted.get_or_insert_with(Default::default);
        for d in previous.diff(statuses) {
            let (gone, came) = crate::dag::diff_sides(d);
            if let Some(share) = gone.and_then(|(r, _)| shares.remove(r)) {
                self.count(&share, -1);
            }
            if let Some((r, s)) = came {
                let share = share_of(r, s, cache);
                self.count(&share, 1);
                shares.insert(r.clone(), share);
            }
        }
        *previous = statuses.clone();
    }

    fn count(&self, share: &Share, delta: i64) {
        let g = match share.kind {
            ObjectKind::HTTPProxy => &self.httpproxy,
            ObjectKind::IngressRoute => &self.ingressroute,
        };
        let ns = vec![("namespace", share.namespace.clone())];
        let ns_vhost = vec![
            ("namespace", share.namespace.clone()),
            ("vhost", share.fqdn.clone().unwrap_or_default()),
        ];
        bump(&g.total, &ns, delta);
        if share.fqdn.is_some() {
            bump(&g.root, &ns, delta);
        }
        match share.current {
            Current::Valid => bump(&g.valid, &ns_vhost, delta),
            Current::Invalid => bump(&g.invalid, &ns_vhost, delta),
            Current::Orphaned => bump(&g.orphaned, &ns, delta),
        }
    }

    /// Sets `contour_dag_cache_object{kind}` from the cache.
    pub fn record_cache(&self, cache: &Cache) {
        for (kind, n) in [
            ("Ingress", cache.ingresses.len()),
            ("IngressRoute", cache.ingressroutes.len()),
            ("HTTPProxy", cache.httpproxies.len()),
            ("TLSCertificateDelegation", cache.delegations.len()),
            ("Service", cache.services.len()),
            ("Secret", cache.secrets.len()),
            ("EndpointSlice", cache.endpoint_slices.len()),
        ] {
            self.cache_objects
                .get_or_create(&vec![("kind", kind.to_string())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// What one status counts for: its kind, namespace, root fqdn (from the
/// cache) and state.
fn share_of(r: &ObjectRef, status: &ObjectStatus, cache: &Cache) -> Share {
    let key = Key::new(r.namespace.clone(), r.name.clone());
    let fqdn = match r.kind {
        ObjectKind::HTTPProxy => cache
            .httpproxies
            .get(&key)
            .and_then(|p| p.spec.virtual_host.as_ref().map(|v| v.fqdn.clone())),
        ObjectKind::IngressRoute => cache
            .ingressroutes
            .get(&key)
            .and_then(|p| p.spec.virtual_host.as_ref().map(|v| v.fqdn.clone())),
    };
    Share {
        kind: r.kind,
        namespace: r.namespace.clone(),
        fqdn,
        current: status.current,
    }
}

/// The short name of a type URL for labels (`Listener`, `Cluster`, ...).
pub fn short_type(type_url: &str) -> String {
    type_url.rsplit('.').next().unwrap_or(type_url).to_string()
}

impl Observer for Metrics {
    fn event(&self, node: &str, event: &Event) {
        crate::xds::server::log_event(node, event);
        match event {
            Event::Ack { type_url, .. } => {
                self.xds_acks
                    .get_or_create(&vec![("type", short_type(type_url))])
                    .inc();
            }
            Event::Nack { type_url, .. } => {
                self.xds_nacks
                    .get_or_create(&vec![("type", short_type(type_url))])
                    .inc();
            }
        }
    }

    fn pushed(&self, type_url: &str, _resources: usize, latency: Option<Duration>) {
        let labels = vec![("type", short_type(type_url))];
        self.xds_responses.get_or_create(&labels).inc();
        if let Some(l) = latency {
            self.xds_push_latency
                .get_or_create(&labels)
                .observe(l.as_secs_f64());
        }
    }

    fn stream(&self, delta: i64) {
        self.xds_streams.inc_by(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::{ObjectRef, ObjectStatus};

    #[test]
    fn seed_metric_names_are_exposed() {
        let m = Metrics::new();
        let mut statuses = Statuses::new();
        statuses.insert(
            ObjectRef {
                kind: ObjectKind::IngressRoute,
                namespace: "default".into(),
                name: "kuard".into(),
            },
            ObjectStatus::valid("valid IngressRoute", 1),
        );
        let mut orphan = ObjectStatus::valid("valid IngressRoute", 1);
        orphan
            .orphan("this IngressRoute is not part of a delegation chain from a root IngressRoute");
        statuses.insert(
            ObjectRef {
                kind: ObjectKind::IngressRoute,
                namespace: "default".into(),
                name: "child".into(),
            },
            orphan,
        );
        let mut bad = ObjectStatus::valid("Valid HTTPProxy", 1);
        bad.error("TLSError", "SecretNotValid", "no secret");
        statuses.insert(
            ObjectRef {
                kind: ObjectKind::HTTPProxy,
                namespace: "apps".into(),
                name: "web".into(),
            },
            bad,
        );
        m.record_statuses(&statuses, &Cache::default());
        m.dag_rebuilds.inc();
        let text = m.render();
        for name in [
            "contour_ingressroute_total{namespace=\"default\"} 2",
            "contour_ingressroute_orphaned_total{namespace=\"default\"} 1",
            "contour_httpproxy_invalid{namespace=\"apps\",vhost=\"\"} 1",
            "contour_httpproxy{namespace=\"apps\"} 1",
            "# HELP contour_dagrebuild Total number of times DAG has been rebuilt since startup.\n",
            "contour_ingressroute_valid_total{namespace=\"default\",vhost=\"\"} 1",
            "contour_ingressroute_dagrebuild_timestamp",
            "contour_dagrebuild_total 1",
            "contour_dagrebuild_seconds_bucket",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        // The proxy turns valid: its count moves, the invalid series goes.
        let mut fixed = statuses.clone();
        fixed.insert(
            ObjectRef {
                kind: ObjectKind::HTTPProxy,
                namespace: "apps".into(),
                name: "web".into(),
            },
            ObjectStatus::valid("Valid HTTPProxy", 2),
        );
        m.record_statuses(&fixed, &Cache::default());
        let text = m.render();
        assert!(!text.contains("contour_httpproxy_invalid{"), "{text}");
        assert!(text.contains("contour_httpproxy_valid{namespace=\"apps\",vhost=\"\"} 1"));
        assert!(text.contains("contour_httpproxy{namespace=\"apps\"} 1"));
        // A second rebuild without the object drops its label set.
        m.record_statuses(&Statuses::new(), &Cache::default());
        assert!(!m.render().contains("contour_ingressroute_total{"));
    }
}
