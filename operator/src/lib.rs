//! The Contour operator: reconciles `ContourDeployment` into a complete
//! Contour installation and reports status.
//!
//! The reconcile is a pipeline, one module per step: dereference → validate →
//! build (pure) → apply → status.
#![forbid(unsafe_code)]
