//! State-of-the-world and delta responses as they go on the wire, without
//! copying the resources they carry.
//!
//! A [`SotwResponse`] holds its resources as the snapshot's own
//! `Arc<VersionedResource>`s. [`SotwResponse::frame`] encodes it as one
//! length-prefixed gRPC message of a `DiscoveryResponse`, in chunks: the small
//! fields and the framing of each resource are written into buffers, and a
//! large resource body is handed on as the snapshot's own `Bytes`. A hundred
//! streams sending the same 1 MB route configuration therefore share one copy
//! of it, instead of each cloning it into its message and then encoding that
//! into a per-stream buffer (which tonic keeps for the life of the stream).

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, DiscoveryResponse, Resource,
};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use super::snapshot::VersionedResource;

/// Resource bodies up to this size are copied into the chunk being written;
/// larger ones are sent as chunks of their own, shared with the snapshot.
const INLINE_MAX: usize = 4 * 1024;
/// A chunk of copied bytes is handed on once it is this large.
const CHUNK: usize = 32 * 1024;

// Field numbers of `envoy.service.discovery.v3.DiscoveryResponse`.
const VERSION_INFO: u32 = 1;
const RESOURCES: u32 = 2;
const TYPE_URL: u32 = 4;
const NONCE: u32 = 5;
// Field numbers of `envoy.service.discovery.v3.DeltaDiscoveryResponse`.
const DELTA_SYSTEM_VERSION_INFO: u32 = 1;
const DELTA_RESOURCES: u32 = 2;
const DELTA_TYPE_URL: u32 = 4;
const DELTA_NONCE: u32 = 5;
const DELTA_REMOVED_RESOURCES: u32 = 6;
// Field numbers of `envoy.service.discovery.v3.Resource`.
const RESOURCE_VERSION: u32 = 1;
const RESOURCE_BODY: u32 = 2;
const RESOURCE_NAME: u32 = 3;
// Field numbers of `google.protobuf.Any`.
const ANY_TYPE_URL: u32 = 1;
const ANY_VALUE: u32 = 2;

/// A state-of-the-world response whose resources are shared with the
/// snapshot they come from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SotwResponse {
    /// The type's version.
    pub version_info: String,
    /// The resources, in name order.
    pub resources: Vec<Arc<VersionedResource>>,
    /// The type URL.
    pub type_url: String,
    /// The nonce the client answers with.
    pub nonce: String,
}

/// A delta response whose resources are shared with the snapshot they come
/// from (each in the form its stream gets, see
/// [`VersionedResource::form`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeltaResponse {
    /// The type's version.
    pub system_version_info: String,
    /// Resources added or changed, in name order.
    pub resources: Vec<Arc<VersionedResource>>,
    /// The type URL.
    pub type_url: String,
    /// Names removed.
    pub removed_resources: Vec<String>,
    /// The nonce the client answers with.
    pub nonce: String,
}

/// Length of a length-delimited field of `len` bytes, key included.
fn field_len(field: u32, len: usize) -> usize {
    prost::encoding::key_len(field) + encoded_len_varint(len as u64) + len
}

fn put_field_header(buf: &mut BytesMut, field: u32, len: usize) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_string(buf: &mut BytesMut, field: u32, s: &str) {
    if !s.is_empty() {
        put_field_header(buf, field, s.len());
        buf.put_slice(s.as_bytes());
    }
}

fn string_len(field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(field, s.len())
    }
}

/// Length of one resource as an encoded `Any` (without its own field key).
fn any_len(r: &VersionedResource) -> usize {
    string_len(ANY_TYPE_URL, &r.type_url)
        + if r.value.is_empty() {
            0
        } else {
            field_len(ANY_VALUE, r.value.len())
        }
}

impl SotwResponse {
    /// The protobuf message (copies every resource; for unary fetches and
    /// tests).
    pub fn to_message(&self) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: self.version_info.clone(),
            resources: self.resources.iter().map(|r| r.any()).collect(),
            type_url: self.type_url.clone(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }

    /// Length of the encoded `DiscoveryResponse`.
    pub fn encoded_len(&self) -> usize {
        string_len(VERSION_INFO, &self.version_info)
            + self
                .resources
                .iter()
                .map(|r| field_len(RESOURCES, any_len(r)))
                .sum::<usize>()
            + string_len(TYPE_URL, &self.type_url)
            + string_len(NONCE, &self.nonce)
    }

