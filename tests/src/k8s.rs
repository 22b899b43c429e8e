//! Kubernetes helpers shared by the tests.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::{HarnessError, Result};

/// Field manager of the test ground.
pub const FIELD_MANAGER: &str = "contour-rs-tests";

/// Server-side applies every CRD of the product (as committed in the chart)
/// and waits until each is Established.
pub async fn install_crds(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let dir = crate::tools::repo_root().join("helm/contour-operator/crds");
    let mut names = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path)?;
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        names.push(name);
    }
    for name in names {
        wait_established(&crds, &name).await?;
    }
    Ok(())
}

async fn wait_established(crds: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let crd = crds.get(name).await?;
        let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
        {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(HarnessError::NotReady {
                component: "CRD",
                seconds: 30,
                log: format!("{name} conditions: {conditions:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The API resource of a manifest's `apiVersion`/`kind` (the kinds the tests use).
pub fn resource_of(manifest: &serde_json::Value) -> Result<kube::api::ApiResource> {
    use kube::api::ApiResource;
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let kind = manifest["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "HTTPProxy" => "httpproxies".to_string(),
        "IngressRoute" => "ingressroutes".to_string(),
        "TLSCertificateDelegation" => "tlscertificatedelegations".to_string(),
        "EndpointSlice" => "endpointslices".to_string(),
        "Ingress" => "ingresses".to_string(),
        "Lease" => "leases".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    if kind.is_empty() || version.is_empty() {
        return Err(HarnessError::Command {
            command: "apply".into(),
            stderr: format!("manifest without apiVersion/kind: {manifest}"),
        });
    }
    Ok(ApiResource {
        group,
        version,
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        plural,
    })
}

/// Server-side applies a namespaced manifest (JSON) in `namespace`.
pub async fn apply(client: &Client, namespace: &str, manifest: &serde_json::Value) -> Result<()> {
    use kube::api::DynamicObject;
    let ar = resource_of(manifest)?;
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(manifest),
    )
    .await?;
    Ok(())
}

/// Deletes a namespaced object named like `manifest` (missing is fine).
pub async fn delete(client: &Client, namespace: &str, manifest: &serde_json::Value) -> Result<()> {
    use kube::api::{DeleteParams, DynamicObject};
    let ar = resource_of(manifest)?;
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A Service named `name` on port 80 (`http`) for a backend, and the
/// EndpointSlice a kubelet-less cluster needs for it.
pub fn service_for(name: &str, backends: &[std::net::SocketAddr]) -> Vec<serde_json::Value> {
    let port = backends.first().map(|b| b.port()).unwrap_or(80);
    vec![
        serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}
        }),
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": backends.iter().map(|b| serde_json::json!({
                "addresses": [b.ip().to_string()],
                "conditions": {"ready": true}
            })).collect::<Vec<_>>()
        }),
    ]
}

/// The documents of a multi-document YAML stream (e.g. `helm template`
/// output), as JSON; empty documents are left out.
pub fn yaml_documents(yaml: &str) -> Result<Vec<serde_json::Value>> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = serde_json::Value::deserialize(doc)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Calls `call` until the API server stops refusing it (403), for up to
/// 20 s: the RBAC authorizer learns a new Role or binding through its
/// informers, a moment after it is written. Any other answer is returned.
pub async fn once_authorized<T, F, Fut>(mut call: F) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Err(kube::Error::Api(e))
                if e.code == 403 && started.elapsed() < Duration::from_secs(20) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}
