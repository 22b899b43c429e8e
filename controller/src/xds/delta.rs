//! Delta (incremental) xDS for one stream, without I/O: only resources whose
//! version differs from what the client has are sent, and removals are named.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};

use super::snapshot::{Snapshot, TypeSnapshot};
use super::{Event, type_url};
use crate::smallmap::SmallMap;

/// Responses to send and events to report after one input.
pub type Outcome = super::Outcome<DeltaDiscoveryResponse>;

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    /// What the client has (as far as we know), name → version.
    client: BTreeMap<String, String>,
    /// Versions the client refused, name → version; not sent again.
    refused: BTreeMap<String, String>,
    /// Nonce of the last response and the versions it carried.
    pending: Option<(String, String, BTreeMap<String, String>)>,
}

/// The state of one delta stream.
#[derive(Debug, Default)]
pub struct DeltaStream {
    /// One entry per type (a per-type stream has one: a small map).
    types: SmallMap<String, TypeState>,
    nonces: u64,
    /// An ADS stream: resources go out in their ADS form.
    aggregated: bool,
}

impl DeltaStream {
    /// A new stream; `aggregated` for an ADS stream, whose listeners and
    /// clusters go out in their ADS form
    /// ([`crate::xds::snapshot::VersionedResource::for_ads`]).
    pub fn new(aggregated: bool) -> Self {
        Self {
            aggregated,
            ..Self::default()
        }
    }

    /// Handles a request from the client against the current snapshot.
    pub fn on_request(&mut self, req: &DeltaDiscoveryRequest, snapshot: &Snapshot) -> Outcome {
        let mut outcome = Outcome::default();
        let first = !self.types.contains_key(&req.type_url);
        let state = self
            .types
            .get_or_insert_with(req.type_url.clone(), TypeState::default);
        if first {
            state.client = req.initial_resource_versions.clone().into_iter().collect();
            state.wildcard = req.resource_names_subscribe.is_empty()
                && type_url::wildcard_by_default(&req.type_url);
        }
        if !req.response_nonce.is_empty() {
            match state.pending.take() {
                Some((nonce, version, sent)) if nonce == req.response_nonce => {
                    match &req.error_detail {
                        Some(status) => {
                            // The client kept its previous resources.
                            for (name, v) in sent {
                                state.client.remove(&name);
                                state.refused.insert(name, v);
                            }
                            outcome.events.push(Event::Nack {
                                type_url: req.type_url.clone(),
                                version,
                                message: status.message.clone(),
                            });
                        }
                        None => {
                            // A refusal holds until the client accepts
                            // another version of the resource: the refused
                            // one may be sent again after that.
                            for name in sent.keys() {
                                state.refused.remove(name);
                            }
                            outcome.events.push(Event::Ack {
                                type_url: req.type_url.clone(),
                                version,
                            });
                        }
                    }
                }
                other => state.pending = other,
            }
        }
        for name in &req.resource_names_subscribe {
            if name == "*" {
                state.wildcard = true;
            } else {
                state.names.insert(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                state.wildcard = false;
            } else {
                state.names.remove(name);
                state.client.remove(name);
            }
        }
        let nonce = &mut self.nonces;
        // A new subscription is always answered, even with nothing, or the
        // client waits for its initial fetch timeout.
        if let Some(r) = respond(
            &req.type_url,
            state,
            snapshot,
            first,
            nonce,
            self.aggregated,
        ) {
            outcome.responses.push(r);
        }
        outcome
    }

    /// Pushes what changed in a new snapshot.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<DeltaDiscoveryResponse> {
        let (nonce, ads) = (&mut self.nonces, self.aggregated);
        self.types
            .iter_mut()
            .filter_map(|(t, s)| respond(t, s, snapshot, false, nonce, ads))
            .collect()
    }
}

