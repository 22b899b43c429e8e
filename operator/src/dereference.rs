//! Step 1 (async, reads only): what the reconcile needs from the cluster
//! besides the ContourDeployment — the certificate Secrets, whether the
//! ServiceMonitor CRD exists, and which Deployments a
//! HorizontalPodAutoscaler scales (their replicas are left to it).

use std::collections::BTreeSet;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};

use contour_crds::ContourDeployment;

use crate::names::Names;

/// The CRD whose presence turns ServiceMonitors on (in `Auto` mode).
pub const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// Errors reading the cluster.
#[derive(Debug, thiserror::Error)]
pub enum DereferenceError {
    /// The ContourDeployment lacks a name or namespace.
    #[error("the ContourDeployment has no {0}")]
    Metadata(&'static str),
    /// A read failed.
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Cause.
        source: kube::Error,
    },
}

/// What the cluster holds that the reconcile depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dereferenced {
    /// Whether `servicemonitors.monitoring.coreos.com` exists.
    pub service_monitor_crd: bool,
    /// Our generated `contourcert-<name>` Secret, when it exists with our labels.
    pub contour_cert: Option<Secret>,
    /// Our generated `envoycert-<name>` Secret, when it exists with our labels.
    pub envoy_cert: Option<Secret>,
    /// Our `contourca-<name>` Secret (the CA's certificate and key), when it
    /// exists with our labels.
    pub ca: Option<Secret>,
    /// The Secrets `spec.certificates.{contour,envoy}SecretName` name:
    /// `(name, the Secret if it exists)`.
    pub user_secrets: Vec<(String, Option<Secret>)>,
    /// Names of the Deployments in the instance's namespace that a
    /// HorizontalPodAutoscaler scales.
    pub autoscaled: BTreeSet<String>,
}

/// The Deployments (`apps/v1`) the autoscalers scale.
pub fn autoscaled(hpas: &[HorizontalPodAutoscaler]) -> BTreeSet<String> {
    hpas.iter()
        .filter_map(|h| h.spec.as_ref())
        .map(|s| &s.scale_target_ref)
        .filter(|t| {
            t.kind == "Deployment" && matches!(t.api_version.as_deref(), None | Some("apps/v1"))
        })
        .map(|t| t.name.clone())
        .collect()
}

fn read(what: String) -> impl FnOnce(kube::Error) -> DereferenceError {
    move |source| DereferenceError::Read { what, source }
}

/// Reads what `cd` depends on.
pub async fn dereference(
    client: &Client,
    cd: &ContourDeployment,
) -> Result<Dereferenced, DereferenceError> {
    let namespace = cd
        .metadata
        .namespace
        .as_deref()
        .ok_or(DereferenceError::Metadata("namespace"))?;
    let name = cd
        .metadata
        .name
        .as_deref()
        .ok_or(DereferenceError::Metadata("name"))?;
    let names = Names::new(namespace, name);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let service_monitor_crd = crds
        .get_opt(SERVICE_MONITOR_CRD)
        .await
        .map_err(read(format!(
            "CustomResourceDefinition {SERVICE_MONITOR_CRD}"
        )))?
        .is_some();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let ours = |s: Option<Secret>| s.filter(|s| names.owns(s.metadata.labels.as_ref()));
    let contour_cert = ours(
        secrets
            .get_opt(&names.contour_cert)
            .await
            .map_err(read(format!("Secret {}", names.contour_cert)))?,
    );
    let envoy_cert = ours(
        secrets
            .get_opt(&names.envoy_cert)
            .await
            .map_err(read(format!("Secret {}", names.envoy_cert)))?,
    );
    let ca = ours(
        secrets
            .get_opt(&names.ca)
            .await
            .map_err(read(format!("Secret {}", names.ca)))?,
    );
    let mut user_secrets = Vec::new();
    if let Some(c) = &cd.spec.certificates {
        for secret in [&c.contour_secret_name, &c.envoy_secret_name]
            .into_iter()
            .flatten()
        {
            let got = secrets
                .get_opt(secret)
                .await
                .map_err(read(format!("Secret {secret}")))?;
            user_secrets.push((secret.clone(), got));
        }
    }
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let hpas = hpas
        .list(&ListParams::default())
        .await
        .map_err(read(format!("HorizontalPodAutoscalers in {namespace}")))?;
    Ok(Dereferenced {
        autoscaled: autoscaled(&hpas.items),
        service_monitor_crd,
        contour_cert,
        envoy_cert,
        ca,
        user_secrets,
    })
}
