//! The Contour control plane: watches Kubernetes, builds the routing DAG and
//! serves Envoy over xDS.
//!
//! Layout (filled in by the following issues):
//! - `k8s`: watchers feeding one event loop with hold-off, into a cache
//! - `dag`: pure: cache → DAG + status
//! - `envoy`: pure: DAG → Envoy resources, one module per xDS type
//! - `xds`: versioned snapshots, SotW/delta state machines, tonic adapter
//! - `status`: leader-only status writer
#![forbid(unsafe_code)]

pub mod envoy;
pub mod logging;
