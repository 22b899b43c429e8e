//! The Envoy DaemonSet (default) or Deployment.
//!
//! - init container `envoy-initconfig`: `contour bootstrap /config/envoy.json`
//!   pointing at Contour's Service over mutual TLS, with the SDS files of the
//!   certificate in `/config/resources` (so a rotated Secret is picked up
//!   without a restart) and the admin interface on the default unix socket
//!   `/admin/admin.sock`;
//! - container `envoy`: listeners on the http/https ports, stats and `/ready`
//!   on 8002 (`http-metrics`);
//! - drain on shutdown, as upstream: a `shutdown-manager` sidecar (`contour
//!   envoy shutdown-manager` on 8090, sharing the admin volume). Envoy's
//!   `preStop` waits on its `/shutdown`; the sidecar's `preStop` runs
//!   `contour envoy shutdown`, which fails Envoy's health checks (so `/ready`
//!   turns 503 and the endpoints are withdrawn), waits until the ingress
//!   listeners' connections have closed, then releases `/shutdown`. The
//!   grace period is `drainTimeout` plus 30 s for Envoy to stop;
//! - no ServiceAccount token, non-root, read-only root filesystem.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, ExecAction, HTTPGetAction, Lifecycle,
    LifecycleHandler, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretVolumeSource,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::contour_deployment::CERT_DIR;
use super::{EnvoyWorkloadObject, field_env, meta, mount, non_empty, restricted, spread};
use crate::validate::{CertPlan, ENVOY_STATS_PORT, EnvoyWorkload, Validated, XDS_PORT};

/// Port of the shutdown-manager sidecar (`/healthz`, `/shutdown`).
pub const SHUTDOWN_MANAGER_PORT: i32 = 8090;
/// Envoy's admin socket, as `contour bootstrap` writes it by default.
const ADMIN_SOCKET: &str = "/admin/admin.sock";
/// The file `contour envoy shutdown` writes when the drain is done.
const READY_FILE: &str = "/admin/ok";

/// The arguments of `contour` in the init container.
pub fn bootstrap_args(v: &Validated) -> Vec<String> {
    let e = &v.envoy;
    let mut a = vec![
        "bootstrap".to_string(),
        "/config/envoy.json".into(),
        format!("--xds-address={}", v.names.contour),
        format!("--xds-port={XDS_PORT}"),
        format!("--envoy-cafile={CERT_DIR}/ca.crt"),
        format!("--envoy-cert-file={CERT_DIR}/tls.crt"),
        format!("--envoy-key-file={CERT_DIR}/tls.key"),
        "--resources-dir=/config/resources".into(),
        format!("--namespace={}", v.names.namespace),
        format!("--stats-port={ENVOY_STATS_PORT}"),
    ];
    if let Some(h) = e.overload_max_heap {
        a.push(format!("--overload-max-heap={h}"));
    }
    if let Some(c) = e.overload_max_connections {
        a.push(format!("--overload-downstream-max-conn={c}"));
    }
    a
}

/// The arguments of `envoy`. Each flag and its value are separate
/// arguments: Envoy's command line parser refuses `--flag=value`.
pub fn envoy_args(v: &Validated) -> Vec<String> {
    let e = &v.envoy;
    let mut a: Vec<String> = [
        "-c",
        "/config/envoy.json",
        "--service-cluster",
        "$(CONTOUR_NAMESPACE)",
        "--service-node",
        "$(ENVOY_POD_NAME)",
        "--log-level",
        e.log_level.as_str(),
    ]
    .map(String::from)
    .to_vec();
    if let Some(id) = e.base_id {
        a.extend(["--base-id".to_string(), id.to_string()]);
    }
    a.extend(e.extra_args.iter().cloned());
    a
}

