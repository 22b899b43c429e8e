//! The xDS request handling: sequences of requests (structured, or decoded
//! by prost from raw bytes) and new snapshots fed to one state-of-the-world
//! or delta stream state machine, plus unary fetches through the real
//! per-type gRPC services. A model of what the client holds checks that
//! every response is consistent with the snapshot and the subscription,
//! that ACKs and NACKs are recognised exactly when their nonce is current,
//! and that the stream converges: after a last snapshot push the client
//! holds exactly the subscribed resources of that snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arbitrary::Arbitrary;
use bytes::Bytes;
use contour::xds::delta::DeltaStream;
use contour::xds::request::SotwRequest;
use contour::xds::server::{Observer, Published, XdsServer};
use contour::xds::snapshot::{Snapshot, TypeSnapshot, VersionedResource};
use contour::xds::sotw::SotwStream;
use contour::xds::wire::{DeltaResponse, SotwResponse};
use contour::xds::{Event, type_url};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::ClusterDiscoveryService;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::endpoint::v3::endpoint_discovery_service_server::EndpointDiscoveryService;
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::ListenerDiscoveryService;
use envoy_types::pb::envoy::service::route::v3::route_discovery_service_server::RouteDiscoveryService;
use envoy_types::pb::envoy::service::runtime::v3::runtime_discovery_service_server::RuntimeDiscoveryService;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::SecretDiscoveryService;
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use tokio::sync::watch;

use crate::model::{Few, Text};

/// Type URLs served, then some that are not.
const TYPES: &[&str] = &[
    type_url::LISTENER,
    type_url::ROUTE,
    type_url::CLUSTER,
    type_url::ENDPOINT,
    type_url::SECRET,
    type_url::RUNTIME,
    "",
    "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
    "bogus",
];
const SERVED: &[&str] = &[
    type_url::LISTENER,
    type_url::ROUTE,
    type_url::CLUSTER,
    type_url::ENDPOINT,
    type_url::SECRET,
    type_url::RUNTIME,
];
const NAMES: &[&str] = &["a", "b", "c", "*", "", "ingress_http"];

/// One whole stream.
#[derive(Debug, Arbitrary)]
pub struct Input {
    /// Delta instead of state of the world.
    pub delta: bool,
    /// A per-type stream (index into the served types) instead of ADS.
    pub fixed: Option<u8>,
    /// The snapshot when the stream starts.
    pub initial: Snap,
    /// What happens, in order.
    pub ops: Vec<Op>,
    /// The snapshot pushed last (convergence is checked against it).
    pub last: Snap,
}

/// A snapshot: resources of each served type, with a content byte and a
/// size class each (some bodies are larger than what the wire encoding
/// copies inline, 4 KiB).
#[derive(Debug, Arbitrary)]
pub struct Snap(pub [Few<(Text, u8, Size)>; 6]);

/// How large a body is.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Size {
    Tiny,
    Inline,
    Large,
}

impl Snap {
    fn build(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for (t, resources) in SERVED.iter().zip(&self.0) {
            let mut map = BTreeMap::new();
            for (name, content, size) in &resources.0 {
                let name = name.of(NAMES);
                let body = body_of(&name, *content, *size);
                map.insert(
                    name.clone(),
                    Arc::new(VersionedResource::new(name, t.to_string(), body)),
                );
            }
            s.types.insert(t, TypeSnapshot::new(map));
        }
        s
    }
}

/// A resource body that names its resource: the name's length (4 bytes,
/// big-endian), the name, then the content byte repeated.
fn body_of(name: &str, content: u8, size: Size) -> Vec<u8> {
    let n = match size {
        Size::Tiny => 1,
        Size::Inline => (4 * 1024usize).saturating_sub(name.len() + 4),
        Size::Large => 40 * 1024,
    };
    let mut b = (name.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(name.as_bytes());
    b.resize(b.len() + n, content);
    b
}

fn name_of(body: &[u8]) -> String {
    let len = body
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .unwrap_or(0);
    String::from_utf8_lossy(body.get(4..4 + len).unwrap_or(&[])).into_owned()
}

/// Which nonce a request carries.
#[derive(Debug, Arbitrary)]
pub enum Nonce {
    /// None (a new subscription or a change of one).
    Empty,
    /// That of the last response of the request's type.
    Last,
    /// That of an earlier response (`n` back).
    Old(u8),
    /// Anything.
    Raw(String),
}

/// A request, structured.
#[derive(Debug, Arbitrary)]
pub struct Req {
    type_url: Text,
    version: Option<Text>,
    nonce: Nonce,
    names: Few<Text>,
    unsubscribe: Few<Text>,
    initial: Few<(Text, Text)>,
    error: Option<(i32, String)>,
    node: Option<String>,
}

/// One step of a stream.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// A structured request.
    Request(Req),
    /// A request decoded by prost from raw bytes (skipped if it does not decode).
    Raw(Vec<u8>),
    /// A new snapshot is published.
    Publish(Snap),
    /// A unary fetch of one served type through the gRPC service.
    Fetch(u8, Req),
}

