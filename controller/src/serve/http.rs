//! The HTTP endpoints, as upstream splits them: metrics (`/metrics`,
//! `--http-address`/`--http-port`, 0.0.0.0:8000), health (`/healthz`,
//! `/readyz`, `--health-address`/`--health-port`, 0.0.0.0:8000) and debug
//! (`/debug/dag`, `--debug-http-address`/`--debug-http-port`,
//! 127.0.0.1:6060). Endpoints given the same address and port share one
//! server.

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

/// Which endpoints one server carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// `/metrics`.
    pub metrics: bool,
    /// `/healthz`, `/readyz`.
    pub health: bool,
    /// `/debug/dag`.
    pub debug: bool,
}

impl Endpoints {
    /// Every endpoint.
    pub const ALL: Endpoints = Endpoints {
        metrics: true,
        health: true,
        debug: true,
    };
}

/// The router of `endpoints`.
pub fn router(state: HttpState, endpoints: Endpoints) -> Router {
    let mut r = Router::new();
    if endpoints.metrics {
        r = r.route("/metrics", get(metrics));
    }
    if endpoints.health {
        r = r
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz));
    }
    if endpoints.debug {
        r = r.route("/debug/dag", get(dag));
    }
    r.with_state(state)
}

/// Groups the endpoints by the socket they are served on: `(address,
/// port)` of metrics, health and debug; a debug port of 0 turns debug off.
pub fn plan(
    metrics: (&str, u16),
    health: (&str, u16),
    debug: (&str, u16),
) -> Vec<((String, u16), Endpoints)> {
    let mut out: Vec<((String, u16), Endpoints)> = Vec::new();
    let mut add = |at: (&str, u16), set: &dyn Fn(&mut Endpoints)| {
        let key = (at.0.to_string(), at.1);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, e)) => set(e),
            None => {
                let mut e = Endpoints::default();
                set(&mut e);
                out.push((key, e));
            }
        }
    };
    add(metrics, &|e| e.metrics = true);
    add(health, &|e| e.health = true);
    if debug.1 != 0 {
        add(debug, &|e| e.debug = true);
    }
    out
}

/// Serves `endpoints` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    endpoints: Endpoints,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, endpoints))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_on_one_socket_share_a_server() {
        let p = plan(("0.0.0.0", 8000), ("0.0.0.0", 8000), ("127.0.0.1", 6060));
        assert_eq!(
            p,
            [
                (
                    ("0.0.0.0".to_string(), 8000),
                    Endpoints {
                        metrics: true,
                        health: true,
                        debug: false
                    }
                ),
                (
                    ("127.0.0.1".to_string(), 6060),
                    Endpoints {
                        debug: true,
                        ..Default::default()
                    }
                )
            ]
        );
        let p = plan(("0.0.0.0", 8000), ("0.0.0.0", 8001), ("0.0.0.0", 0));
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|(_, e)| !e.debug));
        let one = plan(("127.0.0.1", 9), ("127.0.0.1", 9), ("127.0.0.1", 9));
        assert_eq!(one, [(("127.0.0.1".to_string(), 9), Endpoints::ALL)]);
    }
}
