//! Envoy resources as canonical proto3 JSON (and back), through a descriptor
//! pool compiled from the Envoy API at build time.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptor.bin"));

/// Errors converting between protobuf and JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The built-in descriptor set could not be loaded.
    #[error("envoy descriptor set: {0}")]
    Descriptors(String),
    /// The message type is not in the descriptor pool.
    #[error("unknown message type {0}")]
    UnknownType(String),
    /// Protobuf decoding failed.
    #[error("decoding {type_name}: {source}")]
    Decode {
        /// Message type.
        type_name: String,
        /// Cause.
        source: prost::DecodeError,
    },
    /// Canonical bytes could not be taken apart (a bug, never user input).
    #[error("malformed canonical bytes: {0}")]
    Malformed(String),
    /// JSON (de)serialisation failed.
    #[error("json for {type_name}: {source}")]
    Json {
        /// Message type.
        type_name: String,
        /// Cause.
        source: serde_json::Error,
    },
}

/// The pool of Envoy API descriptors.
pub fn pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| JsonError::Descriptors(e.clone()))
}

/// `message` as canonical proto3 JSON, with `Any` fields expanded.
pub fn to_json<M: Message + Name>(message: &M) -> Result<serde_json::Value, JsonError> {
    to_json_as(&M::full_name(), message)
}

/// `message` (of protobuf type `type_name`, e.g.
/// `envoy.config.listener.v3.Listener`) as canonical proto3 JSON.
pub fn to_json_as<M: Message>(
    type_name: &str,
    message: &M,
) -> Result<serde_json::Value, JsonError> {
    let desc = pool()?
        .get_message_by_name(type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.to_string()))?;
    let dynamic =
        DynamicMessage::decode(desc, message.encode_to_vec().as_slice()).map_err(|source| {
            JsonError::Decode {
                type_name: type_name.to_string(),
                source,
            }
        })?;
    let options = SerializeOptions::new().skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|source| JsonError::Json {
            type_name: type_name.to_string(),
            source,
        })
}

/// Parses proto3 JSON into `M`.
pub fn from_json<M: Message + Name + Default>(json: &serde_json::Value) -> Result<M, JsonError> {
    let type_name = M::full_name();
    let desc = pool()?
        .get_message_by_name(&type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.clone()))?;
    let dynamic =
        DynamicMessage::deserialize(desc, json.clone()).map_err(|source| JsonError::Json {
            type_name: type_name.clone(),
            source,
        })?;
    M::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|source| JsonError::Decode { type_name, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use envoy_types::pb::google::protobuf::Any;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn any_fields_are_expanded_and_round_trip() -> TestResult {
        let hcm = HttpConnectionManager {
            stat_prefix: "ingress_http".into(),
            ..Default::default()
        };
        let listener = Listener {
            name: "ingress_http".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(Any {
                        type_url: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager".into(),
                        value: hcm.encode_to_vec(),
                    })),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = to_json(&listener)?;
        let typed = &json["filterChains"][0]["filters"][0]["typedConfig"];
        assert_eq!(typed["statPrefix"], "ingress_http");
        assert!(
            typed["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("HttpConnectionManager"))
        );
        let back: Listener = from_json(&json)?;
        assert_eq!(back, listener);
        Ok(())
    }

    #[test]
    fn unknown_types_are_an_error() {
        let r = to_json_as("envoy.no.such.Type", &Listener::default());
        assert!(matches!(r, Err(JsonError::UnknownType(_))));
    }
}
