//! Step 6: delete children this instance labelled but no longer wants (a
//! feature turned off, `watchNamespaces` changed, the workload kind
//! switched). Only objects with all of the instance's ownership labels are
//! ever listed, so nothing else can be deleted.

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};

use crate::build::{Child, Scope, managed_kinds, service_monitor_resource};
use crate::names::Names;

/// What each instance was last pruned for, in this process: the set of
/// children it wanted. While an instance keeps wanting the same set, no
/// child of it can have become unwanted, so the listing is skipped (a
/// reconcile that changes nothing then sends only the reads of the apply
/// step). A new process, a new object (uid) or a changed set prunes again.
#[derive(Clone, Default)]
pub struct PruneMemory(Arc<Mutex<HashMap<String, u64>>>);

impl PruneMemory {
    /// Whether `instance` was pruned for exactly `fingerprint`.
    pub fn is_current(&self, instance: &str, fingerprint: u64) -> bool {
        match self.0.lock() {
            Ok(m) => m.get(instance) == Some(&fingerprint),
            Err(_) => false,
        }
    }

    /// Records a successful prune of `instance` for `fingerprint`.
    pub fn remember(&self, instance: &str, fingerprint: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(instance.to_string(), fingerprint);
        }
    }

    /// Forgets `instance` (deleted).
    pub fn forget(&self, instance: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(instance);
        }
    }
}

/// A fingerprint of what a prune of `keep` in `scopes` would keep and list.
pub fn fingerprint(keep: &[Child], scopes: &[Scope], service_monitor_crd: bool) -> u64 {
    let mut keys: Vec<(&str, &str, Option<&str>, &str)> = keep
        .iter()
        .map(|c| {
            (
                c.resource.api_version.as_str(),
                c.resource.kind.as_str(),
                c.namespace.as_deref(),
                c.name.as_str(),
            )
        })
        .collect();
    keys.sort_unstable();
    let mut h = DefaultHasher::new();
    keys.hash(&mut h);
    scopes.hash(&mut h);
    service_monitor_crd.hash(&mut h);
    h.finish()
}

/// Errors of the prune step.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A list or delete failed.
    #[error("pruning {what}: {source}")]
    Kube {
        /// What was listed or deleted.
        what: String,
        /// Cause.
        source: kube::Error,
    },
}

/// Deletes the labelled children of `names` in `scopes` that are not in
/// `keep`; returns how many deletes were sent. ServiceMonitors are only
/// listed when their CRD exists.
pub async fn prune(
    client: &Client,
    names: &Names,
    keep: &[Child],
    scopes: &[Scope],
    service_monitor_crd: bool,
) -> Result<u32, PruneError> {
    let wanted: BTreeSet<(String, Option<String>, String)> = keep
        .iter()
        .map(|c| {
            (
                c.resource.api_version.clone() + "/" + &c.resource.kind,
                c.namespace.clone(),
                c.name.clone(),
            )
        })
        .collect();
    let selector = ListParams::default().labels(&names.owner_selector());
    // Every managed kind is listed at once; deletes follow one by one.
    let kinds = managed_kinds().into_iter().filter(|(resource, scope)| {
        scopes.contains(scope) && (*resource != service_monitor_resource() || service_monitor_crd)
    });
    let lists = futures::future::try_join_all(kinds.map(|(resource, scope)| {
        let api: Api<DynamicObject> = match scope {
            Scope::Own => Api::namespaced_with(client.clone(), &names.namespace, &resource),
            Scope::AnyNamespace | Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let selector = &selector;
        async move {
            let listed = api
                .list_metadata(selector)
                .await
                .map_err(|source| PruneError::Kube {
                    what: format!("{} list", resource.kind),
                    source,
                })?;
            Ok::<_, PruneError>((resource, listed))
        }
    }))
    .await?;
    let mut deletes = 0;
    for (resource, listed) in lists {
        for item in listed.items {
            let key = (
                resource.api_version.clone() + "/" + &resource.kind,
                item.namespace(),
                item.name_any(),
            );
            if wanted.contains(&key) || !names.owns(item.metadata.labels.as_ref()) {
                continue;
            }
            let scoped: Api<DynamicObject> = match &key.1 {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            match scoped.delete(&key.2, &DeleteParams::background()).await {
                Ok(_) => {
                    deletes += 1;
                    tracing::info!(kind = %resource.kind, namespace = ?key.1, name = %key.2, "pruned");
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(source) => {
                    return Err(PruneError::Kube {
                        what: format!("{} {}", resource.kind, key.2),
                        source,
                    });
                }
            }
        }
    }
    Ok(deletes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::api::ApiResource;

    fn child<K: kube::Resource<DynamicType = ()>>(name: &str) -> Child {
        Child {
            resource: ApiResource::erase::<K>(&()),
            namespace: Some("ns".into()),
            name: name.into(),
            object: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_fingerprint_follows_the_set_not_its_order_or_bodies() {
        let scopes = [Scope::Own];
        let a = [child::<ConfigMap>("x"), child::<Secret>("y")];
        let b = [child::<Secret>("y"), child::<ConfigMap>("x")];
        assert_eq!(
            fingerprint(&a, &scopes, false),
            fingerprint(&b, &scopes, false)
        );
        // Another kind, name, scope or ServiceMonitor availability differs.
        let c = [child::<Secret>("x"), child::<Secret>("y")];
        assert_ne!(
            fingerprint(&a, &scopes, false),
            fingerprint(&c, &scopes, false)
        );
        assert_ne!(
            fingerprint(&a, &scopes, false),
            fingerprint(&a, &scopes, true)
        );
        assert_ne!(
            fingerprint(&a, &scopes, false),
            fingerprint(&a, &[Scope::Own, Scope::Cluster], false)
        );
    }

    #[test]
    fn memory_is_per_instance_and_shared_by_clones() {
        let m = PruneMemory::default();
        let clone = m.clone();
        assert!(!m.is_current("ns/a/1", 7));
        clone.remember("ns/a/1", 7);
        assert!(m.is_current("ns/a/1", 7));
        assert!(!m.is_current("ns/a/1", 8));
        assert!(!m.is_current("ns/a/2", 7));
        m.forget("ns/a/1");
        assert!(!clone.is_current("ns/a/1", 7));
    }
}
