//! The generated CRDs against the real API server: they install, valid
//! objects round-trip with status, schema-invalid objects are refused with a
//! message naming the field, and printer columns read as users know them.

use contour_crds::{ContourDeployment, HTTPProxy, IngressRoute, TLSCertificateDelegation};
use contour_tests::{ApiServer, k8s};
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

type TestResult = Result<(), Box<dyn std::error::Error>>;

static CRDS: OnceCell<()> = OnceCell::const_new();

/// The admin client and a fresh namespace, with the CRDs installed once.
async fn setup(prefix: &str) -> Result<(Client, String), Box<dyn std::error::Error>> {
    let server = ApiServer::shared()?;
    let client = server.admin_client().await?;
    CRDS.get_or_try_init(|| async { k8s::install_crds(&client).await })
        .await?;
    let ns = server.namespace(prefix).await?;
    Ok((client, ns))
}

fn dynamic(
    client: &Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

async fn create(api: &Api<DynamicObject>, obj: Value) -> Result<DynamicObject, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &obj).await
}

#[test]
fn committed_crds_match_the_types() -> TestResult {
    let dir = contour_tests::tools::repo_root().join("helm/contour-operator/crds");
    let rendered = contour_crds::render_all()?;
    assert_eq!(rendered.len(), 4);
    for (name, text) in rendered {
        let path = dir.join(&name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} differs from what the types generate: run `make crds`",
            path.display()
        );
    }
    let mut on_disk: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk.len(),
        4,
        "unexpected files in {}: {on_disk:?}",
        dir.display()
    );
    Ok(())
}

#[tokio::test]
async fn httpproxy_round_trips_with_status() -> TestResult {
    let (client, ns) = setup("httpproxy-roundtrip").await?;
    let api: Api<HTTPProxy> = Api::namespaced(client.clone(), &ns);
    let manifest = json!({
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": {"name": "kuard"},
        "spec": {
            "virtualhost": {
                "fqdn": "kuard.example.com",
                "tls": {"secretName": "kuard-tls", "minimumProtocolVersion": "1.2"},
                "corsPolicy": {"allowOrigin": ["*"], "allowMethods": ["GET", "POST"], "maxAge": "10m"},
                "rateLimitPolicy": {"local": {"requests": 100, "unit": "minute", "burst": 20}},
                "ipAllowPolicy": [{"source": "Peer", "cidr": "10.0.0.0/8"}]
            },
            "routes": [{
                "conditions": [{"prefix": "/api"}, {"header": {"name": "x-canary", "present": true}}],
                "services": [
                    {"name": "kuard", "port": 80, "weight": 90},
                    {"name": "kuard-canary", "port": 80, "weight": 10, "protocol": "h2c"},
                    {"name": "kuard-mirror", "port": 80, "mirror": true}
                ],
                "timeoutPolicy": {"response": "5s", "idle": "infinity"},
                "retryPolicy": {"count": 3, "perTryTimeout": "150ms", "retryOn": ["5xx", "gateway-error"]},
                "loadBalancerPolicy": {"strategy": "Cookie"},
                "pathRewritePolicy": {"replacePrefix": [{"prefix": "/api", "replacement": "/"}]},
                "requestHeadersPolicy": {"set": [{"name": "X-Foo", "value": "bar"}], "remove": ["X-Baz"]},
                "healthCheckPolicy": {"path": "/healthy", "intervalSeconds": 5, "timeoutSeconds": 2, "unhealthyThresholdCount": 3, "healthyThresholdCount": 5}
            }, {
                "conditions": [{"prefix": "/old"}],
                "requestRedirectPolicy": {"scheme": "https", "statusCode": 301, "path": "/new"}
            }],
            "includes": [{"name": "blog", "namespace": "marketing", "conditions": [{"prefix": "/blog"}]}]
        }
    });
    let proxy: HTTPProxy = serde_json::from_value(manifest.clone())?;
    let created = api.create(&PostParams::default(), &proxy).await?;
    // Nothing the API server keeps differs from what we sent.
    assert_eq!(created.spec, proxy.spec);
    // Before any controller looks, the status reads as upstream's does.
    let status = created.status.clone().unwrap_or_default();
    assert_eq!(status.current_status, "NotReconciled");
    assert_eq!(status.description, "Waiting for controller");

    let status_patch = json!({"status": {
        "currentStatus": "valid",
        "description": "Valid HTTPProxy",
        "conditions": [{
            "type": "Valid", "status": "True", "observedGeneration": 1,
            "lastTransitionTime": "2026-11-25T00:00:00Z", "reason": "Valid", "message": "Valid HTTPProxy",
            "warnings": [{"type": "TLSError", "status": "True", "reason": "SecretNotValid", "message": "not yet"}]
        }]
    }});
    api.patch_status(
        "kuard",
        &PatchParams::default(),
        &Patch::Merge(&status_patch),
    )
    .await?;
    let got = api.get("kuard").await?;
    let status = got.status.unwrap_or_default();
    assert_eq!(status.current_status, "valid");
    assert_eq!(status.conditions.len(), 1);
    assert_eq!(status.conditions[0].warnings[0].reason, "SecretNotValid");
    // The status subresource is separate: a spec update does not touch it and vice versa.
    assert_eq!(got.spec, proxy.spec);
    Ok(())
}

