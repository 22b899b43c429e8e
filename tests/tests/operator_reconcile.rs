//! The operator's reconcile against a real API server: every child with the
//! right fields and the status; two instances in one namespace; a deleted or
//! edited child repaired; a removed feature pruned; a name held by a
//! stranger and an invalid spec reported as `Degraded` with nothing taken
//! over or applied; the finalizer removing cluster-scoped children; a no-op
//! reconcile sending zero writes (counted on the wire); and the Contour
//! ServiceAccount's rights, exercised as that account.

use std::sync::atomic::Ordering;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use contour_crds::{ContourDeployment, HTTPProxy};
use contour_tests::ApiServer;
use contour_tests::bench::operator::counting_client;
use contour_tests::k8s::once_authorized;
use contour_tests::operator::{condition, create, ctx, reconcile, setup, status};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn owned_by(meta: &kube::api::ObjectMeta, cd: &ContourDeployment) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == cd.metadata.uid.as_ref() && o.controller == Some(true))
}

#[tokio::test]
async fn reconcile_creates_repairs_prunes_and_finalizes() -> TestResult {
    let (client, ns) = setup("op-reconcile").await?;
    let alpha = create(&client, &ns, "alpha", json!({})).await?;
    let started = std::time::Instant::now();
    let first = reconcile(&client, &ns, "alpha").await?;
    eprintln!("latency: first reconcile {:?}", started.elapsed());
    assert!(
        first.writes >= 14,
        "first reconcile applies everything: {first:?}"
    );
    assert!(first.certificates_generated);

    // Every child, with the fields that matter.
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let contour_sa = sa.get("contour-alpha").await?;
    assert!(owned_by(&contour_sa.metadata, &alpha));
    assert_eq!(
        sa.get("envoy-alpha").await?.automount_service_account_token,
        Some(false)
    );
    let cluster_name = format!("contour:{ns}:alpha");
    let cr = Api::<ClusterRole>::all(client.clone())
        .get(&cluster_name)
        .await?;
    let rules = serde_json::to_string(&cr.rules)?;
    assert!(
        rules.contains("httpproxies/status") && !rules.contains("\"create\""),
        "{rules}"
    );
    let crb = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&cluster_name)
        .await?;
    assert_eq!(crb.subjects.unwrap_or_default()[0].name, "contour-alpha");
    Api::<Role>::namespaced(client.clone(), &ns)
        .get("contour-alpha")
        .await?;
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .get("contour-alpha")
        .await?;
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("contour-alpha")
        .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let (c, e) = (
        secrets.get("contourcert-alpha").await?,
        secrets.get("envoycert-alpha").await?,
    );
    for s in [&c, &e] {
        let data = s.data.clone().unwrap_or_default();
        for key in ["ca.crt", "tls.crt", "tls.key"] {
            assert!(data.contains_key(key), "{key} missing");
        }
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    }
    assert_eq!(
        c.data.as_ref().and_then(|d| d.get("ca.crt")),
        e.data.as_ref().and_then(|d| d.get("ca.crt")),
        "one CA"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let contour = deployments.get("contour-alpha").await?;
    let spec = serde_json::to_value(&contour.spec)?;
    assert_eq!(spec["replicas"], 2);
    let args = spec["template"]["spec"]["containers"][0]["args"].to_string();
    for flag in [
        "--leader-election-resource-name=contour-alpha",
        "--xds-port=8001",
        "--contour-cafile=/certs/ca.crt",
        "--incluster",
    ] {
        assert!(args.contains(flag), "{flag} in {args}");
    }
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let svc = serde_json::to_value(services.get("contour-alpha").await?.spec)?;
    assert_eq!(svc["ports"][0]["port"], 8001);
    assert_eq!(svc["ports"][1]["name"], "http-metrics");
    let envoy_svc = serde_json::to_value(services.get("envoy-alpha").await?.spec)?;
    assert_eq!(envoy_svc["type"], "LoadBalancer");
    let ds = serde_json::to_value(
        Api::<DaemonSet>::namespaced(client.clone(), &ns)
            .get("envoy-alpha")
            .await?
            .spec,
    )?;
    let pod = &ds["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["initContainers"][0]["args"][0], "bootstrap");
    assert!(
        pod["initContainers"][0]["args"]
            .to_string()
            .contains("--xds-address=contour-alpha")
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/ready"
    );
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );

    // Status: no kubelet here, so nothing is available yet.
    let st = status(&client, &ns, "alpha").await?;
    assert_eq!(condition(&st, "Available")["status"], "False", "{st}");
    assert_eq!(condition(&st, "Available")["reason"], "ContourUnavailable");
    assert_eq!(condition(&st, "Progressing")["status"], "True");
    assert_eq!(condition(&st, "Degraded")["status"], "False");
    assert_eq!(condition(&st, "Degraded")["observedGeneration"], 1);
    assert_eq!(st["serviceMonitors"], "CRDAbsent");
    assert!(st["certificateExpiry"].is_string(), "{st}");
    assert_eq!(st["ready"], "contour 0/2, envoy 0/0");

    // A no-op reconcile writes nothing, counted on the wire.
    let server = ApiServer::shared()?;
    let (counting, counts) = counting_client(server).await.map_err(|e| e.to_string())?;
    let rv_before = contour.metadata.resource_version.clone();
    let started = std::time::Instant::now();
    let noop = reconcile(&counting, &ns, "alpha").await?;
    eprintln!("latency: no-op reconcile {:?}", started.elapsed());
    assert_eq!(counts.writes.load(Ordering::SeqCst), 0, "{noop:?}");
    assert_eq!(noop.writes, 0);
    assert!(!noop.certificates_generated, "certificates are kept");
    assert_eq!(
        deployments
            .get("contour-alpha")
            .await?
            .metadata
            .resource_version,
        rv_before
    );

    // A second instance in the same namespace: its own objects, alpha untouched.
    create(
        &client,
        &ns,
        "beta",
        json!({"envoy": {"workloadType": "Deployment"}}),
    )
    .await?;
    reconcile(&client, &ns, "beta").await?;
    deployments.get("contour-beta").await?;
    deployments.get("envoy-beta").await?;
    Api::<ClusterRole>::all(client.clone())
        .get(&format!("contour:{ns}:beta"))
        .await?;
    assert_ne!(
        secrets.get("contourcert-beta").await?.data,
        secrets.get("contourcert-alpha").await?.data
    );
    assert_eq!(
        deployments
            .get("contour-alpha")
            .await?
            .metadata
            .resource_version,
        rv_before
    );

    // Delete a child → restored; edit an owned field → reverted.
    services
        .delete("contour-alpha", &DeleteParams::default())
        .await?;
    deployments
        .patch(
            "contour-alpha",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 5}})),
        )
        .await?;
    let repair = reconcile(&client, &ns, "alpha").await?;
    assert_eq!(
        repair.writes, 2,
        "exactly the two damaged children: {repair:?}"
    );
    services.get("contour-alpha").await?;
    assert_eq!(
        deployments
            .get("contour-alpha")
            .await?
            .spec
            .and_then(|s| s.replicas),
        Some(2)
    );

    // Remove a feature → pruned: the DaemonSet goes when Envoy becomes a Deployment.
    let cds: Api<ContourDeployment> = Api::namespaced(client.clone(), &ns);
    cds.patch(
        "alpha",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"envoy": {"workloadType": "Deployment"}}})),
    )
    .await?;
    reconcile(&client, &ns, "alpha").await?;
    assert!(
        Api::<DaemonSet>::namespaced(client.clone(), &ns)
            .get_opt("envoy-alpha")
            .await?
            .is_none()
    );
    deployments.get("envoy-alpha").await?;
    let st = status(&client, &ns, "alpha").await?;
    assert_eq!(condition(&st, "Degraded")["observedGeneration"], 2);

    // Delete the instance → the finalizer removes the cluster-scoped children.
    cds.delete("alpha", &DeleteParams::default()).await?;
    assert!(
        cds.get("alpha")
            .await?
            .metadata
            .deletion_timestamp
            .is_some()
    );
    reconcile(&client, &ns, "alpha").await?;
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&cluster_name)
            .await?
            .is_none()
    );
    assert!(
        Api::<ClusterRoleBinding>::all(client.clone())
            .get_opt(&cluster_name)
            .await?
            .is_none()
    );
    assert!(cds.get_opt("alpha").await?.is_none(), "finalizer released");
    // beta is untouched.
    Api::<ClusterRole>::all(client.clone())
        .get(&format!("contour:{ns}:beta"))
        .await?;

    // The ServiceMonitor CRD appears → ServiceMonitors on the next reconcile
    // (no restart); monitoring turned off → pruned.
    type Crd = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crd: Crd = serde_yaml::from_str(&std::fs::read_to_string(
        contour_tests::tools::servicemonitor_crd()?,
    )?)?;
    Api::<Crd>::all(client.clone())
        .patch(
            "servicemonitors.monitoring.coreos.com",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    let monitors = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &contour_operator::build::service_monitor_resource(),
    );
    let started = std::time::Instant::now();
    loop {
        // Until the CRD is established, applying a ServiceMonitor fails.
        if reconcile(&client, &ns, "beta").await.is_ok()
            && monitors
                .get_opt("envoy-beta")
                .await
                .ok()
                .flatten()
                .is_some()
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "no ServiceMonitors after the CRD appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sm = serde_json::to_value(monitors.get("contour-beta").await?)?;
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
    services.get("envoy-beta-metrics").await?;
    assert_eq!(
        status(&client, &ns, "beta").await?["serviceMonitors"],
        "Created"
    );
    cds.patch(
        "beta",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"monitoring": {"serviceMonitors": "Off"}}})),
    )
    .await?;
    reconcile(&client, &ns, "beta").await?;
    assert!(monitors.get_opt("contour-beta").await?.is_none());
    assert!(services.get_opt("envoy-beta-metrics").await?.is_none());
    assert_eq!(
        status(&client, &ns, "beta").await?["serviceMonitors"],
        "Disabled"
    );
    Ok(())
}

