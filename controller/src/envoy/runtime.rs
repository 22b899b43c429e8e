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
