//! The Contour control plane: watches Kubernetes, builds the routing DAG and
//! serves Envoy over xDS.
//!
//! Data flows one way: Kubernetes watch → [`cache`] → [`dag`] → [`envoy`]
//! resources → snapshot → gRPC stream → Envoy; DAG status → status writer.
//! `cache`, `dag` and `envoy` are pure: values in, values out.
// No unsafe code, except the libc calls of `process` (allowed there alone).
#![deny(unsafe_code)]

pub mod bootstrap;
pub mod cache;
pub mod certgen;
pub mod cli;
pub mod cmd;
pub mod dag;
pub mod envoy;
pub mod incremental;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod serve;
pub mod shutdown;
pub mod smallmap;
pub mod tls;
pub mod xds;
