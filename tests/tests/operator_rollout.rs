//! Upgrades in order, against a real API server: a change that touches
//! both Contour and Envoy rolls Contour first and holds Envoy until
//! Contour's Deployment has rolled out. (No kube-controller-manager runs
//! here; the test writes the Deployment's rollout status as it would.)

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
        ["contour:test", "envoy:test"],
        "Envoy must wait for Contour's rollout"
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
    assert_eq!(images(&envoy), ["contour:v2", "envoy:test"]);
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
    assert_eq!(images(&envoy), ["contour:v2", "envoy:v2"]);
    Ok(())
}
