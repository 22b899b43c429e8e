//! State-of-the-world xDS for one stream (ADS or a single-type stream),
//! without I/O.
//!
//! - A request whose nonce is not the latest one sent for its type is stale
//!   and ignored.
//! - A request carrying `error_detail` is a NACK: reported once, and the
//!   rejected version is not sent again; the next snapshot that changes the
//!   resources is.
//! - LDS and CDS responses carry every resource; RDS, EDS and SDS responses
//!   carry only the subscribed resources whose version changed since they
//!   were last sent on this stream, so an endpoint change pushes one
//!   assignment, not all of them.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::snapshot::{Snapshot, TypeSnapshot};
use super::{Event, type_url};

/// Responses to send and events to report after one input.
pub type Outcome = super::Outcome<DiscoveryResponse>;

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    subscribed: bool,
    last_nonce: Option<String>,
    last_version: Option<String>,
    /// Version of each resource as last sent on this stream.
    sent: BTreeMap<String, String>,
    nacked_version: Option<String>,
}

/// The state of one SotW stream.
#[derive(Debug, Default)]
pub struct SotwStream {
    types: BTreeMap<String, TypeState>,
    nonces: u64,
}

impl SotwStream {
    /// A new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles a request from the client against the current snapshot.
    pub fn on_request(&mut self, req: &DiscoveryRequest, snapshot: &Snapshot) -> Outcome {
        let mut outcome = Outcome::default();
        let state = self.types.entry(req.type_url.clone()).or_default();
        if !req.response_nonce.is_empty()
            && state.last_nonce.as_deref() != Some(req.response_nonce.as_str())
        {
            return outcome; // stale
        }
        if !req.response_nonce.is_empty() {
            let version = state.last_version.clone().unwrap_or_default();
            match &req.error_detail {
                Some(status) => {
                    state.nacked_version = Some(version.clone());
                    outcome.events.push(Event::Nack {
                        type_url: req.type_url.clone(),
                        version,
                        message: status.message.clone(),
                    });
                }
                None => {
                    state.nacked_version = None;
                    outcome.events.push(Event::Ack {
                        type_url: req.type_url.clone(),
                        version,
                    });
                }
            }
        }
        let names: BTreeSet<String> = req
            .resource_names
            .iter()
            .filter(|n| *n != "*")
            .cloned()
            .collect();
        let wildcard = req.resource_names.iter().any(|n| n == "*")
            || (req.resource_names.is_empty() && type_url::wildcard_by_default(&req.type_url));
        let changed = !state.subscribed || wildcard != state.wildcard || names != state.names;
        state.subscribed = true;
        state.wildcard = wildcard;
        if changed {
            // Names dropped from the subscription will have to be sent again if re-added.
            state.sent.retain(|n, _| wildcard || names.contains(n));
            state.names = names;
        }
        let nonce = &mut self.nonces;
        if let Some(resp) = respond(&req.type_url, state, snapshot, changed, nonce) {
            outcome.responses.push(resp);
        }
        outcome
    }

    /// Pushes what changed in a new snapshot to the subscribed types.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<DiscoveryResponse> {
        let nonce = &mut self.nonces;
        self.types
            .iter_mut()
            .filter(|(_, s)| s.subscribed)
            .filter_map(|(type_url, state)| respond(type_url, state, snapshot, false, nonce))
            .collect()
    }
}