fn respond(
    type_url: &str,
    state: &mut TypeState,
    snapshot: &Snapshot,
    force: bool,
    nonce: &mut u64,
    ads: bool,
) -> Option<DeltaDiscoveryResponse> {
    let empty = TypeSnapshot::default();
    let current = snapshot.of(type_url).unwrap_or(&empty);
    let wanted = |name: &String| state.wildcard || state.names.contains(name);
    let resources: Vec<Resource> = current
        .resources
        .values()
        .filter(|r| wanted(&r.name))
        .filter(|r| state.client.get(&r.name) != Some(&r.version))
        .filter(|r| state.refused.get(&r.name) != Some(&r.version))
        .map(|r| Resource {
            name: r.name.clone(),
            version: r.version.clone(),
            resource: Some(r.form(ads).any()),
            ..Default::default()
        })
        .collect();
    let removed: Vec<String> = state
        .client
        .keys()
        .filter(|n| wanted(n) && !current.resources.contains_key(*n))
        .cloned()
        .collect();
    if !force && resources.is_empty() && removed.is_empty() {
        return None;
    }
    *nonce += 1;
    let n = nonce.to_string();
    let mut sent = BTreeMap::new();
    for r in &resources {
        state.client.insert(r.name.clone(), r.version.clone());
        sent.insert(r.name.clone(), r.version.clone());
    }
    for name in &removed {
        state.client.remove(name);
    }
    state.pending = Some((n.clone(), current.version.clone(), sent));
    Some(DeltaDiscoveryResponse {
        system_version_info: current.version.clone(),
        resources,
        type_url: type_url.to_string(),
        removed_resources: removed,
        nonce: n,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use envoy_types::pb::google::rpc::Status;

    use super::*;
    use crate::xds::snapshot::VersionedResource;

    fn snap(t: &'static str, resources: &[(&str, &str)]) -> Snapshot {
        let mut ts = TypeSnapshot::default();
        for (name, version) in resources {
            ts.version.push_str(version);
            ts.resources.insert(
                name.to_string(),
                Arc::new(VersionedResource {
                    name: name.to_string(),
                    version: version.to_string(),
                    type_url: t.into(),
                    value: Default::default(),
                    ads: Default::default(),
                }),
            );
        }
        let mut s = Snapshot::default();
        s.types.insert(t, ts);
        s
    }

    fn sub(t: &str, names: &[&str]) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: t.into(),
            resource_names_subscribe: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
        r.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn only_changes_and_removals_are_sent() {
        let mut s = DeltaStream::new(false);
        let s1 = snap(type_url::CLUSTER, &[("a", "1"), ("b", "1")]);
        let out = s.on_request(&sub(type_url::CLUSTER, &[]), &s1);
        assert_eq!(names(&out.responses[0]), ["a", "b"]);
        let s2 = snap(type_url::CLUSTER, &[("a", "2")]);
        let pushed = s.on_snapshot(&s2);
        assert_eq!(names(&pushed[0]), ["a"]);
        assert_eq!(pushed[0].removed_resources, ["b"]);
        assert!(s.on_snapshot(&s2).is_empty());
    }

    #[test]
    fn a_new_subscription_is_answered_even_when_empty() {
        let mut s = DeltaStream::new(false);
        let out = s.on_request(&sub(type_url::CLUSTER, &[]), &Snapshot::default());
        assert_eq!(out.responses.len(), 1);
        assert!(out.responses[0].resources.is_empty());
        let again = s.on_snapshot(&Snapshot::default());
        assert!(again.is_empty(), "later empty snapshots send nothing");
    }

    #[test]
    fn initial_versions_the_client_already_has_are_not_resent() {
        let mut s = DeltaStream::new(false);
        let s1 = snap(type_url::ENDPOINT, &[("a", "1"), ("b", "1")]);
        let mut r = sub(type_url::ENDPOINT, &["a", "b"]);
        r.initial_resource_versions = [("a".to_string(), "1".to_string())].into_iter().collect();
        let out = s.on_request(&r, &s1);
        assert_eq!(names(&out.responses[0]), ["b"]);
    }

    #[test]
    fn a_refused_version_is_not_resent() {
        let mut s = DeltaStream::new(false);
        let s1 = snap(type_url::LISTENER, &[("l", "bad")]);
        let out = s.on_request(&sub(type_url::LISTENER, &[]), &s1);
        let mut nack = sub(type_url::LISTENER, &[]);
        nack.response_nonce = out.responses[0].nonce.clone();
        nack.error_detail = Some(Status {
            code: 3,
            message: "no".into(),
            details: vec![],
        });
        let out = s.on_request(&nack, &s1);
        assert!(out.responses.is_empty());
        assert!(matches!(&out.events[..], [Event::Nack { .. }]));
        assert!(s.on_snapshot(&s1).is_empty());
        let s2 = snap(type_url::LISTENER, &[("l", "good")]);
        let pushed = s.on_snapshot(&s2);
        assert_eq!(names(&pushed[0]), ["l"]);
        // Accepted; the configuration goes back to the refused version,
        // which is sent again (the client has "good" now, not "bad").
        let mut ack = sub(type_url::LISTENER, &[]);
        ack.response_nonce = pushed[0].nonce.clone();
        assert!(matches!(
            &s.on_request(&ack, &s2).events[..],
            [Event::Ack { .. }]
        ));
        let pushed = s.on_snapshot(&s1);
        assert_eq!(
            pushed.len(),
            1,
            "found by fuzzing: a refusal was never forgotten"
        );
        assert_eq!(names(&pushed[0]), ["l"]);
    }

    #[test]
    fn unsubscribing_stops_updates() {
        let mut s = DeltaStream::new(false);
        let s1 = snap(type_url::ROUTE, &[("r", "1")]);
        s.on_request(&sub(type_url::ROUTE, &["r"]), &s1);
        let mut unsub = sub(type_url::ROUTE, &[]);
        unsub.resource_names_unsubscribe = vec!["r".into()];
        s.on_request(&unsub, &s1);
        assert!(
            s.on_snapshot(&snap(type_url::ROUTE, &[("r", "2")]))
                .is_empty()
        );
    }
}
