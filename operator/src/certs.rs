//! Step 3: the xDS certificates. Kept from our Secrets while they are valid
//! and far enough from expiry; otherwise generated in-process with
//! `contour::certgen` (a new CA and both leaf certificates).

use std::time::Duration;

use contour::certgen::{self, CertSettings, Certificates};
use k8s_openapi::api::core::v1::Secret;
use time::OffsetDateTime;

use crate::dereference::Dereferenced;
use crate::validate::{CertPlan, Validated};

/// Errors making certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Generation failed.
    #[error(transparent)]
    Generate(#[from] certgen::CertgenError),
}

/// The certificates the children use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertState {
    /// Certificates to put into our Secrets; `None` when the user's are used.
    pub generated: Option<Certificates>,
    /// Whether they were just made (a rotation or the first reconcile).
    pub fresh: bool,
    /// When the first of them expires, if known.
    pub expiry: Option<OffsetDateTime>,
}

/// The `notAfter` of a PEM certificate.
pub fn not_after(pem: &[u8]) -> Option<OffsetDateTime> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

fn field(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// The certificates our two Secrets hold, if complete and from one CA.
fn kept(contour: &Secret, envoy: &Secret) -> Option<(Certificates, OffsetDateTime)> {
    let ca = field(contour, "ca.crt")?;
    if field(envoy, "ca.crt")? != ca {
        return None;
    }
    let certs = Certificates {
        contour_cert: field(contour, "tls.crt")?,
        contour_key: field(contour, "tls.key")?,
        envoy_cert: field(envoy, "tls.crt")?,
        envoy_key: field(envoy, "tls.key")?,
        ca_cert: ca,
    };
    let expiry = [&certs.ca_cert, &certs.contour_cert, &certs.envoy_cert]
        .iter()
        .map(|c| not_after(c.as_bytes()))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()?;
    Some((certs, expiry))
}

/// The certificates for `v`: the existing ones while they last, else new.
pub fn ensure(
    v: &Validated,
    deref: &Dereferenced,
    now: OffsetDateTime,
) -> Result<CertState, CertError> {
    match &v.certificates {
        CertPlan::Existing { .. } => {
            let expiry = deref
                .user_secrets
                .iter()
                .filter_map(|(_, s)| s.as_ref())
                .filter_map(|s| field(s, "tls.crt"))
                .filter_map(|c| not_after(c.as_bytes()))
                .min();
            Ok(CertState {
                generated: None,
                fresh: false,
                expiry,
            })
        }
        CertPlan::Generate {
            lifetime,
            rotate_before,
        } => {
            if let (Some(c), Some(e)) = (&deref.contour_cert, &deref.envoy_cert)
                && let Some((certs, expiry)) = kept(c, e)
                && expiry - now
                    > time::Duration::try_from(*rotate_before).unwrap_or(time::Duration::MAX)
            {
                return Ok(CertState {
                    generated: Some(certs),
                    fresh: false,
                    expiry: Some(expiry),
                });
            }
            let settings = CertSettings {
                lifetime_days: days(*lifetime),
                namespace: v.names.namespace.clone(),
                dns_name: "cluster.local".into(),
                contour_service: v.names.contour.clone(),
                envoy_service: v.names.envoy.clone(),
            };
            let certs = certgen::generate(&settings, now)?;
            let expiry = not_after(certs.contour_cert.as_bytes());
            Ok(CertState {
                generated: Some(certs),
                fresh: true,
                expiry,
            })
        }
    }
}

/// Whole days, rounded up (certgen counts in days).
fn days(d: Duration) -> u32 {
    u32::try_from(d.as_secs().div_ceil(86_400)).unwrap_or(u32::MAX)
}