fn port(name: &str, port: i32, host: Option<i32>) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        host_port: host,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn pod(v: &Validated) -> PodTemplateSpec {
    let e = &v.envoy;
    let n = &v.names;
    let secret = match &v.certificates {
        CertPlan::Existing { envoy, .. } => envoy.clone(),
        CertPlan::Generate { .. } => n.envoy_cert.clone(),
    };
    let init = Container {
        name: "envoy-initconfig".into(),
        image: Some(v.contour.image.clone()),
        command: Some(vec!["contour".into()]),
        args: Some(bootstrap_args(v)),
        env: Some(vec![field_env("CONTOUR_NAMESPACE", "metadata.namespace")]),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![
            mount("envoy-config", "/config", false),
            mount("envoycert", CERT_DIR, true),
        ]),
        ..Default::default()
    };
    let mut env = vec![
        field_env("CONTOUR_NAMESPACE", "metadata.namespace"),
        field_env("ENVOY_POD_NAME", "metadata.name"),
    ];
    env.extend(e.extra_env.iter().cloned());
    let mut mounts = vec![
        mount("envoy-config", "/config", true),
        mount("envoycert", CERT_DIR, true),
        mount("envoy-admin", "/admin", false),
    ];
    mounts.extend(e.extra_volume_mounts.iter().cloned());
    let envoy = Container {
        name: "envoy".into(),
        image: Some(e.image.clone()),
        command: Some(vec!["envoy".into()]),
        args: Some(envoy_args(v)),
        env: Some(env),
        ports: Some(vec![
            port("http", e.http_port, e.host_ports.map(|h| h.0)),
            port("https", e.https_port, e.host_ports.map(|h| h.1)),
            port("http-metrics", ENVOY_STATS_PORT, None),
        ]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/ready".into()),
                port: IntOrString::Int(ENVOY_STATS_PORT),
                ..Default::default()
            }),
            period_seconds: Some(3),
            ..Default::default()
        }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                http_get: Some(HTTPGetAction {
                    path: Some("/shutdown".into()),
                    port: IntOrString::Int(SHUTDOWN_MANAGER_PORT),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: e.resources.clone(),
        security_context: Some(restricted()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let shutdown_manager = Container {
        name: "shutdown-manager".into(),
        image: Some(v.contour.image.clone()),
        command: Some(vec!["contour".into()]),
        args: Some(vec![
            "envoy".into(),
            "shutdown-manager".into(),
            format!("--serve-port={SHUTDOWN_MANAGER_PORT}"),
            format!("--ready-file={READY_FILE}"),
        ]),
        ports: Some(vec![port("shutdown", SHUTDOWN_MANAGER_PORT, None)]),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::Int(SHUTDOWN_MANAGER_PORT),
                ..Default::default()
            }),
            initial_delay_seconds: Some(3),
            period_seconds: Some(10),
            ..Default::default()
        }),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![
                        "contour".into(),
                        "envoy".into(),
                        "shutdown".into(),
                        format!("--admin-address={ADMIN_SOCKET}"),
                        format!("--ready-file={READY_FILE}"),
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        security_context: Some(restricted()),
        volume_mounts: Some(vec![mount("envoy-admin", "/admin", false)]),
        ..Default::default()
    };
    let empty = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut volumes = vec![
        empty("envoy-config"),
        Volume {
            name: "envoycert".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret),
                ..Default::default()
            }),
            ..Default::default()
        },
        empty("envoy-admin"),
    ];
    volumes.extend(e.extra_volumes.iter().cloned());
    let deployment = matches!(e.workload, EnvoyWorkload::Deployment(..));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(n.selector("envoy")),
            annotations: non_empty(&e.pod_annotations),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(n.envoy.clone()),
            automount_service_account_token: Some(false),
            init_containers: Some(vec![init]),
            containers: vec![envoy, shutdown_manager],
            host_network: e.host_network.then_some(true),
            dns_policy: e.host_network.then(|| "ClusterFirstWithHostNet".into()),
            termination_grace_period_seconds: Some(e.drain_seconds.saturating_add(30)),
            security_context: Some(e.security_context.clone().unwrap_or(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(65534),
                run_as_group: Some(65534),
                ..Default::default()
            })),
            affinity: deployment.then(|| spread(v, "envoy")),
            node_selector: non_empty(&e.node_selector),
            tolerations: (!e.tolerations.is_empty()).then(|| e.tolerations.clone()),
            image_pull_secrets: (!e.image_pull_secrets.is_empty())
                .then(|| e.image_pull_secrets.clone()),
            priority_class_name: e.priority_class_name.clone(),
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}

/// The DaemonSet or Deployment.
pub fn build(v: &Validated) -> EnvoyWorkloadObject {
    let n = &v.names;
    let selector = LabelSelector {
        match_labels: Some(n.selector("envoy")),
        ..Default::default()
    };
    match &v.envoy.workload {
        EnvoyWorkload::DaemonSet(strategy) => EnvoyWorkloadObject::DaemonSet(Box::new(DaemonSet {
            metadata: meta(v, &n.envoy, "envoy"),
            spec: Some(DaemonSetSpec {
                selector,
                template: pod(v),
                update_strategy: strategy.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })),
        EnvoyWorkload::Deployment(replicas, strategy) => {
            EnvoyWorkloadObject::Deployment(Box::new(Deployment {
                metadata: meta(v, &n.envoy, "envoy"),
                spec: Some(DeploymentSpec {
                    replicas: (!v.envoy.autoscaled).then_some(*replicas),
                    strategy: strategy.clone(),
                    selector,
                    template: pod(v),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        }
    }
}
