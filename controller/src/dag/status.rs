//! Status of routing objects, computed by the builder alongside the DAG.

/// The kinds of object that carry a routing status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// projectcontour.io/v1 HTTPProxy.
    HTTPProxy,
    /// contour.heptio.com/v1beta1 IngressRoute.
    IngressRoute,
}

/// One object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Kind.
    pub kind: ObjectKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The overall state of an object (`status.currentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    /// Serves traffic.
    Valid,
    /// Refused; see the errors.
    Invalid,
    /// A non-root object that no root includes.
    Orphaned,
}

impl Current {
    /// The word upstream writes to `status.currentStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Current::Valid => "valid",
            Current::Invalid => "invalid",
            Current::Orphaned => "orphaned",
        }
    }
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Condition type, e.g. `TLSError`.
    pub r#type: String,
    /// CamelCase reason, e.g. `SecretNotValid`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// The status of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStatus {
    /// Overall state.
    pub current: Current,
    /// `status.description`.
    pub description: String,
    /// The generation this status was computed from.
    pub generation: i64,
    /// Errors (any error makes the object invalid).
    pub errors: Vec<Problem>,
    /// Warnings.
    pub warnings: Vec<Problem>,
}

impl ObjectStatus {
    /// A valid object, e.g. `ObjectStatus::valid("Valid HTTPProxy", gen)`.
    pub fn valid(description: &str, generation: i64) -> Self {
        Self {
            current: Current::Valid,
            description: description.to_string(),
            generation,
            errors: vec![],
            warnings: vec![],
        }
    }

    /// Records an error; the object becomes invalid and, for the first error,
    /// the message becomes its description.
    pub fn error(&mut self, r#type: &str, reason: &str, message: impl Into<String>) {
        let message = message.into();
        if self.errors.is_empty() {
            self.description = message.clone();
        }
        self.current = Current::Invalid;
        self.errors.push(Problem {
            r#type: r#type.into(),
            reason: reason.into(),
            message,
        });
    }

    /// Records a warning; the object stays as it is.
    pub fn warn(&mut self, r#type: &str, reason: &str, message: impl Into<String>) {
        self.warnings.push(Problem {
            r#type: r#type.into(),
            reason: reason.into(),
            message: message.into(),
        });
    }

    /// Marks the object orphaned with upstream's description.
    pub fn orphan(&mut self, description: &str) {
        self.current = Current::Orphaned;
        self.description = description.to_string();
        self.errors.push(Problem {
            r#type: "Orphaned".into(),
            reason: "Orphaned".into(),
            message: description.to_string(),
        });
    }

    /// Whether the object is valid.
    pub fn is_valid(&self) -> bool {
        self.current == Current::Valid
    }
}

/// Status of every routing object, in a stable order.
pub type Statuses = imbl::OrdMap<ObjectRef, ObjectStatus>;
