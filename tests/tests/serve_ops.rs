//! Operating `contour serve`: mTLS on xDS (refusal, `contour cli`, certificate
//! rotation), NACKs, killing and restarting under traffic, and two replicas
//! with one leader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use contour::cli::{CliArgs, Format, Resource};
use contour_tests::k8s::{resource_of, service_for};
use contour_tests::pki::Ca;
use contour_tests::{ApiServer, ContourServe, TestNet};
use kube::api::DynamicObject;
use serde_json::json;

mod common;

use common::{TestResult, XdsMode, get, ground_isolated, ground_scoped, tail};

fn cli_args(resource: Resource, port: u16) -> CliArgs {
    CliArgs {
        resource,
        names: vec![],
        contour: format!("127.0.0.1:{port}"),
        cafile: None,
        cert_file: None,
        key_file: None,
        server_name: "contour".into(),
        output: Format::Yaml,
        once: true,
    }
}

/// Runs `contour cli` in-process and returns what it printed.
async fn cli(args: CliArgs) -> Result<String, contour::cli::CliError> {
    let mut out: Vec<u8> = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), contour::cli::run(args, &mut out))
        .await
        .map_err(|_| contour::cli::CliError::Flags("timed out".into()))??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn wait_until<F, Fut>(what: &str, secs: u64, mut f: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Box<dyn std::error::Error>>>,
{
    let start = Instant::now();
    loop {
        if f().await? {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(secs) {
            return Err(format!("{what}: not within {secs} s").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn proxies(
    client: &kube::Client,
    ns: &str,
) -> Result<kube::Api<DynamicObject>, Box<dyn std::error::Error>> {
    let ar = resource_of(&json!({"apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy"}))?;
    Ok(kube::Api::namespaced_with(client.clone(), ns, &ar))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_mtls_cli_rotation_and_nack() -> TestResult {
    let net = TestNet::shared()?;
    let kuard = net.backend("kuard")?;
    let g = ground_isolated("ops-mtls", &[], XdsMode::default()).await?;
    for m in service_for("kuard", &[kuard.addr]) {
        g.apply(&m).await?;
    }
    // The seed's kuard IngressRoute.
    let fqdn = format!("kuard.{}.example.com", g.ns);
    g.apply(&json!({
        "apiVersion": "contour.heptio.com/v1beta1", "kind": "IngressRoute",
        "metadata": {"name": "kuard", "labels": {"app": "kuard"}},
        "spec": {"virtualhost": {"fqdn": fqdn}, "routes": [
            {"match": "/", "services": [{"name": "kuard", "port": 80}]}
        ]}
    }))
    .await?;
    g.expect(&fqdn, "/", (200, "kuard")).await?;

    // `contour cli rds` with Envoy's certificate prints the kuard route.
    let mut args = cli_args(Resource::Rds, g.contour.xds_port);
    args.cafile = Some(g.pki.ca.clone());
    args.cert_file = Some(g.pki.envoy_cert.clone());
    args.key_file = Some(g.pki.envoy_key.clone());
    let out = cli(args.clone()).await?;
    assert!(out.contains("name: ingress_http"), "{out}");
    assert!(out.contains(&fqdn), "{out}");
    assert!(
        out.contains(&format!("cluster: {}/kuard/80/da39a3ee5e", g.ns)),
        "{out}"
    );
    // `contour cli cds` asks the per-type service, so it prints clusters as
    // upstream's per-type Envoy gets them (the seed's output), while this
    // Envoy follows over ADS and gets `ads: {}` in their place.
    let mut cds = args.clone();
    cds.resource = Resource::Cds;
    let out = cli(cds).await?;
    assert!(out.contains("edsConfig:"), "{out}");
    assert!(out.contains("apiConfigSource:"), "{out}");
    assert!(!out.contains("ads: {}"), "{out}");

    // Without a client certificate, or in plain text, xDS is refused.
    let mut anonymous = args.clone();
    anonymous.cert_file = None;
    anonymous.key_file = None;
    assert!(
        cli(anonymous).await.is_err(),
        "TLS without a client certificate must be refused"
    );
    assert!(
        cli(cli_args(Resource::Lds, g.contour.xds_port))
            .await
            .is_err(),
        "plain gRPC must be refused"
    );

    // A proxy that passes our validation but Envoy refuses (nested counted
    // repetitions whose product exceeds RE2's limit of 1000): NACK counted, traced to the proxy's status,
    // not pushed again, and the routes Envoy had keep serving.
    let bad_host = format!("regex.{}.example.com", g.ns);
    let regex = format!("/x{}(?:[a-z]{{100}}){{100}}", g.ns.len());
    let bad = json!({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": "regex"},
        "spec": {"virtualhost": {"fqdn": bad_host}, "routes": [
            {"conditions": [{"regex": regex}], "services": [{"name": "kuard", "port": 80}]}
        ]}
    });
    g.apply(&bad).await?;
    let nacks = "contour_xds_nack_total{type=\"RouteConfiguration\"}";
    wait_until("a RouteConfiguration NACK", 15, || async {
        Ok(g.contour.metric(nacks).await?.unwrap_or(0.0) >= 1.0)
    })
    .await?;
    let api = proxies(&g.client, &g.ns)?;
    wait_until("the EnvoyRejected error on the proxy", 15, || async {
        let o = api.get("regex").await?;
        Ok(o.data["status"]["conditions"][0]["errors"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["type"] == "EnvoyRejected")))
    })
    .await?;
    assert_eq!(get(g.listen, &fqdn, "/").await, (200, "kuard".to_string()));
    let counted = g.contour.metric(nacks).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        g.contour.metric(nacks).await?,
        counted,
        "the refused version must not be pushed again"
    );
    assert!(
        g.contour.log().contains("Envoy rejected configuration"),
        "the NACK is logged with Envoy's error"
    );
    // Fixing the proxy clears the error and serves it.
    let mut fixed = bad.clone();
    fixed["spec"]["routes"][0]["conditions"] = json!([{"prefix": "/"}]);
    g.apply(&fixed).await?;
    g.expect(&bad_host, "/", (200, "kuard")).await?;
    wait_until("the proxy valid again", 15, || async {
        Ok(api.get("regex").await?.data["status"]["currentStatus"] == "valid")
    })
    .await?;

    // Rotation to a new CA: the CA file becomes a bundle of old and new, the
    // serving pair is re-issued by the new CA. Envoy (old trust) stays
    // connected and keeps following; a client that trusts only the new CA
    // gets in, which proves the new certificate is served.
    let ca2 = Ca::new("rotated-ca")?;
    let serving = ca2.server("contour", &["contour"])?;
    let client2 = ca2.client("envoy", None)?;
    let old_ca = std::fs::read_to_string(&g.pki.ca)?;
    std::fs::write(&g.pki.ca, format!("{old_ca}{}", ca2.cert_pem()))?;
    std::fs::write(&g.pki.contour_key, &serving.key_pem)?;
    std::fs::write(&g.pki.contour_cert, &serving.cert_pem)?;
    let dir = g.pki.ca.parent().ok_or("no pki dir")?.to_path_buf();
    let (ca2_path, cert2, key2) = (dir.join("ca2.crt"), dir.join("c2.crt"), dir.join("c2.key"));
    std::fs::write(&ca2_path, ca2.cert_pem())?;
    std::fs::write(&cert2, &client2.cert_pem)?;
    std::fs::write(&key2, &client2.key_pem)?;
    let mut rotated = cli_args(Resource::Cds, g.contour.xds_port);
    rotated.cafile = Some(ca2_path);
    rotated.cert_file = Some(cert2);
    rotated.key_file = Some(key2);
    let out = cli(rotated).await?;
    assert!(out.contains("/kuard/80/da39a3ee5e"), "{out}");
    let mut moved = fixed.clone();
    moved["spec"]["routes"]
        .as_array_mut()
        .ok_or("routes")?
        .push(json!({"conditions": [{"prefix": "/moved"}], "directResponsePolicy": {"statusCode": 204}}));
    g.apply(&moved).await?;
    g.expect(&bad_host, "/moved", (204, "")).await?;
    assert!(g.contour.log().contains("xDS TLS certificates reloaded"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_elect_one_leader_and_envoy_survives_a_killed_contour() -> TestResult {
    let net = TestNet::shared()?;
    let web = net.backend("web")?;
    let lease = [
        // Short enough for a quick takeover, long enough that a leader on a
        // loaded machine keeps renewing.
        "--leader-election-lease-duration=4s",
        "--leader-election-renew-deadline=3s",
        "--leader-election-retry-period=300ms",
    ];
    // The other tests' controllers watch every namespace and each leads a
    // lease of its own, so they would write this proxy's status too: the
    // proxy and both replicas have an ingress class of their own.
    let class = "ops-replicas";
    let class_flag = format!("--ingress-class-name={class}");
    let mut own: Vec<&str> = lease.to_vec();
    own.push(class_flag.as_str());
    let mut g = ground_scoped("ops-replicas", &own, None).await?;
    let api = ApiServer::shared()?;
    let mut flags: Vec<String> = own.iter().map(|s| s.to_string()).collect();
    flags.push(format!("--leader-election-resource-namespace={}", g.ns));
    flags.push(format!("--watch-namespaces={}", g.ns));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let second = ContourServe::start(api, Some(&g.pki), &flags).await?;

    for m in service_for("web", &[web.addr]) {
        g.apply(&m).await?;
    }
    let host = format!("web.{}.example.com", g.ns);
    // Every version serves "/" (the traffic below) and marks itself with a
    // direct response on its own path.
    let proxy = |marker: &str| {
        json!({
            "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": class, "virtualhost": {"fqdn": host}, "routes": [
                {"conditions": [{"prefix": "/"}], "services": [{"name": "web", "port": 80}]},
                {"conditions": [{"prefix": marker}], "directResponsePolicy": {"statusCode": 204}}
            ]}
        })
    };
    g.apply(&proxy("/one")).await?;
    g.expect(&host, "/one", (204, "")).await?;
    g.expect(&host, "/", (200, "web")).await?;

    // Exactly one leader, and only it writes status.
    wait_until("one leader", 10, || async {
        let a = g.contour.metric("contour_leader").await?.unwrap_or(0.0);
        let b = second.metric("contour_leader").await?.unwrap_or(0.0);
        Ok(a + b == 1.0)
    })
    .await?;
    let first_leads = g.contour.metric("contour_leader").await? == Some(1.0);
    let (leader, follower) = if first_leads {
        (&g.contour, &second)
    } else {
        (&second, &g.contour)
    };
    let writes = "contour_status_update_total{kind=\"HTTPProxy\"}";
    let proxies_api = proxies(&g.client, &g.ns)?;
    wait_until("status written", 10, || async {
        Ok(proxies_api.get("web").await?.data["status"]["currentStatus"] == "valid")
    })
    .await?;
    assert!(leader.metric(writes).await?.unwrap_or(0.0) >= 1.0);
    assert_eq!(
        follower.metric(writes).await?.unwrap_or(0.0),
        0.0,
        "the follower must not write status"
    );

    // Traffic runs while the replica Envoy follows is killed, then restarted.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = {
        let (stop, ok, failed, host, port) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            host.clone(),
            g.listen,
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match get(port, &host, "/").await {
                    (200, _) => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    g.contour.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // If the killed replica led, the other takes over and writes status.
    wait_until("the surviving replica leads", 20, || async {
        Ok(second.metric("contour_leader").await? == Some(1.0))
    })
    .await?;
    g.apply(&proxy("/two")).await?;
    wait_until(
        "status of generation 2 written by the survivor",
        10,
        || async {
            let o = proxies_api.get("web").await?;
            Ok(o.data["status"]["conditions"][0]["observedGeneration"] == 2)
        },
    )
    .await?;

    // Envoy still has its last configuration; the restarted replica brings
    // the change.
    assert_eq!(
        get(g.listen, &host, "/two").await.0,
        200,
        "no xDS: Envoy keeps the old config"
    );
    g.contour.restart().await?;
    // Envoy's reconnect backoff (jittered, growing to 30 s) decides when.
    g.expect_within(&host, "/two", (204, ""), 45).await?;
    g.apply(&proxy("/three")).await?;
    g.expect(&host, "/three", (204, "")).await?;
    stop.store(true, Ordering::SeqCst);
    traffic.await?;
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(ok > 50, "too little traffic: {ok} ok");
    assert_eq!(
        failed, 0,
        "requests failed while contour was killed and restarted ({ok} ok)"
    );
    let log = g.contour.log();
    assert!(!log.contains("panicked"), "{}", tail(&log, 20));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xds_refuses_foreign_expired_and_garbage_clients() -> TestResult {
    contour_tests::init_crypto();
    let api = ApiServer::shared()?;
    let client = api.admin_client().await?;
    contour_tests::k8s::install_crds(&client).await?;
    let ns = api.namespace("ops-hostile").await?;
    let (pki, ca) = contour_tests::XdsPki::with_ca(&ns)?;
    // Its own namespace only: with no Envoy it would write statuses without
    // the NACKs other tests' controllers see.
    let lease = format!("--leader-election-resource-namespace={ns}");
    let watch = format!("--watch-namespaces={ns}");
    let contour = ContourServe::start(api, Some(&pki), &[lease.as_str(), watch.as_str()]).await?;
    let dir = pki.ca.parent().ok_or("no pki dir")?.to_path_buf();
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, std::io::Error> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let as_client = |cert: std::path::PathBuf, key: std::path::PathBuf| {
        let mut a = cli_args(Resource::Cds, contour.xds_port);
        a.cafile = Some(pki.ca.clone());
        a.cert_file = Some(cert);
        a.key_file = Some(key);
        a
    };

    // Idle TCP connections that never speak TLS, and garbage bytes.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(("127.0.0.1", contour.xds_port)).await?);
    }
    {
        use tokio::io::AsyncWriteExt;
        let mut junk = tokio::net::TcpStream::connect(("127.0.0.1", contour.xds_port)).await?;
        junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).await?;
        junk.write_all(&vec![0xab; 4096]).await?;
    }

    // A certificate from another CA, and an expired one from the right CA.
    let other = Ca::new("someone-else")?.client("envoy", None)?;
    let foreign = as_client(
        write("foreign.crt", &other.cert_pem)?,
        write("foreign.key", &other.key_pem)?,
    );
    assert!(
        cli(foreign).await.is_err(),
        "a certificate from another CA must be refused"
    );
    let old = ca.expired_client("envoy")?;
    let expired = as_client(
        write("expired.crt", &old.cert_pem)?,
        write("expired.key", &old.key_pem)?,
    );
    assert!(
        cli(expired).await.is_err(),
        "an expired certificate must be refused"
    );

    // Meanwhile a proper client is served at once.
    let start = Instant::now();
    let out = cli(as_client(pki.envoy_cert.clone(), pki.envoy_key.clone())).await?;
    assert!(
        out.contains("typeUrl: type.googleapis.com/envoy.config.cluster.v3.Cluster"),
        "{out}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "slow while idle clients hang on"
    );
    drop(idle);
    let log = contour.log();
    assert!(
        log.contains("xDS client refused"),
        "refusals are logged:\n{}",
        tail(&log, 20)
    );
    Ok(())
}
