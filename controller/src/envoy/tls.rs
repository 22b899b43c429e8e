//! TLS contexts shared by listeners and clusters. As upstream, CA bundles
//! and revocation lists are inlined in the validation context (not sent by
//! SDS).

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, SubjectAltNameMatcher, certificate_validation_context,
    common_tls_context::ValidationContextType, subject_alt_name_matcher,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{StringMatcher, string_matcher::MatchPattern};

/// A validation context: trust `ca` (if any), accept only the DNS names
/// `subject_names` (if any), reject what `crl` revokes; `skip_verify`
/// accepts untrusted peers.
pub fn validation_context(
    ca: Option<&str>,
    subject_names: &[String],
    skip_verify: bool,
    crl: Option<&str>,
    only_verify_leaf_crl: bool,
) -> ValidationContextType {
    use certificate_validation_context::TrustChainVerification;
    let inline = |pem: &str| DataSource {
        specifier: Some(Specifier::InlineBytes(pem.as_bytes().to_vec())),
        ..Default::default()
    };
    ValidationContextType::ValidationContext(CertificateValidationContext {
        trusted_ca: ca.filter(|c| !c.is_empty()).map(inline),
        match_typed_subject_alt_names: subject_names
            .iter()
            .map(|san| SubjectAltNameMatcher {
                san_type: subject_alt_name_matcher::SanType::Dns as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(san.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        crl: crl.filter(|c| !c.is_empty()).map(inline),
        only_verify_leaf_cert_crl: crl.is_some() && only_verify_leaf_crl,
        trust_chain_verification: if skip_verify {
            TrustChainVerification::AcceptUntrusted
        } else {
            TrustChainVerification::VerifyTrustChain
        } as i32,
        ..Default::default()
    })
}
