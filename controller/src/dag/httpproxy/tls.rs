//! `spec.virtualhost.tls` of a root HTTPProxy: the serving certificate,
//! protocol versions, client certificate validation and the fallback
//! certificate, checked in upstream's order and with its words.

use contour_crds::httpproxy::{DownstreamValidation as SpecValidation, TLS};

use super::super::builder::BuilderConfig;
use super::super::common::{SecretError, lookup_ca, lookup_crl, lookup_tls_secret, secret_key};
use super::super::source::Source;
use super::super::status::ObjectStatus;
use super::super::{
    ClientCertificateDetails, DownstreamValidation, SecureVirtualHost, TlsVersion, VirtualHost,
};
use crate::cache::Key;

/// The TLS virtual host of a root, or `None` when an error was recorded.
pub(super) fn secure_virtual_host(
    cache: &dyn Source,
    config: &BuilderConfig,
    namespace: &str,
    tls: &TLS,
    template: &VirtualHost,
    status: &mut ObjectStatus,
) -> Option<SecureVirtualHost> {
    let min = version(&tls.minimum_protocol_version, TlsVersion::V1_2, status);
    let max = version(&tls.maximum_protocol_version, TlsVersion::V1_3, status);
    if tls.passthrough && tls.enable_fallback_certificate {
        // Upstream records this and carries on; the proxy is invalid anyway.
        status.error(
            "TLSError",
            "TLSIncompatibleFeatures",
            "Spec.VirtualHost.TLS: both Passthrough and enableFallbackCertificate were specified",
        );
    }
    let blank = tls.secret_name.trim().is_empty();
    if tls.passthrough && !blank {
        status.error(
            "TLSError",
            "TLSConfigNotValid",
            "Spec.VirtualHost.TLS: both Passthrough and SecretName were specified",
        );
        return None;
    }
    if !tls.passthrough && blank {
        status.error(
            "TLSError",
            "TLSConfigNotValid",
            "Spec.VirtualHost.TLS: neither Passthrough nor SecretName were specified",
        );
        return None;
    }
    if tls.passthrough && tls.client_validation.is_some() {
        status.error(
            "TLSError",
            "TLSIncompatibleFeatures",
            "Spec.VirtualHost.TLS passthrough cannot be combined with tls.clientValidation",
        );
        return None;
    }
    let mut svh = SecureVirtualHost {
        virtual_host: template.clone(),
        min_tls_version: min,
        max_tls_version: max,
        ..SecureVirtualHost::default()
    };
    if tls.passthrough {
        return status.is_valid().then_some(svh);
    }

    let secret = secret_key(namespace, &tls.secret_name);
    match lookup_tls_secret(cache, &secret, namespace) {
        Ok(s) => svh.secret = Some(s),
        Err(SecretError::NotDelegated) => {
            status.error(
                "TLSError",
                "DelegationNotPermitted",
                format!(
                    "Spec.VirtualHost.TLS Secret {:?} certificate delegation not permitted",
                    tls.secret_name
                ),
            );
            return None;
        }
        Err(SecretError::Invalid(m)) => {
            status.error(
                "TLSError",
                "SecretNotValid",
                format!(
                    "Spec.VirtualHost.TLS Secret {:?} is invalid: {m}",
                    tls.secret_name
                ),
            );
            return None;
        }
    }
    if min > max {
        status.error(
            "TLSError",
            "TLSConfigNotValid",
            "Spec.Virtualhost.TLS the minimum protocol version is greater than the maximum protocol version",
        );
        return None;
    }
    if tls.enable_fallback_certificate && tls.client_validation.is_some() {
        status.error(
            "TLSError",
            "TLSIncompatibleFeatures",
            "Spec.Virtualhost.TLS fallback & client validation are incompatible",
        );
        return None;
    }
    if tls.enable_fallback_certificate {
        let Some((ns, name)) = &config.fallback_certificate else {
            status.error(
                "TLSError",
                "FallbackNotPresent",
                "Spec.Virtualhost.TLS enabled fallback but the fallback Certificate Secret is not configured in Contour configuration file",
            );
            return None;
        };
        let fallback = Key::new(ns.clone(), name.clone());
        match lookup_tls_secret(cache, &fallback, namespace) {
            Ok(s) => svh.fallback_certificate = Some(s),
            Err(SecretError::NotDelegated) => {
                status.error(
                    "TLSError",
                    "FallbackNotDelegated",
                    format!(
                        "Spec.VirtualHost.TLS Secret \"{ns}/{name}\" is not configured for certificate delegation"
                    ),
                );
                return None;
            }
            Err(SecretError::Invalid(m)) => {
                status.error(
                    "TLSError",
                    "FallbackNotValid",
                    format!(
                        "Spec.Virtualhost.TLS Secret \"{ns}/{name}\" fallback certificate is invalid: {m}"
                    ),
                );
                return None;
            }
        }
    }
    if let Some(cv) = &tls.client_validation {
        svh.downstream_validation = Some(client_validation(cache, namespace, cv, status)?);
    }
    status.is_valid().then_some(svh)
}

