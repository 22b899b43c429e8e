//! API types of the Contour control plane.
//!
//! The JSON shapes follow upstream Contour so that existing manifests apply
//! unchanged:
//! - `projectcontour.io/v1`: [`HTTPProxy`], [`TLSCertificateDelegation`]
//! - `contour.heptio.com/v1beta1`: [`IngressRoute`]
//! - `projectcontour.io/v1alpha1`: [`ContourDeployment`]
//!
//! [`all_crds`] returns the CustomResourceDefinitions exactly as they are
//! committed under `helm/contour-operator/crds/` (see `make crds`).
#![forbid(unsafe_code)]

pub mod apidoc;
pub mod conditions;
pub mod contourdeployment;
mod generate;
pub mod httpproxy;
pub mod ingressroute;
mod schema;
pub mod tlsdelegation;

pub use conditions::{DetailedCondition, SubCondition};
pub use contourdeployment::{ContourDeployment, ContourDeploymentSpec, ContourDeploymentStatus};
pub use generate::{CrdFile, GenerateError, all_crds, render_all};
pub use httpproxy::{HTTPProxy, HTTPProxySpec, HTTPProxyStatus};
pub use ingressroute::{IngressRoute, IngressRouteSpec, IngressRouteStatus};
pub use tlsdelegation::{
    TLSCertificateDelegation, TLSCertificateDelegationSpec, TLSCertificateDelegationStatus,
};
