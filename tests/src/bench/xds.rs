//! A lightweight ADS client that behaves like Envoy on one aggregated
//! stream, state of the world or delta (incremental): it subscribes to
//! clusters and listeners (wildcard), then to the endpoints of every EDS
//! cluster, the route configurations the listeners' HTTP connection
//! managers name (or every scope, wildcard, when one uses scoped routes)
//! and the secrets their TLS contexts name, and ACKs every response. It
//! keeps only names and counters (no resource bodies), so a hundred of them
//! fit in one process. Works against ours and upstream Contour alike.
//!
//! Changes are observed with [`Watch`]es: "the first response of this type
//! whose resource (optionally: named like this) contains these bytes / this
//! endpoint port"; the arrival time of that response is recorded.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType as SocketConfig;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType as FilterConfig;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DiscoveryRequest,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::Result;
use crate::XdsPki;

/// Type URLs, in the order Envoy subscribes.
pub mod type_url {
    /// Clusters.
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    /// Cluster load assignments.
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    /// Listeners.
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    /// Route configurations.
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    /// Secrets.
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    /// Scoped route configurations.
    pub const SCOPED_ROUTE: &str =
        "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";
    /// All of them, in [`super::TypeIndex`] order.
    pub const ALL: [&str; super::TYPES] =
        [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SCOPED_ROUTE];
}

/// How many types the client follows.
pub const TYPES: usize = 6;
/// Index of route configurations.
pub const RDS: TypeIndex = 3;
/// Index of scoped route configurations.
pub const SRDS: TypeIndex = 5;

/// Index of a type URL in [`type_url::ALL`].
pub type TypeIndex = usize;

fn type_index(url: &str) -> Option<TypeIndex> {
    type_url::ALL.iter().position(|t| *t == url)
}

/// Short name of a type (`cds`, `eds`, `lds`, `rds`, `sds`, `srds`).
pub fn type_short(i: TypeIndex) -> &'static str {
    ["cds", "eds", "lds", "rds", "sds", "srds"]
        .get(i)
        .copied()
        .unwrap_or("?")
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// xDS port on 127.0.0.1.
    pub port: u16,
    /// Mutual TLS with Envoy's pair from this PKI (server name `contour`);
    /// plain gRPC when `None`.
    pub pki: Option<XdsPki>,
    /// Delta (incremental) xDS instead of state of the world.
    pub delta: bool,
}

/// Counters of one type (monotonic).
#[derive(Debug, Default)]
pub struct Counters {
    /// Responses received.
    pub responses: AtomicU64,
    /// Encoded bytes of those responses.
    pub bytes: AtomicU64,
    /// Resources carried by them.
    pub resources: AtomicU64,
}

/// A snapshot of [`Counters`] for all types: `[type] = (responses, bytes, resources)`.
pub type CounterSnapshot = [(u64, u64, u64); TYPES];

/// What a watch looks for.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// These bytes anywhere in an encoded resource.
    Bytes(Vec<u8>),
    /// A cluster load assignment with an endpoint on this port.
    EndpointPort(u32),
}

/// "Tell me when a response of `type_url` carries a resource (named with
/// `name_prefix`, if given) that matches."
#[derive(Debug, Clone)]
pub struct Watch {
    /// Index into [`type_url::ALL`].
    pub type_index: TypeIndex,
    /// Only resources whose name starts with this.
    pub name_prefix: Option<String>,
    /// What to look for.
    pub matcher: Matcher,
}

/// What the client has received so far (names, not bodies).
#[derive(Debug, Clone, Default)]
pub struct State {
    /// When the stream got its first response.
    pub first_response: Option<Instant>,
    /// When the last response arrived.
    pub last_response: Option<Instant>,
    /// Responses received.
    pub responses: u64,
    /// Cluster names (last CDS response).
    pub clusters: usize,
    /// Endpoint (CLA) names received.
    pub endpoints: usize,
    /// Listener names (last LDS response).
    pub listeners: usize,
    /// Route configuration names received.
    pub routes: usize,
    /// Secret names received.
    pub secrets: usize,
    /// Virtual hosts of `ingress_http` in the last one received (only when
    /// counting is on), or scopes of `ingress_http` received.
    pub http_vhosts: usize,
    /// Scoped route configuration names received.
    pub scopes: usize,
    /// Responses refused (never expected: the client ACKs everything).
    pub errors: Vec<String>,
}