#[tokio::test]
async fn ingressroute_from_the_seed_round_trips_with_status() -> TestResult {
    let (client, ns) = setup("ingressroute-roundtrip").await?;
    let api: Api<IngressRoute> = Api::namespaced(client, &ns);
    // The seed's kuard example, plus the fields the seed's IngressRoute API has.
    let route: IngressRoute = serde_json::from_value(json!({
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "kuard", "labels": {"app": "kuard"}},
        "spec": {
            "virtualhost": {"fqdn": "kuard.local", "tls": {"secretName": "kuard-tls"}},
            "routes": [
                {"match": "/", "services": [{"name": "kuard", "port": 80}]},
                {"match": "/blue", "permitInsecure": true, "enableWebsockets": true, "prefixRewrite": "/",
                 "timeoutPolicy": {"request": "1s"}, "retryPolicy": {"count": 2, "perTryTimeout": "500ms"},
                 "services": [
                    {"name": "blue", "port": 80, "weight": 80, "strategy": "WeightedLeastRequest",
                     "healthCheck": {"path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 2}},
                    {"name": "green", "port": 80, "weight": 20}]},
                {"match": "/team", "delegate": {"name": "team-routes", "namespace": "team"}}
            ]
        }
    }))?;
    let created = api.create(&PostParams::default(), &route).await?;
    assert_eq!(created.spec, route.spec);
    let patch = json!({"status": {"currentStatus": "valid", "description": "valid IngressRoute"}});
    api.patch_status("kuard", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let status = api.get("kuard").await?.status.unwrap_or_default();
    assert_eq!(
        (status.current_status.as_str(), status.description.as_str()),
        ("valid", "valid IngressRoute")
    );
    Ok(())
}

#[tokio::test]
async fn tlscertificatedelegation_and_contourdeployment_round_trip_with_status() -> TestResult {
    let (client, ns) = setup("delegation-roundtrip").await?;
    let delegations: Api<TLSCertificateDelegation> = Api::namespaced(client.clone(), &ns);
    let d: TLSCertificateDelegation = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
        "metadata": {"name": "wildcard"},
        "spec": {"delegations": [{"secretName": "wildcard-tls", "targetNamespaces": ["team-a", "team-b"]}]}
    }))?;
    assert_eq!(
        delegations.create(&PostParams::default(), &d).await?.spec,
        d.spec
    );
    let patch = json!({"status": {"conditions": [{"type": "Valid", "status": "True", "lastTransitionTime": "2026-11-25T00:00:00Z", "reason": "Valid", "message": "ok"}]}});
    delegations
        .patch_status("wildcard", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let got = delegations
        .get("wildcard")
        .await?
        .status
        .unwrap_or_default();
    assert_eq!(got.conditions[0].reason, "Valid");

    let deployments: Api<ContourDeployment> = Api::namespaced(client, &ns);
    // An upstream-style ContourDeployment applies unchanged.
    let cd: ContourDeployment = serde_json::from_value(json!({
        "apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment",
        "metadata": {"name": "contour"},
        "spec": {
            "contour": {"deployment": {"replicas": 2}, "logLevel": "info", "watchNamespaces": ["default", "team-a"],
                        "nodePlacement": {"nodeSelector": {"role": "infra"}}},
            "envoy": {"workloadType": "DaemonSet",
                      "networkPublishing": {"type": "NodePortService", "externalTrafficPolicy": "Local"},
                      "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            "runtimeSettings": {"envoy": {"listener": {"useProxyProtocol": false}}, "featureX": {"anything": [1, 2]}},
            "resourceLabels": {"team": "platform"}
        }
    }))?;
    let created = deployments.create(&PostParams::default(), &cd).await?;
    assert_eq!(
        created.spec, cd.spec,
        "runtimeSettings must be kept as given"
    );
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-25T00:00:00Z", "reason": "Progressing", "message": "applying children"}]}});
    deployments
        .patch_status("contour", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let got = deployments.get("contour").await?.status.unwrap_or_default();
    assert_eq!(got.conditions[0].reason, "Progressing");
    Ok(())
}

/// Each entry: a schema-invalid object, and the field path and words the
/// API server's refusal must contain.
fn invalid_objects() -> Vec<(&'static str, Value, &'static [&'static str])> {
    let proxy = |spec: Value| json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy", "metadata": {"name": "bad"}, "spec": spec});
    vec![
        (
            "service port 0",
            proxy(json!({"routes": [{"services": [{"name": "s", "port": 0}]}]})),
            &[
                "spec.routes[0].services[0].port",
                "greater than or equal to 1",
            ],
        ),
        (
            "service port 70000",
            proxy(json!({"routes": [{"services": [{"name": "s", "port": 70000}]}]})),
            &[
                "spec.routes[0].services[0].port",
                "less than or equal to 65535",
            ],
        ),
        (
            "negative weight",
            proxy(json!({"routes": [{"services": [{"name": "s", "port": 80, "weight": -1}]}]})),
            &[
                "spec.routes[0].services[0].weight",
                "greater than or equal to 0",
            ],
        ),
        (
            "prefix and exact in one condition",
            proxy(
                json!({"routes": [{"conditions": [{"prefix": "/a", "exact": "/a"}], "services": [{"name": "s", "port": 80}]}]}),
            ),
            &[
                "spec.routes[0].conditions[0]",
                "only one of prefix, exact or regex",
            ],
        ),
        (
            "unknown ip filter source",
            proxy(
                json!({"virtualhost": {"fqdn": "a.example.com", "ipAllowPolicy": [{"source": "Everyone", "cidr": "0.0.0.0/0"}]}}),
            ),
            &[
                "spec.virtualhost.ipAllowPolicy[0].source",
                "Unsupported value",
            ],
        ),
        (
            "bad fqdn",
            proxy(json!({"virtualhost": {"fqdn": "Not A Host!"}})),
            &["spec.virtualhost.fqdn", "should match"],
        ),
        (
            "unknown rate limit unit",
            proxy(
                json!({"virtualhost": {"fqdn": "a.example.com", "rateLimitPolicy": {"local": {"requests": 1, "unit": "fortnight"}}}}),
            ),
            &[
                "spec.virtualhost.rateLimitPolicy.local.unit",
                "Unsupported value",
            ],
        ),
        (
            "unknown upstream protocol",
            proxy(json!({"routes": [{"services": [{"name": "s", "port": 80, "protocol": "h3"}]}]})),
            &["spec.routes[0].services[0].protocol", "Unsupported value"],
        ),
        (
            "unknown retryOn",
            proxy(
                json!({"routes": [{"services": [{"name": "s", "port": 80}], "retryPolicy": {"retryOn": ["sometimes"]}}]}),
            ),
            &["spec.routes[0].retryPolicy.retryOn[0]", "Unsupported value"],
        ),
        (
            "bad timeout",
            proxy(
                json!({"routes": [{"services": [{"name": "s", "port": 80}], "timeoutPolicy": {"response": "five seconds"}}]}),
            ),
            &["spec.routes[0].timeoutPolicy.response", "should match"],
        ),
        (
            "ingressroute port 65536",
            json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute", "metadata": {"name": "bad"},
            "spec": {"routes": [{"match": "/", "services": [{"name": "s", "port": 65536}]}]}}),
            &[
                "spec.routes[0].services[0].port",
                "less than or equal to 65535",
            ],
        ),
        (
            "ingressroute match without slash",
            json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute", "metadata": {"name": "bad"},
            "spec": {"routes": [{"match": "api", "services": [{"name": "s", "port": 80}]}]}}),
            &["spec.routes[0].match", "should match"],
        ),
        (
            "delegation without secretName",
            json!({"apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation", "metadata": {"name": "bad"},
            "spec": {"delegations": [{"targetNamespaces": ["*"]}]}}),
            &["spec.delegations[0].secretName", "Required value"],
        ),
        (
            "contourdeployment workloadType Pod",
            json!({"apiVersion": "projectcontour.io/v1alpha1", "kind": "ContourDeployment", "metadata": {"name": "bad"},
            "spec": {"envoy": {"workloadType": "Pod"}}}),
            &["spec.envoy.workloadType", "Unsupported value"],
        ),
    ]
}

