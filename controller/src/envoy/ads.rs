//! The ADS form of a resource, for Envoys that follow Contour over one
//! aggregated stream.
//!
//! Translation writes every RDS/EDS/SDS reference as upstream does, a gRPC
//! source of its own ([`super::xds_config_source`]): it works for every
//! Envoy, but Envoy opens one gRPC stream per EDS cluster, per secret and per
//! route configuration named that way — ~16,000 streams for 10,000 clusters
//! and 5,000 TLS hosts — even when its bootstrap has an ADS stream. The ADS
//! form of a resource is the same resource with each such reference replaced
//! by `ads: {}`, so an Envoy that subscribed over ADS gets all of them on
//! its one stream. Per-type streams keep the translated form (`ads: {}`
//! would be refused there: "ADS must be configured to support an ADS config
//! source").
//!
//! [`ads_form`] rewrites the canonical bytes in place of decoding them: it
//! walks the wire format with the message descriptors (into `Any` payloads
//! by their type URL) and replaces each `ConfigSource` whose bytes are
//! exactly the translated source's. Everything else is copied byte for
//! byte, so the output is as canonical as the input.

use std::sync::OnceLock;

use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::{AggregatedConfigSource, ApiVersion, ConfigSource};
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{Kind, MessageDescriptor};

use super::canonical::canonical_bytes;
use super::json::{JsonError, pool};

const CONFIG_SOURCE: &str = "envoy.config.core.v3.ConfigSource";
const ANY: &str = "google.protobuf.Any";
/// Deeper nesting than any Envoy resource has is refused.
const MAX_DEPTH: u32 = 64;

/// The config source that points at the ADS stream.
pub fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// Canonical bytes of the translated source and of its replacement.
struct Forms {
    per_type: Vec<u8>,
    ads: Vec<u8>,
}

fn forms() -> Result<&'static Forms, JsonError> {
    static FORMS: OnceLock<Result<Forms, String>> = OnceLock::new();
    FORMS
        .get_or_init(|| {
            let per_type = canonical_bytes(CONFIG_SOURCE, &super::xds_config_source());
            let ads = canonical_bytes(CONFIG_SOURCE, &ads_config_source());
            match (per_type, ads) {
                (Ok(per_type), Ok(ads)) => Ok(Forms { per_type, ads }),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            }
        })
        .as_ref()
        .map_err(|e| JsonError::Descriptors(e.clone()))
}

/// The ADS form of the canonical bytes of a `type_name` message, or `None`
/// when it has no reference to replace (or its type is unknown).
pub fn ads_form(type_name: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>, JsonError> {
    let Some(desc) = pool()?.get_message_by_name(type_name) else {
        return Ok(None);
    };
    rewrite(&desc, bytes, forms()?, 0)
}

fn malformed(what: &str) -> JsonError {
    JsonError::Malformed(format!("ADS form: {what}"))
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, JsonError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

/// One field on the wire: its number, and where it starts, where its
/// length-delimited body starts and where it ends.
struct Field {
    number: u32,
    start: usize,
    body: Option<usize>,
    end: usize,
}

fn next_field(bytes: &[u8], pos: &mut usize) -> Result<Field, JsonError> {
    let start = *pos;
    let key = read_varint(bytes, pos)?;
    let number = u32::try_from(key >> 3).map_err(|_| malformed("field number"))?;
    let mut body = None;
    match key & 7 {
        0 => {
            read_varint(bytes, pos)?;
        }
        1 => *pos += 8,
        5 => *pos += 4,
        2 => {
            let len = usize::try_from(read_varint(bytes, pos)?).map_err(|_| malformed("length"))?;
            body = Some(*pos);
            *pos = pos.checked_add(len).ok_or_else(|| malformed("length"))?;
        }
        w => return Err(malformed(&format!("wire type {w}"))),
    }
    if *pos > bytes.len() {
        return Err(malformed("field runs past its message"));
    }
    Ok(Field {
        number,
        start,
        body,
        end: *pos,
    })
}

/// Writes `number` as a length-delimited field holding `body`.
fn put_len_field(out: &mut Vec<u8>, number: u32, body: &[u8]) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// `bytes` (a `desc` message) with the references replaced, or `None` when
/// nothing in it changed.
fn rewrite(
    desc: &MessageDescriptor,
    bytes: &[u8],
    forms: &Forms,
    depth: u32,
) -> Result<Option<Vec<u8>>, JsonError> {
    if depth > MAX_DEPTH {
        return Err(malformed("nested too deeply"));
    }
    let mut out: Option<Vec<u8>> = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let field = next_field(bytes, &mut pos)?;
        let replaced = match (field.body, desc.get_field(field.number).map(|f| f.kind())) {
            (Some(body), Some(Kind::Message(m))) => {
                replace(&m, &bytes[body..field.end], forms, depth)?
            }
            _ => None,
        };
        match (replaced, &mut out) {
            (Some(new), out) => {
                let out = out.get_or_insert_with(|| bytes[..field.start].to_vec());
                put_len_field(out, field.number, &new);
            }
            (None, Some(out)) => out.extend_from_slice(&bytes[field.start..field.end]),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// A message field's body, replaced if it is (or holds) a reference.
fn replace(
    m: &MessageDescriptor,
    body: &[u8],
    forms: &Forms,
    depth: u32,
) -> Result<Option<Vec<u8>>, JsonError> {
    match m.full_name() {
        CONFIG_SOURCE => Ok((body == forms.per_type.as_slice()).then(|| forms.ads.clone())),
        ANY => rewrite_any(body, forms, depth + 1),
        _ => rewrite(m, body, forms, depth + 1),
    }
}

/// An `Any`: its payload is rewritten through the type its URL names.
fn rewrite_any(bytes: &[u8], forms: &Forms, depth: u32) -> Result<Option<Vec<u8>>, JsonError> {
    let (mut type_url, mut value) = (None, None);
    let mut pos = 0;
    while pos < bytes.len() {
        let field = next_field(bytes, &mut pos)?;
        match (field.number, field.body) {
            (1, Some(body)) => type_url = Some(&bytes[body..field.end]),
            (2, Some(_)) => value = Some(field),
            _ => {}
        }
    }
    let (Some(type_url), Some(value)) = (type_url, value) else {
        return Ok(None);
    };
    let type_url = std::str::from_utf8(type_url).map_err(|_| malformed("Any type URL"))?;
    let type_name = super::message_name(type_url);
    let Some(desc) = pool()?.get_message_by_name(type_name) else {
        return Ok(None);
    };
    let body = value.body.unwrap_or(value.end);
    let Some(new) = rewrite(&desc, &bytes[body..value.end], forms, depth)? else {
        return Ok(None);
    };
    let mut out = bytes[..value.start].to_vec();
    put_len_field(&mut out, 2, &new);
    out.extend_from_slice(&bytes[value.end..]);
    Ok(Some(out))
}

#[cfg(test)]
#[path = "ads_tests.rs"]
mod tests;
