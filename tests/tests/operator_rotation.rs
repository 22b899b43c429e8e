//! Certificates rotate by time, against a real API server and the running
//! controller: with a short lifetime the controller wakes itself when the
//! leaves are due (no event triggers it), issues new leaves, and keeps the
//! CA, so Contour and Envoy keep trusting each other.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

use contour_tests::operator::{create, ctx, setup};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn field(s: &Secret, key: &str) -> Option<Vec<u8>> {
    s.data.as_ref()?.get(key).map(|b| b.0.clone())
}

/// The leaf's `notBefore`, in seconds since the epoch.
fn issued_at(s: &Secret) -> Result<i64, Box<dyn std::error::Error>> {
    let pem = field(s, "tls.crt").ok_or("tls.crt")?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem)?;
    Ok(block.parse_x509()?.validity().not_before.timestamp())
}

#[tokio::test]
async fn leaves_rotate_when_due_keeping_the_ca() -> TestResult {
    let (client, ns) = setup("op-due").await?;
    let controller = tokio::spawn(contour_operator::controller::run(
        ctx(&client),
        Some(ns.clone()),
    ));
    // Lifetime 1 day, renewed 8 s after issue.
    create(
        &client,
        &ns,
        "due",
        json!({"certificates": {"lifetime": "24h", "rotateBefore": "23h59m52s"}}),
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    let first = loop {
        if let Some(s) = secrets.get_opt("envoycert-due").await? {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err("no certificate issued".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The CA is stored before the leaves it signs.
    let ca = secrets.get("contourca-due").await?;
    let issued = Instant::now();
    let rotated = loop {
        let now = secrets.get("envoycert-due").await?;
        if field(&now, "tls.crt") != field(&first, "tls.crt") {
            break now;
        }
        if issued.elapsed() > Duration::from_secs(30) {
            return Err("the leaves were not rotated when due".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let took = issued.elapsed();
    eprintln!("rotated {took:?} after the test saw the first leaves");
    // Due 8 s after issue: the leaves' own issue times say so whenever the
    // test got to see them (they are whole seconds, hence 7 s).
    let between = issued_at(&rotated)? - issued_at(&first)?;
    assert!(
        between >= 7,
        "rotated {between} s after issue, before it was due"
    );
    assert_eq!(field(&rotated, "ca.crt"), field(&ca, "ca.crt"), "same CA");
    assert_eq!(
        field(&secrets.get("contourca-due").await?, "ca.key"),
        field(&ca, "ca.key")
    );
    let ca_pem = field(&ca, "ca.crt").ok_or("ca.crt")?;
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(&ca_pem)?;
    let ca_cert = ca_block.parse_x509()?;
    for name in ["envoycert-due", "contourcert-due"] {
        let leaf = field(&secrets.get(name).await?, "tls.crt").ok_or("tls.crt")?;
        let (_, block) = x509_parser::pem::parse_x509_pem(&leaf)?;
        block
            .parse_x509()?
            .verify_signature(Some(ca_cert.public_key()))?;
    }
    controller.abort();
    Ok(())
}
