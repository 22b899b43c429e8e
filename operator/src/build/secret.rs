//! The certificate Secrets, `contourcert-<name>` and `envoycert-<name>`
//! (`kubernetes.io/tls` with `ca.crt`, `tls.crt`, `tls.key`), laid out by
//! `contour::certgen::secrets` in its compact format, and `contourca-<name>`
//! (`ca.crt`, `ca.key`), the CA the operator signs rotated certificates with.

use std::collections::BTreeMap;

use contour::certgen::{self, SecretsFormat};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::{BuildError, meta};
use crate::certs::Generated;
use crate::names::ROTATED_FOR;
use crate::validate::Validated;

/// The CA's Secret, then Contour's and Envoy's: applied in this order, the
/// CA is stored before any leaf it signed, so a reconcile cut short between
/// the writes never leaves leaves whose CA (and key) is lost.
pub fn build(v: &Validated, generated: &Generated) -> Result<Vec<Secret>, BuildError> {
    let n = &v.names;
    let mut secrets = certgen::secrets(
        &n.namespace,
        &format!("-{}", n.instance),
        SecretsFormat::Compact,
        &generated.certs,
    )?;
    for s in &mut secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        let component = if name == n.envoy_cert {
            "envoy"
        } else {
            "contour"
        };
        s.metadata = meta(v, &name, component);
        if let Some(r) = &generated.rotated_for {
            s.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ROTATED_FOR.to_string(), r.clone());
        }
    }
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    secrets.insert(
        0,
        Secret {
            metadata: meta(v, &n.ca, "contour"),
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([
                ("ca.crt".to_string(), bytes(&generated.ca.cert)),
                ("ca.key".to_string(), bytes(&generated.ca.key)),
            ])),
            ..Default::default()
        },
    );
    Ok(secrets)
}
