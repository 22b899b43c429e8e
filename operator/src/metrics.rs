//! The operator's own metrics and health: `/metrics` (reconciles by
//! result, errors by category, reconcile duration), `/healthz` and
//! `/readyz` (ready once the controller runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric of the operator, registered once.
pub struct OperatorMetrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    duration: Histogram,
    ready: AtomicBool,
}

impl OperatorMetrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let reconciles = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "contour_operator_reconcile",
            "Reconciles of ContourDeployments, by result (success or error)",
            reconciles.clone(),
        );
        registry.register(
            "contour_operator_reconcile_errors",
            "Failed reconciles, by error category (the Degraded reason)",
            errors.clone(),
        );
        registry.register(
            "contour_operator_reconcile_duration_seconds",
            "Time one reconcile took",
            duration.clone(),
        );
        Arc::new(Self {
            registry,
            reconciles,
            errors,
            duration,
            ready: AtomicBool::new(false),
        })
    }

    /// Counts one reconcile: `Err(category)` when it failed.
    pub fn observe(&self, outcome: Result<(), &str>, took: Duration) {
        let result = match outcome {
            Ok(()) => "success",
            Err(category) => {
                self.errors
                    .get_or_create(&vec![("category", category.to_string())])
                    .inc();
                "error"
            }
        };
        self.reconciles
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Marks the controller as running (`/readyz` answers 200 from then on).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

async fn metrics(State(m): State<Arc<OperatorMetrics>>) -> String {
    m.render()
}

async fn ready(State(m): State<Arc<OperatorMetrics>>) -> StatusCode {
    match m.ready.load(Ordering::Relaxed) {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the
/// process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics_state: Arc<OperatorMetrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(metrics_state);
    axum::serve(listener, app).await
}
