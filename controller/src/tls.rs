//! Checks of TLS material from Secrets, so that a broken certificate makes
//! its own object invalid instead of making Envoy refuse a whole listener.

/// Whether `tls.crt` and `tls.key` form a usable pair; the error uses
/// upstream's words (`missing TLS certificate`, `invalid TLS certificate: …`,
/// `missing TLS private key`, `invalid TLS private key: …`).
pub fn check_pair(cert: Option<&str>, key: Option<&str>) -> Result<(), String> {
    let cert = cert
        .filter(|c| !c.trim().is_empty())
        .ok_or("missing TLS certificate")?;
    check_certificates(cert).map_err(|e| format!("invalid TLS certificate: {e}"))?;
    let key = key
        .filter(|k| !k.trim().is_empty())
        .ok_or("missing TLS private key")?;
    check_private_key(key).map_err(|e| format!("invalid TLS private key: {e}"))?;
    check_keys_match(cert, key).map_err(|e| format!("invalid TLS private key: {e}"))
}

/// The private key belongs to the first certificate (Envoy refuses the
/// Secret otherwise, as Go's `tls.X509KeyPair` does). Key types this build
/// cannot load are left to Envoy.
fn check_keys_match(cert: &str, key: &str) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Ok(cert), Ok(key)) = (
        CertificateDer::from_pem_slice(cert.as_bytes()),
        PrivateKeyDer::from_pem_slice(key.as_bytes()),
    ) else {
        return Ok(());
    };
    let Ok(signer) = rustls::crypto::ring::sign::any_supported_type(&key) else {
        return Ok(());
    };
    match rustls::sign::CertifiedKey::new(vec![cert], signer).keys_match() {
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err("private key does not match public key".into())
        }
        _ => Ok(()),
    }
}

/// Every PEM block must be a certificate that parses; the first needs a
/// common name or a subject alternative name.
pub fn check_certificates(pem_text: &str) -> Result<(), String> {
    let blocks = pem::parse_many(pem_text).map_err(|_| "failed to parse PEM block".to_string())?;
    if blocks.is_empty() {
        return Err("failed to locate certificate".into());
    }
    for (i, block) in blocks.iter().enumerate() {
        if block.tag() != "CERTIFICATE" {
            return Err(format!("unexpected block type '{}'", block.tag()));
        }
        let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
            .map_err(|e| format!("failed to parse certificate: {e}"))?;
        if i == 0 {
            let has_cn = cert.subject().iter_common_name().next().is_some();
            let has_san = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .is_some_and(|s| !s.value.general_names.is_empty());
            if !has_cn && !has_san {
                return Err("certificate has no common name or subject alt name".into());
            }
        }
    }
    Ok(())
}

/// Exactly one private key block.
pub fn check_private_key(pem_text: &str) -> Result<(), String> {
    let blocks = pem::parse_many(pem_text).map_err(|_| "failed to parse PEM block".to_string())?;
    let keys: Vec<_> = blocks
        .iter()
        .filter(|b| {
            matches!(
                b.tag(),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            )
        })
        .collect();
    match keys.as_slice() {
        [] => Err("failed to locate private key".into()),
        [one] if one.contents().is_empty() => Err("failed to locate private key".into()),
        [_] => Ok(()),
        _ => Err("multiple private keys".into()),
    }
}

/// Whether `ca.crt` is a usable CA bundle: at least one block, every block
/// a certificate. Upstream only checks the block types; we also parse each
/// certificate, so that a garbled bundle makes its object invalid instead of
/// reaching Envoy.
pub fn check_ca_bundle(pem_text: &str) -> Result<(), String> {
    let blocks = pem::parse_many(pem_text).map_err(|_| "failed to parse PEM block".to_string())?;
    if blocks.is_empty() {
        return Err("failed to locate certificate".into());
    }
    for block in &blocks {
        if block.tag() != "CERTIFICATE" {
            return Err(format!("unexpected block type '{}'", block.tag()));
        }
        x509_parser::parse_x509_certificate(block.contents())
            .map_err(|e| format!("failed to parse certificate: {e}"))?;
    }
    Ok(())
}

/// Whether `crl.pem` holds a certificate revocation list (upstream: at least
/// one `X509 CRL` block; we also parse the lists).
pub fn check_crl(pem_text: &str) -> Result<(), String> {
    let blocks = pem::parse_many(pem_text).map_err(|_| "failed to parse PEM block".to_string())?;
    let crls: Vec<_> = blocks.iter().filter(|b| b.tag() == "X509 CRL").collect();
    if crls.is_empty() {
        return Err("failed to locate CRL".into());
    }
    for block in crls {
        x509_parser::parse_x509_crl(block.contents())
            .map_err(|e| format!("failed to parse CRL: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_key_of_another_certificate_is_refused() -> TestResult {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["example.com".to_string()])?.self_signed(&key)?;
        let other = rcgen::KeyPair::generate()?;
        assert_eq!(
            check_pair(Some(&cert.pem()), Some(&key.serialize_pem())),
            Ok(())
        );
        assert_eq!(
            check_pair(Some(&cert.pem()), Some(&other.serialize_pem())),
            Err("invalid TLS private key: private key does not match public key".into())
        );
        Ok(())
    }

    #[test]
    fn a_real_pair_passes_and_broken_ones_say_why() -> TestResult {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["example.com".to_string()])?.self_signed(&key)?;
        let (cert, key) = (cert.pem(), key.serialize_pem());
        assert_eq!(check_pair(Some(&cert), Some(&key)), Ok(()));
        assert_eq!(
            check_pair(None, Some(&key)),
            Err("missing TLS certificate".into())
        );
        assert_eq!(
            check_pair(Some(&cert), None),
            Err("missing TLS private key".into())
        );
        let garbled = "-----BEGIN CERTIFICATE-----\nMIIBbench\n-----END CERTIFICATE-----\n";
        assert!(
            check_pair(Some(garbled), Some(&key))
                .is_err_and(|e| e.starts_with("invalid TLS certificate"))
        );
        assert_eq!(
            check_pair(Some("not pem at all"), Some(&key)),
            Err("invalid TLS certificate: failed to locate certificate".into())
        );
        assert_eq!(
            check_pair(Some(&cert), Some(&format!("{key}{key}"))),
            Err("invalid TLS private key: multiple private keys".into())
        );
        assert_eq!(
            check_pair(Some(&key), Some(&key)),
            Err("invalid TLS certificate: unexpected block type 'PRIVATE KEY'".into())
        );
        Ok(())
    }
}
