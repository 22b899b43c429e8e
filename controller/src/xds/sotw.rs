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
//!
//! Memory and work per stream do not grow with the number of resources in
//! the common case. What a stream last sent is kept as a clone of the
//! snapshot's persistent map (shared with the snapshot, not copied), and a
//! subscription naming exactly the snapshot's resources (what Envoy asks
//! for EDS and RDS) is kept the same way. A new snapshot is compared with
//! what was sent by a structural diff that skips the subtrees both share,
//! so one changed endpoint costs a stream O(log n), not a walk over every
//! resource; an ACK repeating the subscription allocates no names.

use std::collections::BTreeSet;
use std::sync::Arc;

use imbl::OrdMap;
use imbl::ordmap::DiffItem;

use super::request::{ResourceNames, SotwRequest};
use super::snapshot::{Snapshot, TypeSnapshot, VersionedResource};
use super::wire::SotwResponse;
use super::{Event, type_url};
use crate::smallmap::SmallMap;

/// Responses to send and events to report after one input.
pub type Outcome = super::Outcome<SotwResponse>;

/// Resources by name, as in a [`TypeSnapshot`].
type Resources = OrdMap<String, Arc<VersionedResource>>;

/// The resource names a stream subscribed to.
#[derive(Debug, Clone)]
enum Names {
    /// Exactly the names of these resources (a snapshot's map, shared).
    Keys(Resources),
    /// Any other set.
    Set(BTreeSet<String>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Set(BTreeSet::new())
    }
}

impl Names {
    fn contains(&self, name: &str) -> bool {
        match self {
            Names::Keys(m) => m.contains_key(name),
            Names::Set(s) => s.contains(name),
        }
    }

    fn len(&self) -> usize {
        match self {
            Names::Keys(m) => m.len(),
            Names::Set(s) => s.len(),
        }
    }

    /// Whether these are exactly the distinct names of `requested`
    /// (sorted and deduplicated).
    fn equals(&self, requested: &[&str]) -> bool {
        self.len() == requested.len() && requested.iter().all(|n| self.contains(n))
    }

    /// The names of `requested` (sorted and deduplicated), shared with the
    /// snapshot's map when they are exactly its resources.
    fn of(requested: &[&str], current: &Resources) -> Names {
        if requested.len() == current.len() && requested.iter().all(|n| current.contains_key(*n)) {
            Names::Keys(current.clone())
        } else {
            Names::Set(requested.iter().map(|n| n.to_string()).collect())
        }
    }
}

#[derive(Debug, Default)]
struct TypeState {
    wildcard: bool,
    names: Names,
    /// [`ResourceNames::digest`] of the last request's names.
    digest: (u64, usize),
    subscribed: bool,
    last_nonce: Option<String>,
    last_version: Option<String>,
    /// The resources as last sent on this stream, by name.
    sent: Resources,
    nacked_version: Option<String>,
}

/// The state of one SotW stream.
#[derive(Debug, Default)]
pub struct SotwStream {
    /// One entry per type (a per-type stream has one: a small map).
    types: SmallMap<String, TypeState>,
    nonces: u64,
    /// An ADS stream: resources go out in their ADS form.
    aggregated: bool,
}

impl SotwStream {
    /// A new stream; `aggregated` for an ADS stream, whose listeners and
    /// clusters go out in their ADS form
    /// ([`VersionedResource::for_ads`]).
    pub fn new(aggregated: bool) -> Self {
        Self {
            aggregated,
            ..Self::default()
        }
    }

    /// Handles a request from the client against the current snapshot.
    pub fn on_request(&mut self, request: &SotwRequest, snapshot: &Snapshot) -> Outcome {
        let (req, names) = (&request.message, &request.names);
        let mut outcome = Outcome::default();
        let state = self
            .types
            .get_or_insert_with(req.type_url.clone(), TypeState::default);
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
        let wildcard =
            names.has_star() || (names.is_empty() && type_url::wildcard_by_default(&req.type_url));
        let digest = names.digest();
        // An ACK repeats the subscription: the digest tells so without
        // sorting or comparing names; when it differs (or on the first
        // request of a type), the sets are compared.
        let names_changed = (!state.subscribed || digest != state.digest) && {
            let requested = distinct(names);
            let same = state.subscribed && state.names.equals(&requested);
            if !same {
                // A changed subscription is answered in full (below), and
                // what was sent becomes exactly what it names: names dropped
                // from it are sent again if re-added.
                let empty = TypeSnapshot::default();
                let current = snapshot.of(&req.type_url).unwrap_or(&empty);
                state.names = Names::of(&requested, &current.resources);
            }
            !same
        };
        // The names are followed even when the wildcard flips too.
        let changed = !state.subscribed || wildcard != state.wildcard || names_changed;
        state.digest = digest;
        state.subscribed = true;
        state.wildcard = wildcard;
        let (nonce, ads) = (&mut self.nonces, self.aggregated);
        if let Some(resp) = respond(&req.type_url, state, snapshot, changed, nonce, ads) {
            outcome.responses.push(resp);
        }
        outcome
    }

