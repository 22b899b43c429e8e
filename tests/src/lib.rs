//! The test ground: a real etcd + kube-apiserver, a real Envoy and tiny HTTP
//! backends in a network namespace, all started by this crate on loopback.
//!
//! - [`ApiServer::shared`] starts one API server per test binary (RBAC on) and
//!   hands out admin clients, clients acting as a ServiceAccount, and fresh
//!   namespaces, one per test.
//! - [`Envoy::start`] runs Envoy 1.40 from a bootstrap and waits until it is live.
//! - [`TestNet::shared`] creates a network namespace with a veth pair on a /24 of
//!   its own; [`TestNet::backend`] serves HTTP from inside it.
//!
//! Every process and namespace is removed when the test binary exits, and
//! left-overs of killed runs are removed when the next one starts. A missing
//! component is an error that says how to install it (`make tools`).

pub mod apiserver;
pub mod backend;
pub mod bench;
pub mod contour;
pub mod envoy;
mod error;
pub mod fixtures;
pub mod k8s;
pub mod operator;
pub mod pki;
pub mod pods;
mod ports;
pub mod process;
pub mod prometheus;
pub mod tools;

pub use apiserver::ApiServer;
pub use backend::{Backend, TestNet};
pub use contour::{ContourServe, XdsPki};
pub use envoy::Envoy;
pub use error::HarnessError;
pub use ports::free_port;

/// Result of harness calls.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Installs the process-wide rustls crypto provider (once).
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
