//! The operator's prune step and its memory: which children an instance
//! wanted when it was last pruned (`contour_operator::prune::PruneMemory`).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use contour_crds::ContourDeployment;
use contour_tests::operator::{create, ctx, setup};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// While an instance wants the same children, a reconcile of the same
/// process does not list for orphans again (its no-op is the apply step's
/// reads only); a new process (fresh memory) or a changed set prunes.
#[tokio::test]
async fn the_prune_listing_is_skipped_while_the_wanted_children_are_unchanged() -> TestResult {
    let (client, ns) = setup("op-prune-memory").await?;
    create(&client, &ns, "memo", json!({})).await?;
    let cds: Api<ContourDeployment> = Api::namespaced(client.clone(), &ns);
    let same_process = ctx(&client);
    let cd = cds.get("memo").await?;
    contour_operator::reconcile(&same_process, &cd).await?;

    // An object carrying the instance's ownership labels that it does not want.
    let names = contour_operator::names::Names::new(&ns, "memo");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let stray: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "stray-memo", "labels": names.owner_labels()}}))?;
    cms.create(&PostParams::default(), &stray).await?;

    let cd = cds.get("memo").await?;
    contour_operator::reconcile(&same_process, &cd).await?;
    assert!(
        cms.get_opt("stray-memo").await?.is_some(),
        "the same process listed again although the wanted children did not change"
    );
    // A new process prunes it.
    contour_operator::reconcile(&ctx(&client), &cd).await?;
    assert!(
        cms.get_opt("stray-memo").await?.is_none(),
        "a fresh reconcile context did not prune"
    );
    // So does a changed set in the same process (Envoy becomes a Deployment).
    cms.create(&PostParams::default(), &stray).await?;
    cds.patch(
        "memo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"envoy": {"workloadType": "Deployment"}}})),
    )
    .await?;
    let cd = cds.get("memo").await?;
    contour_operator::reconcile(&same_process, &cd).await?;
    assert!(
        cms.get_opt("stray-memo").await?.is_none(),
        "a changed set of children did not prune"
    );
    Ok(())
}