/// The response for one type, if anything is to be sent. `force` answers a
/// new subscription even when nothing changed.
fn respond(
    type_url: &str,
    state: &mut TypeState,
    snapshot: &Snapshot,
    force: bool,
    nonce: &mut u64,
) -> Option<DiscoveryResponse> {
    let empty = TypeSnapshot::default();
    let current = snapshot.of(type_url).unwrap_or(&empty);
    let wanted: Vec<_> = current
        .resources
        .values()
        .filter(|r| state.wildcard || state.names.contains(&r.name))
        .collect();
    let full_state = type_url::wildcard_by_default(type_url) || state.wildcard;
    let changed: Vec<_> = wanted
        .iter()
        .filter(|r| state.sent.get(&r.name) != Some(&r.version))
        .collect();
    let removed = full_state
        && state
            .sent
            .keys()
            .any(|n| !current.resources.contains_key(n));
    if !force && changed.is_empty() && !removed {
        return None;
    }
    // A version the client refused is not sent again.
    if !force && state.nacked_version.as_deref() == Some(current.version.as_str()) {
        return None;
    }
    let to_send: Vec<_> = if full_state || force {
        wanted.clone()
    } else {
        changed.into_iter().copied().collect()
    };
    *nonce += 1;
    let n = nonce.to_string();
    state.last_nonce = Some(n.clone());
    state.last_version = Some(current.version.clone());
    if full_state {
        state.sent.clear();
    }
    for r in &to_send {
        state.sent.insert(r.name.clone(), r.version.clone());
    }
    Some(DiscoveryResponse {
        version_info: current.version.clone(),
        resources: to_send.iter().map(|r| r.body.clone()).collect(),
        type_url: type_url.to_string(),
        nonce: n,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use envoy_types::pb::google::protobuf::Any;
    use envoy_types::pb::google::rpc::Status;

    use super::*;
    use crate::xds::snapshot::VersionedResource;

    fn snap(entries: &[(&'static str, &[(&str, &str)])]) -> Snapshot {
        let mut s = Snapshot::default();
        for (t, resources) in entries {
            let mut ts = TypeSnapshot::default();
            for (name, version) in *resources {
                ts.version.push_str(version);
                ts.resources.insert(
                    name.to_string(),
                    Arc::new(VersionedResource {
                        name: name.to_string(),
                        version: version.to_string(),
                        body: Any {
                            type_url: t.to_string(),
                            value: name.as_bytes().to_vec(),
                        },
                    }),
                );
            }
            s.types.insert(t, ts);
        }
        s
    }

    fn req(t: &str, names: &[&str], nonce: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: t.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            response_nonce: nonce.into(),
            ..Default::default()
        }
    }

    fn names(r: &DiscoveryResponse) -> Vec<String> {
        r.resources
            .iter()
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .collect()
    }

    #[test]
    fn wildcard_cds_gets_everything_then_acks() {
        let s = snap(&[(type_url::CLUSTER, &[("a", "1"), ("b", "1")])]);
        let mut stream = SotwStream::new();
        let out = stream.on_request(&req(type_url::CLUSTER, &[], ""), &s);
        assert_eq!(out.responses.len(), 1);
        assert_eq!(names(&out.responses[0]), ["a", "b"]);
        let nonce = out.responses[0].nonce.clone();
        let out = stream.on_request(&req(type_url::CLUSTER, &[], &nonce), &s);
        assert!(
            out.responses.is_empty(),
            "an ACK of the current version needs no answer"
        );
        assert!(matches!(&out.events[..], [Event::Ack { version, .. }] if version == "11"));
    }

    #[test]
    fn eds_pushes_only_the_changed_assignment() {
        let s1 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1"), ("c", "1")])]);
        let mut stream = SotwStream::new();
        let out = stream.on_request(&req(type_url::ENDPOINT, &["a", "b", "c"], ""), &s1);
        assert_eq!(names(&out.responses[0]), ["a", "b", "c"]);
        let s2 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "2"), ("c", "1")])]);
        let pushed = stream.on_snapshot(&s2);
        assert_eq!(pushed.len(), 1);
        assert_eq!(names(&pushed[0]), ["b"]);
        assert!(stream.on_snapshot(&s2).is_empty(), "nothing changed since");
    }

    #[test]
    fn unsubscribed_resources_are_not_sent() {
        let s = snap(&[(type_url::ROUTE, &[("ingress_http", "1"), ("https/a", "1")])]);
        let mut stream = SotwStream::new();
        let out = stream.on_request(&req(type_url::ROUTE, &["ingress_http"], ""), &s);
        assert_eq!(names(&out.responses[0]), ["ingress_http"]);
    }

    #[test]
    fn stale_nonces_are_ignored() {
        let s = snap(&[(type_url::LISTENER, &[("l", "1")])]);
        let mut stream = SotwStream::new();
        let first = stream.on_request(&req(type_url::LISTENER, &[], ""), &s);
        let s2 = snap(&[(type_url::LISTENER, &[("l", "2")])]);
        let second = stream.on_snapshot(&s2);
        assert_eq!(second.len(), 1);
        // An ACK for the first response arrives after the second was sent.
        let out = stream.on_request(
            &req(type_url::LISTENER, &[], &first.responses[0].nonce),
            &s2,
        );
        assert!(out.responses.is_empty() && out.events.is_empty());
    }

    #[test]
    fn a_nacked_version_is_not_resent_but_the_next_change_is() {
        let s1 = snap(&[(type_url::LISTENER, &[("l", "bad")])]);
        let mut stream = SotwStream::new();
        let out = stream.on_request(&req(type_url::LISTENER, &[], ""), &s1);
        let mut nack = req(type_url::LISTENER, &[], &out.responses[0].nonce);
        nack.error_detail = Some(Status {
            code: 3,
            message: "invalid listener".into(),
            details: vec![],
        });
        let out = stream.on_request(&nack, &s1);
        assert!(out.responses.is_empty());
        assert!(
            matches!(&out.events[..], [Event::Nack { message, .. }] if message == "invalid listener")
        );
        assert!(
            stream.on_snapshot(&s1).is_empty(),
            "the refused version is not pushed again"
        );
        let s2 = snap(&[(type_url::LISTENER, &[("l", "good")])]);
        assert_eq!(stream.on_snapshot(&s2).len(), 1);
    }

    #[test]
    fn removed_clusters_are_dropped_from_the_full_state() {
        let s1 = snap(&[(type_url::CLUSTER, &[("a", "1"), ("b", "1")])]);
        let mut stream = SotwStream::new();
        stream.on_request(&req(type_url::CLUSTER, &[], ""), &s1);
        let s2 = snap(&[(type_url::CLUSTER, &[("a", "1")])]);
        let pushed = stream.on_snapshot(&s2);
        assert_eq!(pushed.len(), 1);
        assert_eq!(names(&pushed[0]), ["a"]);
    }
}