#[tokio::test]
async fn strangers_and_invalid_specs_are_degraded_not_taken_over() -> TestResult {
    let (client, ns) = setup("op-degraded").await?;
    // A ConfigMap of our name but not ours.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let stranger: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "contour-gamma"}, "data": {"mine": "yes"}}),
    )?;
    configmaps.create(&PostParams::default(), &stranger).await?;
    create(&client, &ns, "gamma", json!({})).await?;
    let err = reconcile(&client, &ns, "gamma")
        .await
        .err()
        .ok_or("a stranger must fail the reconcile")?;
    assert_eq!(err.category(), "NameConflict");
    let st = status(&client, &ns, "gamma").await?;
    let degraded = condition(&st, "Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "NameConflict");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("ConfigMap {ns}/contour-gamma")),
        "{degraded}"
    );
    let kept = configmaps.get("contour-gamma").await?;
    assert!(kept.metadata.labels.is_none(), "not adopted");
    assert_eq!(
        kept.data
            .unwrap_or_default()
            .get("mine")
            .map(String::as_str),
        Some("yes")
    );

    // An invalid spec: Degraded with the precise message, nothing applied.
    create(
        &client,
        &ns,
        "delta",
        json!({"runtimeSettings": {"envoy": {"http": {"port": 8002}}}}),
    )
    .await?;
    let err = reconcile(&client, &ns, "delta")
        .await
        .err()
        .ok_or("invalid spec must fail")?;
    assert_eq!(err.category(), "InvalidSpec");
    let st = status(&client, &ns, "delta").await?;
    assert_eq!(condition(&st, "Degraded")["reason"], "InvalidSpec");
    assert_eq!(
        condition(&st, "Degraded")["message"],
        "invalid spec: conflicting ports: runtimeSettings.envoy.http.port and Envoy's stats listener (http-metrics) are both 8002"
    );
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    assert!(
        sas.get_opt("contour-delta").await?.is_none(),
        "nothing applied"
    );
    // ...and a Warning Event on the instance says why.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let warned = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("delta")
                && e.reason.as_deref() == Some("InvalidSpec")
                && e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("conflicting ports"))
        });
    assert!(warned, "a Warning event with the reason and message");
    // Fixing it recovers.
    let cds: Api<ContourDeployment> = Api::namespaced(client.clone(), &ns);
    cds.patch(
        "delta",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"runtimeSettings": {"envoy": {"http": {"port": 8080}}}}})),
    )
    .await?;
    reconcile(&client, &ns, "delta").await?;
    let st = status(&client, &ns, "delta").await?;
    assert_eq!(condition(&st, "Degraded")["status"], "False", "{st}");
    sas.get("contour-delta").await?;
    Ok(())
}