    /// One gRPC message (the 5-byte prefix, then the encoded
    /// `DiscoveryResponse`), as chunks to write in order. Errors when the
    /// message is over the 4 GiB a gRPC prefix can state.
    pub fn frame(&self) -> Result<Vec<Bytes>, TooLarge> {
        framed(self.encoded_len(), |buf, chunks| {
            put_string(buf, VERSION_INFO, &self.version_info);
            for r in &self.resources {
                put_field_header(buf, RESOURCES, any_len(r));
                put_any(buf, chunks, r);
                if buf.len() >= CHUNK {
                    chunks.push(buf.split().freeze());
                }
            }
            put_string(buf, TYPE_URL, &self.type_url);
            put_string(buf, NONCE, &self.nonce);
        })
    }
}

/// One gRPC message of `len` bytes, which `body` writes into a buffer (and
/// `chunks`, for bodies handed on whole), as chunks to write in order.
/// Errors when `len` is over the 4 GiB a gRPC prefix can state.
fn framed(
    len: usize,
    body: impl FnOnce(&mut BytesMut, &mut Vec<Bytes>),
) -> Result<Vec<Bytes>, TooLarge> {
    let prefix = u32::try_from(len).map_err(|_| TooLarge(len))?;
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(CHUNK.min(len + 5));
    buf.put_u8(0); // not compressed
    buf.put_u32(prefix);
    body(&mut buf, &mut chunks);
    chunks.push(buf.freeze());
    chunks.retain(|c| !c.is_empty());
    Ok(chunks)
}

/// Writes one resource body as an `Any` field: copied when small, else
/// handed on as the snapshot's own bytes after what `buf` holds so far.
fn put_any(buf: &mut BytesMut, chunks: &mut Vec<Bytes>, r: &VersionedResource) {
    put_string(buf, ANY_TYPE_URL, &r.type_url);
    if r.value.is_empty() {
        return;
    }
    put_field_header(buf, ANY_VALUE, r.value.len());
    if r.value.len() <= INLINE_MAX {
        buf.put_slice(&r.value);
    } else {
        chunks.push(buf.split().freeze());
        chunks.push(r.value.clone());
    }
}

/// Length of one delta `Resource` (without its own field key).
fn delta_resource_len(r: &VersionedResource) -> usize {
    string_len(RESOURCE_NAME, &r.name)
        + string_len(RESOURCE_VERSION, &r.version)
        + field_len(RESOURCE_BODY, any_len(r))
}

impl DeltaResponse {
    /// The protobuf message (copies every resource; for tonic's per-type
    /// delta methods and tests).
    pub fn to_message(&self) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            system_version_info: self.system_version_info.clone(),
            resources: self
                .resources
                .iter()
                .map(|r| Resource {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    resource: Some(r.any()),
                    ..Default::default()
                })
                .collect(),
            type_url: self.type_url.clone(),
            removed_resources: self.removed_resources.clone(),
            nonce: self.nonce.clone(),
            ..Default::default()
        }
    }

    /// Length of the encoded `DeltaDiscoveryResponse`.
    pub fn encoded_len(&self) -> usize {
        string_len(DELTA_SYSTEM_VERSION_INFO, &self.system_version_info)
            + self
                .resources
                .iter()
                .map(|r| field_len(DELTA_RESOURCES, delta_resource_len(r)))
                .sum::<usize>()
            + string_len(DELTA_TYPE_URL, &self.type_url)
            + self
                .removed_resources
                .iter()
                .map(|n| field_len(DELTA_REMOVED_RESOURCES, n.len()))
                .sum::<usize>()
            + string_len(DELTA_NONCE, &self.nonce)
    }

    /// One gRPC message of the encoded `DeltaDiscoveryResponse`, as chunks
    /// to write in order (see [`SotwResponse::frame`]).
    pub fn frame(&self) -> Result<Vec<Bytes>, TooLarge> {
        framed(self.encoded_len(), |buf, chunks| {
            put_string(buf, DELTA_SYSTEM_VERSION_INFO, &self.system_version_info);
            for r in &self.resources {
                // Fields in tag order, as prost writes them.
                put_field_header(buf, DELTA_RESOURCES, delta_resource_len(r));
                put_string(buf, RESOURCE_VERSION, &r.version);
                put_field_header(buf, RESOURCE_BODY, any_len(r));
                put_any(buf, chunks, r);
                put_string(buf, RESOURCE_NAME, &r.name);
                if buf.len() >= CHUNK {
                    chunks.push(buf.split().freeze());
                }
            }
            put_string(buf, DELTA_TYPE_URL, &self.type_url);
            put_string(buf, DELTA_NONCE, &self.nonce);
            for name in &self.removed_resources {
                // Repeated strings are written even when empty.
                put_field_header(buf, DELTA_REMOVED_RESOURCES, name.len());
                buf.put_slice(name.as_bytes());
            }
        })
    }
}

