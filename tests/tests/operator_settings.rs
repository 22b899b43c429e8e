//! `runtimeSettings` against a real API server: the keys this build applies
//! reach `contour serve` and Envoy; any other key is named in the
//! `SettingsHonoured` condition instead of being dropped silently.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_tests::operator::{condition, create, reconcile, setup, status};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn unapplied_runtime_settings_are_named_in_the_status() -> TestResult {
    let (client, ns) = setup("op-settings").await?;
    create(
        &client,
        &ns,
        "set",
        json!({"runtimeSettings": {
            "envoy": {"http": {"port": 8081}},
            "httpproxy": {"disablePermitInsecure": true}}}),
    )
    .await?;
    reconcile(&client, &ns, "set").await?;
    let st = status(&client, &ns, "set").await?;
    let honoured = condition(&st, "SettingsHonoured");
    assert_eq!(honoured["status"], "False", "{st}");
    assert_eq!(honoured["reason"], "SettingsIgnored");
    let message = honoured["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("httpproxy.disablePermitInsecure"),
        "{message}"
    );
    assert!(!message.contains("envoy.http.port"), "{message}");
    // The applied key reached both sides.
    let contour = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("contour-set")
        .await?;
    let args = serde_json::to_string(&contour.spec)?;
    assert!(args.contains("--envoy-service-http-port=8081"), "{args}");
    let envoy = serde_json::to_value(
        Api::<DaemonSet>::namespaced(client.clone(), &ns)
            .get("envoy-set")
            .await?
            .spec,
    )?;
    assert_eq!(
        envoy["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8081
    );

    // Without the unapplied key the condition turns True.
    Api::<ContourDeployment>::namespaced(client.clone(), &ns)
        .patch(
            "set",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"runtimeSettings": {"httpproxy": null}}})),
        )
        .await?;
    reconcile(&client, &ns, "set").await?;
    let st = status(&client, &ns, "set").await?;
    assert_eq!(condition(&st, "SettingsHonoured")["status"], "True", "{st}");
    Ok(())
}