    /// Pushes what changed in a new snapshot to the subscribed types.
    pub fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<SotwResponse> {
        let (nonce, ads) = (&mut self.nonces, self.aggregated);
        self.types
            .iter_mut()
            .filter(|(_, s)| s.subscribed)
            .filter_map(|(type_url, state)| respond(type_url, state, snapshot, false, nonce, ads))
            .collect()
    }
}

/// The resource names of a request, without `*`, sorted and deduplicated.
fn distinct(names: &ResourceNames) -> Vec<&str> {
    let mut v: Vec<&str> = names.iter().filter(|n| *n != "*").collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The subscribed part of `current`: the snapshot's own map (shared) when
/// every resource in it is subscribed. A subscription of exactly the
/// snapshot's names follows the snapshot, so that the next comparison only
/// visits what changed since.
fn wanted(state: &mut TypeState, current: &Resources) -> Resources {
    if state.wildcard {
        return current.clone();
    }
    let covers_all = match &state.names {
        Names::Keys(m) => {
            let (mut added, mut removed) = (false, false);
            for d in m.diff(current) {
                match d {
                    DiffItem::Add(..) => added = true,
                    DiffItem::Remove(..) => removed = true,
                    DiffItem::Update { .. } => {}
                }
                if added {
                    break;
                }
            }
            if !added && !removed {
                state.names = Names::Keys(current.clone());
            }
            !added
        }
        Names::Set(s) => s.len() >= current.len() && current.keys().all(|k| s.contains(k)),
    };
    if covers_all {
        return current.clone();
    }
    match &state.names {
        Names::Set(s) if s.len() < current.len() => s
            .iter()
            .filter_map(|n| current.get(n).map(|r| (n.clone(), r.clone())))
            .collect(),
        names => current
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect(),
    }
}

/// The response for one type, if anything is to be sent. `force` answers a
/// new subscription even when nothing changed; `ads`: in the ADS form.
fn respond(
    type_url: &str,
    state: &mut TypeState,
    snapshot: &Snapshot,
    force: bool,
    nonce: &mut u64,
    ads: bool,
) -> Option<SotwResponse> {
    let empty = TypeSnapshot::default();
    let current = snapshot.of(type_url).unwrap_or(&empty);
    let wanted = wanted(state, &current.resources);
    let full_state = type_url::wildcard_by_default(type_url) || state.wildcard;
    let mut changed: Vec<&Arc<VersionedResource>> = Vec::new();
    let mut removed = false;
    for d in state.sent.diff(&wanted) {
        match d {
            DiffItem::Add(_, r) | DiffItem::Update { new: (_, r), .. } => changed.push(r),
            DiffItem::Remove(..) => removed = true,
        }
    }
    if !force && changed.is_empty() && !(removed && full_state) {
        // Only removals, which a subscription by name is not told of: if
        // such a resource comes back, it is sent again.
        if removed {
            state.sent = wanted;
        }
        return None;
    }
    // A version the client refused is not sent again.
    if !force && state.nacked_version.as_deref() == Some(current.version.as_str()) {
        return None;
    }
    let form = |r: &Arc<VersionedResource>| r.form(ads);
    let resources = if full_state || force {
        wanted.values().map(form).collect()
    } else {
        changed.into_iter().map(form).collect()
    };
    *nonce += 1;
    let n = nonce.to_string();
    state.last_nonce = Some(n.clone());
    state.last_version = Some(current.version.clone());
    state.sent = wanted;
    Some(SotwResponse {
        version_info: current.version.clone(),
        resources,
        type_url: type_url.to_string(),
        nonce: n,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use envoy_types::pb::google::rpc::Status;
    use prost::Message;

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
                        type_url: t.to_string(),
                        value: name.as_bytes().to_vec().into(),
                        ads: Default::default(),
                    }),
                );
            }
            s.types.insert(t, ts);
        }
        s
    }

    /// A request as the server gets it: encoded, then decoded with its
    /// names left in the bytes.
    fn req(t: &str, names: &[&str], nonce: &str) -> SotwRequest {
        let message = DiscoveryRequest {
            type_url: t.into(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
            response_nonce: nonce.into(),
            ..Default::default()
        };
        match SotwRequest::decode(message.encode_to_vec().into()) {
            Ok(r) => r,
            Err(e) => panic!("a request that does not decode: {e}"),
        }
    }

    fn names(r: &SotwResponse) -> Vec<String> {
        r.resources
            .iter()
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .collect()
    }

    #[test]
    fn wildcard_cds_gets_everything_then_acks() {
        let s = snap(&[(type_url::CLUSTER, &[("a", "1"), ("b", "1")])]);
        let mut stream = SotwStream::new(false);
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
    fn ads_streams_get_clusters_in_their_ads_form_and_per_type_streams_as_translated() {
        use envoy_types::pb::envoy::config::cluster::v3::Cluster;
        use envoy_types::pb::envoy::config::cluster::v3::cluster::EdsClusterConfig;
        let cluster = |source| Cluster {
            name: "c".into(),
            eds_cluster_config: Some(EdsClusterConfig {
                eds_config: Some(source),
                service_name: "c".into(),
            }),
            ..Default::default()
        };
        let bytes = |c: &Cluster| {
            crate::envoy::canonical::canonical_bytes("envoy.config.cluster.v3.Cluster", c)
                .unwrap_or_default()
        };
        let translated = bytes(&cluster(crate::envoy::xds_config_source()));
        let ads = bytes(&cluster(crate::envoy::ads::ads_config_source()));
        assert_ne!(translated, ads);
        let mut ts = TypeSnapshot::default();
        ts.insert(Arc::new(VersionedResource::new(
            "c".into(),
            type_url::CLUSTER.into(),
            translated.clone(),
        )));
        let mut s = Snapshot::default();
        s.types.insert(type_url::CLUSTER, ts);
        let first = |aggregated| {
            let mut stream = SotwStream::new(aggregated);
            let out = stream.on_request(&req(type_url::CLUSTER, &[], ""), &s);
            out.responses[0].resources[0].clone()
        };
        let (per_type, on_ads, again) = (first(false), first(true), first(true));
        assert_eq!(per_type.value, translated);
        assert_eq!(on_ads.value, ads);
        assert_eq!(
            on_ads.version, per_type.version,
            "one version for both forms"
        );
        assert!(Arc::ptr_eq(&on_ads, &again), "the ADS form is made once");
    }

    #[test]
    fn eds_pushes_only_the_changed_assignment() {
        let s1 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1"), ("c", "1")])]);
        let mut stream = SotwStream::new(false);
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
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::ROUTE, &["ingress_http"], ""), &s);
        assert_eq!(names(&out.responses[0]), ["ingress_http"]);
    }

    #[test]
    fn stale_nonces_are_ignored() {
        let s = snap(&[(type_url::LISTENER, &[("l", "1")])]);
        let mut stream = SotwStream::new(false);
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
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::LISTENER, &[], ""), &s1);
        let mut nack = req(type_url::LISTENER, &[], &out.responses[0].nonce);
        nack.message.error_detail = Some(Status {
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
        let mut stream = SotwStream::new(false);
        stream.on_request(&req(type_url::CLUSTER, &[], ""), &s1);
        let s2 = snap(&[(type_url::CLUSTER, &[("a", "1")])]);
        let pushed = stream.on_snapshot(&s2);
        assert_eq!(pushed.len(), 1);
        assert_eq!(names(&pushed[0]), ["a"]);
    }

    #[test]
    fn a_full_subscription_shares_the_snapshot_instead_of_copying_it() {
        let s1 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1"), ("c", "1")])]);
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::ENDPOINT, &["c", "a", "b", "a"], ""), &s1);
        assert_eq!(names(&out.responses[0]), ["a", "b", "c"]);
        let current = &s1.types[type_url::ENDPOINT].resources;
        let Some(state) = stream.types.get(type_url::ENDPOINT) else {
            panic!("the stream follows endpoints")
        };
        assert!(matches!(&state.names, Names::Keys(m) if m.ptr_eq(current)));
        assert!(
            state.sent.ptr_eq(current),
            "what was sent is the snapshot's own map"
        );
        // The ACK repeats the names in another order: nothing to send.
        let ack = req(
            type_url::ENDPOINT,
            &["b", "c", "a"],
            &out.responses[0].nonce,
        );
        let out = stream.on_request(&ack, &s1);
        assert!(out.responses.is_empty());
        assert!(matches!(&out.events[..], [Event::Ack { .. }]));
        // A change: one assignment is pushed, and the stream now shares the
        // new snapshot's map (so the next change is found without a walk).
        let mut s2 = s1.clone();
        if let Some(ts) = s2.types.get_mut(type_url::ENDPOINT) {
            ts.insert(Arc::new(VersionedResource::new(
                "b".into(),
                type_url::ENDPOINT.into(),
                b"b2".to_vec(),
            )));
        }
        let pushed = stream.on_snapshot(&s2);
        assert_eq!(names(&pushed[0]), ["b2"]);
        let current = &s2.types[type_url::ENDPOINT].resources;
        let Some(state) = stream.types.get(type_url::ENDPOINT) else {
            panic!("the stream follows endpoints")
        };
        assert!(matches!(&state.names, Names::Keys(m) if m.ptr_eq(current)));
        assert!(state.sent.ptr_eq(current));
        // The same number of names, one of them another: answered in full.
        let out = stream.on_request(
            &req(type_url::ENDPOINT, &["a", "b", "x"], &pushed[0].nonce),
            &s2,
        );
        assert_eq!(names(&out.responses[0]), ["a", "b2"]);
    }

    #[test]
    fn a_partial_subscription_gets_its_names_only_and_their_changes() {
        let s1 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1"), ("c", "1")])]);
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::ENDPOINT, &["a", "x"], ""), &s1);
        assert_eq!(names(&out.responses[0]), ["a"]);
        let s2 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "2"), ("c", "1")])]);
        assert!(stream.on_snapshot(&s2).is_empty(), "b is not subscribed");
        let s3 = snap(&[(type_url::ENDPOINT, &[("a", "2"), ("x", "1")])]);
        let pushed = stream.on_snapshot(&s3);
        assert_eq!(names(&pushed[0]), ["a", "x"]);
    }

    #[test]
    fn a_resource_that_comes_back_is_sent_again() {
        let s1 = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1")])]);
        let mut stream = SotwStream::new(false);
        stream.on_request(&req(type_url::ENDPOINT, &["a", "b"], ""), &s1);
        let s2 = snap(&[(type_url::ENDPOINT, &[("a", "1")])]);
        let _ = stream.on_snapshot(&s2);
        let pushed = stream.on_snapshot(&s1);
        assert_eq!(pushed.len(), 1);
        assert_eq!(names(&pushed[0]), ["b"]);
    }

    #[test]
    fn a_name_dropped_and_re_added_is_sent_again() {
        let s = snap(&[(type_url::ROUTE, &[("r1", "1"), ("r2", "1")])]);
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::ROUTE, &["r1", "r2"], ""), &s);
        let out = stream.on_request(&req(type_url::ROUTE, &["r1"], &out.responses[0].nonce), &s);
        assert_eq!(names(&out.responses[0]), ["r1"]);
        let out = stream.on_request(
            &req(type_url::ROUTE, &["r1", "r2"], &out.responses[0].nonce),
            &s,
        );
        assert_eq!(names(&out.responses[0]), ["r1", "r2"]);
    }

    /// Found by fuzzing (fuzz/, xds_request): a request that turned the
    /// wildcard off kept the names of the one before.
    #[test]
    fn names_are_followed_when_the_wildcard_flips() {
        let s = snap(&[(type_url::ENDPOINT, &[("a", "1"), ("b", "1")])]);
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&req(type_url::ENDPOINT, &["*", "a"], ""), &s);
        assert_eq!(names(&out.responses[0]), ["a", "b"]);
        let out = stream.on_request(&req(type_url::ENDPOINT, &["b"], ""), &s);
        assert_eq!(names(&out.responses[0]), ["b"]);
    }
}