/// `tls.clientValidation`: the CA (unless skipped), the optional CRL and
/// what to forward in `X-Forwarded-Client-Cert`.
fn client_validation(
    cache: &dyn Source,
    namespace: &str,
    cv: &SpecValidation,
    status: &mut ObjectStatus,
) -> Option<DownstreamValidation> {
    let mut out = DownstreamValidation {
        skip_verify: cv.skip_client_cert_validation,
        optional: cv.optional_client_certificate,
        forward_client_certificate: cv.forward_client_certificate.as_ref().map(|f| {
            ClientCertificateDetails {
                subject: f.subject,
                cert: f.cert,
                chain: f.chain,
                dns: f.dns,
                uri: f.uri,
            }
        }),
        ..DownstreamValidation::default()
    };
    if !cv.ca_secret.is_empty() {
        let key = secret_key(namespace, &cv.ca_secret);
        match lookup_ca(cache, &key, namespace) {
            Ok(ca) => out.ca = Some(ca),
            Err(SecretError::NotDelegated) => {
                status.error(
                    "TLSError",
                    "DelegationNotPermitted",
                    format!(
                        "Spec.VirtualHost.TLS CA Secret {:?} is invalid: certificate delegation not permitted",
                        cv.ca_secret
                    ),
                );
                return None;
            }
            Err(SecretError::Invalid(m)) => {
                status.error(
                    "TLSError",
                    "ClientValidationInvalid",
                    format!(
                        "Spec.VirtualHost.TLS client validation is invalid: invalid CA Secret \"{}/{}\": {m}",
                        key.namespace, key.name
                    ),
                );
                return None;
            }
        }
    } else if !cv.skip_client_cert_validation {
        status.error(
            "TLSError",
            "ClientValidationInvalid",
            "Spec.VirtualHost.TLS client validation is invalid: CA Secret must be specified",
        );
    }
    if !cv.crl_secret.is_empty() {
        let key = secret_key(namespace, &cv.crl_secret);
        match lookup_crl(cache, &key, namespace) {
            Ok(crl) => {
                out.crl = Some(crl);
                out.only_verify_leaf_crl = cv.crl_only_verify_leaf_cert;
            }
            Err(SecretError::NotDelegated) => {
                status.error(
                    "TLSError",
                    "DelegationNotPermitted",
                    format!(
                        "Spec.VirtualHost.TLS CRL Secret {:?} is invalid: certificate delegation not permitted",
                        cv.crl_secret
                    ),
                );
                return None;
            }
            Err(SecretError::Invalid(m)) => {
                status.error(
                    "TLSError",
                    "ClientValidationInvalid",
                    format!(
                        "Spec.VirtualHost.TLS client validation is invalid: invalid CRL Secret \"{}/{}\": {m}",
                        key.namespace, key.name
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// A protocol version: "1.2", "1.3", else the default (upstream silently;
/// we also say so in a warning).
fn version(v: &str, default: TlsVersion, status: &mut ObjectStatus) -> TlsVersion {
    match v {
        "1.2" => TlsVersion::V1_2,
        "1.3" => TlsVersion::V1_3,
        "" => default,
        other => {
            status.warn(
                "TLSError",
                "TLSVersionIgnored",
                format!(
                    "Spec.VirtualHost.TLS protocol version {other:?} is not supported; using the default"
                ),
            );
            default
        }
    }
}
