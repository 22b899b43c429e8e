//! Delta (incremental) xDS for one stream, without I/O: only resources whose
//! version differs from what the client has are sent, and removals are named.
//!
//! What the client has is kept as the snapshot map the stream last compared
//! against (a persistent map: shared with the snapshot, so it costs a stream
//! next to nothing) plus the few names where the client differs from it
//! (refused, unsubscribed, or announced on reconnect). A new snapshot is
//! compared by walking only the nodes the two maps do not share, so one
//! change costs a stream O(log n), not a pass over every resource.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::OrdMap;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;

use super::snapshot::{Snapshot, TypeSnapshot, VersionedResource};
use super::wire::DeltaResponse;
use super::{Event, type_url};
use crate::smallmap::SmallMap;

/// Responses to send and events to report after one input.
pub type Outcome = super::Outcome<DeltaResponse>;

/// The last response: its nonce, the type's version, and the resources sent
/// with the client's version before each. (A vector, not a map: an initial
/// response carries thousands, and thousands of small allocations per
/// stream fragment the heap long after they are freed.)
type Pending = (
    String,
    String,
    Vec<(Arc<VersionedResource>, Option<String>)>,
);

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: BTreeSet<String>,
    /// The resources of the snapshot last compared against; `None` before
    /// the first comparison (and after the wildcard flips), when the
    /// client has exactly what `differs` says.
    base: Option<OrdMap<String, Arc<VersionedResource>>>,
    /// Names whose version at the client differs from `base`'s: the
    /// client's version, or `None` when it lacks the resource.
    differs: BTreeMap<String, Option<String>>,
    /// Versions the client refused, name → version; not sent again.
    refused: BTreeMap<String, String>,
    /// Nonce of the last response and the versions it carried.
    pending: Option<Pending>,
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
            state.differs = req
                .initial_resource_versions
                .iter()
                .map(|(n, v)| (n.clone(), Some(v.clone())))
                .collect();
            state.wildcard = req.resource_names_subscribe.is_empty()
                && type_url::wildcard_by_default(&req.type_url);
        }
        // Names to compare besides what changed since the base.
        let mut named = Vec::new();
        if !req.response_nonce.is_empty() {
            match state.pending.take() {
                Some((nonce, version, sent)) if nonce == req.response_nonce => {
                    match &req.error_detail {
                        Some(status) => {
                            // The client kept its previous resources.
                            // The snapshot may have moved on past the refused
                            // version: compared again below.
                            for (r, before) in sent {
                                state.differs.insert(r.name.clone(), before);
                                state.refused.insert(r.name.clone(), r.version.clone());
                                named.push(r.name.clone());
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
                            for (r, _) in &sent {
                                if state.refused.remove(&r.name).is_some() {
                                    named.push(r.name.clone());
                                }
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
                if !state.wildcard {
                    state.forget_base();
                }
                state.wildcard = true;
            } else if state.names.insert(name.clone()) && !state.wildcard {
                // The client does not have it (unless it said so on
                // reconnect): compared below.
                if !state.differs.contains_key(name) {
                    state.differs.insert(name.clone(), None);
                }
                named.push(name.clone());
            }
        }
        for name in &req.resource_names_unsubscribe {
            if name == "*" {
                if state.wildcard {
                    state.forget_base();
                }
                state.wildcard = false;
            } else {
                state.names.remove(name);
                // The client drops it: sent again if still wanted.
                match state.wanted(name) {
                    true => {
                        state.differs.insert(name.clone(), None);
                        named.push(name.clone());
                    }
                    false => {
                        state.differs.remove(name);
                    }
                }
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
            &named,
            nonce,
            self.aggregated,
        ) {
            outcome.responses.push(r);
        }
        outcome
    }

    /// Pushes what changed in a new snapshot.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<DeltaResponse> {
        let (nonce, ads) = (&mut self.nonces, self.aggregated);
        self.types
            .iter_mut()
            .filter_map(|(t, s)| respond(t, s, snapshot, false, &[], nonce, ads))
            .collect()
    }
}

impl TypeState {
    fn wanted(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// The client's version of `name`, as far as we know.
    fn client_version(&self, name: &str) -> Option<String> {
        match self.differs.get(name) {
            Some(v) => v.clone(),
            None => self
                .base
                .as_ref()
                .and_then(|b| b.get(name))
                .map(|r| r.version.clone()),
        }
    }

    /// Writes what the client has of every wanted name into `differs` and
    /// drops `base`: the next comparison looks at every resource.
    fn forget_base(&mut self) {
        if let Some(base) = self.base.take() {
            for (name, r) in &base {
                if self.wanted(name) && !self.differs.contains_key(name) {
                    self.differs.insert(name.clone(), Some(r.version.clone()));
                }
            }
        }
    }
}

/// Compares the client's view with `snapshot` and answers with what
/// changed (`force`: even when nothing did). Looked at: every resource
/// when there is no base, else the names whose resource changed since the
/// base, plus `named` (newly subscribed).
fn respond(
    type_url: &str,
    state: &mut TypeState,
    snapshot: &Snapshot,
    force: bool,
    named: &[String],
    nonce: &mut u64,
    ads: bool,
) -> Option<DeltaResponse> {
    let empty = TypeSnapshot::default();
    let current = snapshot.of(type_url).unwrap_or(&empty);
    // Borrowed names in one sorted vector (no allocation per name).
    let mut candidates: Vec<&str> = match &state.base {
        None => current
            .resources
            .keys()
            .chain(state.differs.keys())
            .map(String::as_str)
            .collect(),
        Some(base) => base
            .diff(&current.resources)
            .map(|d| {
                let (gone, came) = crate::dag::diff_sides(d);
                gone.or(came).map(|(k, _)| k.as_str()).unwrap_or_default()
            })
            .chain(named.iter().map(String::as_str))
            .collect(),
    };
    candidates.sort_unstable();
    candidates.dedup();
    let mut resources = Vec::new();
    let mut sent = Vec::new();
    let mut removed = Vec::new();
    // The client's version after this response, where `differs` changes.
    let mut after: Vec<(String, Option<String>)> = Vec::new();
    for &name in &candidates {
        if !state.wanted(name) {
            continue;
        }
        let has = state.client_version(name);
        let now = current.resources.get(name);
        let next = match now {
            Some(r) if has.as_deref() == Some(r.version.as_str()) => has,
            Some(r) if state.refused.get(name) == Some(&r.version) => has,
            Some(r) => {
                let form = r.form(ads);
                sent.push((Arc::clone(&form), has));
                resources.push(form);
                Some(r.version.clone())
            }
            None if has.is_some() => {
                removed.push(name.to_string());
                None
            }
            None => None,
        };
        let base_version = now.map(|r| &r.version);
        if next.as_ref() != base_version || state.differs.contains_key(name) {
            after.push((name.to_string(), next));
        }
    }
    drop(candidates);
    for (name, next) in after {
        let base_version = current.resources.get(&name).map(|r| &r.version);
        match next.as_ref() == base_version {
            true => state.differs.remove(&name),
            false => state.differs.insert(name, next),
        };
    }
    state.base = Some(current.resources.clone());
    if !force && resources.is_empty() && removed.is_empty() {
        return None;
    }
    *nonce += 1;
    let n = nonce.to_string();
    state.pending = Some((n.clone(), current.version.clone(), sent));
    Some(DeltaResponse {
        system_version_info: current.version.clone(),
        resources,
        type_url: type_url.to_string(),
        removed_resources: removed,
        nonce: n,
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

    fn names(r: &DeltaResponse) -> Vec<&str> {
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

    mod model {
        //! The stream against a model client: after every step, the client
        //! (which applies every response in order and, on a refusal, keeps
        //! what it had) holds the current version of every resource it
        //! wants, except versions it refused.
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Step {
            Snapshot(Vec<(u8, u8)>),
            Subscribe(u8),
            Unsubscribe(u8),
            Ack,
            Nack,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                4 => prop::collection::vec((0u8..6, 0u8..3), 0..6).prop_map(Step::Snapshot),
                2 => (0u8..6).prop_map(Step::Subscribe),
                1 => (0u8..6).prop_map(Step::Unsubscribe),
                3 => Just(Step::Ack),
                1 => Just(Step::Nack),
            ]
        }

        fn snapshot(t: &'static str, items: &[(u8, u8)]) -> Snapshot {
            let named: BTreeMap<String, String> = items
                .iter()
                .map(|(n, v)| (format!("r{n}"), format!("v{v}")))
                .collect();
            let pairs: Vec<(&str, &str)> = named
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            snap(t, &pairs)
        }

        proptest! {
            #[test]
            fn the_client_converges(wildcard in any::<bool>(), steps in prop::collection::vec(step(), 1..40)) {
                let t = if wildcard { type_url::CLUSTER } else { type_url::ENDPOINT };
                let mut stream = DeltaStream::new(true);
                let mut current = snapshot(t, &[]);
                let mut client: BTreeMap<String, String> = BTreeMap::new();
                let mut names: BTreeSet<String> = BTreeSet::new();
                // The last response and what the client had before it.
                let mut last: Option<(DeltaResponse, BTreeMap<String, String>)> = None;
                let mut refused: BTreeMap<String, String> = BTreeMap::new();
                let apply = |client: &mut BTreeMap<String, String>, r: &DeltaResponse| {
                    for res in &r.resources {
                        client.insert(res.name.clone(), res.version.clone());
                    }
                    for n in &r.removed_resources {
                        client.remove(n);
                    }
                };
                for r in &stream.on_request(&sub(t, &[]), &current).responses {
                    let before = client.clone();
                    apply(&mut client, r);
                    last = Some((r.clone(), before));
                }
                for s in steps {
                    let outputs;
                    match s {
                        Step::Snapshot(items) => {
                            current = snapshot(t, &items);
                            outputs = stream.on_snapshot(&current);
                        }
                        Step::Subscribe(n) => {
                            let name = format!("r{n}");
                            names.insert(name.clone());
                            outputs = stream.on_request(&sub(t, &[name.as_str()]), &current).responses;
                        }
                        Step::Unsubscribe(n) => {
                            let name = format!("r{n}");
                            names.remove(&name);
                            client.remove(&name);
                            let mut req = sub(t, &[]);
                            req.resource_names_unsubscribe = vec![name];
                            outputs = stream.on_request(&req, &current).responses;
                        }
                        Step::Ack | Step::Nack => {
                            let Some((r, before)) = last.take() else { continue };
                            let mut req = sub(t, &[]);
                            req.response_nonce = r.nonce.clone();
                            if matches!(s, Step::Nack) {
                                req.error_detail = Some(envoy_types::pb::google::rpc::Status {
                                    code: 3,
                                    message: "no".into(),
                                    details: vec![],
                                });
                                for res in &r.resources {
                                    refused.insert(res.name.clone(), res.version.clone());
                                    match before.get(&res.name) {
                                        Some(v) => client.insert(res.name.clone(), v.clone()),
                                        None => client.remove(&res.name),
                                    };
                                }
                            } else {
                                for res in &r.resources {
                                    refused.remove(&res.name);
                                }
                            }
                            outputs = stream.on_request(&req, &current).responses;
                        }
                    }
                    for r in &outputs {
                        let before = client.clone();
                        apply(&mut client, r);
                        last = Some((r.clone(), before));
                    }
                    let of = current.of(t).map(|c| c.resources.clone()).unwrap_or_default();
                    for name in (0..6).map(|n| format!("r{n}")) {
                        if !wildcard && !names.contains(&name) {
                            continue;
                        }
                        let want = of.get(&name).map(|r| r.version.clone());
                        if want.is_some() && refused.get(&name) == want.as_ref() {
                            continue;
                        }
                        prop_assert_eq!(client.get(&name).cloned(), want, "{}", name);
                    }
                }
            }
        }
    }
}
