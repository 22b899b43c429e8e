//! The Contour Deployment: `contour serve` with mutual-TLS xDS on 8001,
//! metrics and health on 8000, leader election on (a Lease per instance),
//! spread over nodes. Liveness is `/healthz`; readiness is our `/readyz`
//! (ready once every watch has synced and the first configuration is built).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec,
    Probe, SecretVolumeSource, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{field_env, meta, mount, non_empty, restricted, spread};
use crate::validate::{CONTOUR_HTTP_PORT, CertPlan, Validated, XDS_PORT};

/// Where the certificate Secret is mounted.
pub const CERT_DIR: &str = "/certs";

/// The arguments of `contour` (after the command).
pub fn args(v: &Validated) -> Vec<String> {
    let c = &v.contour;
    let mut a = vec![
        "serve".to_string(),
        "--incluster".into(),
        "--xds-address=0.0.0.0".into(),
        format!("--xds-port={XDS_PORT}"),
        format!("--contour-cafile={CERT_DIR}/ca.crt"),
        format!("--contour-cert-file={CERT_DIR}/tls.crt"),
        format!("--contour-key-file={CERT_DIR}/tls.key"),
        "--http-address=0.0.0.0".into(),
        format!("--http-port={CONTOUR_HTTP_PORT}"),
        "--health-address=0.0.0.0".into(),
        format!("--health-port={CONTOUR_HTTP_PORT}"),
        format!("--envoy-service-http-port={}", v.envoy.http_port),
        format!("--envoy-service-https-port={}", v.envoy.https_port),
        format!("--leader-election-resource-namespace={}", v.names.namespace),
        format!("--leader-election-resource-name={}", v.names.contour),
        // The load balancer address for Ingress and HTTPProxy status.
        format!("--envoy-service-namespace={}", v.names.namespace),
        format!("--envoy-service-name={}", v.names.envoy),
        format!("--log-level={}", c.log_level),
    ];
    if let Some(class) = &c.ingress_class_name {
        a.push(format!("--ingress-class-name={class}"));
    }
    if !c.watch_namespaces.is_empty() {
        // The Roles are per namespace then: a cluster-wide list is refused.
        a.push(format!(
            "--watch-namespaces={}",
            c.watch_namespaces.join(",")
        ));
    }
    if !c.root_namespaces.is_empty() {
        a.push(format!("--root-namespaces={}", c.root_namespaces.join(",")));
    }
    if c.enable_external_name_service {
        a.push("--enable-external-name-service".into());
    }
    if let Some(layout) = c.route_layout {
        a.push(format!("--route-layout={layout}"));
    }
    if let Some((ns, name)) = &c.fallback_certificate {
        a.push(format!("--fallback-certificate={ns}/{name}"));
    }
    a
}

fn probe(path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(CONTOUR_HTTP_PORT),
            ..Default::default()
        }),
        period_seconds: Some(10),
        ..Default::default()
    }
}

/// The Deployment.
pub fn build(v: &Validated) -> Deployment {
    let c = &v.contour;
    let n = &v.names;
    let secret = match &v.certificates {
        CertPlan::Existing { contour, .. } => contour.clone(),
        CertPlan::Generate { .. } => n.contour_cert.clone(),
    };
    let container = Container {
        name: "contour".into(),
        image: Some(c.image.clone()),
        command: Some(vec!["contour".into()]),
        args: Some(args(v)),
        env: Some(vec![
            field_env("CONTOUR_NAMESPACE", "metadata.namespace"),
            field_env("POD_NAME", "metadata.name"),
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("xds".into()),
                container_port: XDS_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("http-metrics".into()),
                container_port: CONTOUR_HTTP_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        liveness_probe: Some(probe("/healthz")),
        readiness_probe: Some(probe("/readyz")),
        resources: c.resources.clone(),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![
            mount("contourcert", CERT_DIR, true),
            mount("contour-config", "/config", true),
        ]),
        ..Default::default()
    };
    let mut pod_meta = ObjectMeta {
        labels: Some(n.selector("contour")),
        ..Default::default()
    };
    pod_meta.annotations = non_empty(&c.pod_annotations);
    Deployment {
        metadata: meta(v, &n.contour, "contour"),
        spec: Some(DeploymentSpec {
            replicas: (!c.autoscaled).then_some(c.replicas),
            strategy: c.strategy.clone(),
            selector: LabelSelector {
                match_labels: Some(n.selector("contour")),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(pod_meta),
                spec: Some(PodSpec {
                    service_account_name: Some(n.contour.clone()),
                    containers: vec![container],
                    affinity: Some(c.affinity.clone().unwrap_or_else(|| spread(v, "contour"))),
                    node_selector: non_empty(&c.node_selector),
                    tolerations: (!c.tolerations.is_empty()).then(|| c.tolerations.clone()),
                    image_pull_secrets: (!c.image_pull_secrets.is_empty())
                        .then(|| c.image_pull_secrets.clone()),
                    volumes: Some(vec![
                        Volume {
                            name: "contourcert".into(),
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(secret),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        Volume {
                            name: "contour-config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: n.contour.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