/// A response too large for one gRPC message.
#[derive(Debug, thiserror::Error)]
#[error("response of {0} bytes exceeds the gRPC message limit")]
pub struct TooLarge(pub usize);

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn resource(name: &str, size: usize) -> Arc<VersionedResource> {
        Arc::new(VersionedResource::new(
            name.into(),
            "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
            (0..size).map(|i| (i % 251) as u8).collect(),
        ))
    }

    #[test]
    fn frames_are_the_grpc_message_of_the_protobuf_encoding() -> Result<(), TooLarge> {
        let cases = [
            SotwResponse::default(),
            SotwResponse {
                version_info: "abc".into(),
                resources: vec![resource("a", 0), resource("b", 10), resource("c", 100_000)],
                type_url: "t".into(),
                nonce: "7".into(),
            },
            SotwResponse {
                version_info: "v".into(),
                resources: (0..300)
                    .map(|i| resource(&i.to_string(), 300 + i))
                    .collect(),
                type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
                nonce: "12".into(),
            },
        ];
        for response in cases {
            let wire: Vec<u8> = response.frame()?.concat();
            let body = response.to_message().encode_to_vec();
            assert_eq!(response.encoded_len(), body.len());
            assert_eq!(wire[0], 0);
            assert_eq!(&wire[1..5], &(body.len() as u32).to_be_bytes());
            assert_eq!(&wire[5..], &body[..]);
            let decoded = DiscoveryResponse::decode(&wire[5..]).map_err(|_| TooLarge(0))?;
            assert_eq!(decoded, response.to_message());
        }
        Ok(())
    }

    #[test]
    fn delta_frames_are_the_grpc_message_of_the_protobuf_encoding() -> Result<(), TooLarge> {
        let cases = [
            DeltaResponse::default(),
            DeltaResponse {
                system_version_info: "abc".into(),
                resources: vec![resource("a", 0), resource("b", 10), resource("c", 100_000)],
                type_url: "t".into(),
                removed_resources: vec!["gone".into(), String::new()],
                nonce: "7".into(),
            },
            DeltaResponse {
                resources: (0..300)
                    .map(|i| resource(&i.to_string(), 300 + i))
                    .collect(),
                nonce: "12".into(),
                ..Default::default()
            },
        ];
        for response in cases {
            let wire: Vec<u8> = response.frame()?.concat();
            let body = response.to_message().encode_to_vec();
            assert_eq!(response.encoded_len(), body.len());
            assert_eq!(wire[0], 0);
            assert_eq!(&wire[1..5], &(body.len() as u32).to_be_bytes());
            assert_eq!(&wire[5..], &body[..], "prost's own bytes");
            let decoded = DeltaDiscoveryResponse::decode(&wire[5..]).map_err(|_| TooLarge(0))?;
            assert_eq!(decoded, response.to_message());
        }
        Ok(())
    }

    #[test]
    fn large_bodies_are_shared_not_copied() -> Result<(), TooLarge> {
        let big = resource("big", 1 << 20);
        let response = SotwResponse {
            resources: vec![big.clone()],
            ..Default::default()
        };
        let chunks = response.frame()?;
        assert!(
            chunks.iter().any(|c| c.as_ptr() == big.value.as_ptr()),
            "the 1 MiB body goes out as the snapshot's own bytes"
        );
        Ok(())
    }
}