fn forbidden<T>(r: Result<T, kube::Error>) -> bool {
    matches!(r, Err(kube::Error::Api(e)) if e.code == 403)
}

#[tokio::test]
async fn contour_service_account_has_exactly_what_serve_needs() -> TestResult {
    let server = ApiServer::shared()?;
    let (client, ns) = setup("op-rbac").await?;
    let other = server.namespace("op-rbac-other").await?;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "private"}, "stringData": {"k": "v"}}))?;
    Api::<Secret>::namespaced(client.clone(), &other)
        .create(&PostParams::default(), &secret)
        .await?;
    let proxy: HTTPProxy = serde_json::from_value(
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "p"}, "spec": {"virtualhost": {"fqdn": "p.example.com"},
        "routes": [{"services": [{"name": "s", "port": 80}]}]}}),
    )?;
    Api::<HTTPProxy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &proxy)
        .await?;

    // Scoped to its own namespace.
    create(
        &client,
        &ns,
        "scoped",
        json!({"contour": {"watchNamespaces": [ns.clone()]}}),
    )
    .await?;
    reconcile(&client, &ns, "scoped").await?;
    assert!(
        Api::<ClusterRole>::all(client.clone())
            .get_opt(&format!("contour:{ns}:scoped"))
            .await?
            .is_none()
    );
    let sa = server.service_account_client(&ns, "contour-scoped").await?;
    let proxies: Api<HTTPProxy> = Api::namespaced(sa.clone(), &ns);
    let all = ListParams::default();
    let listed = once_authorized(|| proxies.list(&all)).await?;
    assert_eq!(listed.items.len(), 1);
    let status = json!({"status": {"currentStatus": "valid", "description": "ok"}});
    let (params, patch) = (PatchParams::default(), Patch::Merge(&status));
    once_authorized(|| proxies.patch_status("p", &params, &patch)).await?;
    assert!(forbidden(
        proxies
            .patch(
                "p",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"virtualhost": {"fqdn": "x.example.com"}}}))
            )
            .await
    ));
    assert!(forbidden(
        proxies.delete("p", &DeleteParams::default()).await
    ));
    // The load balancer address on Ingresses, and Envoy's Service to read it from.
    let ingress: k8s_openapi::api::networking::v1::Ingress = serde_json::from_value(json!({
        "metadata": {"name": "i"},
        "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}}))?;
    Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &ingress)
        .await?;
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> =
        Api::namespaced(sa.clone(), &ns);
    ingresses
        .patch_status(
            "i",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})),
        )
        .await?;
    assert!(forbidden(
        ingresses.delete("i", &DeleteParams::default()).await
    ));
    Api::<Service>::namespaced(sa.clone(), &ns)
        .get("envoy-scoped")
        .await?;
    Api::<Secret>::namespaced(sa.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    assert!(forbidden(
        Api::<Secret>::namespaced(sa.clone(), &other)
            .list(&ListParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<Secret>::namespaced(sa.clone(), &other)
            .get("private")
            .await
    ));
    assert!(forbidden(
        Api::<Secret>::all(sa.clone())
            .list(&ListParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<HTTPProxy>::namespaced(sa.clone(), &other)
            .list(&ListParams::default())
            .await
    ));
    // Its leader Lease, and no other.
    let leases: Api<Lease> = Api::namespaced(sa.clone(), &ns);
    let lease: Lease = serde_json::from_value(
        json!({"metadata": {"name": "contour-scoped"}, "spec": {"holderIdentity": "a"}}),
    )?;
    leases.create(&PostParams::default(), &lease).await?;
    let held = leases.get("contour-scoped").await?;
    leases
        .replace("contour-scoped", &PostParams::default(), &held)
        .await?;
    assert!(forbidden(leases.get("someone-else").await));
    // No other writes.
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "x"}}))?;
    assert!(forbidden(
        Api::<ConfigMap>::namespaced(sa.clone(), &ns)
            .create(&PostParams::default(), &cm)
            .await
    ));
    assert!(forbidden(
        Api::<Secret>::namespaced(sa.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
    ));

    // Cluster-wide: reads every routing object, still writes nothing else.
    create(&client, &ns, "wide", json!({})).await?;
    reconcile(&client, &ns, "wide").await?;
    let sa = server.service_account_client(&ns, "contour-wide").await?;
    let all = ListParams::default();
    let (every_proxy, every_secret) = (
        Api::<HTTPProxy>::all(sa.clone()),
        Api::<Secret>::all(sa.clone()),
    );
    once_authorized(|| every_proxy.list(&all)).await?;
    once_authorized(|| every_secret.list(&all)).await?;
    assert!(forbidden(
        Api::<Secret>::namespaced(sa.clone(), &other)
            .create(&PostParams::default(), &secret)
            .await
    ));
    assert!(forbidden(
        Api::<HTTPProxy>::namespaced(sa.clone(), &ns)
            .delete("p", &DeleteParams::default())
            .await
    ));
    assert!(forbidden(
        Api::<Lease>::namespaced(sa.clone(), &ns)
            .get("contour-scoped")
            .await
    ));
    // The envoy account may do nothing at all.
    let envoy = server.service_account_client(&ns, "envoy-wide").await?;
    assert!(forbidden(
        Api::<HTTPProxy>::all(envoy)
            .list(&ListParams::default())
            .await
    ));
    Ok(())
}

