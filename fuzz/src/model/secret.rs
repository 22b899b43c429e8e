//! Secret (`v1`): PEM material, damaged or not, and its base64 encoding.

use arbitrary::Arbitrary;
use serde_json::{Map, Value, json};

use super::common::{Text, ns};

/// Secret bytes: real PEM, damaged PEM or anything.
#[derive(Debug, Clone, Arbitrary)]
enum Blob {
    Cert,
    Key,
    Ca,
    Crl,
    Both(bool),
    Truncated(u8, u16),
    Flipped(u8, u16, u8),
    Raw(Vec<u8>),
}

pub const CERT: &str = include_str!("../pem/tls.crt");
pub const KEY: &str = include_str!("../pem/tls.key");
pub const CA: &str = include_str!("../pem/ca.crt");
pub const CRL: &str = include_str!("../pem/crl.pem");

fn pem(i: u8) -> &'static [u8] {
    [CERT, KEY, CA, CRL][i as usize % 4].as_bytes()
}

impl Blob {
    pub(super) fn bytes(&self) -> Vec<u8> {
        match self {
            Blob::Cert => CERT.as_bytes().to_vec(),
            Blob::Key => KEY.as_bytes().to_vec(),
            Blob::Ca => CA.as_bytes().to_vec(),
            Blob::Crl => CRL.as_bytes().to_vec(),
            Blob::Both(ca_first) => {
                let (a, b) = if *ca_first { (CA, CERT) } else { (CERT, CA) };
                format!("{a}{b}").into_bytes()
            }
            Blob::Truncated(i, at) => {
                let p = pem(*i);
                p[..(*at as usize).min(p.len())].to_vec()
            }
            Blob::Flipped(i, at, x) => {
                let mut p = pem(*i).to_vec();
                let n = p.len();
                p[*at as usize % n] ^= *x;
                p
            }
            Blob::Raw(b) => b.clone(),
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub struct Secret {
    ns: u8,
    name: Text,
    kind: Text,
    crt: Option<Blob>,
    key: Option<Blob>,
    ca: Option<Blob>,
    crl: Option<Blob>,
}

/// Standard base64 (the encoding of a Secret's `data` in JSON).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Secret {
    pub(super) fn json(&self) -> Value {
        let mut data = Map::new();
        for (k, b) in [
            ("tls.crt", &self.crt),
            ("tls.key", &self.key),
            ("ca.crt", &self.ca),
            ("crl.pem", &self.crl),
        ] {
            if let Some(b) = b {
                data.insert(k.to_string(), json!(base64(&b.bytes())));
            }
        }
        json!({"apiVersion": "v1", "kind": "Secret",
               "type": self.kind.of(&["kubernetes.io/tls", "Opaque", ""]),
               "metadata": {"name": self.name.of(&["tls", "ca", "bad"]), "namespace": ns(self.ns)},
               "data": data})
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
