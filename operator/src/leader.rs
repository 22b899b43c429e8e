//! One active operator per cluster: replicas elect a leader on a Lease
//! (the same election `contour serve` uses); only the leader runs the
//! controller. A replica that loses the lease stops reconciling at once, and
//! the binary exits so that its pod restarts as a standby.

use std::sync::Arc;

use contour::serve::leader::{self, LeaderConfig};
use tokio::sync::watch;

use crate::Context;
use crate::metrics::OperatorMetrics;

/// How the controller ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Asked to stop (signal or `shutdown`).
    Stopped,
    /// Another replica holds the lease now.
    LostLeadership,
}

/// Aborts the election when the replica's future goes away, so a replica
/// that is dropped (or crashes) stops renewing the lease.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the lease, then runs the controller while it is held. The
/// replica reports ready while it waits (a standby is healthy).
pub async fn run_elected(
    ctx: Context,
    namespace: Option<String>,
    metrics: Arc<OperatorMetrics>,
    config: LeaderConfig,
    shutdown: watch::Receiver<bool>,
) -> Ended {
    let (leader_tx, mut leader_rx) = watch::channel(false);
    let identity = config.identity.clone();
    let _election = AbortOnDrop(tokio::spawn(leader::run(
        ctx.client.clone(),
        config,
        leader_tx,
        shutdown.clone(),
    )));
    metrics.set_ready();
    let mut stop = shutdown.clone();
    tracing::info!(%identity, "waiting for the leader lease");
    let elected = tokio::select! {
        r = leader_rx.wait_for(|l| *l) => r.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    };
    let ended = if !elected {
        Ended::Stopped
    } else {
        tracing::info!(%identity, "leading: reconciling");
        tokio::select! {
            _ = crate::controller::run_with_metrics(ctx, namespace, metrics) => Ended::Stopped,
            _ = leader_rx.wait_for(|l| !*l) => Ended::LostLeadership,
            _ = stop.wait_for(|s| *s) => Ended::Stopped,
        }
    };
    if ended == Ended::LostLeadership {
        tracing::error!(%identity, "lost the leader lease; stopped reconciling");
    }
    ended
}
