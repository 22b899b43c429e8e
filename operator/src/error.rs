//! The reconcile's error: one variant per step, each with its own enum.

use crate::apply::ApplyError;
use crate::build::BuildError;
use crate::certs::CertError;
use crate::dereference::DereferenceError;
use crate::prune::PruneError;
use crate::status::StatusError;
use crate::validate::ValidateErrors;

/// Why a reconcile did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the cluster failed.
    #[error(transparent)]
    Dereference(#[from] DereferenceError),
    /// The spec is invalid.
    #[error("invalid spec: {0}")]
    Validate(#[from] ValidateErrors),
    /// Certificates could not be made.
    #[error("certificates: {0}")]
    Certificates(#[from] CertError),
    /// The children could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Applying failed, or a stranger holds a child's name.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Pruning failed.
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The finalizer could not be added or removed.
    #[error("finalizer: {0}")]
    Finalizer(kube::Error),
}

impl Error {
    /// A short stable label, for metrics and the `Degraded` reason.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Dereference(_) => "Dereference",
            Error::Validate(_) => "InvalidSpec",
            Error::Certificates(_) => "Certificates",
            Error::Build(_) => "Build",
            Error::Apply(ApplyError::Strangers(_)) => "NameConflict",
            Error::Apply(_) => "ApplyFailed",
            Error::Prune(_) => "PruneFailed",
            Error::Status(_) => "StatusFailed",
            // A stale copy (the object changed since it was read): the
            // next reconcile reads it afresh.
            Error::Finalizer(kube::Error::Api(e)) if e.code == 409 => "Conflict",
            Error::Finalizer(_) => "FinalizerFailed",
        }
    }
}
