//! Shared schema fragments: patterns and helpers used by several API types.

/// A Go `time.ParseDuration` string (as upstream's CRDs accept), or the
/// words `infinity`/`infinite` where a timeout may be disabled.
pub const DURATION_OR_INFINITY: &str = r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|infinity|infinite)$";

/// A Go duration string only.
pub const DURATION: &str = r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+)$";

/// A DNS name, optionally a `*.` wildcard.
pub const FQDN: &str = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A DNS subdomain without wildcard.
pub const HOSTNAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// `skip_serializing_if` helper for plain booleans that default to false.
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// Conditions that may trigger a retry (Envoy's `retry_on` words).
pub const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// `retryOn`: a list of [`RETRY_ON`] words.
pub fn retry_on_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "string", "enum": RETRY_ON }
    })
}

/// `redirectResponseCodes`: redirect status codes.
pub fn redirect_codes_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": { "type": "integer", "format": "uint32", "enum": [301, 302, 303, 307, 308] }
    })
}
