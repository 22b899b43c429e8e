//! Pure translation from the DAG to Envoy v3 resources, one module per
//! resource type, plus JSON conversion. Output is sorted by name, so equal
//! input gives byte-equal resources.

pub mod ads;
pub mod canonical;
pub mod cluster;
pub mod endpoint;
pub mod json;
pub mod listener;
pub mod policy;
pub mod route;
pub mod runtime;
pub mod scoped;
pub mod secret;
pub mod tls;

use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
use envoy_types::pb::envoy::config::core::v3::grpc_service::{EnvoyGrpc, TargetSpecifier};
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, GrpcService, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::google::protobuf::{Any, Duration};
use prost::{Message, Name};

/// Packs a message into an `Any`.
pub fn any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// Config source of every RDS/EDS/SDS reference, as upstream writes it: a
/// gRPC stream to the `contour` cluster. It works whether Envoy's bootstrap
/// follows Contour per type (upstream's and the seed's default) or over ADS
/// (listeners and clusters then come over ADS, the rest per type).
pub fn xds_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::ApiConfigSource(ApiConfigSource {
            api_type: ApiType::Grpc as i32,
            transport_api_version: ApiVersion::V3 as i32,
            grpc_services: vec![GrpcService {
                target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: "contour".into(),
                    authority: "contour".into(),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// The message name an `Any` type URL names: what follows its last `/`
/// (`type.googleapis.com/envoy.config.listener.v3.Listener` →
/// `envoy.config.listener.v3.Listener`).
pub fn message_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

/// A protobuf Duration.
pub fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

/// All resources of one build, by type, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Listeners.
    pub listeners: Vec<envoy_types::pb::envoy::config::listener::v3::Listener>,
    /// Route configurations.
    pub routes: Vec<envoy_types::pb::envoy::config::route::v3::RouteConfiguration>,
    /// Scoped route configurations (the scoped layout of `ingress_http`).
    pub scoped_routes: Vec<envoy_types::pb::envoy::config::route::v3::ScopedRouteConfiguration>,
    /// Clusters.
    pub clusters: Vec<envoy_types::pb::envoy::config::cluster::v3::Cluster>,
    /// Endpoints of EDS clusters.
    pub endpoints: Vec<envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment>,
    /// TLS secrets for SDS.
    pub secrets: Vec<envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret>,
    /// Runtime layers for RTDS.
    pub runtimes: Vec<envoy_types::pb::envoy::service::runtime::v3::Runtime>,
}

/// Translates a DAG (and the endpoint slices of the cache) into resources.
pub fn translate(dag: &crate::dag::Dag, cache: &crate::cache::Cache) -> Resources {
    let clusters = cluster::clusters(dag);
    let endpoints = endpoint::load_assignments(&cluster::dag_clusters(dag), cache);
    Resources {
        listeners: listener::listeners(dag),
        routes: route::route_configurations(dag),
        scoped_routes: scoped::scoped_route_configurations(dag),
        clusters,
        endpoints,
        secrets: secret::secrets(dag),
        runtimes: runtime::runtime_layers(),
    }
}

impl Resources {
    /// Every resource as proto3 JSON, by type: `listeners`, `routes`,
    /// `scopedroutes`, `clusters`, `endpoints`, `secrets`.
    pub fn to_json(&self) -> Result<Vec<(&'static str, Vec<serde_json::Value>)>, json::JsonError> {
        fn all<M: Message + Name>(items: &[M]) -> Result<Vec<serde_json::Value>, json::JsonError> {
            items.iter().map(json::to_json).collect()
        }
        Ok(vec![
            ("listeners", all(&self.listeners)?),
            ("routes", all(&self.routes)?),
            ("scopedroutes", all(&self.scoped_routes)?),
            ("clusters", all(&self.clusters)?),
            ("endpoints", all(&self.endpoints)?),
            ("secrets", all(&self.secrets)?),
        ])
    }
}