struct Shared {
    node_id: String,
    count_vhosts: bool,
    counters: [Counters; TYPES],
    state: Mutex<State>,
    watches: Mutex<HashMap<u64, (Watch, Option<Instant>)>>,
    /// Bumped on every response (for waiters).
    notify: tokio::sync::Notify,
}

/// One ADS client; its stream runs in a task until dropped.
pub struct Client {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn channel(target: &Target) -> Result<Channel> {
    let scheme = if target.pki.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://127.0.0.1:{}", target.port))?
        // Envoy's own gRPC client windows are large (256 MiB by default).
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .connect_timeout(Duration::from_secs(5));
    if let Some(p) = &target.pki {
        endpoint = endpoint.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(std::fs::read(&p.ca)?))
                .identity(Identity::from_pem(
                    std::fs::read(&p.envoy_cert)?,
                    std::fs::read(&p.envoy_key)?,
                ))
                .domain_name("contour"),
        )?;
    }
    Ok(endpoint.connect().await?)
}

impl Client {
    /// Starts a client that connects (retrying until `connect_timeout`) and
    /// follows the server. `count_vhosts` decodes `ingress_http` to count
    /// its virtual hosts (costly for big route tables; for the cold start).
    pub fn start(
        target: Target,
        node_id: &str,
        count_vhosts: bool,
        connect_timeout: Duration,
    ) -> Client {
        let shared = Arc::new(Shared {
            node_id: node_id.to_string(),
            count_vhosts,
            counters: Default::default(),
            state: Mutex::new(State::default()),
            watches: Mutex::new(HashMap::new()),
            notify: tokio::sync::Notify::new(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let outcome = match target.delta {
                true => run_delta(target, s.clone(), connect_timeout).await,
                false => run(target, s.clone(), connect_timeout).await,
            };
            if let Err(e) = outcome
                && let Ok(mut st) = s.state.lock()
            {
                st.errors.push(e.to_string());
            }
            s.notify.notify_waiters();
        });
        Client { shared, task }
    }

    /// What it has received so far.
    pub fn state(&self) -> State {
        self.shared
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Counters of every type.
    pub fn counters(&self) -> CounterSnapshot {
        let mut out = [(0, 0, 0); TYPES];
        for (i, c) in self.shared.counters.iter().enumerate() {
            out[i] = (
                c.responses.load(Ordering::Relaxed),
                c.bytes.load(Ordering::Relaxed),
                c.resources.load(Ordering::Relaxed),
            );
        }
        out
    }

    /// Registers watch `id` (register before making the change).
    pub fn watch(&self, id: u64, watch: Watch) {
        if let Ok(mut w) = self.shared.watches.lock() {
            w.insert(id, (watch, None));
        }
    }

    /// When watch `id` matched, if it has; `remove` forgets a matched watch.
    pub fn seen(&self, id: u64, remove: bool) -> Option<Instant> {
        let mut w = self.shared.watches.lock().ok()?;
        let at = w.get(&id).and_then(|(_, at)| *at);
        if remove && at.is_some() {
            w.remove(&id);
        }
        at
    }

    /// Forgets watch `id`.
    pub fn unwatch(&self, id: u64) {
        if let Ok(mut w) = self.shared.watches.lock() {
            w.remove(&id);
        }
    }

    /// Waits until `done(state)` holds (or the timeout passes: `false`).
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            if done(&self.state()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.task.is_finished() {
                return done(&self.state());
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

/// Sums counters over clients.
pub fn sum_counters(clients: &[Client]) -> CounterSnapshot {
    let mut out = [(0u64, 0u64, 0u64); TYPES];
    for c in clients {
        for (i, (r, b, n)) in c.counters().iter().enumerate() {
            out[i].0 += r;
            out[i].1 += b;
            out[i].2 += n;
        }
    }
    out
}

/// `after - before`, per type.
pub fn counters_delta(after: &CounterSnapshot, before: &CounterSnapshot) -> CounterSnapshot {
    let mut out = [(0u64, 0u64, 0u64); TYPES];
    for i in 0..TYPES {
        out[i] = (
            after[i].0.saturating_sub(before[i].0),
            after[i].1.saturating_sub(before[i].1),
            after[i].2.saturating_sub(before[i].2),
        );
    }
    out
}

/// Registers watch `id` on every client.
pub fn watch_all(clients: &[Client], id: u64, watch: &Watch) {
    for c in clients {
        c.watch(id, watch.clone());
    }
}

/// Waits until every client has matched watch `id` (polling every
/// millisecond; the recorded times are the responses' arrival) or the
/// timeout passes. Returns each client's arrival time; the watch is removed.
pub async fn wait_watch(clients: &[Client], id: u64, timeout: Duration) -> Vec<Option<Instant>> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: Vec<Option<Instant>> = clients.iter().map(|c| c.seen(id, false)).collect();
        if seen.iter().all(Option::is_some) || Instant::now() > deadline {
            for c in clients {
                c.unwatch(id);
            }
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The first length-delimited field 1 of an encoded message: the `name` of
/// a Cluster, Listener, RouteConfiguration and Secret and the `cluster_name`
/// of a ClusterLoadAssignment.
pub fn resource_name(mut buf: &[u8]) -> Option<&str> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                let (body, rest) = (buf.get(..len)?, buf.get(len..)?);
                if field == 1 {
                    return std::str::from_utf8(body).ok();
                }
                buf = rest;
            }
            _ => return None,
        }
    }
    None
}

/// The EDS name of an (encoded) cluster, if it is an EDS cluster.
fn eds_name(value: &[u8]) -> Option<String> {
    let c = Cluster::decode(value).ok()?;
    if c.cluster_discovery_type != Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)) {
        return None;
    }
    let service = c
        .eds_cluster_config
        .as_ref()
        .map(|e| e.service_name.clone())
        .unwrap_or_default();
    Some(if service.is_empty() { c.name } else { service })
}

