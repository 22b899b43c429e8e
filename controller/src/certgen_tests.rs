use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn der(pem_text: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(pem::parse(pem_text)?.into_contents())
}

fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .ok()
        .flatten()
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
        .unwrap_or_default()
}

#[test]
fn leaves_chain_to_the_ca_with_the_service_names_and_lifetime() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let settings = CertSettings {
        lifetime_days: 30,
        namespace: "heptio-contour".into(),
        ..CertSettings::default()
    };
    let certs = generate(&settings, now)?;
    let ca_der = der(&certs.ca_cert)?;
    let (_, ca) = X509Certificate::from_der(&ca_der)?;
    assert!(ca.is_ca());
    assert_eq!(
        ca.subject()
            .iter_common_name()
            .next()
            .map(|c| c.as_str().ok()),
        Some(Some("Project Contour"))
    );
    ca.verify_signature(None)?;

    for (service, pem_text, key) in [
        ("contour", &certs.contour_cert, &certs.contour_key),
        ("envoy", &certs.envoy_cert, &certs.envoy_key),
    ] {
        let leaf_der = der(pem_text)?;
        let (_, leaf) = X509Certificate::from_der(&leaf_der)?;
        leaf.verify_signature(Some(ca.public_key()))?;
        assert!(!leaf.is_ca());
        assert_eq!(leaf.issuer(), ca.subject());
        assert_eq!(
            dns_names(&leaf),
            service_names(service, "heptio-contour", "cluster.local")
        );
        let not_after = leaf.validity().not_after.timestamp();
        let expected = (now + Duration::days(30)).unix_timestamp();
        assert!(
            (not_after - expected).abs() <= 1,
            "{service}: {not_after} vs {expected}"
        );
        assert!(leaf.validity().not_before.timestamp() < now.unix_timestamp());
        assert_eq!(crate::tls::check_pair(Some(pem_text), Some(key)), Ok(()));
    }
    assert_eq!(
        service_names("contour", "projectcontour", "cluster.local"),
        [
            "contour",
            "contour.projectcontour",
            "contour.projectcontour.svc",
            "contour.projectcontour.svc.cluster.local"
        ]
    );
    Ok(())
}

#[test]
fn leaves_issued_from_a_kept_ca_chain_to_it() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let ca = generate_ca(300, now)?;
    let settings = CertSettings {
        lifetime_days: 2,
        ..CertSettings::default()
    };
    let renamed = CertSettings {
        contour_service: "contour-blue".into(),
        ..settings.clone()
    };
    let blue = issue(&renamed, &ca, now)?;
    let blue_der = der(&blue.contour_cert)?;
    let (_, blue_leaf) = X509Certificate::from_der(&blue_der)?;
    let mut want = service_names("contour-blue", "projectcontour", "cluster.local");
    want.push("contour".into());
    assert_eq!(
        dns_names(&blue_leaf),
        want,
        "the name Envoy's bootstrap checks is always there"
    );
    let first = issue(&settings, &ca, now)?;
    let later = issue(&settings, &ca, now + Duration::days(1))?;
    assert_eq!(first.ca_cert, ca.cert);
    assert_eq!(later.ca_cert, ca.cert, "the CA is kept");
    assert_ne!(first.contour_cert, later.contour_cert);
    assert_ne!(first.envoy_key, later.envoy_key);
    let ca_der = der(&ca.cert)?;
    let (_, ca_x509) = X509Certificate::from_der(&ca_der)?;
    let ca_after = ca_x509.validity().not_after.timestamp();
    assert!((ca_after - (now + Duration::days(300)).unix_timestamp()).abs() <= 1);
    for pem_text in [&later.contour_cert, &later.envoy_cert] {
        let leaf_der = der(pem_text)?;
        let (_, leaf) = X509Certificate::from_der(&leaf_der)?;
        leaf.verify_signature(Some(ca_x509.public_key()))?;
        let expected = (now + Duration::days(3)).unix_timestamp();
        assert!((leaf.validity().not_after.timestamp() - expected).abs() <= 1);
    }
    assert!(
        !format!("{ca:?}").contains("PRIVATE"),
        "the key stays out of logs"
    );
    let broken = CaMaterial {
        cert: ca.cert.clone(),
        key: "not a key".into(),
    };
    assert!(issue(&settings, &broken, now).is_err());
    Ok(())
}

#[test]
fn every_run_makes_a_new_ca() -> TestResult {
    let now = OffsetDateTime::now_utc();
    let a = generate(&CertSettings::default(), now)?;
    let b = generate(&CertSettings::default(), now)?;
    assert_ne!(a.ca_cert, b.ca_cert);
    Ok(())
}

fn fake() -> Certificates {
    Certificates {
        ca_cert: "CA".into(),
        contour_cert: "CC".into(),
        contour_key: "CK".into(),
        envoy_cert: "EC".into(),
        envoy_key: "EK".into(),
    }
}

fn data(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

#[test]
fn compact_secrets_carry_the_ca_in_each() -> TestResult {
    let out = secrets("projectcontour", "", SecretsFormat::Compact, &fake())?;
    let names: Vec<_> = out.iter().filter_map(|s| s.metadata.name.clone()).collect();
    assert_eq!(names, ["contourcert", "envoycert"]);
    for s in &out {
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("projectcontour"));
        assert_eq!(
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("contour")
        );
        assert_eq!(data(s, "ca.crt").as_deref(), Some("CA"));
    }
    assert_eq!(data(&out[0], "tls.crt").as_deref(), Some("CC"));
    assert_eq!(data(&out[1], "tls.key").as_deref(), Some("EK"));
    let yaml = serde_yaml::to_string(&out[0])?;
    assert!(
        yaml.contains("apiVersion: v1") && yaml.contains("kind: Secret"),
        "{yaml}"
    );
    Ok(())
}

#[test]
fn legacy_secrets_keep_the_ca_apart() -> TestResult {
    let out = secrets("ns", "-v2", SecretsFormat::Legacy, &fake())?;
    let names: Vec<_> = out.iter().filter_map(|s| s.metadata.name.clone()).collect();
    assert_eq!(names, ["contourcert-v2", "envoycert-v2", "cacert-v2"]);
    assert_eq!(data(&out[0], "ca.crt"), None);
    assert_eq!(out[2].type_.as_deref(), Some("Opaque"));
    assert_eq!(data(&out[2], "cacert.pem").as_deref(), Some("CA"));
    Ok(())
}

#[test]
fn invalid_names_are_refused() {
    for (ns, suffix) in [("Bad_NS", ""), ("ok", "_x"), ("", "")] {
        let e = secrets(ns, suffix, SecretsFormat::Compact, &fake()).err();
        assert!(
            matches!(e, Some(CertgenError::InvalidName(_))),
            "{ns:?} {suffix:?}"
        );
    }
}

#[test]
fn all_or_nothing() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches!(check_set(&s(&[]), &s(&["a", "b"])), Ok(false)));
    assert!(matches!(check_set(&s(&["a", "b"]), &s(&[])), Ok(true)));
    let e = check_set(&s(&["a"]), &s(&["b"])).err();
    assert!(e.is_some_and(|e| {
        e.to_string()
            .contains("some outputs exist (a) and others do not (b)")
    }));
}