/// What the model knows of one type on the stream.
#[derive(Debug, Default)]
struct TypeModel {
    seen: bool,
    subscribed: bool,
    wildcard: bool,
    names: BTreeSet<String>,
    /// Nonces of the responses of this type, in order.
    nonces: Vec<String>,
    /// The version of each response, by nonce.
    versions: BTreeMap<String, String>,
    /// What the client holds, name → version (delta) or body (sotw).
    held: BTreeMap<String, String>,
    /// SotW: the version last refused and not yet followed by an ACK.
    nacked: Option<String>,
    /// Delta: the nonce of the response not yet ACKed or NACKed.
    pending: Option<String>,
    /// Delta: the client refused something on this stream.
    refused_any: bool,
}

struct Model {
    types: BTreeMap<String, TypeModel>,
    last_nonce: u64,
}

impl Model {
    fn nonce_for(&self, t: &str, n: &Nonce) -> String {
        let nonces = self
            .types
            .get(t)
            .map(|m| m.nonces.as_slice())
            .unwrap_or(&[]);
        match n {
            Nonce::Empty => String::new(),
            Nonce::Last => nonces.last().cloned().unwrap_or_default(),
            Nonce::Old(back) => nonces
                .len()
                .checked_sub(1 + *back as usize % 4)
                .and_then(|i| nonces.get(i))
                .cloned()
                .unwrap_or_default(),
            Nonce::Raw(s) => s.clone(),
        }
    }

    /// Nonces are strictly increasing numbers over the whole stream.
    fn new_nonce(&mut self, nonce: &str) {
        let n: u64 = nonce
            .parse()
            .unwrap_or_else(|_| panic!("nonce {nonce:?} is not a number"));
        assert!(n > self.last_nonce, "nonce {n} after {}", self.last_nonce);
        self.last_nonce = n;
    }
}

/// Fills in / refuses the type of a per-type stream's request as the gRPC
/// adapter does: `false` ends the stream.
fn admit(type_url: &mut String, fixed: Option<&str>) -> bool {
    match fixed {
        Some(t) if type_url.is_empty() => {
            *type_url = t.to_string();
            true
        }
        Some(t) => type_url == t,
        None => !type_url.is_empty(),
    }
}

fn version_of(snapshot: &Snapshot, t: &str) -> String {
    snapshot
        .of(t)
        .map(|s| s.version.clone())
        .unwrap_or_default()
}

