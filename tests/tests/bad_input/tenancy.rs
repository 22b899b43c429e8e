//! Issue 8 item 5, the multi-tenant rules, each its own test: Contour runs
//! with `--root-namespaces=<root>,<second root>`; tenants live elsewhere.

use contour_tests::k8s::{apply, delete, service_for};
use contour_tests::pki::Ca;
use contour_tests::{ApiServer, TestNet, free_port};
use serde_json::json;

use super::check::*;
use super::common::{Ground, TestResult, ground_with};

/// A ground whose roots may live only in `root` and `root2`; `tenant` is
/// an ordinary namespace. The steady Service is in all three.
struct Tenancy {
    g: Ground,
    root: String,
    root2: String,
    tenant: String,
    https: u16,
}

async fn tenancy(name: &str) -> Result<Tenancy, Box<dyn std::error::Error>> {
    let net = TestNet::shared()?;
    let steady = net.backend("steady")?;
    let api = ApiServer::shared()?;
    let root = api.namespace(&format!("{name}-root")).await?;
    let root2 = api.namespace(&format!("{name}-root2")).await?;
    let tenant = api.namespace(&format!("{name}-tenant")).await?;
    let https = free_port()?;
    let g = ground_with(
        name,
        &[
            &format!("--root-namespaces={root},{root2}"),
            &format!("--watch-namespaces={root},{root2},{tenant}"),
        ],
        Some(https),
    )
    .await?;
    for ns in [&root, &root2, &tenant] {
        for m in service_for("steady", &[steady.addr]) {
            apply(&g.client, ns, &m).await?;
        }
    }
    // An unrelated root, checked after every step.
    let unrelated = super::check::root("steady", &format!("steady.{root}.example.com"), "steady");
    apply(&g.client, &root, &unrelated).await?;
    Ok(Tenancy {
        g,
        root,
        root2,
        tenant,
        https,
    })
}

fn entry(
    name: &'static str,
    objects: Vec<(String, serde_json::Value)>,
    expect: Vec<Expect>,
) -> Entry {
    Entry {
        name,
        kind: "HTTPProxy",
        objects,
        expect,
    }
}

