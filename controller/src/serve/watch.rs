//! Kubernetes watches feeding the event loop. Objects are watched untyped and
//! converted one by one, so a single object that does not parse is logged and
//! skipped instead of stalling the watch of its whole kind.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::cache::{Key, Kind, Object};

/// What a watch tells the event loop.
#[derive(Debug)]
pub enum Update {
    /// An object was added or changed.
    Apply(Box<Object>),
    /// An object was deleted.
    Delete(Kind, Key),
    /// An object no longer parses: it leaves the cache like a deleted one,
    /// and (for kinds with a status) says why in its status.
    Unparsable {
        /// Its kind.
        kind: Kind,
        /// Which.
        key: Key,
        /// Its `metadata.generation`.
        generation: i64,
        /// What did not parse.
        error: String,
    },
    /// A (re)list of a kind starts, in one namespace or (`None`) all.
    ListStart(Kind, Option<String>),
    /// A (re)list of a kind finished: every object of it (in that
    /// namespace, or all) has been applied since the matching `ListStart`;
    /// others are gone.
    ListDone(Kind, Option<String>),
}

/// The kinds watched, with their API resource.
pub fn kinds() -> Vec<(Kind, ApiResource)> {
    use k8s_openapi::api::core::v1::{Secret, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::api::networking::v1::Ingress;
    vec![
        (Kind::Ingress, ApiResource::erase::<Ingress>(&())),
        (
            Kind::IngressRoute,
            ApiResource::erase::<contour_crds::IngressRoute>(&()),
        ),
        (
            Kind::HTTPProxy,
            ApiResource::erase::<contour_crds::HTTPProxy>(&()),
        ),
        (
            Kind::Delegation,
            ApiResource::erase::<contour_crds::TLSCertificateDelegation>(&()),
        ),
        (Kind::Service, ApiResource::erase::<Service>(&())),
        (Kind::Secret, ApiResource::erase::<Secret>(&())),
        (
            Kind::EndpointSlice,
            ApiResource::erase::<EndpointSlice>(&()),
        ),
    ]
}

/// The typed object. Its fields are moved, not copied (a Secret's data can
/// be large), and managed fields, which the cache drops anyway, are not
/// converted.
fn typed<T: DeserializeOwned>(obj: DynamicObject) -> Result<T, serde_json::Error> {
    let DynamicObject {
        types,
        mut metadata,
        data,
    } = obj;
    metadata.managed_fields = None;
    let mut fields = match data {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    if let Some(t) = types {
        fields.insert("apiVersion".into(), t.api_version.into());
        fields.insert("kind".into(), t.kind.into());
    }
    fields.insert("metadata".into(), serde_json::to_value(metadata)?);
    serde_json::from_value(serde_json::Value::Object(fields))
}

/// Converts a watched object into a cache object of `kind`.
pub fn convert(kind: Kind, obj: DynamicObject) -> Result<Object, serde_json::Error> {
    Ok(match kind {
        Kind::Ingress => Object::Ingress(typed(obj)?),
        Kind::IngressRoute => Object::IngressRoute(typed(obj)?),
        Kind::HTTPProxy => Object::HTTPProxy(typed(obj)?),
        Kind::Delegation => Object::Delegation(typed(obj)?),
        Kind::Service => Object::Service(typed(obj)?),
        Kind::Secret => Object::Secret(typed(obj)?),
        Kind::EndpointSlice => Object::EndpointSlice(typed(obj)?),
    })
}

fn apply(kind: Kind, obj: DynamicObject) -> Update {
    let key = Key::of(&obj.metadata);
    let generation = obj.metadata.generation.unwrap_or_default();
    match convert(kind, obj) {
        Ok(o) => Update::Apply(Box::new(o)),
        Err(e) => {
            tracing::warn!(kind = ?kind, namespace = %key.namespace, name = %key.name, error = %e,
                "object does not parse; ignoring it until it is fixed");
            // serde's position is in our re-encoding of the object, not in
            // anything the user wrote.
            let error = e.to_string();
            let error = match error.find(" at line ") {
                Some(i) => error[..i].to_string(),
                None => error,
            };
            Update::Unparsable {
                kind,
                key,
                generation,
                error,
            }
        }
    }
}

/// Secret types that never hold key material Contour uses: Helm release
/// history (often thousands of Secrets of up to 1 MiB each) and service
/// account tokens. Left out by the API server, so they are neither sent nor
/// parsed; upstream Contour filters the same types.
pub const IGNORED_SECRET_TYPES: &[&str] =
    &["helm.sh/release.v1", "kubernetes.io/service-account-token"];

/// The watch of one kind: Secrets without [`IGNORED_SECRET_TYPES`].
pub fn config(kind: Kind) -> watcher::Config {
    let config = watcher::Config::default();
    match kind {
        Kind::Secret => config.fields(
            &IGNORED_SECRET_TYPES
                .iter()
                .map(|t| format!("type!={t}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => config,
    }
}

/// Watches one kind, cluster-wide or (`namespace`) in one namespace, until
/// the receiver is gone. Watch errors (a missing CRD, a dropped connection,
/// a namespace we may not read) are logged and retried with backoff.
pub async fn run(
    client: kube::Client,
    kind: Kind,
    resource: ApiResource,
    namespace: Option<String>,
    tx: mpsc::Sender<Update>,
) {
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut stream = watcher::watcher(api, config(kind)).boxed();
    let mut failures = 0u32;
    loop {
        let update = match stream.next().await {
            None => return,
            Some(Err(e)) => {
                failures = failures.saturating_add(1);
                tracing::warn!(kind = ?kind, namespace = ?namespace, error = %e, failures, "watch failed; retrying");
                let wait = Duration::from_millis(200u64.saturating_mul(1 << failures.min(6)));
                tokio::time::sleep(wait).await;
                continue;
            }
            Some(Ok(event)) => {
                failures = 0;
                match event {
                    Event::Init => Update::ListStart(kind, namespace.clone()),
                    Event::InitApply(o) | Event::Apply(o) => apply(kind, o),
                    Event::InitDone => Update::ListDone(kind, namespace.clone()),
                    Event::Delete(o) => Update::Delete(kind, Key::of(&o.metadata)),
                }
            }
        };
        if tx.send(update).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_watched_without_helm_releases_and_tokens() {
        assert_eq!(
            config(Kind::Secret).field_selector.as_deref(),
            Some("type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token")
        );
        assert_eq!(config(Kind::Service).field_selector, None);
    }

    #[test]
    fn a_malformed_object_is_refused_alone() {
        let ar = ApiResource::erase::<contour_crds::HTTPProxy>(&());
        let mut bad = DynamicObject::new("bad", &ar).within("default");
        bad.data = serde_json::json!({"spec": {"routes": "not a list"}});
        assert!(matches!(
            apply(Kind::HTTPProxy, bad),
            Update::Unparsable { kind: Kind::HTTPProxy, key, error, .. }
                if key.name == "bad" && error == "invalid type: string \"not a list\", expected a sequence"
        ));
        let mut good = DynamicObject::new("good", &ar).within("default");
        good.data = serde_json::json!({"spec": {"virtualhost": {"fqdn": "a.example.com"}}});
        assert!(matches!(apply(Kind::HTTPProxy, good), Update::Apply(_)));
    }
}