fn resources_of(snapshot: &Snapshot, t: &str) -> BTreeMap<String, Arc<VersionedResource>> {
    snapshot
        .of(t)
        .map(|s| {
            s.resources
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------- SotW

/// Decodes `bytes` both with prost and as the server does
/// ([`SotwRequest::decode`], names left in the bytes); they must agree on
/// whether it decodes, on every field, and on the names (order, count,
/// `*`, and a digest equal to that of the decoded names).
fn sotw_decode(bytes: &[u8]) -> Option<SotwRequest> {
    let ours = SotwRequest::decode(Bytes::copy_from_slice(bytes));
    let theirs = match DiscoveryRequest::decode(bytes) {
        Ok(r) => r,
        Err(_) => {
            assert!(
                ours.is_err(),
                "prost refuses {bytes:?}, the server does not"
            );
            return None;
        }
    };
    let ours = ours.unwrap_or_else(|e| panic!("prost decodes {bytes:?}, the server fails: {e}"));
    let names: Vec<&str> = ours.names.iter().collect();
    assert_eq!(names, theirs.resource_names, "names");
    assert_eq!(ours.names.len(), names.len(), "name count");
    assert_eq!(ours.names.has_star(), names.contains(&"*"), "star");
    let mut rest = theirs.clone();
    rest.resource_names.clear();
    assert_eq!(ours.message, rest, "the other fields");
    assert_eq!(
        ours.names.digest(),
        SotwRequest::from(theirs).names.digest(),
        "digest"
    );
    Some(ours)
}

/// The message of a response, after checking that its wire encoding (one
/// gRPC message, in chunks that share the snapshot's bodies) is exactly the
/// prost encoding of that message.
fn sotw_message(r: &SotwResponse) -> DiscoveryResponse {
    let message = r.to_message();
    check_frame(&message.encode_to_vec(), r.encoded_len(), r.frame());
    message
}

/// [`sotw_message`] for a delta response.
fn delta_message(r: &DeltaResponse) -> DeltaDiscoveryResponse {
    let message = r.to_message();
    check_frame(&message.encode_to_vec(), r.encoded_len(), r.frame());
    message
}

/// The frame is one gRPC message of exactly `encoded`, in non-empty chunks.
fn check_frame(
    encoded: &[u8],
    encoded_len: usize,
    frame: Result<Vec<bytes::Bytes>, contour::xds::wire::TooLarge>,
) {
    assert_eq!(encoded_len, encoded.len(), "encoded_len");
    let chunks = match frame {
        Ok(c) => c,
        Err(e) => panic!("no frame: {e}"),
    };
    let wire: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert!(chunks.iter().all(|c| !c.is_empty()), "an empty chunk");
    assert_eq!(wire.len(), encoded.len() + 5, "frame length");
    assert_eq!(wire[0], 0, "compressed flag");
    assert_eq!(
        u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize,
        encoded.len(),
        "length prefix"
    );
    assert!(
        wire[5..] == encoded[..],
        "the framed bytes are not the message"
    );
}

fn sotw_response(model: &mut Model, snapshot: &Snapshot, r: &SotwResponse) {
    let r = &sotw_message(r);
    model.new_nonce(&r.nonce);
    let t = r.type_url.as_str();
    assert_eq!(r.version_info, version_of(snapshot, t), "response version");
    let current = resources_of(snapshot, t);
    let m = model.types.entry(t.to_string()).or_default();
    assert!(m.subscribed, "response for {t:?}, which is not subscribed");
    let full = type_url::wildcard_by_default(t) || m.wildcard;
    let mut got = BTreeMap::new();
    for any in &r.resources {
        let name = name_of(&any.value);
        let want = current
            .get(&name)
            .unwrap_or_else(|| panic!("response carries {name:?}, not in the snapshot"));
        assert_eq!(
            any,
            &want.any(),
            "response carries another body of {name:?}"
        );
        assert!(
            m.wildcard || m.names.contains(&name),
            "response carries {name:?}, which is not subscribed"
        );
        assert!(
            got.insert(name.clone(), want.version.clone()).is_none(),
            "{name:?} twice in one response"
        );
    }
    if full {
        let wanted = current
            .keys()
            .filter(|n| m.wildcard || m.names.contains(*n))
            .count();
        assert_eq!(got.len(), wanted, "a full-state response misses resources");
        m.held = got;
    } else {
        m.held.extend(got);
    }
    m.nonces.push(r.nonce.clone());
    m.versions.insert(r.nonce.clone(), r.version_info.clone());
}

fn sotw_request(
    stream: &mut SotwStream,
    model: &mut Model,
    snapshot: &Snapshot,
    req: &DiscoveryRequest,
) {
    // The stream gets the request as the server decodes it, with the
    // names left in the bytes: they must read back as prost's.
    let encoded = req.encode_to_vec();
    let decoded = sotw_decode(&encoded).unwrap_or_else(|| panic!("{req:?} does not decode"));
    let t = req.type_url.clone();
    let m = model.types.entry(t.clone()).or_default();
    let first = !m.subscribed;
    let current_nonce = m.nonces.last().cloned();
    let out = stream.on_request(&decoded, snapshot);
    let m = model.types.entry(t.clone()).or_default();
    m.seen = true;
    let stale = !req.response_nonce.is_empty()
        && current_nonce.as_deref() != Some(req.response_nonce.as_str());
    if stale {
        assert!(
            out.responses.is_empty() && out.events.is_empty(),
            "a stale request was answered: {out:?}"
        );
        return;
    }
    if req.response_nonce.is_empty() {
        assert!(out.events.is_empty(), "an event without a nonce");
    } else {
        let version = m
            .versions
            .get(&req.response_nonce)
            .cloned()
            .unwrap_or_default();
        match (&req.error_detail, out.events.as_slice()) {
            (
                None,
                [
                    Event::Ack {
                        type_url: et,
                        version: v,
                    },
                ],
            ) => {
                assert_eq!((et, v), (&t, &version), "ACK of the wrong version");
                m.nacked = None;
            }
            (
                Some(s),
                [
                    Event::Nack {
                        type_url: et,
                        version: v,
                        message,
                    },
                ],
            ) => {
                assert_eq!((et, v), (&t, &version), "NACK of the wrong version");
                assert_eq!(message, &s.message);
                m.nacked = Some(version);
            }
            (_, events) => panic!("expected one ACK/NACK, got {events:?}"),
        }
    }
    m.subscribed = true;
    m.wildcard = req.resource_names.iter().any(|n| n == "*")
        || (req.resource_names.is_empty() && type_url::wildcard_by_default(&t));
    m.names = req
        .resource_names
        .iter()
        .filter(|n| *n != "*")
        .cloned()
        .collect();
    assert!(
        out.responses.len() <= 1,
        "more than one response to a request"
    );
    if first {
        assert_eq!(
            out.responses.len(),
            1,
            "a new subscription was not answered"
        );
    }
    for r in &out.responses {
        assert_eq!(r.type_url, t, "response of another type");
        sotw_response(model, snapshot, r);
    }
}

fn sotw_publish(stream: &mut SotwStream, model: &mut Model, snapshot: &Snapshot) {
    let mut types = BTreeSet::new();
    for r in stream.on_snapshot(snapshot) {
        assert!(types.insert(r.type_url.clone()), "two pushes of one type");
        sotw_response(model, snapshot, &r);
    }
    assert!(
        stream.on_snapshot(snapshot).is_empty(),
        "the same snapshot pushed twice sends again"
    );
}

fn sotw_converged(model: &Model, snapshot: &Snapshot) {
    for (t, m) in &model.types {
        if !m.subscribed || m.nacked.as_deref() == Some(version_of(snapshot, t).as_str()) {
            continue;
        }
        let full = type_url::wildcard_by_default(t) || m.wildcard;
        for (name, r) in resources_of(snapshot, t) {
            if m.wildcard || m.names.contains(&name) {
                assert_eq!(
                    m.held.get(&name),
                    Some(&r.version),
                    "{t}: the client does not hold {name:?} at the last version"
                );
            }
        }
        if full {
            for name in m.held.keys() {
                assert!(
                    snapshot
                        .of(t)
                        .is_some_and(|s| s.resources.contains_key(name)),
                    "{t}: the client still holds removed {name:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ Delta

fn delta_response(model: &mut Model, snapshot: &Snapshot, r: &DeltaResponse) {
    let r = &delta_message(r);
    model.new_nonce(&r.nonce);
    let t = r.type_url.as_str();
    assert_eq!(r.system_version_info, version_of(snapshot, t));
    let current = resources_of(snapshot, t);
    let m = model.types.entry(t.to_string()).or_default();
    let mut names = BTreeSet::new();
    for res in &r.resources {
        assert!(names.insert(res.name.clone()), "{:?} twice", res.name);
        let want = current
            .get(&res.name)
            .unwrap_or_else(|| panic!("response carries {:?}, not in the snapshot", res.name));
        assert_eq!(res.version, want.version);
        assert_eq!(res.resource.as_ref(), Some(&want.any()));
        assert!(
            m.wildcard || m.names.contains(&res.name),
            "response carries {:?}, which is not subscribed",
            res.name
        );
        m.held.insert(res.name.clone(), res.version.clone());
    }
    for name in &r.removed_resources {
        assert!(!names.contains(name), "{name:?} both sent and removed");
        assert!(
            !current.contains_key(name),
            "{name:?} removed but in the snapshot"
        );
        m.held.remove(name);
    }
    m.nonces.push(r.nonce.clone());
    m.versions
        .insert(r.nonce.clone(), r.system_version_info.clone());
    m.pending = Some(r.nonce.clone());
}

fn delta_request(
    stream: &mut DeltaStream,
    model: &mut Model,
    snapshot: &Snapshot,
    req: &DeltaDiscoveryRequest,
) {
    let t = req.type_url.clone();
    let m = model.types.entry(t.clone()).or_default();
    let first = !m.seen;
    if first {
        m.seen = true;
        m.held = req.initial_resource_versions.clone().into_iter().collect();
        m.wildcard = req.resource_names_subscribe.is_empty() && type_url::wildcard_by_default(&t);
    }
    let acked =
        !req.response_nonce.is_empty() && m.pending.as_deref() == Some(req.response_nonce.as_str());
    for n in &req.resource_names_subscribe {
        if n == "*" {
            m.wildcard = true;
        } else {
            m.names.insert(n.clone());
        }
    }
    for n in &req.resource_names_unsubscribe {
        if n == "*" {
            m.wildcard = false;
        } else {
            m.names.remove(n);
            m.held.remove(n);
        }
    }
    let out = stream.on_request(req, snapshot);
    let m = model.types.entry(t.clone()).or_default();
    if acked {
        let version = m
            .versions
            .get(&req.response_nonce)
            .cloned()
            .unwrap_or_default();
        m.pending = None;
        match (&req.error_detail, out.events.as_slice()) {
            (None, [Event::Ack { version: v, .. }]) => assert_eq!(v, &version),
            (Some(_), [Event::Nack { version: v, .. }]) => {
                assert_eq!(v, &version);
                m.refused_any = true;
            }
            (_, events) => panic!("expected one ACK/NACK, got {events:?}"),
        }
    } else {
        assert!(out.events.is_empty(), "an event for a stale nonce: {out:?}");
    }
    assert!(out.responses.len() <= 1);
    if first {
        assert_eq!(
            out.responses.len(),
            1,
            "a new subscription was not answered"
        );
    }
    for r in &out.responses {
        assert_eq!(r.type_url, t);
        delta_response(model, snapshot, r);
    }
}

fn delta_publish(stream: &mut DeltaStream, model: &mut Model, snapshot: &Snapshot) {
    for r in stream.on_snapshot(snapshot) {
        delta_response(model, snapshot, &r);
    }
    assert!(
        stream.on_snapshot(snapshot).is_empty(),
        "the same snapshot pushed twice sends again"
    );
}

fn delta_converged(model: &Model, snapshot: &Snapshot) {
    for (t, m) in &model.types {
        if m.refused_any {
            continue;
        }
        let current = resources_of(snapshot, t);
        for (name, r) in &current {
            if m.wildcard || m.names.contains(name) {
                assert_eq!(
                    m.held.get(name),
                    Some(&r.version),
                    "{t}: the client does not hold {name:?} at the last version"
                );
            }
        }
        for name in m.held.keys() {
            if m.wildcard || m.names.contains(name) {
                assert!(
                    current.contains_key(name),
                    "{t}: the client still holds removed {name:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------------ Fetch

struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &str, _: &Event) {}
    fn pushed(&self, _: &str, _: usize, _: Option<std::time::Duration>) {}
    fn stream(&self, _: i64) {}
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("no tokio runtime: {e}"))
    })
}

fn fetch(snapshot: &Snapshot, service: u8, req: DiscoveryRequest) {
    let fixed = SERVED[service as usize % SERVED.len()];
    let (_tx, rx) = watch::channel(Published {
        snapshot: Arc::new(snapshot.clone()),
        at: Some(Instant::now()),
    });
    let server = XdsServer::new(rx, Arc::new(Quiet));
    let asked = req.type_url.clone();
    let request = tonic::Request::new(req);
    let result = runtime().block_on(async move {
        match fixed {
            type_url::LISTENER => server.fetch_listeners(request).await,
            type_url::ROUTE => server.fetch_routes(request).await,
            type_url::CLUSTER => server.fetch_clusters(request).await,
            type_url::ENDPOINT => server.fetch_endpoints(request).await,
            type_url::SECRET => server.fetch_secrets(request).await,
            _ => server.fetch_runtime(request).await,
        }
    });
    match result {
        Ok(resp) => {
            let resp = resp.into_inner();
            assert!(asked.is_empty() || asked == fixed, "fetch of another type");
            assert_eq!(resp.type_url, fixed, "fetch answered another type");
            assert_eq!(resp.version_info, version_of(snapshot, fixed));
        }
        Err(status) => assert!(
            !asked.is_empty() && asked != fixed,
            "fetch of its own type refused: {status}"
        ),
    }
}

// -------------------------------------------------------------- the target

fn discovery_request(r: &Req, model: &Model) -> DiscoveryRequest {
    let t = r.type_url.of(TYPES);
    DiscoveryRequest {
        version_info: r
            .version
            .as_ref()
            .map(|v| v.of(&["", "1"]))
            .unwrap_or_default(),
        node: r.node.as_ref().map(|id| Node {
            id: id.clone(),
            ..Default::default()
        }),
        resource_names: r.names.0.iter().map(|n| n.of(NAMES)).collect(),
        response_nonce: model.nonce_for(&t, &r.nonce),
        error_detail: r.error.as_ref().map(|(code, message)| Status {
            code: *code,
            message: message.clone(),
            details: vec![],
        }),
        type_url: t,
        ..Default::default()
    }
}

fn delta_request_of(r: &Req, model: &Model) -> DeltaDiscoveryRequest {
    let t = r.type_url.of(TYPES);
    DeltaDiscoveryRequest {
        node: r.node.as_ref().map(|id| Node {
            id: id.clone(),
            ..Default::default()
        }),
        resource_names_subscribe: r.names.0.iter().map(|n| n.of(NAMES)).collect(),
        resource_names_unsubscribe: r.unsubscribe.0.iter().map(|n| n.of(NAMES)).collect(),
        initial_resource_versions: r
            .initial
            .0
            .iter()
            .map(|(n, v)| (n.of(NAMES), v.of(&["", "x"])))
            .collect(),
        response_nonce: model.nonce_for(&t, &r.nonce),
        error_detail: r.error.as_ref().map(|(code, message)| Status {
            code: *code,
            message: message.clone(),
            details: vec![],
        }),
        type_url: t,
        ..Default::default()
    }
}

/// The `xds_request` target.
pub fn run(input: &Input) {
    let fixed = input.fixed.map(|i| SERVED[i as usize % SERVED.len()]);
    let mut snapshot = input.initial.build();
    let mut model = Model {
        types: BTreeMap::new(),
        last_nonce: 0,
    };
    let aggregated = input.fixed.is_none();
    let mut sotw = SotwStream::new(aggregated);
    let mut delta = DeltaStream::new(aggregated);
    for op in input.ops.iter().take(32) {
        match op {
            Op::Publish(s) => {
                snapshot = s.build();
                if input.delta {
                    delta_publish(&mut delta, &mut model, &snapshot);
                } else {
                    sotw_publish(&mut sotw, &mut model, &snapshot);
                }
                continue;
            }
            Op::Fetch(service, r) => {
                fetch(&snapshot, *service, discovery_request(r, &model));
                continue;
            }
            _ => {}
        }
        if input.delta {
            let mut req = match op {
                Op::Request(r) => delta_request_of(r, &model),
                Op::Raw(bytes) => match DeltaDiscoveryRequest::decode(bytes.as_slice()) {
                    Ok(r) => r,
                    Err(_) => continue,
                },
                _ => continue,
            };
            if !admit(&mut req.type_url, fixed) {
                return; // the adapter ends the stream
            }
            delta_request(&mut delta, &mut model, &snapshot, &req);
        } else {
            let mut req = match op {
                Op::Request(r) => discovery_request(r, &model),
                Op::Raw(bytes) => match sotw_decode(bytes) {
                    Some(r) => {
                        let mut message = r.message;
                        message.resource_names = r.names.iter().map(str::to_string).collect();
                        message
                    }
                    None => continue,
                },
                _ => continue,
            };
            if !admit(&mut req.type_url, fixed) {
                return;
            }
            sotw_request(&mut sotw, &mut model, &snapshot, &req);
        }
    }
    snapshot = input.last.build();
    if input.delta {
        delta_publish(&mut delta, &mut model, &snapshot);
        delta_converged(&model, &snapshot);
    } else {
        sotw_publish(&mut sotw, &mut model, &snapshot);
        sotw_converged(&model, &snapshot);
    }
}
