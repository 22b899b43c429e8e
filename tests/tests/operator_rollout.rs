//! Rollouts against a real API server: a change that touches both Contour
//! and Envoy rolls Contour first and holds Envoy until Contour's Deployment
//! has rolled out; a HorizontalPodAutoscaler's replicas are left alone. (No
//! kube-controller-manager runs here; the tests write the rollout status
//! and the scale as its controllers would.)

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_tests::operator::{condition, create, mark_rolled_out, reconcile, setup, status};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn images(d: &serde_json::Value) -> Vec<String> {
    let pod = &d["spec"]["template"]["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod[k].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["image"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn envoy_is_updated_only_after_contour_has_rolled_out() -> TestResult {
    let (client, ns) = setup("op-rollout").await?;
    create(&client, &ns, "up", json!({})).await?;
    reconcile(&client, &ns, "up").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), &ns);
    mark_rolled_out(&client, &ns, "contour-up").await?;

    // A new contour image: Contour's Deployment and Envoy's init container
    // (`contour bootstrap`) both use it.
    let cds: Api<ContourDeployment> = Api::namespaced(client.clone(), &ns);
    cds.patch(
        "up",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"contour": {"image": "contour:v2"}}})),
    )
    .await?;
    reconcile(&client, &ns, "up").await?;
    let contour = serde_json::to_value(deployments.get("contour-up").await?)?;
    assert_eq!(images(&contour), ["contour:v2"]);
    let envoy = serde_json::to_value(daemonsets.get("envoy-up").await?)?;
    assert_eq!(
        images(&envoy),
        ["contour:test", "envoy:test", "contour:test"],
        "Envoy (bootstrap, envoy, drain sidecar) must wait for Contour's rollout"
    );
    let st = status(&client, &ns, "up").await?;
    assert_eq!(condition(&st, "Progressing")["reason"], "WaitingForContour");
    assert_eq!(condition(&st, "Degraded")["status"], "False");

    // Still rolling out: another reconcile keeps holding.
    reconcile(&client, &ns, "up").await?;
    let envoy = serde_json::to_value(daemonsets.get("envoy-up").await?)?;
    assert_eq!(images(&envoy)[0], "contour:test");

    // Contour has rolled out: Envoy follows.
    mark_rolled_out(&client, &ns, "contour-up").await?;
    reconcile(&client, &ns, "up").await?;
    let envoy = serde_json::to_value(daemonsets.get("envoy-up").await?)?;
    assert_eq!(images(&envoy), ["contour:v2", "envoy:test", "contour:v2"]);
    let st = status(&client, &ns, "up").await?;
    assert_ne!(condition(&st, "Progressing")["reason"], "WaitingForContour");

    // A change of Envoy alone does not wait: Contour is rolled out.
    cds.patch(
        "up",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"envoy": {"image": "envoy:v2"}}})),
    )
    .await?;
    reconcile(&client, &ns, "up").await?;
    let envoy = serde_json::to_value(daemonsets.get("envoy-up").await?)?;
    assert_eq!(images(&envoy), ["contour:v2", "envoy:v2", "contour:v2"]);
    Ok(())
}

/// Scales Deployment `name` through its `scale` subresource, as the
/// autoscaler does (another field manager, an update).
async fn scale(client: &kube::Client, ns: &str, name: &str, replicas: i32) -> TestResult {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.patch_scale(
        name,
        &PatchParams {
            field_manager: Some("horizontal-pod-autoscaler".into()),
            ..Default::default()
        },
        &Patch::Merge(&json!({"spec": {"replicas": replicas}})),
    )
    .await?;
    Ok(())
}

async fn replicas(client: &kube::Client, ns: &str, name: &str) -> Result<i32, kube::Error> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    Ok(api
        .get(name)
        .await?
        .spec
        .and_then(|s| s.replicas)
        .unwrap_or(-1))
}

#[tokio::test]
async fn an_autoscaler_owns_the_replicas() -> TestResult {
    let (client, ns) = setup("op-hpa").await?;
    create(
        &client,
        &ns,
        "hpa",
        json!({"envoy": {"workloadType": "Deployment"}}),
    )
    .await?;
    reconcile(&client, &ns, "hpa").await?;
    assert_eq!(replicas(&client, &ns, "contour-hpa").await?, 2);

    // Without an autoscaler a hand-scaled Deployment is drift: reverted.
    scale(&client, &ns, "contour-hpa", 5).await?;
    reconcile(&client, &ns, "hpa").await?;
    assert_eq!(replicas(&client, &ns, "contour-hpa").await?, 2);

    // With one, its scaling stays: the operator stops applying replicas.
    let hpas: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> =
        Api::namespaced(client.clone(), &ns);
    for target in ["contour-hpa", "envoy-hpa"] {
        hpas.create(
            &Default::default(),
            &serde_json::from_value(json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": target},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": target}, "minReplicas": 2, "maxReplicas": 10,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]}}))?,
        )
        .await?;
    }
    reconcile(&client, &ns, "hpa").await?;
    // Handing the field over keeps its value (server-side apply alone would
    // remove it, and the Deployment would drop to 1 replica).
    assert_eq!(replicas(&client, &ns, "contour-hpa").await?, 2);
    assert_eq!(replicas(&client, &ns, "envoy-hpa").await?, 2);
    scale(&client, &ns, "contour-hpa", 5).await?;
    scale(&client, &ns, "envoy-hpa", 7).await?;
    for _ in 0..2 {
        reconcile(&client, &ns, "hpa").await?;
    }
    assert_eq!(replicas(&client, &ns, "contour-hpa").await?, 5);
    assert_eq!(replicas(&client, &ns, "envoy-hpa").await?, 7);
    let st = status(&client, &ns, "hpa").await?;
    assert_eq!(condition(&st, "Degraded")["status"], "False", "{st}");
    Ok(())
}