#[tokio::test]
async fn the_controller_repairs_a_deleted_child_within_seconds() -> TestResult {
    let (client, ns) = setup("op-controller").await?;
    let metrics = contour_operator::metrics::OperatorMetrics::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics_url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(contour_operator::metrics::serve(listener, metrics.clone()));
    let controller = tokio::spawn(contour_operator::controller::run_with_metrics(
        ctx(&client),
        Some(ns.clone()),
        metrics,
    ));
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let wait_for = |what: &'static str| {
        let services = services.clone();
        async move {
            let started = std::time::Instant::now();
            while services.get_opt(what).await?.is_none() {
                if started.elapsed().as_secs() > 20 {
                    return Err(format!("{what} did not appear").into());
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok::<_, Box<dyn std::error::Error>>(started.elapsed())
        }
    };
    create(&client, &ns, "live", json!({})).await?;
    wait_for("envoy-live").await?;
    services
        .delete("envoy-live", &DeleteParams::default())
        .await?;
    let took = wait_for("envoy-live").await?;
    assert!(took.as_secs() < 10, "repaired after {took:?}");
    let st = status(&client, &ns, "live").await?;
    assert_eq!(condition(&st, "Degraded")["status"], "False", "{st}");

    // The operator's own metrics and health.
    create(
        &client,
        &ns,
        "broken",
        json!({"runtimeSettings": {"envoy": {"http": {"port": 8002}}}}),
    )
    .await?;
    let get = |path: &'static str| {
        let url = format!("{metrics_url}{path}");
        async move {
            let r = reqwest::get(url).await?;
            Ok::<_, Box<dyn std::error::Error>>((r.status().as_u16(), r.text().await?))
        }
    };
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let started = std::time::Instant::now();
    let text = loop {
        let (_, text) = get("/metrics").await?;
        if sample(
            &text,
            "contour_operator_reconcile_errors_total{category=\"InvalidSpec\"}",
        ) >= 1.0
            || started.elapsed().as_secs() > 20
        {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        sample(
            &text,
            "contour_operator_reconcile_total{result=\"success\"}"
        ) >= 2.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "contour_operator_reconcile_errors_total{category=\"InvalidSpec\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "contour_operator_reconcile_duration_seconds_count") >= 3.0,
        "{text}"
    );
    assert_eq!(get("/healthz").await?.0, 200);
    assert_eq!(get("/readyz").await?.0, 200);
    controller.abort();
    server.abort();
    Ok(())
}

fn secret_field(s: &Secret, key: &str) -> Option<Vec<u8>> {
    s.data.as_ref()?.get(key).map(|b| b.0.clone())
}

/// The certificates rotate on demand (annotation) through the real
/// reconcile: new leaf key pairs for both sides, the same CA in both
/// Secrets and in the operator's CA Secret; once answered, a reconcile
/// writes nothing.
#[tokio::test]
async fn certificates_rotate_on_demand_keeping_the_ca() -> TestResult {
    let (admin, ns) = setup("op-rotate").await?;
    let (client, counts) = counting_client(ApiServer::shared()?)
        .await
        .map_err(|e| e.to_string())?;
    create(&admin, &ns, "rot", json!({})).await?;
    reconcile(&client, &ns, "rot").await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let read = || async {
        Ok::<_, kube::Error>((
            secrets.get("contourcert-rot").await?,
            secrets.get("envoycert-rot").await?,
            secrets.get("contourca-rot").await?,
        ))
    };
    let (c0, e0, ca0) = read().await?;
    assert_eq!(ca0.type_.as_deref(), Some("Opaque"));
    assert!(secret_field(&ca0, "ca.key").is_some());
    assert_eq!(secret_field(&c0, "ca.crt"), secret_field(&ca0, "ca.crt"));

    let cds: Api<ContourDeployment> = Api::namespaced(admin.clone(), &ns);
    cds.patch(
        "rot",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {
            "projectcontour.io/rotate-certificates": "2026-11-26T01:00:00Z"}}})),
    )
    .await?;
    let report = reconcile(&client, &ns, "rot").await?;
    assert!(report.certificates_generated, "{report:?}");
    let (c1, e1, ca1) = read().await?;
    assert_ne!(secret_field(&c1, "tls.crt"), secret_field(&c0, "tls.crt"));
    assert_ne!(secret_field(&c1, "tls.key"), secret_field(&c0, "tls.key"));
    assert_ne!(secret_field(&e1, "tls.crt"), secret_field(&e0, "tls.crt"));
    for s in [&c1, &e1] {
        assert_eq!(
            secret_field(s, "ca.crt"),
            secret_field(&ca0, "ca.crt"),
            "same CA"
        );
        assert_eq!(
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("projectcontour.io/certificates-rotated-for"))
                .map(String::as_str),
            Some("2026-11-26T01:00:00Z")
        );
    }
    assert_eq!(secret_field(&ca1, "ca.key"), secret_field(&ca0, "ca.key"));

    // The new leaves chain to the kept CA.
    let ca_pem = secret_field(&ca1, "ca.crt").ok_or("ca.crt")?;
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(&ca_pem)?;
    let ca = ca_block.parse_x509()?;
    for s in [&c1, &e1] {
        let leaf_pem = secret_field(s, "tls.crt").ok_or("tls.crt")?;
        let (_, leaf_block) = x509_parser::pem::parse_x509_pem(&leaf_pem)?;
        leaf_block
            .parse_x509()?
            .verify_signature(Some(ca.public_key()))?;
    }

    // Answered: the next reconcile keeps them and writes nothing.
    counts.writes.store(0, Ordering::SeqCst);
    let again = reconcile(&client, &ns, "rot").await?;
    assert!(!again.certificates_generated);
    assert_eq!(counts.writes.load(Ordering::SeqCst), 0);
    let (c2, _, _) = read().await?;
    assert_eq!(secret_field(&c2, "tls.crt"), secret_field(&c1, "tls.crt"));
    Ok(())
}
