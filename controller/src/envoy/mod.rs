//! Pure translation from the DAG to Envoy v3 resources, one module per
//! resource type, plus JSON conversion.

pub mod json;
