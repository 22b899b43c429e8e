//! Step 6: delete children this instance labelled but no longer wants (a
//! feature turned off, `watchNamespaces` changed, the workload kind
//! switched). Only objects with all of the instance's ownership labels are
//! ever listed, so nothing else can be deleted.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};

use crate::build::{Child, Scope, managed_kinds, service_monitor_resource};
use crate::names::Names;

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
