//! SDS secrets of the TLS virtual hosts (serving and fallback certificates).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    Secret, TlsCertificate, secret,
};

use crate::dag::{Dag, TlsSecret};

/// SDS name of a secret: `namespace/name/<10 hex of sha1 over the material>`,
/// so a rotated certificate gets a new name and Envoy swaps it atomically.
pub fn secret_name(s: &TlsSecret) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{}{}", s.cert_pem, s.key_pem).as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{}/{}/{}", s.namespace, s.name, hex)
}

/// Every secret the secure virtual hosts use, sorted by name.
pub fn secrets(dag: &Dag) -> Vec<Secret> {
    let mut out = BTreeMap::new();
    for listener in dag.listeners.values() {
        for vh in listener.secure_virtual_hosts.values() {
            for s in vh.secret.iter().chain(&vh.fallback_certificate) {
                let name = secret_name(s);
                out.entry(name.clone())
                    .or_insert_with(|| sds_secret(name, s));
            }
        }
    }
    out.into_values().collect()
}

/// The SDS secret `name` of a certificate.
pub fn sds_secret(name: String, s: &TlsSecret) -> Secret {
    Secret {
        name,
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(&s.cert_pem)),
            private_key: Some(inline(&s.key_pem)),
            ..Default::default()
        })),
    }
}

fn inline(pem: &str) -> DataSource {
    DataSource {
        specifier: Some(Specifier::InlineBytes(pem.as_bytes().to_vec())),
        ..Default::default()
    }
}
