//! The xDS side: versioned snapshots of the Envoy resources, and per-stream
//! state machines for state-of-the-world and delta xDS that do no I/O
//! (`on_request` / `on_snapshot` return what to send). A gRPC adapter drives them.

pub mod delta;
pub mod snapshot;
pub mod sotw;

pub use snapshot::{Snapshot, TypeSnapshot, VersionedResource};

/// Type URLs of the resources Contour serves.
pub mod type_url {
    /// Listeners (LDS).
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    /// Route configurations (RDS).
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    /// Clusters (CDS).
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    /// Endpoints (EDS).
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    /// Secrets (SDS).
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// Whether an empty subscription means "everything" (LDS and CDS).
    pub fn wildcard_by_default(type_url: &str) -> bool {
        type_url == LISTENER || type_url == CLUSTER
    }
}
