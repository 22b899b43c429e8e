//! The certificate Secrets, `contourcert-<name>` and `envoycert-<name>`
//! (`kubernetes.io/tls` with `ca.crt`, `tls.crt`, `tls.key`), laid out by
//! `contour::certgen::secrets` in its compact format.

use contour::certgen::{self, Certificates, SecretsFormat};
use k8s_openapi::api::core::v1::Secret;

use super::{BuildError, meta};
use crate::validate::Validated;

/// Contour's Secret, then Envoy's.
pub fn build(v: &Validated, certs: &Certificates) -> Result<Vec<Secret>, BuildError> {
    let n = &v.names;
    let mut secrets = certgen::secrets(
        &n.namespace,
        &format!("-{}", n.instance),
        SecretsFormat::Compact,
        certs,
    )?;
    for s in &mut secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        let component = if name == n.envoy_cert {
            "envoy"
        } else {
            "contour"
        };
        s.metadata = meta(v, &name, component);
    }
    Ok(secrets)
}
