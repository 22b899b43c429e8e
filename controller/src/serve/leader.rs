//! Leader election on a coordination.k8s.io/v1 Lease, as client-go does it:
//! the holder renews every `retry`; another replica takes the lease once
//! `renewTime + leaseDurationSeconds` has passed. Writes use the Lease's
//! resourceVersion, so two replicas never both win. Only the leader writes
//! status; every replica serves xDS.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;

/// Settings of the election.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity.
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry: Duration,
}

/// What one attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Held,
    Lost,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Whether a lease held by someone else has expired.
fn expired(spec: &LeaseSpec) -> bool {
    let (Some(renew), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds) else {
        return true;
    };
    let age = Timestamp::now().duration_since(renew.0);
    age.as_secs() >= i64::from(secs)
}

async fn attempt(api: &Api<Lease>, config: &LeaderConfig) -> Result<Attempt, kube::Error> {
    let secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    match api.get_opt(&config.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await?;
            Ok(Attempt::Held)
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            let mine = spec.holder_identity.as_deref() == Some(config.identity.as_str());
            let free = spec.holder_identity.as_deref().is_none_or(str::is_empty);
            if !mine && !free && !expired(spec) {
                return Ok(Attempt::Lost);
            }
            if !mine {
                spec.holder_identity = Some(config.identity.clone());
                spec.acquire_time = Some(now());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(secs);
            spec.renew_time = Some(now());
            // The resourceVersion of the read makes this a compare-and-swap.
            api.replace(&config.name, &PostParams::default(), &lease)
                .await?;
            Ok(Attempt::Held)
        }
    }
}

/// Runs the election until `shutdown` fires, publishing leadership on
/// `leader`. On shutdown a held lease is released so another replica takes
/// over at once.
pub async fn run(
    client: kube::Client,
    config: LeaderConfig,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut last_renewed: Option<tokio::time::Instant> = None;
    loop {
        let held = match attempt(&api, &config).await {
            Ok(Attempt::Held) => {
                last_renewed = Some(tokio::time::Instant::now());
                true
            }
            Ok(Attempt::Lost) => false,
            Err(e) => {
                tracing::debug!(error = %e, "leader lease attempt failed");
                // A leader keeps its role until the renew deadline passes.
                last_renewed.is_some_and(|t| t.elapsed() < config.renew_deadline)
            }
        };
        if !held {
            last_renewed = None;
        }
        if *leader.borrow() != held {
            tracing::info!(identity = %config.identity, leader = held, lease = %config.name, "leadership changed");
            let _ = leader.send(held);
        }
        tokio::select! {
            _ = tokio::time::sleep(config.retry) => {}
            _ = shutdown.changed() => break,
        }
    }
    if *leader.borrow() {
        let _ = leader.send(false);
        release(&api, &config).await;
    }
}

async fn release(api: &Api<Lease>, config: &LeaderConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %config.name, "leader lease released"),
        Err(e) => tracing::warn!(error = %e, "releasing the leader lease failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_expire_after_their_duration() {
        let fresh = LeaseSpec {
            renew_time: Some(now()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(!expired(&fresh));
        let old = LeaseSpec {
            renew_time: Timestamp::now()
                .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(20))
                .ok()
                .map(MicroTime),
            lease_duration_seconds: Some(15),
            ..Default::default()
        };
        assert!(expired(&old));
        assert!(expired(&LeaseSpec::default()));
    }
}
