//! Catalogue: Secrets and TLSCertificateDelegations as HTTPProxies use them.

use serde_json::json;

use super::catalogue::*;
use super::check::*;

/// TLS: Secrets and TLSCertificateDelegations as HTTPProxies use them.
pub fn tls(c: &Ctx) -> Built {
    let (m, o) = (c.m.as_str(), c.o.as_str());
    let secure = |name: &str, secret: &str| {
        proxy(
            name,
            json!({"virtualhost": {"fqdn": c.host(name), "tls": {"secretName": secret}},
                   "routes": [{"services": to_steady()}]}),
        )
    };
    let pair = |entry: &str| c.ca.server(&c.host(entry), &[c.host(entry).as_str()]);
    let ca = c.ca.cert_pem();
    let delegated = pair("hp-tls-delegated")?;
    let star = pair("hp-tls-delegated-star")?;
    let mixed = pair("hp-tls-delegated-mixed-star")?;
    let private = pair("hp-tls-undelegated")?;
    let own = pair("hp-tls-own")?;
    let other = pair("hp-tls-key-mismatch")?;
    let second = c.ca.server("other", &["other.example.com"])?;
    let not_permitted = |name: &'static str, secret: &str| {
        invalid(
            m,
            name,
            "TLSError",
            "DelegationNotPermitted",
            format!(
                "Spec.VirtualHost.TLS Secret \"{secret}\" certificate delegation not permitted"
            ),
        )
    };
    let secret_invalid = |name: &'static str, secret: &str, why: &str| {
        invalid(
            m,
            name,
            "TLSError",
            "SecretNotValid",
            format!("Spec.VirtualHost.TLS Secret \"{secret}\" is invalid: {why}"),
        )
    };
    Ok(vec![
        Entry {
            name: "hp-tls-own",
            kind: "Secret",
            objects: vec![
                c.m(tls_secret("own-cert", &own.cert_pem, &own.key_pem)),
                c.m(secure("hp-tls-own", "own-cert")),
            ],
            expect: vec![
                valid(m, "hp-tls-own"),
                serves_tls(c.https, &c.host("hp-tls-own"), "/", "steady", &ca),
                answers(&c.host("hp-tls-own"), "/", 301),
            ],
        },
        Entry {
            name: "hp-tls-version-unsupported",
            kind: "HTTPProxy",
            objects: vec![c.m(proxy(
                "hp-tls-version-unsupported",
                json!({"virtualhost": {"fqdn": c.host("hp-tls-version-unsupported"),
                                       "tls": {"secretName": "own-cert", "minimumProtocolVersion": "1.1"}},
                       "routes": [{"services": to_steady()}]}),
            ))],
            expect: vec![
                valid(m, "hp-tls-version-unsupported"),
                warned(
                    m,
                    "hp-tls-version-unsupported",
                    "TLSError",
                    "TLSVersionIgnored",
                    "Spec.VirtualHost.TLS protocol version \"1.1\" is not supported; using the default",
                ),
            ],
        },
        Entry {
            name: "hp-tls-secret-missing",
            kind: "Secret",
            objects: vec![c.m(secure("hp-tls-secret-missing", "nope"))],
            expect: vec![secret_invalid("hp-tls-secret-missing", "nope", "Secret not found")],
        },
        Entry {
            name: "hp-tls-undelegated",
            kind: "TLSCertificateDelegation",
            objects: vec![
                c.o(tls_secret("private-cert", &private.cert_pem, &private.key_pem)),
                c.m(secure("hp-tls-undelegated", &format!("{o}/private-cert"))),
            ],
            expect: vec![not_permitted("hp-tls-undelegated", &format!("{o}/private-cert"))],
        },
        Entry {
            name: "hp-tls-delegated",
            kind: "TLSCertificateDelegation",
            objects: vec![
                c.o(tls_secret("shared-cert", &delegated.cert_pem, &delegated.key_pem)),
                c.o(delegation("shared-cert", "shared-cert", &[m])),
                c.m(secure("hp-tls-delegated", &format!("{o}/shared-cert"))),
            ],
            expect: vec![
                valid(m, "hp-tls-delegated"),
                serves_tls(c.https, &c.host("hp-tls-delegated"), "/", "steady", &ca),
            ],
        },
        Entry {
            name: "hp-tls-delegated-star",
            kind: "TLSCertificateDelegation",
            objects: vec![
                c.o(tls_secret("star-cert", &star.cert_pem, &star.key_pem)),
                c.o(delegation("star-cert", "star-cert", &["*"])),
                c.m(secure("hp-tls-delegated-star", &format!("{o}/star-cert"))),
            ],
            expect: vec![valid(m, "hp-tls-delegated-star")],
        },
        Entry {
            name: "hp-tls-delegated-mixed-star",
            kind: "TLSCertificateDelegation",
            // `*` is a wildcard only on its own (upstream's rule).
            objects: vec![
                c.o(tls_secret("mixed-cert", &mixed.cert_pem, &mixed.key_pem)),
                c.o(delegation("mixed-cert", "mixed-cert", &["*", "nobody"])),
                c.m(secure("hp-tls-delegated-mixed-star", &format!("{o}/mixed-cert"))),
            ],
            expect: vec![not_permitted("hp-tls-delegated-mixed-star", &format!("{o}/mixed-cert"))],
        },
        Entry {
            name: "hp-tls-delegation-in-wrong-namespace",
            kind: "TLSCertificateDelegation",
            // A delegation is only honoured in the Secret's own namespace.
            objects: vec![
                c.m(delegation("grab-private-cert", "private-cert", &[m])),
                c.m(secure("hp-tls-delegation-in-wrong-namespace", &format!("{o}/private-cert"))),
            ],
            expect: vec![not_permitted(
                "hp-tls-delegation-in-wrong-namespace",
                &format!("{o}/private-cert"),
            )],
        },
        Entry {
            name: "hp-tls-delegation-of-nothing",
            kind: "TLSCertificateDelegation",
            objects: vec![
                c.o(delegation("ghost-cert", "ghost-cert", &[m])),
                c.m(secure("hp-tls-delegation-of-nothing", &format!("{o}/ghost-cert"))),
            ],
            expect: vec![secret_invalid(
                "hp-tls-delegation-of-nothing",
                &format!("{o}/ghost-cert"),
                "Secret not found",
            )],
        },
        Entry {
            name: "hp-tls-delegation-empty-targets",
            kind: "TLSCertificateDelegation",
            objects: vec![c.o(json!({
                "apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
                "metadata": {"name": "empty"}, "spec": {"delegations": [{"secretName": "private-cert"}]}
            }))],
            expect: vec![refused(0, "spec.delegations[0].targetNamespaces: Required value")],
        },
        Entry {
            name: "hp-tls-broken-pem",
            kind: "Secret",
            objects: vec![
                c.m(tls_secret(
                    "broken-pem",
                    "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
                    &own.key_pem,
                )),
                c.m(secure("hp-tls-broken-pem", "broken-pem")),
            ],
            expect: vec![secret_invalid(
                "hp-tls-broken-pem",
                "broken-pem",
                "invalid TLS certificate: failed to parse PEM block",
            )],
        },
        Entry {
            name: "hp-tls-not-pem",
            kind: "Secret",
            objects: vec![
                c.m(tls_secret("not-pem", "hello", "world")),
                c.m(secure("hp-tls-not-pem", "not-pem")),
            ],
            expect: vec![secret_invalid(
                "hp-tls-not-pem",
                "not-pem",
                "invalid TLS certificate: failed to locate certificate",
            )],
        },
        Entry {
            name: "hp-tls-key-mismatch",
            kind: "Secret",
            objects: vec![
                c.m(tls_secret("mismatch", &other.cert_pem, &second.key_pem)),
                c.m(secure("hp-tls-key-mismatch", "mismatch")),
            ],
            expect: vec![secret_invalid(
                "hp-tls-key-mismatch",
                "mismatch",
                "invalid TLS private key: private key does not match public key",
            )],
        },
        Entry {
            name: "hp-tls-secret-wrong-type",
            kind: "Secret",
            objects: vec![
                c.m(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "custom-type"},
                           "type": "example.com/custom",
                           "stringData": {"tls.crt": own.cert_pem, "tls.key": own.key_pem}})),
                c.m(secure("hp-tls-secret-wrong-type", "custom-type")),
            ],
            expect: vec![secret_invalid("hp-tls-secret-wrong-type", "custom-type", "Secret not found")],
        },
        Entry {
            name: "hp-tls-secret-without-key",
            kind: "Secret",
            objects: vec![c.m(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "no-key"},
                                     "type": "kubernetes.io/tls", "stringData": {"tls.crt": own.cert_pem}}))],
            expect: vec![refused(0, "data[tls.key]: Required value")],
        },
    ])
}
