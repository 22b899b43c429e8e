//! `contour bootstrap` and `contour certgen`, run as the built binary:
//! the bootstrap must start a real Envoy 1.40 and expose only the stats and
//! readiness paths; the certificates must chain and complete a real mutual
//! TLS handshake; `--kube` must write Secrets to a real API server.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use contour_tests::{ApiServer, Envoy, contour, free_port, init_crypto, process};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Error = Box<dyn std::error::Error>;

/// Nothing serves xDS in these tests: without this, Envoy waits 15 s per
/// subscription (LDS, CDS, RTDS) before it goes LIVE.
fn short_fetch_timeouts(bootstrap: &mut serde_json::Value) {
    let d = &mut bootstrap["dynamic_resources"];
    for key in ["lds_config", "cds_config"] {
        if d[key].is_object() {
            d[key]["initial_fetch_timeout"] = "0.5s".into();
        }
    }
    if let Some(layers) = bootstrap["layered_runtime"]["layers"].as_array_mut() {
        for l in layers {
            if l["rtds_layer"].is_object() {
                l["rtds_layer"]["rtds_config"]["initial_fetch_timeout"] = "0.5s".into();
            }
        }
    }
}

fn scratch(name: &str) -> Result<PathBuf, Error> {
    let dir = process::run_dir()?.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------- certgen

/// The DER of the first PEM block.
fn der(pem_text: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    let body: String = pem_text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// Checks a leaf against its CA: signature, issuer, DNS names and expiry
/// (`lifetime_days` from now, within a minute).
fn check_leaf(ca_pem: &str, leaf_pem: &str, names: &[String], lifetime_days: i64) -> TestResult {
    let ca_der = der(ca_pem)?;
    let (_, ca) = X509Certificate::from_der(&ca_der)?;
    assert!(ca.is_ca());
    let leaf_der = der(leaf_pem)?;
    let (_, leaf) = X509Certificate::from_der(&leaf_der)?;
    leaf.verify_signature(Some(ca.public_key()))?;
    assert_eq!(leaf.issuer(), ca.subject());
    let dns: Vec<String> = leaf
        .subject_alternative_name()?
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(dns, names);
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let expected = now + lifetime_days * 86_400;
    let not_after = leaf.validity().not_after.timestamp();
    assert!(
        (not_after - expected).abs() < 60,
        "{not_after} vs {expected}"
    );
    Ok(())
}

fn names(service: &str, ns: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{ns}"),
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
    ]
}

/// A real mutual TLS handshake, in memory: Contour's certificate serves
/// `contour` and requires a client certificate from the CA; Envoy's is the
/// client's.
fn mtls_handshake(ca: &str, server: (&str, &str), client: (&str, &str)) -> TestResult {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    init_crypto();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der(ca)?))?;
    let roots = Arc::new(roots);
    let chain = |pem: &str| -> Result<Vec<CertificateDer<'static>>, Error> {
        Ok(vec![CertificateDer::from(der(pem)?)])
    };
    let key = |pem: &str| -> Result<PrivateKeyDer<'static>, Error> {
        Ok(PrivateKeyDer::try_from(der(pem)?)?)
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder(roots.clone()).build()?;
    let server_config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain(server.0)?, key(server.1)?)?;
    let client_config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain(client.0)?, key(client.1)?)?;
    let mut c =
        rustls::ClientConnection::new(Arc::new(client_config), ServerName::try_from("contour")?)?;
    let mut srv = rustls::ServerConnection::new(Arc::new(server_config))?;
    for _ in 0..10 {
        if !c.is_handshaking() && !srv.is_handshaking() {
            break;
        }
        let mut buf = Vec::new();
        c.write_tls(&mut buf)?;
        srv.read_tls(&mut buf.as_slice())?;
        srv.process_new_packets()?;
        let mut buf = Vec::new();
        srv.write_tls(&mut buf)?;
        c.read_tls(&mut buf.as_slice())?;
        c.process_new_packets()?;
    }
    assert!(!c.is_handshaking() && !srv.is_handshaking());
    assert!(srv.peer_certificates().is_some_and(|p| !p.is_empty()));
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<String, Error> {
    Ok(std::fs::read_to_string(dir.join(name))?)
}

