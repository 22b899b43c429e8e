//! The xDS side: versioned snapshots of the Envoy resources, and per-stream
//! state machines for state-of-the-world and delta xDS that do no I/O
//! (`on_request` / `on_snapshot` return what to send). A gRPC adapter drives them.

pub mod delta;
pub mod grpc;
pub mod request;
pub mod server;
pub mod snapshot;
pub mod sotw;
pub mod transport;
pub mod wire;

pub use snapshot::{Snapshot, TypeSnapshot, VersionedResource};

/// What a stream observed besides responses to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client accepted a version.
    Ack {
        /// Resource type.
        type_url: String,
        /// The version accepted.
        version: String,
    },
    /// The client refused a version.
    Nack {
        /// Resource type.
        type_url: String,
        /// The version refused.
        version: String,
        /// The client's reason.
        message: String,
    },
}

/// Responses (of the stream's kind) to send and events to report after one input.
#[derive(Debug)]
pub struct Outcome<R> {
    /// Send these, in order.
    pub responses: Vec<R>,
    /// Report these.
    pub events: Vec<Event>,
}

impl<R> Default for Outcome<R> {
    fn default() -> Self {
        Self {
            responses: Vec::new(),
            events: Vec::new(),
        }
    }
}

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
    /// Scoped route configurations (SRDS): the scoped layout of
    /// `ingress_http` (not in upstream's snapshots).
    pub const SCOPED_ROUTE: &str =
        "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";
    /// Runtime layers (RTDS).
    pub const RUNTIME: &str = "type.googleapis.com/envoy.service.runtime.v3.Runtime";

    /// Whether an empty subscription means "everything" (LDS, CDS and, as
    /// Envoy subscribes to it, SRDS).
    pub fn wildcard_by_default(type_url: &str) -> bool {
        type_url == LISTENER || type_url == CLUSTER || type_url == SCOPED_ROUTE
    }
}
