//! TLSCertificateDelegation (`projectcontour.io/v1`).

use arbitrary::Arbitrary;
use serde_json::{Value, json};

use super::common::{Few, Text, ns};

#[derive(Debug, Clone, Arbitrary)]
pub struct Delegation {
    ns: u8,
    delegations: Few<(Text, Few<Text>)>,
}

impl Delegation {
    pub(super) fn json(&self) -> Value {
        let targets = ["*", "default", "team-a", "team-b", ""];
        json!({"apiVersion": "projectcontour.io/v1", "kind": "TLSCertificateDelegation",
        "metadata": {"name": "d", "namespace": ns(self.ns)},
        "spec": {"delegations": self.delegations.map(|(s, t)| json!({
            "secretName": s.of(&["tls", "ca", "bad"]),
            "targetNamespaces": t.map(|n| json!(n.of(&targets))),
        }))}})
    }
}
