//! Assembling canonical bytes from canonical pieces. Canonical encoding
//! (see [`crate::envoy::canonical`]) writes fields in number order, each
//! element of a repeated message field as its own canonical bytes behind a
//! tag and a length. So a message with a long repeated field (the 10,000
//! virtual hosts of `ingress_http`) is its canonical bytes without them,
//! with each element's remembered canonical bytes put in their place.

use crate::envoy::json::JsonError;

fn malformed() -> JsonError {
    JsonError::Malformed("truncated field".into())
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, JsonError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or_else(malformed)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(JsonError::Malformed("varint too long".into()))
}

fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Skips one field at `pos`; returns its number.
fn skip_field(bytes: &[u8], pos: &mut usize) -> Result<u64, JsonError> {
    let tag = read_varint(bytes, pos)?;
    let len = match tag & 7 {
        0 => {
            read_varint(bytes, pos)?;
            0
        }
        1 => 8,
        2 => usize::try_from(read_varint(bytes, pos)?).map_err(|_| malformed())?,
        5 => 4,
        other => return Err(JsonError::Malformed(format!("wire type {other}"))),
    };
    *pos = pos.checked_add(len).ok_or_else(malformed)?;
    if *pos > bytes.len() {
        return Err(malformed());
    }
    Ok(tag >> 3)
}

/// `base` (canonical bytes of a message) with `items` (canonical bytes of
/// messages) added as elements of the repeated field `field`, after the
/// first `after` elements `base` already has.
pub fn splice<'a>(
    base: &[u8],
    field: u32,
    after: usize,
    items: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, JsonError> {
    let field = u64::from(field);
    let (mut pos, mut seen) = (0, 0);
    let at = loop {
        if pos >= base.len() {
            break base.len();
        }
        let mut next = pos;
        let number = skip_field(base, &mut next)?;
        if number > field || (number == field && seen == after) {
            break pos;
        }
        if number == field {
            seen += 1;
        }
        pos = next;
    };
    let mut out = Vec::with_capacity(base.len() * 2);
    out.extend_from_slice(&base[..at]);
    for item in items {
        write_varint((field << 3) | 2, &mut out);
        write_varint(item.len() as u64, &mut out);
        out.extend_from_slice(item);
    }
    out.extend_from_slice(&base[at..]);
    Ok(out)
}