fn eds_names(resources: &[Any]) -> BTreeSet<String> {
    resources
        .iter()
        .filter_map(|r| eds_name(&r.value))
        .collect()
}

/// What the listeners refer to: route configuration names, secret names,
/// and whether one uses scoped routes.
#[derive(Debug, Default, Clone, PartialEq)]
struct Refs {
    routes: BTreeSet<String>,
    secrets: BTreeSet<String>,
    scoped: bool,
}

impl Refs {
    fn extend(&mut self, other: &Refs) {
        self.routes.extend(other.routes.iter().cloned());
        self.secrets.extend(other.secrets.iter().cloned());
        self.scoped |= other.scoped;
    }
}

/// What the listeners (encoded) refer to.
fn listener_refs<'a>(resources: impl Iterator<Item = &'a [u8]>) -> Refs {
    let mut refs = Refs::default();
    let (routes, secrets) = (&mut refs.routes, &mut refs.secrets);
    let mut scoped = false;
    for r in resources {
        let Ok(l) = Listener::decode(r) else {
            continue;
        };
        for chain in l.filter_chains.iter().chain(l.default_filter_chain.iter()) {
            for f in &chain.filters {
                if let Some(FilterConfig::TypedConfig(any)) = &f.config_type
                    && any.type_url.ends_with("HttpConnectionManager")
                    && let Ok(hcm) = HttpConnectionManager::decode(any.value.as_slice())
                {
                    match hcm.route_specifier {
                        Some(RouteSpecifier::Rds(rds)) => {
                            routes.insert(rds.route_config_name);
                        }
                        Some(RouteSpecifier::ScopedRoutes(_)) => scoped = true,
                        _ => {}
                    }
                }
            }
            if let Some(ts) = &chain.transport_socket
                && let Some(SocketConfig::TypedConfig(any)) = &ts.config_type
                && any.type_url.ends_with("DownstreamTlsContext")
                && let Ok(tls) = DownstreamTlsContext::decode(any.value.as_slice())
                && let Some(common) = tls.common_tls_context
            {
                for s in common.tls_certificate_sds_secret_configs {
                    secrets.insert(s.name);
                }
            }
        }
    }
    refs.scoped = scoped;
    refs
}