#[test]
fn certgen_pem_files_chain_to_the_ca_and_the_ca_is_kept_unless_overwritten() -> TestResult {
    let dir = scratch("certgen-pem")?;
    let out = s(&dir);
    contour::run_ok(&[
        "certgen",
        "--pem",
        "--certificate-lifetime",
        "10",
        "--namespace",
        "heptio-contour",
        "--output-dir",
        &out,
    ])?;
    let ca = read(&dir, "cacert.pem")?;
    let (cc, ck) = (
        read(&dir, "contourcert.pem")?,
        read(&dir, "contourkey.pem")?,
    );
    let (ec, ek) = (read(&dir, "envoycert.pem")?, read(&dir, "envoykey.pem")?);
    check_leaf(&ca, &cc, &names("contour", "heptio-contour"), 10)?;
    check_leaf(&ca, &ec, &names("envoy", "heptio-contour"), 10)?;
    mtls_handshake(&ca, (&cc, &ck), (&ec, &ek))?;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("contourkey.pem"))?.permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // Again without --overwrite (positional OUTPUTDIR, `--lifetime` alias): all kept.
    contour::run_ok(&["certgen", "--pem", "--lifetime", "20", &out])?;
    assert_eq!(read(&dir, "cacert.pem")?, ca);
    assert_eq!(read(&dir, "envoykey.pem")?, ek);

    // With --overwrite: a new CA, and the new leaves chain to it.
    contour::run_ok(&["certgen", "--pem", "--overwrite", "--lifetime", "20", &out])?;
    let ca2 = read(&dir, "cacert.pem")?;
    assert_ne!(ca2, ca);
    let (cc2, ck2) = (
        read(&dir, "contourcert.pem")?,
        read(&dir, "contourkey.pem")?,
    );
    check_leaf(&ca2, &cc2, &names("contour", "projectcontour"), 20)?;
    mtls_handshake(
        &ca2,
        (&cc2, &ck2),
        (&read(&dir, "envoycert.pem")?, &read(&dir, "envoykey.pem")?),
    )?;

    // A partial set is refused rather than mixed with a new CA.
    std::fs::remove_file(dir.join("envoykey.pem"))?;
    let refused = contour::run(&["certgen", "--pem", &out])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refusing to mix certificates"), "{stderr}");
    assert_eq!(read(&dir, "cacert.pem")?, ca2);
    Ok(())
}

#[tokio::test]
async fn certgen_kube_creates_the_secrets_and_leaves_them_unless_overwritten() -> TestResult {
    let server = ApiServer::shared()?;
    let ns = server.namespace("certgen").await?;
    let kubeconfig = s(server.kubeconfig());
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "certgen",
            "--kube",
            "--kubeconfig",
            &kubeconfig,
            "--namespace",
            &ns,
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        contour::run(&refs)
    };
    let ok = |extra: &[&str]| -> TestResult {
        let out = run(extra)?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };

    ok(&[])?;
    let secrets: Api<Secret> = Api::namespaced(server.admin_client().await?, &ns);
    let get = |name: &'static str| {
        let api = secrets.clone();
        async move { api.get(name).await }
    };
    let field = |s: &Secret, k: &str| -> String {
        s.data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    };
    let contour1 = get("contourcert").await?;
    let envoy1 = get("envoycert").await?;
    for (secret, service) in [(&contour1, "contour"), (&envoy1, "envoy")] {
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        check_leaf(
            &field(secret, "ca.crt"),
            &field(secret, "tls.crt"),
            &names(service, &ns),
            365,
        )?;
    }
    assert_eq!(field(&contour1, "ca.crt"), field(&envoy1, "ca.crt"));

    // Without --overwrite: untouched (same resourceVersion, same data).
    ok(&[])?;
    let contour2 = get("contourcert").await?;
    assert_eq!(
        contour2.metadata.resource_version,
        contour1.metadata.resource_version
    );
    assert_eq!(contour2.data, contour1.data);

    // With --overwrite: replaced, with a new CA in both.
    ok(&["--overwrite"])?;
    let contour3 = get("contourcert").await?;
    let envoy3 = get("envoycert").await?;
    assert_ne!(field(&contour3, "ca.crt"), field(&contour1, "ca.crt"));
    assert_eq!(field(&contour3, "ca.crt"), field(&envoy3, "ca.crt"));

    // One of the two gone: refused, the other left alone.
    secrets
        .delete("envoycert", &DeleteParams::default())
        .await?;
    let refused = run(&[])?;
    assert!(!refused.status.success());
    assert_eq!(get("contourcert").await?.data, contour3.data);
    Ok(())
}

#[tokio::test]
async fn certgen_yaml_secrets_are_accepted_by_the_api_server() -> TestResult {
    let server = ApiServer::shared()?;
    let ns = server.namespace("certgen-yaml").await?;
    let dir = scratch("certgen-yaml")?;
    contour::run_ok(&[
        "certgen",
        "--yaml",
        "--namespace",
        &ns,
        "--output-dir",
        &s(&dir),
    ])?;
    let secrets: Api<Secret> = Api::namespaced(server.admin_client().await?, &ns);
    for name in ["contourcert", "envoycert"] {
        let secret: Secret = serde_yaml::from_str(&read(&dir, &format!("{name}.yaml"))?)?;
        let created = secrets.create(&PostParams::default(), &secret).await?;
        assert_eq!(created.type_.as_deref(), Some("kubernetes.io/tls"));
        let keys: Vec<_> = created.data.unwrap_or_default().into_keys().collect();
        assert_eq!(keys, ["ca.crt", "tls.crt", "tls.key"]);
    }
    Ok(())
}

// -------------------------------------------------------------- bootstrap

