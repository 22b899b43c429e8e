//! Shared steps of the operator tests: a namespace with the CRDs, creating a
//! ContourDeployment, reconciling it afresh, reading its conditions, and
//! playing the Deployment controller (there is no kube-controller-manager
//! here: tests write the rollout status a real cluster would).

use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use contour_crds::ContourDeployment;
use contour_operator::validate::Images;
use contour_operator::{Context, Error, Report};

use crate::ApiServer;

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// An admin client and a fresh namespace, with the CRDs installed.
pub async fn setup(prefix: &str) -> BoxResult<(Client, String)> {
    let server = ApiServer::shared()?;
    let client = server.admin_client().await?;
    crate::k8s::install_crds(&client).await?;
    let ns = server.namespace(prefix).await?;
    Ok((client, ns))
}

/// The reconcile context, with test image names.
pub fn ctx(client: &Client) -> Context {
    Context {
        client: client.clone(),
        images: Images {
            contour: "contour:test".into(),
            envoy: "envoy:test".into(),
        },
        pruned: Default::default(),
    }
}

/// Creates ContourDeployment `name` with `spec`.
pub async fn create(
    client: &Client,
    ns: &str,
    name: &str,
    spec: Value,
) -> BoxResult<ContourDeployment> {
    let api: Api<ContourDeployment> = Api::namespaced(client.clone(), ns);
    let cd: ContourDeployment = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
        "metadata": {"name": name}, "spec": spec}))?;
    Ok(api.create(&PostParams::default(), &cd).await?)
}

/// Reads the instance afresh and reconciles it.
pub async fn reconcile(client: &Client, ns: &str, name: &str) -> Result<Report, Error> {
    let api: Api<ContourDeployment> = Api::namespaced(client.clone(), ns);
    let cd = api.get(name).await.map_err(Error::Finalizer)?;
    contour_operator::reconcile(&ctx(client), &cd).await
}

/// The instance's status as JSON.
pub async fn status(client: &Client, ns: &str, name: &str) -> BoxResult<Value> {
    let api: Api<ContourDeployment> = Api::namespaced(client.clone(), ns);
    Ok(serde_json::to_value(api.get(name).await?.status)?)
}

/// The condition `type_` of a status (or null).
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// Writes the status the Deployment controller writes once Deployment
/// `name` has rolled out its current generation with every replica ready.
pub async fn mark_rolled_out(client: &Client, ns: &str, name: &str) -> BoxResult<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = api.get(name).await?;
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {
            "observedGeneration": d.metadata.generation,
            "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas}})),
    )
    .await?;
    Ok(())
}