#[tokio::test]
async fn schema_invalid_objects_are_refused_naming_the_field() -> TestResult {
    let (client, ns) = setup("invalid").await?;
    let mut failures = Vec::new();
    for (what, obj, expect) in invalid_objects() {
        let api = match obj["kind"].as_str() {
            Some("HTTPProxy") => dynamic(
                &client,
                &ns,
                "projectcontour.io",
                "v1",
                "HTTPProxy",
                "httpproxies",
            ),
            Some("IngressRoute") => dynamic(
                &client,
                &ns,
                "contour.heptio.com",
                "v1beta1",
                "IngressRoute",
                "ingressroutes",
            ),
            Some("TLSCertificateDelegation") => dynamic(
                &client,
                &ns,
                "projectcontour.io",
                "v1",
                "TLSCertificateDelegation",
                "tlscertificatedelegations",
            ),
            _ => dynamic(
                &client,
                &ns,
                "projectcontour.io",
                "v1alpha1",
                "ContourDeployment",
                "contourdeployments",
            ),
        };
        match create(&api, obj).await {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(status)) => {
                let msg = status.message.clone();
                if status.code != 422 || !expect.iter().all(|e| msg.contains(e)) {
                    failures.push(format!(
                        "{what}: code {} message {msg:?} lacks {expect:?}",
                        status.code
                    ));
                }
            }
            Err(e) => failures.push(format!("{what}: unexpected error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

async fn table(client: &Client, path: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let req = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())?;
    Ok(serde_json::from_str(&client.request_text(req).await?)?)
}

fn column_names(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn printer_columns_read_as_users_know_them() -> TestResult {
    let (client, ns) = setup("columns").await?;
    let routes = dynamic(
        &client,
        &ns,
        "contour.heptio.com",
        "v1beta1",
        "IngressRoute",
        "ingressroutes",
    );
    create(&routes, json!({"apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute", "metadata": {"name": "kuard"},
        "spec": {"virtualhost": {"fqdn": "kuard.local"}, "routes": [{"match": "/", "services": [{"name": "kuard", "port": 80}]}]}})).await?;
    let proxies = dynamic(
        &client,
        &ns,
        "projectcontour.io",
        "v1",
        "HTTPProxy",
        "httpproxies",
    );
    create(&proxies, json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy", "metadata": {"name": "kuard"},
        "spec": {"virtualhost": {"fqdn": "kuard.example.com", "tls": {"secretName": "kuard-tls"}}, "routes": [{"services": [{"name": "kuard", "port": 80}]}]}})).await?;

    let t = table(
        &client,
        &format!("/apis/contour.heptio.com/v1beta1/namespaces/{ns}/ingressroutes"),
    )
    .await?;
    assert_eq!(
        column_names(&t),
        [
            "Name",
            "FQDN",
            "TLS Secret",
            "First route",
            "Status",
            "Status Description"
        ]
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[0], "kuard");
    assert_eq!(cells[1], "kuard.local");
    assert_eq!(cells[3], "/");

    let t = table(
        &client,
        &format!("/apis/projectcontour.io/v1/namespaces/{ns}/httpproxies"),
    )
    .await?;
    assert_eq!(
        column_names(&t),
        ["Name", "FQDN", "TLS Secret", "Status", "Status Description"]
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(
        (&cells[1], &cells[2], &cells[3]),
        (
            &json!("kuard.example.com"),
            &json!("kuard-tls"),
            &json!("NotReconciled")
        )
    );

    // kubectl prints the headers exactly as the seed shows them.
    let kubeconfig = ApiServer::shared()?.kubeconfig().to_path_buf();
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "ingressroute", "-n", &ns])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "FQDN",
            "TLS",
            "SECRET",
            "FIRST",
            "ROUTE",
            "STATUS",
            "STATUS",
            "DESCRIPTION"
        ],
        "{stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn service_account_clients_get_exactly_their_rbac_rights() -> TestResult {
    let (admin, ns) = setup("rbac").await?;
    let server = ApiServer::shared()?;
    let sa_client = server.service_account_client(&ns, "reader").await?;
    let as_reader: Api<HTTPProxy> = Api::namespaced(sa_client.clone(), &ns);
    match as_reader.list(&Default::default()).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {
            assert!(
                s.message
                    .contains(&format!("system:serviceaccount:{ns}:reader")),
                "{}",
                s.message
            );
        }
        other => panic!("expected 403 before any grant, got {other:?}"),
    }
    let rbac = json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "proxy-reader", "namespace": ns},
         "rules": [{"apiGroups": ["projectcontour.io"], "resources": ["httpproxies"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "proxy-reader", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proxy-reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]}
    ]);
    let roles = dynamic(
        &admin,
        &ns,
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
    );
    let bindings = dynamic(
        &admin,
        &ns,
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    );
    create(&roles, rbac[0].clone()).await?;
    create(&bindings, rbac[1].clone()).await?;
    // RBAC changes take effect within moments (20 s on a loaded machine).
    let all = Default::default();
    let listed = k8s::once_authorized(|| as_reader.list(&all)).await;
    assert!(listed.is_ok(), "the Role did not take effect: {listed:?}");
    // Reading is granted, writing is not.
    let proxy: HTTPProxy = serde_json::from_value(
        json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy", "metadata": {"name": "x"}, "spec": {}}),
    )?;
    match as_reader.create(&PostParams::default(), &proxy).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403),
        other => panic!("expected 403 on create, got {other:?}"),
    }
    Ok(())
}

#[test]
fn committed_api_reference_matches_the_types() -> TestResult {
    let path = contour_tests::tools::repo_root().join("docs/api.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let rendered = contour_crds::apidoc::render(&contour_crds::all_crds()?);
    assert!(
        committed == rendered,
        "{} differs from what the types generate: run `make crds`",
        path.display()
    );
    Ok(())
}
