//! Canonical protobuf encoding: fields in number order and map entries
//! sorted by key, recursively, including inside `Any` payloads.
//!
//! prost encodes map fields (e.g. `typed_per_filter_config`) in `HashMap`
//! order, which differs between runs; versions computed from those bytes
//! would change on every rebuild and push unchanged resources. The canonical
//! bytes make equal resources byte-equal, and their hash is the version.

use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use super::json::{JsonError, pool};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// Canonical bytes of `message`, whose protobuf type is `type_name`.
pub fn canonical_bytes<M: Message>(type_name: &str, message: &M) -> Result<Vec<u8>, JsonError> {
    canonical_from_bytes(type_name, &message.encode_to_vec())
}

/// Canonical form of already encoded bytes of `type_name`. Unknown types
/// come back unchanged.
pub fn canonical_from_bytes(type_name: &str, bytes: &[u8]) -> Result<Vec<u8>, JsonError> {
    let Some(desc) = pool()?.get_message_by_name(type_name) else {
        return Ok(bytes.to_vec());
    };
    let dynamic = DynamicMessage::decode(desc, bytes).map_err(|source| JsonError::Decode {
        type_name: type_name.to_string(),
        source,
    })?;
    let mut out = Vec::with_capacity(bytes.len());
    encode_message(&dynamic, &mut out)?;
    Ok(out)
}

fn encode_message(m: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), JsonError> {
    if m.descriptor().full_name() == "google.protobuf.Any" {
        return encode_any(m, out);
    }
    let mut fields: Vec<(FieldDescriptor, &Value)> = m.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    for (f, v) in fields {
        encode_field(&f, v, out)?;
    }
    Ok(())
}

/// `Any`: the payload is canonicalised through its own type.
fn encode_any(m: &DynamicMessage, out: &mut Vec<u8>) -> Result<(), JsonError> {
    let type_url = match m.get_field_by_number(1).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let payload = match m.get_field_by_number(2).as_deref() {
        Some(Value::Bytes(b)) => b.to_vec(),
        _ => Vec::new(),
    };
    let type_name = super::message_name(&type_url);
    let payload = canonical_from_bytes(type_name, &payload)?;
    if !type_url.is_empty() {
        key(1, LEN, out);
        length_delimited(type_url.as_bytes(), out);
    }
    if !payload.is_empty() {
        key(2, LEN, out);
        length_delimited(&payload, out);
    }
    Ok(())
}

fn encode_field(f: &FieldDescriptor, v: &Value, out: &mut Vec<u8>) -> Result<(), JsonError> {
    match v {
        Value::Map(map) => {
            let Kind::Message(entry) = f.kind() else {
                return Ok(());
            };
            let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut entries: Vec<(&MapKey, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                let mut buf = Vec::new();
                encode_single(&kf, &map_key_value(k), &mut buf)?;
                encode_single(&vf, v, &mut buf)?;
                key(f.number(), LEN, out);
                length_delimited(&buf, out);
            }
        }
        Value::List(items) if f.is_packed() => {
            let mut buf = Vec::new();
            for item in items {
                scalar(&f.kind(), item, &mut buf);
            }
            key(f.number(), LEN, out);
            length_delimited(&buf, out);
        }
        Value::List(items) => {
            for item in items {
                encode_single(f, item, out)?;
            }
        }
        single => encode_single(f, single, out)?,
    }
    Ok(())
}

fn encode_single(f: &FieldDescriptor, v: &Value, out: &mut Vec<u8>) -> Result<(), JsonError> {
    let n = f.number();
    match v {
        Value::Message(m) => {
            let mut buf = Vec::new();
            encode_message(m, &mut buf)?;
            key(n, LEN, out);
            length_delimited(&buf, out);
        }
        Value::String(s) => {
            key(n, LEN, out);
            length_delimited(s.as_bytes(), out);
        }
        Value::Bytes(b) => {
            key(n, LEN, out);
            length_delimited(b, out);
        }
        other => {
            key(n, wire_type(&f.kind()), out);
            scalar(&f.kind(), other, out);
        }
    }
    Ok(())
}

fn wire_type(kind: &Kind) -> u32 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => FIXED64,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => FIXED32,
        Kind::String | Kind::Bytes | Kind::Message(_) => LEN,
        _ => VARINT,
    }
}

/// A scalar's value without its key.
fn scalar(kind: &Kind, v: &Value, out: &mut Vec<u8>) {
    match (kind, v) {
        (Kind::Double, Value::F64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Float, Value::F32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Fixed64, Value::U64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Sfixed64, Value::I64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Fixed32, Value::U32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Sfixed32, Value::I32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Kind::Sint32, Value::I32(x)) => varint((((x << 1) ^ (x >> 31)) as u32) as u64, out),
        (Kind::Sint64, Value::I64(x)) => varint(((x << 1) ^ (x >> 63)) as u64, out),
        (_, Value::I32(x)) | (_, Value::EnumNumber(x)) => varint(i64::from(*x) as u64, out),
        (_, Value::I64(x)) => varint(*x as u64, out),
        (_, Value::U32(x)) => varint(u64::from(*x), out),
        (_, Value::U64(x)) => varint(*x, out),
        (_, Value::Bool(b)) => varint(u64::from(*b), out),
        _ => {}
    }
}

fn map_key_value(k: &MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(x) => Value::I32(*x),
        MapKey::I64(x) => Value::I64(*x),
        MapKey::U32(x) => Value::U32(*x),
        MapKey::U64(x) => Value::U64(*x),
        MapKey::String(s) => Value::String(s.clone()),
    }
}

fn key(field: u32, wire: u32, out: &mut Vec<u8>) {
    varint(u64::from((field << 3) | wire), out);
}

fn length_delimited(bytes: &[u8], out: &mut Vec<u8>) {
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};
    use envoy_types::pb::google::protobuf::Any;
    use prost::Name;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn vhost(keys: &[&str]) -> VirtualHost {
        VirtualHost {
            name: "a".into(),
            domains: vec!["a".into(), "a:*".into()],
            routes: vec![Route {
                name: "r".into(),
                ..Default::default()
            }],
            typed_per_filter_config: keys
                .iter()
                .map(|k| {
                    (
                        k.to_string(),
                        Any {
                            type_url: format!("type.googleapis.com/x.{k}"),
                            value: vec![8, 1],
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn map_order_does_not_change_the_bytes_and_they_decode_to_the_same_message() -> TestResult {
        let keys = [
            "envoy.filters.http.cors",
            "envoy.filters.http.rbac",
            "envoy.filters.http.local_ratelimit",
            "z",
            "b",
        ];
        let a = vhost(&keys);
        let mut reversed = keys;
        reversed.reverse();
        let b = vhost(&reversed);
        let name = VirtualHost::full_name();
        let (ca, cb) = (canonical_bytes(&name, &a)?, canonical_bytes(&name, &b)?);
        assert_eq!(ca, cb);
        assert_eq!(VirtualHost::decode(ca.as_slice())?, a);
        Ok(())
    }

    #[test]
    fn negative_and_signed_numbers_round_trip() -> TestResult {
        use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
        use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
        let m = RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: 42,
                denominator: 2,
            }),
            runtime_key: "k".into(),
        };
        let c = canonical_bytes(&RuntimeFractionalPercent::full_name(), &m)?;
        assert_eq!(RuntimeFractionalPercent::decode(c.as_slice())?, m);
        Ok(())
    }
}