/// One HTTP/1.1 GET over a unix socket (connection closed after it); returns the whole response.
fn unix_get(socket: &Path, path: &str) -> Result<String, Error> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// The stats listener answers the three paths and nothing else.
async fn check_stats_listener(stats: u16) -> TestResult {
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{stats}");
    let ready = http.get(format!("{base}/ready")).send().await?;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await?.trim(), "LIVE");
    let prom = http.get(format!("{base}/stats/prometheus")).send().await?;
    assert_eq!(prom.status(), 200);
    assert!(prom.text().await?.contains("envoy_server_live"));
    assert_eq!(
        http.get(format!("{base}/stats")).send().await?.status(),
        200
    );
    for hidden in ["/clusters", "/config_dump", "/quitquitquit", "/"] {
        let r = http.get(format!("{base}{hidden}")).send().await?;
        assert_eq!(r.status(), 404, "{hidden}");
    }
    let post = http.post(format!("{base}/ready")).send().await?;
    assert_eq!(post.status(), 404, "only GET is forwarded");
    Ok(())
}

#[tokio::test]
async fn bootstrap_with_the_admin_socket_and_sds_certificates_runs_in_a_real_envoy() -> TestResult {
    let dir = scratch("bootstrap-socket")?;
    let certs = dir.join("certs");
    contour::run_ok(&["certgen", "--pem", "--output-dir", &s(&certs)])?;
    let socket = dir.join("admin.sock");
    let path = dir.join("envoy.json");
    let (xds, stats) = (free_port()?, free_port()?);
    contour::run_ok(&[
        "bootstrap",
        &s(&path),
        "--admin-address",
        &s(&socket),
        "--xds-port",
        &xds.to_string(),
        "--stats-address",
        "127.0.0.1",
        "--stats-port",
        &stats.to_string(),
        "--envoy-cafile",
        &s(&certs.join("cacert.pem")),
        "--envoy-cert-file",
        &s(&certs.join("envoycert.pem")),
        "--envoy-key-file",
        &s(&certs.join("envoykey.pem")),
        "--resources-dir",
        &s(&dir.join("resources")),
    ])?;
    assert!(dir.join("resources/sds/xds-tls-certificate.json").is_file());
    assert!(
        dir.join("resources/sds/xds-validation-context.json")
            .is_file()
    );
    let mut bootstrap: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    short_fetch_timeouts(&mut bootstrap);
    // The stats listener forwards /ready to the admin socket.
    let envoy = Envoy::start_as_is(&bootstrap, &format!("http://127.0.0.1:{stats}")).await?;

    let clusters = unix_get(&socket, "/clusters")?;
    assert!(
        clusters.contains(&format!("contour::127.0.0.1:{xds}::")),
        "clusters:\n{clusters}\nenvoy log:\n{}",
        envoy.log()
    );
    assert!(clusters.contains("envoy-admin::"), "{clusters}");
    // Envoy loaded the certgen certificates through the SDS files.
    let loaded = unix_get(&socket, "/certs")?;
    for file in ["envoycert.pem", "cacert.pem"] {
        let pem_der = der(&read(&certs, file)?)?;
        let (_, cert) = X509Certificate::from_der(&pem_der)?;
        let serial: String = cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            loaded.contains(&serial),
            "{file} ({serial}) not in /certs:\n{loaded}"
        );
    }
    check_stats_listener(stats).await
}

#[tokio::test]
async fn bootstrap_with_an_admin_port_and_per_type_streams_runs_in_a_real_envoy() -> TestResult {
    let dir = scratch("bootstrap-port")?;
    let path = dir.join("envoy.json");
    let (xds, stats, admin) = (free_port()?, free_port()?, free_port()?);
    let out = contour::run_ok(&[
        "bootstrap",
        "-",
        "--admin-port",
        &admin.to_string(),
        "--xds-mode",
        "per-type",
        "--xds-port",
        &xds.to_string(),
        "--stats-address",
        "127.0.0.1",
        "--stats-port",
        &stats.to_string(),
    ])?;
    std::fs::write(&path, &out.stdout)?;
    let mut bootstrap: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(bootstrap["dynamic_resources"].get("ads_config").is_none());
    short_fetch_timeouts(&mut bootstrap);
    let envoy = Envoy::start_as_is(&bootstrap, &format!("http://127.0.0.1:{admin}")).await?;
    let clusters = envoy.admin_get("/clusters").await?;
    assert!(
        clusters.contains(&format!("contour::127.0.0.1:{xds}::")),
        "{clusters}"
    );
    assert!(
        clusters.contains(&format!("envoy-admin::127.0.0.1:{admin}::")),
        "{clusters}"
    );
    check_stats_listener(stats).await
}

#[test]
fn bootstrap_refuses_bad_flags_with_a_clear_message() -> TestResult {
    let partial = contour::run(&["bootstrap", "-", "--envoy-cafile", "/ca.crt"])?;
    assert!(!partial.status.success());
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("you must supply all TLS parameters")
    );
    let missing = contour::run(&[
        "bootstrap",
        "-",
        "--envoy-cafile",
        "/nonexistent/ca.crt",
        "--envoy-cert-file",
        "/nonexistent/tls.crt",
        "--envoy-key-file",
        "/nonexistent/tls.key",
    ])?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/"));
    Ok(())
}
