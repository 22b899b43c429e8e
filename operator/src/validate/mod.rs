//! Step 2 (pure): the spec, checked and with every default filled in, as a
//! [`Validated`]. A bad spec gives every problem at once, each naming the
//! field; nothing is applied until it is fixed.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use contour_crds::ContourDeployment;

mod plan;

pub use plan::*;

use crate::dereference::Dereferenced;
use crate::names::{self, Names};

/// Ports Contour and Envoy use inside their pods.
pub const XDS_PORT: i32 = 8001;
/// Contour's metrics and health port.
pub const CONTOUR_HTTP_PORT: i32 = 8000;
/// Envoy's stats/readiness listener.
pub const ENVOY_STATS_PORT: i32 = 8002;
/// Volumes the operator adds to the Envoy pods.
pub const ENVOY_VOLUMES: [&str; 3] = ["envoy-config", "envoycert", "envoy-admin"];

const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "critical", "off"];

/// One problem of a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// The object lacks metadata the children are named after.
    #[error("metadata.{0} is missing")]
    Metadata(&'static str),
    /// The name cannot prefix a Service name.
    #[error(
        "metadata.name {0:?} must be a DNS label of at most {max} characters (lowercase letters, digits and '-'; no '.') so that contour-<name> is a valid Service name",
        max = names::MAX_NAME_LEN
    )]
    Name(String),
    /// A value outside its enum.
    #[error("{field}: unknown value {value:?}; expected one of {}", .allowed.join(", "))]
    UnknownValue {
        /// Field path.
        field: &'static str,
        /// The value.
        value: String,
        /// The values accepted.
        allowed: &'static [&'static str],
    },
    /// A field with a value out of range or of the wrong shape.
    #[error("{field}: {message}")]
    Field {
        /// Field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A volume mount of a volume the pod does not have.
    #[error(
        "envoy.extraVolumeMounts[{index}] mounts volume {volume:?}, which is neither in envoy.extraVolumes nor one of the operator's ({})",
        ENVOY_VOLUMES.join(", ")
    )]
    UnknownVolume {
        /// Index of the mount.
        index: usize,
        /// The volume name.
        volume: String,
    },
    /// Two listeners on one port.
    #[error("conflicting ports: {0}")]
    PortConflict(String),
}

/// Every problem of a spec, in field order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidateErrors(pub Vec<ValidateError>);

/// `1d2h30m`, `8760h`, `90s`: a sum of integer amounts of d, h, m, s.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        digits.clear();
    }
    (digits.is_empty() && !s.is_empty()).then_some(Duration::from_secs(total))
}

fn dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

struct Problems(Vec<ValidateError>);

impl Problems {
    fn field(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidateError::Field {
            field: field.into(),
            message: message.into(),
        });
    }

    fn one_of(
        &mut self,
        field: &'static str,
        value: Option<&String>,
        allowed: &'static [&'static str],
    ) -> Option<&'static str> {
        let v = value?;
        let found = allowed.iter().find(|a| **a == v.as_str()).copied();
        if found.is_none() {
            self.0.push(ValidateError::UnknownValue {
                field,
                value: v.clone(),
                allowed,
            });
        }
        found
    }

    fn port(&mut self, settings: &Value, path: &[&str], default: i32) -> i32 {
        let mut v = settings;
        for p in path {
            v = &v[*p];
        }
        let field = format!("runtimeSettings.{}", path.join("."));
        match v {
            Value::Null => default,
            Value::Number(n) => match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(p) if (1..=65535).contains(&p) => p,
                _ => {
                    self.field(field, format!("{n} is not a port (1-65535)"));
                    default
                }
            },
            other => {
                self.field(field, format!("expected a port number, got {other}"));
                default
            }
        }
    }
}

/// Contour's `--log-level` for an upstream log level.
fn contour_log_level(level: &str, kubernetes: Option<u8>) -> String {
    let base = match level {
        "critical" => "error",
        other => other,
    };
    match kubernetes {
        Some(k) if k >= 6 => format!("{base},kube=trace"),
        Some(k) if k >= 4 => format!("{base},kube=debug"),
        _ => base.to_string(),
    }
}