fn matches(matcher: &Matcher, value: &[u8]) -> bool {
    match matcher {
        Matcher::Bytes(needle) => memchr::memmem::find(value, needle).is_some(),
        Matcher::EndpointPort(port) => ClusterLoadAssignment::decode(value).is_ok_and(|cla| {
            cla.endpoints
                .iter()
                .flat_map(|l| l.lb_endpoints.iter())
                .any(|e| match &e.host_identifier {
                    Some(HostIdentifier::Endpoint(ep)) => ep
                        .address
                        .as_ref()
                        .and_then(|a| a.address.as_ref())
                        .is_some_and(|a| match a {
                            AddressKind::SocketAddress(s) => {
                                s.port_specifier == Some(PortSpecifier::PortValue(*port))
                            }
                            _ => false,
                        }),
                    _ => false,
                })
        }),
    }
}

struct Subscription {
    names: BTreeSet<String>,
    version: String,
    nonce: String,
    sent: bool,
}

/// Connects, retrying until `connect_timeout` has passed.
async fn connect(target: &Target, connect_timeout: Duration) -> Result<Channel> {
    let deadline = Instant::now() + connect_timeout;
    loop {
        match channel(target).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("connecting to :{}: {e}", target.port).into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// An ADS client on a new connection, and the node it names.
async fn ads_client(
    target: &Target,
    shared: &Shared,
    connect_timeout: Duration,
) -> Result<(AggregatedDiscoveryServiceClient<Channel>, Node)> {
    let channel = connect(target, connect_timeout).await?;
    let client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(usize::MAX);
    let node = Node {
        id: shared.node_id.clone(),
        cluster: "bench".into(),
        ..Default::default()
    };
    Ok((client, node))
}

async fn run(target: Target, shared: Arc<Shared>, connect_timeout: Duration) -> Result<()> {
    let (mut client, node) = ads_client(&target, &shared, connect_timeout).await?;
    let (tx, rx) = mpsc::unbounded_channel::<DiscoveryRequest>();
    let request = |type_index: TypeIndex, sub: &Subscription| DiscoveryRequest {
        node: Some(node.clone()),
        type_url: type_url::ALL[type_index].to_string(),
        version_info: sub.version.clone(),
        response_nonce: sub.nonce.clone(),
        resource_names: sub.names.iter().cloned().collect(),
        ..Default::default()
    };
    let mut subs: Vec<Subscription> = (0..TYPES)
        .map(|_| Subscription {
            names: BTreeSet::new(),
            version: String::new(),
            nonce: String::new(),
            sent: false,
        })
        .collect();
    // Envoy's order: clusters, then listeners (wildcard: no names).
    for i in [0usize, 2] {
        let _ = tx.send(request(i, &subs[i]));
        subs[i].sent = true;
    }
    let mut responses = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    // Names received per non-wildcard type (merged across responses).
    let mut received: [HashSet<String>; TYPES] = Default::default();
    while let Some(resp) = responses.message().await? {
        let arrived = Instant::now();
        let Some(ti) = type_index(&resp.type_url) else {
            continue;
        };
        account(&shared, ti, resp.encoded_len(), resp.resources.len());
        let values: Vec<&[u8]> = resp.resources.iter().map(|r| r.value.as_slice()).collect();
        check_watches(&shared, ti, &values, arrived);
        // Follow what clusters and listeners name, as Envoy does, before
        // ACKing them.
        let mut changes: Vec<(TypeIndex, BTreeSet<String>)> = Vec::new();
        match ti {
            0 => changes.push((1, eds_names(&resp.resources))),
            2 => {
                let refs = listener_refs(values.iter().copied());
                changes.push((RDS, refs.routes));
                changes.push((4, refs.secrets));
                // Scopes are subscribed to as a whole (wildcard), once.
                if refs.scoped && !subs[SRDS].sent {
                    subs[SRDS].sent = true;
                    let _ = tx.send(request(SRDS, &subs[SRDS]));
                }
            }
            _ => {}
        }
        let mut vhosts = None;
        if ti == 0 || ti == 2 || ti == SRDS {
            received[ti].clear();
        }
        for r in &resp.resources {
            if let Some(name) = resource_name(&r.value) {
                if ti == 3 && shared.count_vhosts && name == "ingress_http" {
                    vhosts = RouteConfiguration::decode(r.value.as_slice())
                        .ok()
                        .map(|rc| rc.virtual_hosts.len());
                }
                if !received[ti].contains(name) {
                    received[ti].insert(name.to_string());
                }
            }
        }
        for (t, names) in changes {
            // As Envoy: no subscription while nothing is named (an empty
            // name list would be a wildcard subscription), then one request
            // per change of the set.
            if names != subs[t].names && (subs[t].sent || !names.is_empty()) {
                subs[t].names = names;
                subs[t].sent = true;
                let _ = tx.send(request(t, &subs[t]));
            }
        }
        subs[ti].version = resp.version_info.clone();
        subs[ti].nonce = resp.nonce.clone();
        let _ = tx.send(request(ti, &subs[ti]));
        let counts = received.each_ref().map(HashSet::len);
        let scopes = (ti == SRDS).then(|| http_scopes(received[SRDS].iter()));
        record(&shared, arrived, counts, scopes.or(vhosts));
    }
    Err("the server closed the stream".into())
}

/// The delta form of [`run`]: one incremental ADS stream. Responses carry
/// only what changed, so the client keeps what each cluster and listener
/// refers to and (un)subscribes names as those change, as Envoy does.
async fn run_delta(target: Target, shared: Arc<Shared>, connect_timeout: Duration) -> Result<()> {
    let (mut client, node) = ads_client(&target, &shared, connect_timeout).await?;
    let (tx, rx) = mpsc::unbounded_channel::<DeltaDiscoveryRequest>();
    let request = |ti: TypeIndex| DeltaDiscoveryRequest {
        node: Some(node.clone()),
        type_url: type_url::ALL[ti].to_string(),
        ..Default::default()
    };
    // Clusters and listeners, wildcard (no names).
    for ti in [0usize, 2] {
        let _ = tx.send(request(ti));
    }
    let mut responses = client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut received: [BTreeSet<String>; TYPES] = Default::default();
    let mut subscribed: [BTreeSet<String>; TYPES] = Default::default();
    let mut scopes_subscribed = false;
    // What each cluster / listener refers to.
    let mut eds_of: HashMap<String, String> = HashMap::new();
    let mut refs_of: HashMap<String, Refs> = HashMap::new();
    while let Some(resp) = responses.message().await? {
        let arrived = Instant::now();
        let Some(ti) = type_index(&resp.type_url) else {
            continue;
        };
        account(&shared, ti, resp.encoded_len(), resp.resources.len());
        let values: Vec<&[u8]> = resp
            .resources
            .iter()
            .filter_map(|r| r.resource.as_ref().map(|a| a.value.as_slice()))
            .collect();
        check_watches(&shared, ti, &values, arrived);
        let mut vhosts = None;
        for r in &resp.resources {
            received[ti].insert(r.name.clone());
            let value = r.resource.as_ref().map(|a| a.value.as_slice());
            match (ti, value) {
                (0, Some(v)) => {
                    match eds_name(v) {
                        Some(e) => eds_of.insert(r.name.clone(), e),
                        None => eds_of.remove(&r.name),
                    };
                }
                (2, Some(v)) => {
                    refs_of.insert(r.name.clone(), listener_refs(std::iter::once(v)));
                }
                _ => {}
            }
            if ti == RDS
                && shared.count_vhosts
                && r.name == "ingress_http"
                && let Some(v) = value
            {
                vhosts = RouteConfiguration::decode(v)
                    .ok()
                    .map(|rc| rc.virtual_hosts.len());
            }
        }
        for name in &resp.removed_resources {
            received[ti].remove(name);
            eds_of.remove(name);
            refs_of.remove(name);
        }
        // Follow what clusters and listeners name before ACKing them.
        let mut wanted: Vec<(TypeIndex, BTreeSet<String>)> = Vec::new();
        match ti {
            0 => wanted.push((1, eds_of.values().cloned().collect())),
            2 => {
                let mut all = Refs::default();
                for r in refs_of.values() {
                    all.extend(r);
                }
                if all.scoped && !scopes_subscribed {
                    scopes_subscribed = true;
                    let _ = tx.send(request(SRDS));
                }
                wanted.push((RDS, all.routes));
                wanted.push((4, all.secrets));
            }
            _ => {}
        }
        for (t, names) in wanted {
            if names == subscribed[t] {
                continue;
            }
            let _ = tx.send(DeltaDiscoveryRequest {
                resource_names_subscribe: names.difference(&subscribed[t]).cloned().collect(),
                resource_names_unsubscribe: subscribed[t].difference(&names).cloned().collect(),
                ..request(t)
            });
            for gone in subscribed[t].difference(&names) {
                received[t].remove(gone);
            }
            subscribed[t] = names;
        }
        let _ = tx.send(DeltaDiscoveryRequest {
            response_nonce: resp.nonce.clone(),
            ..request(ti)
        });
        let counts = received.each_ref().map(BTreeSet::len);
        let scopes = (ti == SRDS).then(|| http_scopes(received[SRDS].iter()));
        record(&shared, arrived, counts, scopes.or(vhosts));
    }
    Err("the server closed the stream".into())
}

/// Counts one response of type `ti`: its encoded size and resources.
fn account(shared: &Shared, ti: TypeIndex, bytes: usize, resources: usize) {
    let c = &shared.counters[ti];
    c.responses.fetch_add(1, Ordering::Relaxed);
    c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    c.resources.fetch_add(resources as u64, Ordering::Relaxed);
}

/// Records one response in the state: names received per type and, when
/// the response told, the hosts of `ingress_http` (its virtual hosts, or
/// its scopes).
fn record(shared: &Shared, arrived: Instant, counts: [usize; TYPES], http_hosts: Option<usize>) {
    if let Ok(mut st) = shared.state.lock() {
        st.first_response.get_or_insert(arrived);
        st.last_response = Some(arrived);
        st.responses += 1;
        st.clusters = counts[0];
        st.endpoints = counts[1];
        st.listeners = counts[2];
        st.routes = counts[RDS];
        st.secrets = counts[4];
        st.scopes = counts[SRDS];
        if let Some(v) = http_hosts {
            st.http_vhosts = v;
        }
    }
    shared.notify.notify_waiters();
}

/// The scopes of `ingress_http` among scope names.
fn http_scopes<'a>(names: impl Iterator<Item = &'a String>) -> usize {
    names.filter(|n| n.starts_with("ingress_http/")).count()
}

/// Whether a watch of type `watched` looks at a response of type `ti`: a
/// route watch also looks at scopes (their route tables are inline).
fn watched_in(watched: TypeIndex, ti: TypeIndex) -> bool {
    watched == ti || (watched == RDS && ti == SRDS)
}

fn check_watches(shared: &Shared, ti: TypeIndex, resources: &[&[u8]], arrived: Instant) {
    let Ok(mut watches) = shared.watches.lock() else {
        return;
    };
    for (w, at) in watches.values_mut() {
        if at.is_some() || !watched_in(w.type_index, ti) {
            continue;
        }
        let hit = resources.iter().any(|r| {
            let named = match &w.name_prefix {
                Some(p) => resource_name(r).is_some_and(|n| n.starts_with(p.as_str())),
                None => true,
            };
            named && matches(&w.matcher, r)
        });
        if hit {
            *at = Some(arrived);
        }
    }
}
