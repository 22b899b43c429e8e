//! The `dynamic` runtime layer (RTDS) that the bootstrap subscribes to, with
//! upstream's values: RE2 programs may be as large as 2^20 before Envoy
//! refuses a regex (Envoy's default is 100), with a warning above 1000.

use envoy_types::pb::envoy::service::runtime::v3::Runtime;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

/// Name of the layer, as the bootstrap's `rtds_layer` names it.
pub const DYNAMIC_LAYER: &str = "dynamic";

fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

/// The runtime layers Contour serves.
pub fn runtime_layers() -> Vec<Runtime> {
    let fields = [
        (
            "re2.max_program_size.error_level",
            number(f64::from(1u32 << 20)),
        ),
        ("re2.max_program_size.warn_level", number(1000.0)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    vec![Runtime {
        name: DYNAMIC_LAYER.into(),
        layer: Some(Struct { fields }),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_encodes_canonically() -> Result<(), Box<dyn std::error::Error>> {
        // The layer is a map (HashMap order varies); its canonical bytes, and
        // so its version, must not.
        let name = "envoy.service.runtime.v3.Runtime";
        let a = crate::envoy::canonical::canonical_bytes(name, &runtime_layers()[0])?;
        for _ in 0..8 {
            let b = crate::envoy::canonical::canonical_bytes(name, &runtime_layers()[0])?;
            assert_eq!(a, b);
        }
        let json = crate::envoy::json::to_json(&runtime_layers()[0])?;
        assert_eq!(json["layer"]["re2.max_program_size.error_level"], 1048576.0);
        Ok(())
    }
}