/// The `runtimeSettings` (upstream's ContourConfigurationSpec) this build
/// applies: they become `contour serve` flags and Envoy's ports.
pub const HONOURED_SETTINGS: &[&str] = &[
    "enableExternalNameService",
    "envoy.http.port",
    "envoy.https.port",
    "httpproxy.fallbackCertificate",
    "httpproxy.rootNamespaces",
    "ingress.classNames",
];

/// The dotted paths of the set `runtimeSettings` leaves this build does not
/// apply (reported in the status, so nothing is silently dropped).
pub fn ignored_settings(settings: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
        let joined = path.join(".");
        if HONOURED_SETTINGS
            .iter()
            .any(|h| joined == *h || joined.starts_with(&format!("{h}.")))
        {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Null => {}
            _ if !path.is_empty() => out.push(joined),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(settings, &mut Vec::new(), &mut out);
    out
}

/// Checks `cd` against what the cluster holds and fills in the defaults.
pub fn validate(
    cd: &ContourDeployment,
    deref: &Dereferenced,
    images: &Images,
) -> Result<Validated, ValidateErrors> {
    let mut p = Problems(Vec::new());
    let name = cd.metadata.name.clone().unwrap_or_default();
    let namespace = cd.metadata.namespace.clone().unwrap_or_default();
    let uid = cd.metadata.uid.clone().unwrap_or_default();
    for (field, v) in [("name", &name), ("namespace", &namespace), ("uid", &uid)] {
        if v.is_empty() {
            p.0.push(ValidateError::Metadata(field));
        }
    }
    if !name.is_empty() && !dns_label(&name, names::MAX_NAME_LEN) {
        p.0.push(ValidateError::Name(name.clone()));
    }
    let spec = &cd.spec;
    for key in spec.resource_labels.keys() {
        if names::Names::new("n", "n").owner_labels().contains_key(key)
            || key.starts_with("app.kubernetes.io/")
        {
            p.field(
                format!("resourceLabels.{key}"),
                "the operator sets this label itself (it marks ownership and selects pods)",
            );
        }
    }

    let contour = spec.contour.clone().unwrap_or_default();
    let envoy = spec.envoy.clone().unwrap_or_default();
    let settings = spec
        .runtime_settings
        .clone()
        .unwrap_or(Value::Object(Default::default()));
    if !settings.is_object() {
        p.field("runtimeSettings", "must be an object");
    }

    // Contour.
    let replicas = contour
        .deployment
        .as_ref()
        .and_then(|d| d.replicas)
        .or(contour.replicas)
        .unwrap_or(2);
    if replicas < 0 {
        p.field("contour.deployment.replicas", "must not be negative");
    }
    let contour_level = p
        .one_of("contour.logLevel", contour.log_level.as_ref(), LOG_LEVELS)
        .unwrap_or("info");
    let route_layout = p
        .one_of(
            "contour.routeLayout",
            contour.route_layout.as_ref(),
            &["auto", "single", "scoped"],
        )
        .filter(|l| *l != "auto");
    for f in &contour.disabled_features {
        p.one_of(
            "contour.disabledFeatures",
            Some(f),
            &[
                "grpcroutes",
                "tlsroutes",
                "extensionservices",
                "backendtlspolicies",
            ],
        );
    }
    for (i, ns) in contour.watch_namespaces.iter().enumerate() {
        if !dns_label(ns, 63) {
            p.field(
                format!("contour.watchNamespaces[{i}]"),
                format!("{ns:?} is not a namespace name"),
            );
        }
    }
    let mut root_namespaces = contour.root_namespaces.clone();
    if let Some(list) = settings["httpproxy"]["rootNamespaces"].as_array() {
        root_namespaces.extend(list.iter().filter_map(|v| v.as_str().map(String::from)));
    }
    let mut ingress_class_name = contour.ingress_class_name.clone();
    if ingress_class_name.is_none() {
        let classes: Vec<&str> = settings["ingress"]["classNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        ingress_class_name = (!classes.is_empty()).then(|| classes.join(","));
    }
    let enable_external_name_service = match &settings["enableExternalNameService"] {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => {
            p.field(
                "runtimeSettings.enableExternalNameService",
                format!("expected true or false, got {other}"),
            );
            false
        }
    };
    let fallback = &settings["httpproxy"]["fallbackCertificate"];
    let fallback_certificate = match (fallback["namespace"].as_str(), fallback["name"].as_str()) {
        (Some(ns), Some(n)) => Some((ns.to_string(), n.to_string())),
        _ if fallback.is_null() => None,
        _ => {
            p.field(
                "runtimeSettings.httpproxy.fallbackCertificate",
                "needs both namespace and name",
            );
            None
        }
    };

    // Envoy.
    let workload_type = p
        .one_of(
            "envoy.workloadType",
            envoy.workload_type.as_ref(),
            &["DaemonSet", "Deployment"],
        )
        .unwrap_or("DaemonSet");
    let workload = if workload_type == "Deployment" {
        let r = envoy
            .deployment
            .as_ref()
            .and_then(|d| d.replicas)
            .or(envoy.replicas)
            .unwrap_or(2);
        if r < 0 {
            p.field("envoy.deployment.replicas", "must not be negative");
        }
        EnvoyWorkload::Deployment(
            r,
            envoy.deployment.as_ref().and_then(|d| d.strategy.clone()),
        )
    } else {
        EnvoyWorkload::DaemonSet(
            envoy
                .daemon_set
                .as_ref()
                .and_then(|d| d.update_strategy.clone()),
        )
    };
    let envoy_level = p
        .one_of("envoy.logLevel", envoy.log_level.as_ref(), LOG_LEVELS)
        .unwrap_or("info");
    let np = envoy.network_publishing.clone().unwrap_or_default();
    let service_type = match p.one_of(
        "envoy.networkPublishing.type",
        np.r#type.as_ref(),
        &["LoadBalancerService", "NodePortService", "ClusterIPService"],
    ) {
        Some("NodePortService") => "NodePort",
        Some("ClusterIPService") => "ClusterIP",
        _ => "LoadBalancer",
    };
    let policy = p
        .one_of(
            "envoy.networkPublishing.externalTrafficPolicy",
            np.external_traffic_policy.as_ref(),
            &["Local", "Cluster"],
        )
        .unwrap_or("Local");
    let ip_family_policy = p
        .one_of(
            "envoy.networkPublishing.ipFamilyPolicy",
            np.ip_family_policy.as_ref(),
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
        )
        .map(String::from);
    let node_ports = np
        .node_ports
        .as_ref()
        .map(|n| (n.http, n.https))
        .unwrap_or_default();
    if service_type == "ClusterIP" && (node_ports.0.is_some() || node_ports.1.is_some()) {
        p.field(
            "envoy.networkPublishing.nodePorts",
            "a ClusterIPService has no node ports",
        );
    }
    if let (Some(a), Some(b)) = node_ports
        && a == b
    {
        p.0.push(ValidateError::PortConflict(format!(
            "envoy.networkPublishing.nodePorts.http and .https are both {a}"
        )));
    }

    let http_port = p.port(&settings, &["envoy", "http", "port"], 8080);
    let https_port = p.port(&settings, &["envoy", "https", "port"], 8443);
    let in_pod = [
        ("runtimeSettings.envoy.http.port", http_port),
        ("runtimeSettings.envoy.https.port", https_port),
        ("Envoy's stats listener (http-metrics)", ENVOY_STATS_PORT),
    ];
    for (i, (a, pa)) in in_pod.iter().enumerate() {
        for (b, pb) in &in_pod[i + 1..] {
            if pa == pb {
                p.0.push(ValidateError::PortConflict(format!(
                    "{a} and {b} are both {pa}"
                )));
            }
        }
    }

    let host_network = envoy.host_network.unwrap_or(false);
    let host_ports = envoy
        .host_ports
        .as_ref()
        .map(|h| (h.http.unwrap_or(80), h.https.unwrap_or(443)));
    if host_network && host_ports.is_some() {
        p.field(
            "envoy.hostPorts",
            "cannot be combined with envoy.hostNetwork (in the node's network Envoy already listens on its container ports)",
        );
    }
    if let Some((h, s)) = host_ports
        && h == s
    {
        p.0.push(ValidateError::PortConflict(format!(
            "envoy.hostPorts.http and .https are both {h}"
        )));
    }
    // Ports Envoy takes on every node it runs on.
    let on_node: Vec<(&str, i32)> = match (host_network, host_ports) {
        (true, _) => in_pod.to_vec(),
        (false, Some((h, s))) => vec![("envoy.hostPorts.http", h), ("envoy.hostPorts.https", s)],
        _ => Vec::new(),
    };
    for (what, port) in &on_node {
        for (np_name, np_port) in [("http", node_ports.0), ("https", node_ports.1)] {
            if np_port == Some(*port) {
                p.0.push(ValidateError::PortConflict(format!(
                    "envoy.networkPublishing.nodePorts.{np_name} {port} is also taken on every node by {what}{}",
                    if host_network { " (envoy.hostNetwork)" } else { "" }
                )));
            }
        }
    }

    let mut volumes: BTreeSet<&str> = ENVOY_VOLUMES.into_iter().collect();
    for (i, v) in envoy.extra_volumes.iter().enumerate() {
        if !volumes.insert(v.name.as_str()) {
            p.field(
                format!("envoy.extraVolumes[{i}].name"),
                format!("{:?} is used twice or by the operator", v.name),
            );
        }
    }
    for (index, m) in envoy.extra_volume_mounts.iter().enumerate() {
        if !volumes.contains(m.name.as_str()) {
            p.0.push(ValidateError::UnknownVolume {
                index,
                volume: m.name.clone(),
            });
        }
    }
    let drain_seconds = match envoy.drain_timeout.as_deref() {
        None => 60,
        Some(s) => match parse_duration(s) {
            Some(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            None => {
                p.field(
                    "envoy.drainTimeout",
                    format!("{s:?} is not a duration like 60s"),
                );
                60
            }
        },
    };
    if let Some(pdb) = &envoy.pod_disruption_budget
        && pdb.min_available.is_some() == pdb.max_unavailable.is_some()
    {
        p.field(
            "envoy.podDisruptionBudget",
            "give exactly one of minAvailable and maxUnavailable",
        );
    }

    // Certificates.
    let certs = spec.certificates.clone().unwrap_or_default();
    let duration = |p: &mut Problems, field: &str, v: &Option<String>, default: u64| match v {
        None => Duration::from_secs(default),
        Some(s) => parse_duration(s).unwrap_or_else(|| {
            p.field(
                format!("certificates.{field}"),
                format!("{s:?} is not a duration like 365d"),
            );
            Duration::from_secs(default)
        }),
    };
    let certificates = match (&certs.contour_secret_name, &certs.envoy_secret_name) {
        (Some(contour), Some(envoy)) => {
            for (secret, got) in &deref.user_secrets {
                match got {
                    None => p.field(
                        "certificates",
                        format!("Secret {namespace}/{secret} does not exist"),
                    ),
                    Some(s) => {
                        let data = s.data.clone().unwrap_or_default();
                        let lacking: Vec<&str> = ["ca.crt", "tls.crt", "tls.key"]
                            .into_iter()
                            .filter(|k| !data.contains_key(*k))
                            .collect();
                        if !lacking.is_empty() {
                            p.field(
                                "certificates",
                                format!("Secret {namespace}/{secret} lacks {}", lacking.join(", ")),
                            );
                        }
                    }
                }
            }
            CertPlan::Existing {
                contour: contour.clone(),
                envoy: envoy.clone(),
            }
        }
        (None, None) => {
            let lifetime = duration(&mut p, "lifetime", &certs.lifetime, 365 * 86_400);
            let rotate_before = duration(&mut p, "rotateBefore", &certs.rotate_before, 30 * 86_400);
            if lifetime < Duration::from_secs(86_400) {
                p.field("certificates.lifetime", "must be at least 1d");
            } else if rotate_before >= lifetime {
                p.field(
                    "certificates.rotateBefore",
                    "must be shorter than certificates.lifetime",
                );
            }
            CertPlan::Generate {
                lifetime,
                rotate_before,
                rotation: cd
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(crate::names::ROTATE_CERTIFICATES))
                    .cloned(),
            }
        }
        _ => {
            p.field(
                "certificates",
                "give both contourSecretName and envoySecretName, or neither",
            );
            CertPlan::Existing {
                contour: String::new(),
                envoy: String::new(),
            }
        }
    };

    // Monitoring.
    let m = spec.monitoring.clone().unwrap_or_default();
    let mode = p
        .one_of(
            "monitoring.serviceMonitors",
            m.service_monitors.as_ref(),
            &["Auto", "On", "Off"],
        )
        .unwrap_or("Auto");
    let (create, state) = match (mode, deref.service_monitor_crd) {
        ("Off", _) => (false, "Disabled"),
        (_, false) => (false, "CRDAbsent"),
        _ => (true, "Created"),
    };

    if !p.0.is_empty() {
        return Err(ValidateErrors(p.0));
    }
    let names = Names::new(&namespace, &name);
    let envoy_autoscaled = matches!(workload, EnvoyWorkload::Deployment(..))
        && deref.autoscaled.contains(&names.envoy);
    Ok(Validated {
        uid,
        generation: cd.metadata.generation,
        resource_labels: spec.resource_labels.clone(),
        contour: ContourPlan {
            replicas,
            autoscaled: deref.autoscaled.contains(&names.contour),
            strategy: contour.deployment.as_ref().and_then(|d| d.strategy.clone()),
            image: contour
                .image
                .clone()
                .unwrap_or_else(|| images.contour.clone()),
            resources: contour.resources.clone(),
            node_selector: contour
                .node_placement
                .as_ref()
                .map(|n| n.node_selector.clone())
                .unwrap_or_default(),
            tolerations: contour
                .node_placement
                .as_ref()
                .map(|n| n.tolerations.clone())
                .unwrap_or_default(),
            affinity: contour.affinity.clone(),
            log_level: contour_log_level(contour_level, contour.kubernetes_log_level),
            pod_annotations: contour.pod_annotations.clone(),
            watch_namespaces: contour.watch_namespaces.clone(),
            ingress_class_name,
            root_namespaces,
            image_pull_secrets: contour.image_pull_secrets.clone(),
            enable_external_name_service,
            fallback_certificate,
            route_layout,
        },
        envoy: EnvoyPlan {
            workload,
            autoscaled: envoy_autoscaled,
            image: envoy.image.clone().unwrap_or_else(|| images.envoy.clone()),
            host_network,
            host_ports,
            http_port,
            https_port,
            publishing: Publishing {
                service_type,
                external_traffic_policy: (service_type != "ClusterIP").then(|| policy.to_string()),
                ip_family_policy,
                annotations: np.service_annotations.clone(),
                node_ports,
            },
            node_selector: envoy
                .node_placement
                .as_ref()
                .map(|n| n.node_selector.clone())
                .unwrap_or_default(),
            tolerations: envoy
                .node_placement
                .as_ref()
                .map(|n| n.tolerations.clone())
                .unwrap_or_default(),
            extra_volumes: envoy.extra_volumes.clone(),
            extra_volume_mounts: envoy.extra_volume_mounts.clone(),
            pod_annotations: envoy.pod_annotations.clone(),
            resources: envoy.resources.clone(),
            log_level: envoy_level.to_string(),
            base_id: envoy.base_id,
            overload_max_heap: envoy.overload_max_heap_size,
            overload_max_connections: envoy.overload_max_downstream_connections,
            drain_seconds,
            extra_args: envoy.extra_args.clone(),
            extra_env: envoy.extra_env.clone(),
            pdb: envoy.pod_disruption_budget.clone(),
            image_pull_secrets: envoy.image_pull_secrets.clone(),
            priority_class_name: envoy.priority_class_name.clone(),
            security_context: envoy.security_context.clone(),
        },
        certificates,
        monitoring: MonitoringPlan {
            create,
            state,
            interval: m.interval.clone(),
            labels: m.labels.clone(),
        },
        ignored_settings: ignored_settings(&settings),
        runtime_settings: settings,
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_this_build_does_not_apply_are_named() {
        let settings = serde_json::json!({
            "enableExternalNameService": true,
            "httpproxy": {"rootNamespaces": ["a"], "disablePermitInsecure": true,
                "fallbackCertificate": {"name": "f", "namespace": "n"}},
            "envoy": {"http": {"port": 8081, "accessLog": "/dev/stdout"},
                "listener": {"useProxyProtocol": true}, "metrics": {}},
            "gateway": null,
        });
        assert_eq!(
            ignored_settings(&settings),
            [
                "envoy.http.accessLog",
                "envoy.listener.useProxyProtocol",
                "httpproxy.disablePermitInsecure"
            ]
        );
        assert!(ignored_settings(&serde_json::json!({})).is_empty());
        assert_eq!(ignored_settings(&serde_json::json!({"x": [1]})), ["x"]);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("365d"),
            Some(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
