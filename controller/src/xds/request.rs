//! State-of-the-world requests whose resource names stay in the request's
//! bytes until they are needed.
//!
//! Every ACK repeats the whole subscription: an Envoy with 8,000 EDS
//! clusters on one ADS stream sends 8,000 names with each of them. Decoded
//! by prost, that is 8,000 `String`s allocated and freed per ACK — under
//! endpoint churn, a third of the controller's CPU. Here the names are only
//! scanned (UTF-8 checked, hashed, counted) and read from the request's
//! bytes when the stream finds that the subscription changed.

use std::hash::BuildHasher;

use bytes::{Buf, Bytes};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use prost::{DecodeError, Message};

/// `resource_names` is field 3 of `DiscoveryRequest`, length-delimited.
const NAMES_KEY: u64 = (3 << 3) | 2;

/// A state-of-the-world request: every field but the resource names
/// decoded, the names kept apart.
#[derive(Debug, Clone, Default)]
pub struct SotwRequest {
    /// The request, with `resource_names` always empty (see [`Self::names`]).
    pub message: DiscoveryRequest,
    /// The resource names.
    pub names: ResourceNames,
}

/// The resource names of a request, with a digest of them.
#[derive(Debug, Clone, Default)]
pub struct ResourceNames {
    list: NameList,
    digest: (u64, usize),
    star: bool,
}

#[derive(Debug, Clone)]
enum NameList {
    /// Decoded names.
    Owned(Vec<String>),
    /// The request's bytes holding the names: back-to-back field-3
    /// entries, checked when the request was decoded.
    Raw(Bytes),
}

impl Default for NameList {
    fn default() -> Self {
        NameList::Owned(Vec::new())
    }
}

impl From<DiscoveryRequest> for SotwRequest {
    fn from(mut message: DiscoveryRequest) -> Self {
        let names = std::mem::take(&mut message.resource_names);
        let mut digest = Digest::default();
        names.iter().for_each(|n| digest.add(n.as_bytes()));
        let star = names.iter().any(|n| n == "*");
        SotwRequest {
            message,
            names: ResourceNames {
                list: NameList::Owned(names),
                digest: digest.value(),
                star,
            },
        }
    }
}

impl SotwRequest {
    /// Decodes a `DiscoveryRequest` message: the same result as prost's
    /// decoder (the same request, or an error where it has one), with the
    /// names left in `msg` when they come as one run of entries (as every
    /// client writes them).
    pub fn decode(msg: Bytes) -> Result<Self, DecodeError> {
        let Some(block) = names_block(&msg) else {
            return DiscoveryRequest::decode(msg).map(SotwRequest::from);
        };
        let (start, end) = block.span;
        let names = msg.slice(start..end);
        let message = if start == end {
            DiscoveryRequest::decode(msg)?
        } else {
            DiscoveryRequest::decode(msg.slice(..start).chain(msg.slice(end..)))?
        };
        Ok(SotwRequest {
            message,
            names: ResourceNames {
                list: NameList::Raw(names),
                digest: block.digest,
                star: block.star,
            },
        })
    }
}

impl ResourceNames {
    /// The names, in the order of the request.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (owned, raw) = match &self.list {
            NameList::Owned(v) => (v.as_slice(), &[][..]),
            NameList::Raw(b) => (&[][..], &b[..]),
        };
        owned
            .iter()
            .map(String::as_str)
            .chain(RawNames { buf: raw })
    }

    /// How many names (repeats counted).
    pub fn len(&self) -> usize {
        self.digest.1
    }

    /// Whether the request names nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `*` is among the names.
    pub fn has_star(&self) -> bool {
        self.star
    }

    /// An order-independent digest of the names (a sum of their hashes, and
    /// their count): equal for the same list in any order. Equal digests are
    /// taken as an unchanged subscription; a false match of two different
    /// lists has a chance of about 2^-64 and only concerns the stream whose
    /// client sent them.
    pub fn digest(&self) -> (u64, usize) {
        self.digest
    }
}

/// The hasher of names (fixed, so that equal names hash alike on every
/// request of a stream).
const HASHER: foldhash::fast::FixedState =
    foldhash::fast::FixedState::with_seed(0x0063_6f6e_746f_7572);

/// An order-independent digest of names: the sum of their hashes, and their
/// count.
#[derive(Default)]
struct Digest {
    sum: u64,
    count: usize,
}

impl Digest {
    fn add(&mut self, name: &[u8]) {
        self.sum = self.sum.wrapping_add(HASHER.hash_one(name));
        self.count += 1;
    }

    fn value(&self) -> (u64, usize) {
        (self.sum, self.count)
    }
}

/// Where a message's names are, and what they digest to.
struct Block {
    span: (usize, usize),
    digest: (u64, usize),
    star: bool,
}

