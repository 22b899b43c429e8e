//! The load balancer address in `status.loadBalancer` of every Ingress and
//! HTTPProxy of the served ingress class, as upstream writes it: from
//! `--ingress-status-address` (comma-separated; an IP becomes `ip`, anything
//! else `hostname`), or else from the `status.loadBalancer` of Envoy's
//! Service (`--envoy-service-namespace`/`--envoy-service-name`), followed as
//! it changes. Only the leader writes, and only objects whose address
//! differs; with no address known nothing is written.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// An object that carries a load balancer address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// `true` for an HTTPProxy, `false` for an Ingress.
    pub proxy: bool,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What the event loop knows and the writer needs: every target with the
/// address it carries now, and which ones to look at.
#[derive(Debug, Default)]
pub struct Targets {
    live: BTreeMap<Target, Arc<Value>>,
    dirty: BTreeSet<Target>,
    /// The distinct addresses carried, shared by the entries of `live`
    /// (nearly every object carries the same one).
    distinct: Vec<Arc<Value>>,
}

/// Distinct addresses kept for sharing; past this many (after dropping the
/// unused ones) a new address is not shared.
const DISTINCT_ADDRESSES: usize = 32;

impl Targets {
    fn shared(&mut self, v: Value) -> Arc<Value> {
        if let Some(a) = self.distinct.iter().find(|a| ***a == v) {
            return Arc::clone(a);
        }
        if self.distinct.len() >= DISTINCT_ADDRESSES {
            self.distinct.retain(|a| Arc::strong_count(a) > 1);
        }
        let a = Arc::new(v);
        if self.distinct.len() < DISTINCT_ADDRESSES {
            self.distinct.push(Arc::clone(&a));
        }
        a
    }
}

/// Shared between the event loop (which records) and the writer.
#[derive(Debug, Default)]
pub struct Shared {
    targets: Mutex<Targets>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Targets> {
        match self.targets.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        }
    }

    /// An object of the served class is present, carrying `live`.
    pub fn seen(&self, t: Target, live: Value) {
        let mut g = self.lock();
        if g.live.get(&t).map(|a| &**a) != Some(&live) {
            tracing::debug!(namespace = %t.namespace, name = %t.name, proxy = t.proxy, address = %live, "object's status.loadBalancer changed");
            g.dirty.insert(t.clone());
            let live = g.shared(live);
            g.live.insert(t, live);
            drop(g);
            self.wake.notify_one();
        }
    }

    /// The object is gone, or no longer of the served class.
    pub fn gone(&self, t: &Target) {
        let mut g = self.lock();
        g.live.remove(t);
        g.dirty.remove(t);
    }

    /// A write to `t` failed: it is due again.
    fn retry(&self, t: &Target) {
        let mut g = self.lock();
        if g.live.contains_key(t) {
            g.dirty.insert(t.clone());
        }
    }

    fn mark_all(&self) {
        let mut g = self.lock();
        let all: Vec<Target> = g.live.keys().cloned().collect();
        g.dirty.extend(all);
    }

    /// Up to `n` dirty targets whose address differs from `want`.
    fn take(&self, want: &Value, n: usize) -> Vec<Target> {
        let mut g = self.lock();
        let mut out = Vec::new();
        while out.len() < n {
            let Some(t) = g.dirty.pop_first() else { break };
            if g.live.get(&t).map(|a| &**a) != Some(want) {
                out.push(t);
            }
        }
        out
    }
}

/// The `status.loadBalancer` for `--ingress-status-address`.
pub fn from_addresses(flag: &str) -> Value {
    let ingress: Vec<Value> = flag
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match a.parse::<IpAddr>() {
            Ok(_) => json!({"ip": a}),
            Err(_) => json!({"hostname": a}),
        })
        .collect();
    json!({ "ingress": ingress })
}