async fn settle(t: &Tenancy, mut entries: Vec<Entry>) -> TestResult {
    let steady = format!("steady.{}.example.com", t.root);
    entries.push(entry(
        "unrelated root",
        vec![],
        vec![valid(&t.root, "steady"), serves(&steady, "/", "steady")],
    ));
    run(&t.g, &entries, 30).await?;
    alive_and_sane(&t.g).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_a_non_root_namespace_cannot_claim_a_vhost() -> TestResult {
    let t = tenancy("mt-vhost").await?;
    let (r, tn) = (t.root.as_str(), t.tenant.as_str());
    let app = format!("app.{r}.example.com");
    let squat = format!("squat.{r}.example.com");
    let ir_app = format!("ir-app.{r}.example.com");
    let not_here = "root HTTPProxy cannot be defined in this namespace";
    let ir_not_here = "root IngressRoute cannot be defined in this namespace";
    // The legitimate root and what it delegates to the tenant.
    settle(
        &t,
        vec![entry(
            "legitimate root",
            vec![
                (r.into(), proxy("app", json!({"virtualhost": {"fqdn": app},
                    "routes": [{"services": [{"name": "steady", "port": 80}]}],
                    "includes": [{"name": "team", "namespace": tn, "conditions": [{"prefix": "/team"}]}]}))),
                (tn.into(), proxy("team", json!({"routes": [{"services": [{"name": "steady", "port": 80}]}]}))),
                (r.into(), root_route("ir-app", &ir_app, "steady")),
            ],
            vec![
                valid(r, "app"),
                valid(tn, "team"),
                serves(&app, "/team", "steady"),
                route_status(r, "ir-app", "valid", VALID_ROUTE),
            ],
        )],
    )
    .await?;
    // The tenant claims a new vhost, and the root's own, with both kinds.
    settle(
        &t,
        vec![entry(
            "tenant claims",
            vec![
                (tn.into(), root("squatter", &squat, "steady")),
                (tn.into(), root("thief", &app, "steady")),
                (
                    tn.into(),
                    root_route(
                        "ir-squatter",
                        &format!("ir-squat.{r}.example.com"),
                        "steady",
                    ),
                ),
                (tn.into(), root_route("ir-thief", &ir_app, "steady")),
            ],
            vec![
                invalid(
                    tn,
                    "squatter",
                    "RootNamespaceError",
                    "RootProxyNotAllowedInNamespace",
                    not_here,
                ),
                invalid(
                    tn,
                    "thief",
                    "RootNamespaceError",
                    "RootProxyNotAllowedInNamespace",
                    not_here,
                ),
                route_status(tn, "ir-squatter", "invalid", ir_not_here),
                route_status(tn, "ir-thief", "invalid", ir_not_here),
                answers(&squat, "/", 404),
                answers(&format!("ir-squat.{r}.example.com"), "/", 404),
                // A refused claim is no claim: the roots keep their hosts.
                valid(r, "app"),
                serves(&app, "/", "steady"),
                route_status(r, "ir-app", "valid", VALID_ROUTE),
                serves(&ir_app, "/", "steady"),
            ],
        )],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_a_tls_secret_in_another_namespace_needs_a_delegation() -> TestResult {
    let t = tenancy("mt-tls").await?;
    let (r, r2) = (t.root.as_str(), t.root2.as_str());
    let host = format!("secure.{r}.example.com");
    let ca = Ca::new("tenancy-ca")?;
    let pair = ca.server(&host, &[host.as_str()])?;
    let secret_ref = format!("{r2}/cert");
    // `version` changes the spec (and the generation), so that a status
    // that stays the same is known to be a new one.
    let secure = |version: &str| {
        proxy(
            "secure",
            json!({"virtualhost": {"fqdn": host, "tls": {"secretName": secret_ref}},
                   "routes": [{"services": [{"name": "steady", "port": 80}]},
                              {"conditions": [{"prefix": version}], "services": [{"name": "steady", "port": 80}]}]}),
        )
    };
    let refused_msg = format!(
        "Spec.VirtualHost.TLS Secret \"{secret_ref}\" certificate delegation not permitted"
    );
    let not_permitted = || {
        invalid(
            r,
            "secure",
            "TLSError",
            "DelegationNotPermitted",
            refused_msg.clone(),
        )
    };
    let pem = ca.cert_pem();
    let served = || serves_tls(t.https, &host, "/", "steady", &pem);

    // The Secret lives in another namespace; no delegation yet.
    settle(
        &t,
        vec![entry(
            "no delegation",
            vec![
                (r2.into(), tls_secret("cert", &pair.cert_pem, &pair.key_pem)),
                (r.into(), secure("/v1")),
            ],
            vec![not_permitted()],
        )],
    )
    .await?;
    assert!(
        https_get(t.https, &host, "/", &pem).await.is_err(),
        "served without a delegation"
    );

    // A delegation to someone else, and one with `*` among other names
    // (a wildcard only on its own, as upstream), do not count.
    settle(
        &t,
        vec![entry(
            "delegations that do not count",
            vec![
                (
                    r2.into(),
                    delegation("to-tenant", "cert", &[t.tenant.as_str()]),
                ),
                (
                    r2.into(),
                    delegation("mixed", "cert", &["*", t.tenant.as_str()]),
                ),
                (r.into(), secure("/v2")),
            ],
            vec![not_permitted()],
        )],
    )
    .await?;

    // The delegation to this namespace: accepted and served.
    let grant = delegation("grant", "cert", &[r]);
    settle(
        &t,
        vec![entry(
            "delegated",
            vec![(r2.into(), grant.clone())],
            vec![valid(r, "secure"), served()],
        )],
    )
    .await?;

    // Taking it back refuses the proxy again and stops serving it.
    delete(&t.g.client, r2, &grant).await?;
    settle(&t, vec![entry("revoked", vec![], vec![not_permitted()])]).await?;
    let start = std::time::Instant::now();
    while https_get(t.https, &host, "/", &pem).await.is_ok() {
        assert!(
            start.elapsed().as_secs() < 15,
            "still served after the delegation was revoked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // `*` on its own delegates to every namespace.
    settle(
        &t,
        vec![entry(
            "wildcard",
            vec![(r2.into(), delegation("everyone", "cert", &["*"]))],
            vec![valid(r, "secure"), served()],
        )],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_an_include_cannot_escape_its_conditions() -> TestResult {
    let t = tenancy("mt-include").await?;
    let (r, tn) = (t.root.as_str(), t.tenant.as_str());
    let host = format!("portal.{r}.example.com");
    let steady = || json!([{"name": "steady", "port": 80}]);
    let include = |name: &str, conditions: serde_json::Value| json!({"name": name, "namespace": tn, "conditions": conditions});
    let blue = ("x-tenant", "blue");
    settle(
        &t,
        vec![entry(
            "includes with conditions",
            vec![
                (r.into(), proxy("portal", json!({"virtualhost": {"fqdn": host}, "includes": [
                    include("tenant", json!([{"prefix": "/tenant"}, {"header": {"name": "x-tenant", "exact": "blue"}}])),
                    include("regexer", json!([{"prefix": "/re"}])),
                    include("querier", json!([{"prefix": "/q"}, {"queryParameter": {"name": "tenant", "exact": "blue"}}])),
                ]}))),
                // `/` and `/admin` of the tenant are `/tenant` and
                // `/tenant/admin`, with the header, on the portal.
                (tn.into(), proxy("tenant", json!({"routes": [
                    {"services": steady()},
                    {"conditions": [{"prefix": "/admin"}], "services": steady()}]}))),
                // An alternation must not reach past the include's prefix.
                (tn.into(), proxy("regexer", json!({"routes": [
                    {"conditions": [{"regex": "/x|/.*"}], "services": steady()}]}))),
                (tn.into(), proxy("querier", json!({"routes": [{"services": steady()}]}))),
            ],
            vec![
                valid(r, "portal"),
                valid(tn, "tenant"),
                valid(tn, "regexer"),
                with_header(&host, "/tenant/admin", blue, 200, "steady"),
                answers(&host, "/tenant/admin", 404),
                with_header(&host, "/tenant/admin", ("x-tenant", "red"), 404, ""),
                with_header(&host, "/admin", blue, 404, ""),
                with_header(&host, "/", blue, 404, ""),
                serves(&host, "/re/x", "steady"),
                serves(&host, "/re/anything", "steady"),
                answers(&host, "/admin", 404),
                answers(&host, "/x", 404),
                serves(&host, "/q?tenant=blue", "steady"),
                answers(&host, "/q", 404),
                answers(&host, "/q?tenant=red", 404),
            ],
        )],
    )
    .await?;
    // Include conditions that cannot be kept are refused on the includer.
    settle(
        &t,
        vec![entry(
            "include conditions that are refused",
            vec![
                (
                    r.into(),
                    proxy(
                        "exact-include",
                        json!({
                    "virtualhost": {"fqdn": format!("exact.{r}.example.com")},
                    "includes": [include("tenant", json!([{"exact": "/only"}]))]}),
                    ),
                ),
                (
                    r.into(),
                    proxy(
                        "regex-include",
                        json!({
                    "virtualhost": {"fqdn": format!("regex.{r}.example.com")},
                    "includes": [include("tenant", json!([{"regex": "/only.*"}]))]}),
                    ),
                ),
            ],
            vec![
                invalid(
                    r,
                    "exact-include",
                    "IncludeError",
                    "PathMatchConditionsNotValid",
                    "include tenant: exact conditions are not allowed in includes block",
                ),
                invalid(
                    r,
                    "regex-include",
                    "IncludeError",
                    "PathMatchConditionsNotValid",
                    "include tenant: regex conditions are not allowed in includes block",
                ),
                answers(&format!("exact.{r}.example.com"), "/", 404),
                answers(&format!("regex.{r}.example.com"), "/anything", 404),
            ],
        )],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_duplicate_fqdns_invalidate_both_and_say_why() -> TestResult {
    let t = tenancy("mt-dup").await?;
    let (r, r2) = (t.root.as_str(), t.root2.as_str());
    let host = format!("shared.{r}.example.com");
    let first = root("first", &host, "steady");
    let second = root("second", &host, "steady");
    settle(
        &t,
        vec![entry(
            "one claim",
            vec![(r.into(), first.clone())],
            vec![valid(r, "first"), serves(&host, "/", "steady")],
        )],
    )
    .await?;
    // Sorted by namespace/name, the same words on both.
    let (a, b) = if format!("{r}/first") < format!("{r2}/second") {
        (format!("{r}/first"), format!("{r2}/second"))
    } else {
        (format!("{r2}/second"), format!("{r}/first"))
    };
    let why = format!("fqdn \"{host}\" is used in multiple HTTPProxies: {a}, {b}");
    let dup =
        |ns: &str, name: &str| invalid(ns, name, "VirtualHostError", "DuplicateVhost", why.clone());
    settle(
        &t,
        vec![entry(
            "two claims",
            vec![(r2.into(), second.clone())],
            vec![dup(r, "first"), dup(r2, "second"), answers(&host, "/", 404)],
        )],
    )
    .await?;
    delete(&t.g.client, r2, &second).await?;
    settle(
        &t,
        vec![entry(
            "one claim again",
            vec![],
            vec![valid(r, "first"), serves(&host, "/", "steady")],
        )],
    )
    .await
}