/// Finds the run of `resource_names` entries in a message, checking each
/// name as prost would (length, UTF-8). `None` when the message is not
/// plainly well formed (prost then decides), or when other fields sit
/// between names.
fn names_block(msg: &[u8]) -> Option<Block> {
    let mut buf = msg;
    let mut span: Option<(usize, usize)> = None;
    let mut closed = false;
    let mut star = false;
    let mut digest = Digest::default();
    while !buf.is_empty() {
        let start = msg.len() - buf.len();
        let key = varint(&mut buf)?;
        if key > u64::from(u32::MAX) || key >> 3 == 0 {
            return None;
        }
        if key == NAMES_KEY {
            if closed {
                return None;
            }
            let len = usize::try_from(varint(&mut buf)?).ok()?;
            let name = buf.get(..len)?;
            std::str::from_utf8(name).ok()?;
            buf = &buf[len..];
            star |= name == b"*";
            digest.add(name);
            let end = msg.len() - buf.len();
            span = Some((span.map_or(start, |s| s.0), end));
            continue;
        }
        closed |= span.is_some();
        if key >> 3 == 3 {
            return None; // field 3 with another wire type
        }
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                buf = buf.get(len..)?;
            }
            5 => buf = buf.get(4..)?,
            _ => return None, // groups, invalid wire types
        }
    }
    Some(Block {
        span: span.unwrap_or((0, 0)),
        digest: digest.value(),
        star,
    })
}

/// A protobuf varint, as strict as prost's (at most ten bytes, no
/// overflow).
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The names of a checked block of field-3 entries.
struct RawNames<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for RawNames<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let mut buf = self.buf;
        varint(&mut buf)?;
        let len = usize::try_from(varint(&mut buf)?).ok()?;
        let name = buf.get(..len)?;
        self.buf = &buf[len..];
        std::str::from_utf8(name).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status;

    fn request(names: &[&str]) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: "v1".into(),
            node: Some(Node {
                id: "envoy".into(),
                ..Default::default()
            }),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            type_url: "t".into(),
            response_nonce: "7".into(),
            error_detail: Some(Status {
                code: 3,
                message: "no".into(),
                details: vec![],
            }),
            ..Default::default()
        }
    }

    /// What prost makes of `bytes` and what [`SotwRequest::decode`] does
    /// agree; returns whether the names stayed in the bytes.
    fn agrees(bytes: &[u8]) -> bool {
        let ours = SotwRequest::decode(Bytes::copy_from_slice(bytes));
        match DiscoveryRequest::decode(bytes) {
            Err(_) => {
                assert!(ours.is_err(), "prost refuses {bytes:?}, we do not");
                false
            }
            Ok(theirs) => {
                let ours = match ours {
                    Ok(r) => r,
                    Err(e) => panic!("prost decodes {bytes:?}, we fail: {e}"),
                };
                let names: Vec<&str> = ours.names.iter().collect();
                assert_eq!(names, theirs.resource_names);
                assert_eq!(ours.names.len(), theirs.resource_names.len());
                assert_eq!(
                    ours.names.has_star(),
                    theirs.resource_names.iter().any(|n| n == "*")
                );
                let mut rest = theirs.clone();
                assert_eq!(
                    ours.names.digest(),
                    SotwRequest::from(theirs).names.digest()
                );
                rest.resource_names.clear();
                assert_eq!(ours.message, rest);
                matches!(ours.names.list, NameList::Raw(_))
            }
        }
    }

    #[test]
    fn names_stay_in_the_bytes_and_read_back_as_prost_decodes_them() {
        let names = ["b", "a", "*", "ü", "", "a"];
        let bytes = request(&names).encode_to_vec();
        assert!(agrees(&bytes));
        let decoded = SotwRequest::decode(Bytes::from(bytes)).unwrap_or_default();
        assert_eq!(decoded.names.iter().collect::<Vec<_>>(), names);
        assert!(agrees(&request(&[]).encode_to_vec()));
        assert!(agrees(&DiscoveryRequest::default().encode_to_vec()));
    }

    #[test]
    fn the_digest_ignores_order_and_sees_changes() {
        let digest = |names: &[&str]| {
            let bytes = request(names).encode_to_vec();
            SotwRequest::decode(Bytes::from(bytes))
                .map(|r| r.names.digest())
                .unwrap_or_default()
        };
        assert_eq!(digest(&["a", "b", "c"]), digest(&["c", "a", "b"]));
        assert_ne!(digest(&["a", "b", "c"]), digest(&["a", "b", "d"]));
        assert_ne!(digest(&["a", "b"]), digest(&["a", "b", "b"]));
        assert_ne!(digest(&["ab"]), digest(&["a", "b"]));
    }

    #[test]
    fn odd_encodings_are_left_to_prost() {
        let mut bytes = request(&["a", "b"]).encode_to_vec();
        // Names after another field: decoded, not kept raw.
        bytes.extend_from_slice(&[0x1a, 1, b'c']);
        assert!(!agrees(&bytes));
        // A name that is not UTF-8, one that runs past the end, a field-3
        // varint, a group, a truncated key, an overlong varint.
        for tail in [
            &[0x1a, 1, 0xff][..],
            &[0x1a, 5, b'x'],
            &[0x18, 1],
            &[0x0b, 0x0c],
            &[0x80],
            &[
                0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            let mut b = request(&["a"]).encode_to_vec();
            b.extend_from_slice(tail);
            agrees(&b);
            let mut b = tail.to_vec();
            b.extend_from_slice(&request(&["a"]).encode_to_vec());
            agrees(&b);
        }
        // An unknown field of each wire type is skipped, names still raw.
        let mut b = request(&["a"]).encode_to_vec();
        b.extend_from_slice(&[0x48, 1, 0x51, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0]);
        assert!(agrees(&b));
    }

    #[test]
    fn any_bytes_decode_as_prost_decodes_them() {
        // A deterministic walk over short messages made of interesting bytes.
        let alphabet = [
            0x00, 0x01, 0x02, 0x0a, 0x12, 0x1a, 0x18, 0x22, 0x2a, 0x80, 0xff, b'a', b'*',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            agrees(&bytes);
        }
    }
}
