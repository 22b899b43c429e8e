//! The metrics and debug endpoint (`--http-address`/`--http-port`, :8000):
//! `/metrics`, `/healthz`, `/readyz` and `/debug/dag`.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::dag::Dag;
use crate::metrics::Metrics;

/// What the endpoint shows.
#[derive(Clone)]
pub struct HttpState {
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The last DAG built; `None` until the first build (not ready).
    pub dag: Arc<RwLock<Option<Arc<Dag>>>>,
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

fn current(s: &HttpState) -> Option<Arc<Dag>> {
    match s.dag.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    match current(&s) {
        Some(_) => (StatusCode::OK, "ready\n"),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first sync of every watched kind\n",
        ),
    }
}

async fn dag(State(s): State<HttpState>) -> impl IntoResponse {
    match current(&s) {
        Some(d) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            crate::dag::dot::to_dot(&d),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            "no DAG built yet\n".to_string(),
        ),
    }
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/debug/dag", get(dag))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