/// A Service's `status.loadBalancer` in the shape both kinds carry (`ip`,
/// `hostname`, `ports`), or an empty one.
pub fn from_service(svc: &Service) -> Value {
    let ingress: Vec<Value> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .map(|i| {
            let mut v = json!({});
            if let Some(ip) = &i.ip {
                v["ip"] = json!(ip);
            }
            if let Some(h) = &i.hostname {
                v["hostname"] = json!(h);
            }
            if let Some(ports) = &i.ports {
                v["ports"] = json!(ports);
            }
            v
        })
        .collect();
    json!({ "ingress": ingress })
}

/// The address an Ingress carries, in the same shape.
pub fn of_ingress(i: &Ingress) -> Value {
    carried(
        i.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref()),
    )
}

/// The address an HTTPProxy carries, in the same shape.
pub fn of_proxy(p: &contour_crds::HTTPProxy) -> Value {
    carried(
        p.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref()),
    )
}

fn carried<T: serde::Serialize>(ingress: Option<&Vec<T>>) -> Value {
    let v = ingress
        .and_then(|i| serde_json::to_value(i).ok())
        .unwrap_or(Value::Array(Vec::new()));
    json!({ "ingress": normalise(v) })
}

/// Drops null fields, so a live value compares equal to a desired one.
fn normalise(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, normalise(v)))
                .collect(),
        ),
        Value::Null => Value::Array(Vec::new()),
        other => other,
    }
}

/// Follows the Envoy Service's `status.loadBalancer` into `tx`.
pub async fn follow_service(
    client: kube::Client,
    namespace: String,
    name: String,
    tx: watch::Sender<Value>,
) {
    let api: Api<Service> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(api, config).boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(svc) | Event::InitApply(svc)) => {
                let v = from_service(&svc);
                tx.send_if_modified(|cur| {
                    let changed = *cur != v;
                    *cur = v.clone();
                    changed
                });
            }
            Ok(Event::Delete(_)) => {
                let _ = tx.send(json!({"ingress": []}));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%namespace, %name, error = %e, "watching Envoy's Service failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn write(client: &kube::Client, t: &Target, want: &Value) -> Result<(), kube::Error> {
    let resource = if t.proxy {
        ApiResource::erase::<contour_crds::HTTPProxy>(&())
    } else {
        ApiResource::erase::<Ingress>(&())
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &t.namespace, &resource);
    api.patch_status(
        &t.name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"loadBalancer": want}})),
    )
    .await?;
    Ok(())
}

/// What the writer last looked with. Any change of address or leadership,
/// however it is noticed (a wake-up or a fresh look after a batch), makes
/// every object due again: objects taken under the old address may carry it.
#[derive(Debug, Default)]
struct Round {
    last: Option<(bool, Value)>,
}

impl Round {
    /// Up to `n` objects to write `want` to, as leader or not.
    fn due(&mut self, shared: &Shared, leading: bool, want: &Value, n: usize) -> Vec<Target> {
        if self
            .last
            .as_ref()
            .is_none_or(|(l, w)| *l != leading || w != want)
        {
            shared.mark_all();
            self.last = Some((leading, want.clone()));
        }
        let known = want["ingress"].as_array().is_some_and(|a| !a.is_empty());
        if leading && known {
            shared.take(want, n)
        } else {
            Vec::new()
        }
    }
}

/// Wait after a batch in which some writes failed (they are retried),
/// doubling while batches keep failing (e.g. no right to write the status),
/// up to [`RETRY_MAX`].
const RETRY_AFTER: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Writes the address while `leader` is true.
pub async fn run(
    client: kube::Client,
    shared: Arc<Shared>,
    mut address: watch::Receiver<Value>,
    mut leader: watch::Receiver<bool>,
) {
    let mut round = Round::default();
    let mut retry_after = RETRY_AFTER;
    loop {
        let leading = *leader.borrow_and_update();
        let want = address.borrow_and_update().clone();
        let batch = round.due(&shared, leading, &want, 64);
        let mut failed = false;
        for t in &batch {
            tracing::debug!(namespace = %t.namespace, name = %t.name, proxy = t.proxy, address = %want, "writing status.loadBalancer");
            match write(&client, t, &want).await {
                Ok(()) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(namespace = %t.namespace, name = %t.name, proxy = t.proxy, error = %e, "writing status.loadBalancer failed; retrying");
                    shared.retry(t);
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(retry_after).await;
            retry_after = (retry_after * 2).min(RETRY_MAX);
        } else if !batch.is_empty() {
            retry_after = RETRY_AFTER;
        }
        if !batch.is_empty() {
            continue;
        }
        tokio::select! {
            c = address.changed() => if c.is_err() { return },
            c = leader.changed() => if c.is_err() { return },
            _ = shared.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            proxy: false,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn addresses_become_ips_or_hostnames() {
        assert_eq!(
            from_addresses("10.0.0.1, lb.example.com,,::1"),
            json!({"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}, {"ip": "::1"}]})
        );
        assert_eq!(from_addresses(""), json!({"ingress": []}));
    }

    #[test]
    fn only_dirty_targets_with_another_address_are_taken() {
        let s = Shared::default();
        let want = from_addresses("10.0.0.1");
        let t = target;
        s.seen(t("a"), json!({"ingress": []}));
        s.seen(t("b"), want.clone());
        assert_eq!(s.take(&want, 10), [t("a")]);
        assert!(s.take(&want, 10).is_empty(), "taken once");
        s.mark_all();
        assert_eq!(s.take(&want, 10), [t("a")]);
        s.gone(&t("a"));
        s.mark_all();
        assert!(s.take(&want, 10).is_empty());
    }

    /// An address change seen only on a fresh look after a batch (not as a
    /// wake-up) still makes objects written with the old address due.
    #[test]
    fn every_change_of_address_or_leadership_makes_everything_due() {
        let s = Shared::default();
        let (one, two) = (
            from_addresses("lb-1.example.net"),
            from_addresses("10.0.0.2"),
        );
        let t = target;
        let mut round = Round::default();
        s.seen(t("a"), json!({"ingress": []}));
        s.seen(t("b"), json!({"ingress": []}));
        assert_eq!(round.due(&s, true, &one, 10), [t("a"), t("b")]);
        // Both now carry the first address; nothing is due for it.
        s.seen(t("a"), one.clone());
        s.seen(t("b"), one.clone());
        assert!(round.due(&s, true, &one, 10).is_empty());
        assert_eq!(round.due(&s, true, &two, 10), [t("a"), t("b")]);
        assert!(round.due(&s, true, &two, 10).is_empty(), "taken once");
        // Not leading: nothing; leading again: everything is looked at.
        assert!(round.due(&s, false, &two, 10).is_empty());
        assert_eq!(round.due(&s, true, &two, 10), [t("a"), t("b")]);
        // No address known: nothing is written.
        assert!(round.due(&s, true, &json!({"ingress": []}), 10).is_empty());
    }

    #[test]
    fn a_failed_write_is_due_again_unless_the_object_is_gone() {
        let s = Shared::default();
        let want = from_addresses("10.0.0.1");
        let t = target;
        s.seen(t("a"), json!({"ingress": []}));
        s.seen(t("b"), json!({"ingress": []}));
        assert_eq!(s.take(&want, 10), [t("a"), t("b")]);
        s.retry(&t("a"));
        s.gone(&t("b"));
        s.retry(&t("b"));
        assert_eq!(s.take(&want, 10), [t("a")]);
    }

    #[test]
    fn a_live_address_compares_equal_to_the_desired_one() {
        let ing: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "x"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}))
        .unwrap_or_default();
        assert_eq!(of_ingress(&ing), from_addresses("10.0.0.1"));
        assert_eq!(of_ingress(&Ingress::default()), json!({"ingress": []}));
    }
}
