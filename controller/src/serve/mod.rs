//! `contour serve`: watch Kubernetes, rebuild on change after a short
//! hold-off, publish versioned snapshots to every xDS stream, and (leader
//! only) write status. I/O lives here; the rebuild itself is the pure
//! `dag::build` → `envoy::translate` → `Snapshot::build`.

mod args;
pub mod config;
pub mod http;
pub mod lbstatus;
pub mod leader;
pub mod nack;
pub mod ratelimit;
pub mod status;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch as tokio_watch};

use crate::cache::{Cache, Key, Kind, Object};
use crate::dag::{BuilderConfig, Dag, ObjectKind, ObjectRef, ObjectStatus, Statuses};
use crate::metrics::Metrics;
use crate::xds::server::{Published, XdsServer};
use crate::xds::transport::{self, ReloadingTls};
pub use args::{AccessLogFormatFlag, ServeArgs};
use watch::Update;

/// Errors that stop `contour serve`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad flags.
    #[error("{0}")]
    Flags(String),
    /// No Kubernetes client.
    #[error("kubernetes client: {0}")]
    Kube(String),
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A listener could not bind.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The xDS transport failed.
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
}

async fn client(args: &ServeArgs) -> Result<kube::Client, ServeError> {
    let err = |e: &dyn std::fmt::Display| ServeError::Kube(e.to_string());
    let config = if args.incluster {
        kube::Config::incluster().map_err(|e| err(&e))?
    } else if let Some(path) = &args.kubeconfig {
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(&e))?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| err(&e))?
    } else {
        kube::Config::infer().await.map_err(|e| err(&e))?
    };
    if args.kubernetes_client_qps > 0.0 {
        let limit =
            ratelimit::RateLimit::new(args.kubernetes_client_qps, args.kubernetes_client_burst);
        return Ok(kube::client::ClientBuilder::try_from(config)
            .map_err(|e| err(&e))?
            .with_layer(&limit)
            .build());
    }
    kube::Client::try_from(config).map_err(|e| err(&e))
}

async fn bind(addr: &str, port: u16) -> Result<tokio::net::TcpListener, ServeError> {
    let text = if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    };
    let parsed: SocketAddr = text.parse().map_err(|_| ServeError::Bind {
        addr: text.clone(),
        source: std::io::Error::other("not an IP address"),
    })?;
    tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|source| ServeError::Bind { addr: text, source })
}

fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "contour".into());
        format!("{host}-{}", std::process::id())
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs `contour serve` until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let args = match &args.config_path {
        Some(path) => {
            let file = config::ConfigFile::read(path)?;
            args.clone().with_config(&file)
        }
        None => args,
    };
    let tls = match args.tls_files()? {
        Some(files) => Some(Arc::new(ReloadingTls::new(files)?)),
        None => {
            tracing::warn!(
                "xDS is served WITHOUT TLS (--insecure): any client that reaches the port gets every route and secret; use only for local testing"
            );
            None
        }
    };
    let client = client(&args).await?;
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = tokio_watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let (snap_tx, snap_rx) = tokio_watch::channel(Published::default());
    let (xds_events_tx, xds_events) = mpsc::unbounded_channel();
    let observer = Arc::new(nack::TracingObserver {
        metrics: metrics.clone(),
        events: xds_events_tx,
    });
    let xds = XdsServer::new(snap_rx, observer);
    let xds_listener = bind(&args.xds_address, args.xds_port).await?;
    tracing::info!(address = %args.xds_address, port = args.xds_port, tls = tls.is_some(), "serving xDS");
    let xds_task = tokio::spawn(transport::serve(xds.routes(), xds_listener, tls, stopped()));

    let dag_slot: Arc<RwLock<Option<Arc<Dag>>>> = Arc::default();
    let http_state = http::HttpState {
        metrics: metrics.clone(),
        dag: dag_slot.clone(),
    };
    for ((address, port), endpoints) in http::plan(
        (&args.http_address, args.http_port),
        (
            args.health_address.as_deref().unwrap_or(&args.http_address),
            args.health_port.unwrap_or(args.http_port),
        ),
        (&args.debug_http_address, args.debug_http_port),
    ) {
        let listener = match bind(&address, port).await {
            Ok(l) => l,
            // The debug endpoint is optional: a taken port does not stop serve.
            Err(e)
                if endpoints
                    == (http::Endpoints {
                        debug: true,
                        ..Default::default()
                    }) =>
            {
                tracing::error!(error = %e, "the debug endpoint could not bind; serving without it");
                continue;
            }
            Err(e) => return Err(e),
        };
        tracing::info!(%address, port, ?endpoints, "serving HTTP endpoints");
        tokio::spawn(http::serve(
            listener,
            http_state.clone(),
            endpoints,
            stopped(),
        ));
    }

    let (leader_tx, leader_rx) = tokio_watch::channel(args.disable_leader_election);
    metrics.leader.set(i64::from(args.disable_leader_election));
    let leader_task = (!args.disable_leader_election).then(|| {
        let config = leader::LeaderConfig {
            namespace: args.leader_election_resource_namespace.clone(),
            name: args.leader_election_resource_name.clone(),
            identity: identity(),
            lease_duration: args.leader_election_lease_duration,
            renew_deadline: args.leader_election_renew_deadline,
            retry: args.leader_election_retry_period,
        };
        tokio::spawn(leader::run(
            client.clone(),
            config,
            leader_tx,
            stop_tx.subscribe(),
        ))
    });
    {
        let metrics = metrics.clone();
        let mut rx = leader_rx.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                metrics.leader.set(i64::from(*rx.borrow_and_update()));
            }
        });
    }

    // The load balancer address of Ingresses and HTTPProxies.
    let lb = Arc::new(lbstatus::Shared::default());
    let (address_tx, address_rx) = tokio_watch::channel(serde_json::json!({"ingress": []}));
    match &args.ingress_status_address {
        Some(flag) => {
            let _ = address_tx.send(lbstatus::from_addresses(flag));
        }
        None => {
            tokio::spawn(lbstatus::follow_service(
                client.clone(),
                args.envoy_service_namespace.clone(),
                args.envoy_service_name.clone(),
                address_tx.clone(),
            ));
        }
    }
    tokio::spawn(lbstatus::run(
        client.clone(),
        lb.clone(),
        address_rx,
        leader_rx.clone(),
    ));

    let (status_tx, status_rx) = tokio_watch::channel(Arc::new(Statuses::new()));
    let live: status::LiveStatuses = Arc::default();
    tokio::spawn(status::run(
        client.clone(),
        status_rx,
        live.clone(),
        leader_rx,
        metrics.clone(),
    ));

    let (tx, rx) = mpsc::channel(4096);
    let kinds = watch::kinds();
    let scopes: Vec<Option<String>> = match args.watch_namespaces.is_empty() {
        true => vec![None],
        false => args.watch_namespaces.iter().cloned().map(Some).collect(),
    };
    let watched = kinds.len() * scopes.len();
    for (kind, resource) in kinds {
        for scope in &scopes {
            tokio::spawn(watch::run(
                client.clone(),
                kind,
                resource.clone(),
                scope.clone(),
                tx.clone(),
            ));
        }
    }
    drop(tx);

    let mut event_loop = EventLoop {
        cache: Cache::default(),
        engine: crate::incremental::Engine::new(args.builder_config()),
        relisting: BTreeMap::new(),
        synced: BTreeSet::new(),
        kinds: watched,
        dirty_since: None,
        routing_dirty: false,
        last_build: None,
        last_event: Instant::now(),
        live,
        lb,
        config: args.builder_config(),
        metrics: metrics.clone(),
        outputs: Outputs {
            snapshots: snap_tx,
            statuses: status_tx,
            dag: dag_slot,
        },
        holdoff: args.holdoff_delay,
        max_holdoff: args.holdoff_max_delay,
        statuses: Arc::new(Statuses::new()),
        nacks: nack::Tracker::default(),
        unparsable: BTreeMap::new(),
    };
    tokio::select! {
        _ = event_loop.run(rx, xds_events) => tracing::warn!("all watches ended"),
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    let _ = stop_tx.send(true);
    drop(address_tx);
    if let Some(t) = leader_task {
        let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
    }
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(3), xds_task).await {
        return Err(e.into());
    }
    Ok(())
}

struct Outputs {
    snapshots: tokio_watch::Sender<Published>,
    statuses: tokio_watch::Sender<Arc<Statuses>>,
    dag: Arc<RwLock<Option<Arc<Dag>>>>,
}

struct EventLoop {
    cache: Cache,
    /// Rebuilds from the previous build's pieces (same result as
    /// `dag::build` → `envoy::translate` → `Snapshot::build`).
    engine: crate::incremental::Engine,
    /// Keys seen since a kind's (re)list began.
    relisting: BTreeMap<(Kind, Option<String>), BTreeSet<Key>>,
    synced: BTreeSet<(Kind, Option<String>)>,
    /// How many watches (kinds × namespaces) run; a build waits until all have synced.
    kinds: usize,
    dirty_since: Option<Instant>,
    /// Whether a change since the last build is more than EndpointSlices
    /// (those skip the hold-off: they never reach the DAG, and upstream
    /// pushes them at once too).
    routing_dirty: bool,
    /// When the last build finished.
    last_build: Option<Instant>,
    last_event: Instant,
    live: status::LiveStatuses,
    /// Objects that carry the load balancer address.
    lb: Arc<lbstatus::Shared>,
    /// For the ingress class of those objects.
    config: BuilderConfig,
    metrics: Arc<Metrics>,
    outputs: Outputs,
    holdoff: Duration,
    max_holdoff: Duration,
    /// Statuses of the last build, before NACK annotations.
    statuses: Arc<Statuses>,
    /// Envoy refusals in force, and what they can be traced to.
    nacks: nack::Tracker,
    /// Objects with a status that do not parse: (generation, why).
    unparsable: BTreeMap<ObjectRef, (i64, String)>,
}

/// The status an object carries (for no-op detection).
fn live_status(object: &Object) -> Option<(ObjectRef, status::LiveStatus)> {
    let status = match object {
        Object::HTTPProxy(p) => status::LiveStatus::of(&p.status),
        Object::IngressRoute(r) => status::LiveStatus::of(&r.status),
        _ => return None,
    };
    let (kind, key) = kind_of(object);
    Some((object_ref(kind, key)?, status))
}

/// The status of an object that does not parse (it is not served).
fn unparsable_status(kind: ObjectKind, generation: i64, error: &str) -> ObjectStatus {
    let mut status = ObjectStatus::valid("", generation);
    status.error(
        "SpecError",
        "SpecNotParsed",
        format!("the object does not parse and is not served: {error}"),
    );
    match kind {
        ObjectKind::HTTPProxy => crate::dag::httpproxy::finished(status),
        ObjectKind::IngressRoute => status,
    }
}

/// The status-carrying reference of an object of `kind`, if it has one.
fn object_ref(kind: Kind, key: Key) -> Option<ObjectRef> {
    Some(ObjectRef {
        kind: object_kind(kind)?,
        namespace: key.namespace,
        name: key.name,
    })
}

fn object_kind(kind: Kind) -> Option<ObjectKind> {
    match kind {
        Kind::HTTPProxy => Some(ObjectKind::HTTPProxy),
        Kind::IngressRoute => Some(ObjectKind::IngressRoute),
        _ => None,
    }
}

/// Most queued updates taken into a build that is due.
const DRAIN_BEFORE_BUILD: usize = 1024;

fn kind_of(o: &Object) -> (Kind, Key) {
    match o {
        Object::Ingress(x) => (Kind::Ingress, Key::of(&x.metadata)),
        Object::IngressRoute(x) => (Kind::IngressRoute, Key::of(&x.metadata)),
        Object::HTTPProxy(x) => (Kind::HTTPProxy, Key::of(&x.metadata)),
        Object::Delegation(x) => (Kind::Delegation, Key::of(&x.metadata)),
        Object::Service(x) => (Kind::Service, Key::of(&x.metadata)),
        Object::Secret(x) => (Kind::Secret, Key::of(&x.metadata)),
        Object::EndpointSlice(x) => (Kind::EndpointSlice, Key::of(&x.metadata)),
    }
}

impl EventLoop {
    fn with_live(&self, f: impl FnOnce(&mut BTreeMap<ObjectRef, status::LiveStatus>)) {
        match self.live.lock() {
            Ok(mut l) => f(&mut l),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Records (or forgets) an object that carries the load balancer address.
    fn track_address(&self, object: &Object) {
        let (proxy, visible, live, key) = match object {
            Object::Ingress(i) => (
                false,
                crate::dag::builder::ingress_visible(&self.config, i),
                lbstatus::of_ingress(i),
                Key::of(&i.metadata),
            ),
            Object::HTTPProxy(p) => (
                true,
                crate::dag::builder::proxy_visible(&self.config, p),
                lbstatus::of_proxy(p),
                Key::of(&p.metadata),
            ),
            _ => return,
        };
        let target = lbstatus::Target {
            proxy,
            namespace: key.namespace,
            name: key.name,
        };
        if visible {
            self.lb.seen(target, live);
        } else {
            self.lb.gone(&target);
        }
    }

    fn remove(&mut self, kind: Kind, key: &Key) -> bool {
        if matches!(kind, Kind::Ingress | Kind::HTTPProxy) {
            self.lb.gone(&lbstatus::Target {
                proxy: kind == Kind::HTTPProxy,
                namespace: key.namespace.clone(),
                name: key.name.clone(),
            });
        }
        if let Some(r) = object_ref(kind, key.clone()) {
            self.with_live(|l| {
                l.remove(&r);
            });
            self.nacks.object_removed(&r);
            self.unparsable.remove(&r);
        }
        self.cache.remove(kind, key)
    }

    /// Applies one update; returns whether a rebuild is needed.
    fn apply(&mut self, update: Update) -> bool {
        let label =
            |op: &str, kind: Kind| vec![("op", op.to_string()), ("kind", format!("{kind:?}"))];
        match update {
            Update::Apply(object) => {
                let (kind, key) = kind_of(&object);
                self.metrics
                    .events
                    .get_or_create(&label("apply", kind))
                    .inc();
                // The relist this object belongs to: its namespace's, or the
                // cluster-wide one.
                let scoped = (kind, Some(key.namespace.clone()));
                let relist = match self.relisting.contains_key(&scoped) {
                    true => Some(scoped),
                    false => Some((kind, None)).filter(|k| self.relisting.contains_key(k)),
                };
                if let Some(seen) = relist.and_then(|r| self.relisting.get_mut(&r)) {
                    seen.insert(key);
                }
                let live = live_status(&object);
                self.track_address(&object);
                let fixed = live
                    .as_ref()
                    .is_some_and(|(r, _)| self.unparsable.remove(r).is_some());
                let changed = self.cache.insert(*object) || fixed;
                if let Some((r, v)) = live {
                    if changed {
                        self.nacks.object_changed(r.clone());
                    }
                    self.with_live(|l| {
                        l.insert(r, v);
                    });
                }
                changed
            }
            Update::Delete(kind, key) => {
                self.metrics
                    .events
                    .get_or_create(&label("delete", kind))
                    .inc();
                self.remove(kind, &key)
            }
            Update::Unparsable {
                kind,
                key,
                generation,
                error,
            } => {
                self.metrics
                    .events
                    .get_or_create(&label("unparsable", kind))
                    .inc();
                let scoped = (kind, Some(key.namespace.clone()));
                let relist = match self.relisting.contains_key(&scoped) {
                    true => Some(scoped),
                    false => Some((kind, None)).filter(|k| self.relisting.contains_key(k)),
                };
                if let Some(seen) = relist.and_then(|r| self.relisting.get_mut(&r)) {
                    seen.insert(key.clone());
                }
                let removed = self.remove(kind, &key);
                // Its old status would still say what it was; the next
                // build says why it is not served.
                match object_ref(kind, key) {
                    Some(r) => {
                        let known = self.unparsable.get(&r) == Some(&(generation, error.clone()));
                        self.unparsable.insert(r, (generation, error));
                        removed || !known
                    }
                    None => removed,
                }
            }
            Update::ListStart(kind, scope) => {
                self.relisting.insert((kind, scope), BTreeSet::new());
                false
            }
            Update::ListDone(kind, scope) => {
                let seen = self
                    .relisting
                    .remove(&(kind, scope.clone()))
                    .unwrap_or_default();
                let mut changed = false;
                let in_scope = |k: &Key| scope.as_ref().is_none_or(|ns| *ns == k.namespace);
                for key in self.cache.keys(kind) {
                    if in_scope(&key) && !seen.contains(&key) {
                        changed |= self.remove(kind, &key);
                    }
                }
                let before = self.unparsable.len();
                self.unparsable.retain(|r, _| {
                    object_kind(kind) != Some(r.kind)
                        || scope.as_ref().is_some_and(|ns| *ns != r.namespace)
                        || seen.contains(&Key::new(r.namespace.clone(), r.name.clone()))
                });
                changed |= self.unparsable.len() != before;
                let first = self.synced.insert((kind, scope.clone()));
                if first {
                    tracing::info!(kind = ?kind, namespace = ?scope, "initial list done");
                }
                // The first build happens once every kind has synced.
                changed || first
            }
        }
    }

    fn ready(&self) -> bool {
        self.synced.len() == self.kinds
    }

    fn rebuild(&mut self) {
        let started = Instant::now();
        let mut dag = self.engine.build(&self.cache);
        let built = started.elapsed();
        self.metrics.dag_rebuilds.inc();
        self.metrics
            .dag_rebuild_seconds
            .observe(built.as_secs_f64());
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.metrics.dag_rebuild_timestamp.set(unix);
        self.metrics.ingressroute_dag_rebuild_timestamp.set(unix);
        match self.engine.snapshot(&dag, &self.cache) {
            Ok(snapshot) => {
                self.nacks.built(&snapshot);
                let _ = self.outputs.snapshots.send(Published {
                    snapshot,
                    at: Some(Instant::now()),
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "the new configuration could not be versioned; Envoy keeps the previous one");
            }
        }
        self.metrics
            .xds_cache_seconds
            .observe((started.elapsed() - built).as_secs_f64());
        self.statuses = Arc::new(std::mem::take(&mut dag.statuses));
        self.publish_statuses();
        self.metrics.record_cache(&self.cache);
        match self.outputs.dag.write() {
            Ok(mut slot) => *slot = Some(Arc::new(dag)),
            Err(p) => *p.into_inner() = Some(Arc::new(dag)),
        }
        tracing::info!(
            build_ms = built.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "configuration rebuilt"
        );
    }

    /// Sends the last build's statuses, with Envoy's refusals traced onto
    /// the objects they came from, to the status writer and the gauges.
    fn publish_statuses(&mut self) {
        // Without refusals in force the build's statuses go out as they are.
        let mut statuses = match self.nacks.any() {
            true => Arc::new(self.nacks.annotate(&self.statuses, &self.cache)),
            false => self.statuses.clone(),
        };
        if !self.unparsable.is_empty() {
            let with = Arc::make_mut(&mut statuses);
            for (r, (generation, error)) in &self.unparsable {
                with.insert(r.clone(), unparsable_status(r.kind, *generation, error));
            }
        }
        self.metrics.record_statuses(&statuses, &self.cache);
        let _ = self.outputs.statuses.send(statuses);
    }

    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Update>,
        mut xds_events: mpsc::UnboundedReceiver<crate::xds::Event>,
    ) {
        loop {
            // A change that finds the controller idle (no build for at
            // least the quiet time) is built at once, and so are
            // EndpointSlice changes; others, which follow a build closely
            // (a burst), wait for the quiet time, bounded. Upstream builds
            // at once after its longest hold-off (500 ms) without a build;
            // a single change is not held back here either way.
            let deadline = self.dirty_since.filter(|_| self.ready()).map(|since| {
                let idle = self
                    .last_build
                    .is_none_or(|b| since.duration_since(b) >= self.holdoff);
                match self.routing_dirty && !idle {
                    true => (self.last_event + self.holdoff).min(since + self.max_holdoff),
                    false => since,
                }
            });
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let update = tokio::select! {
                u = rx.recv() => u,
                Some(event) = xds_events.recv() => {
                    if self.nacks.event(&event) {
                        self.publish_statuses();
                    }
                    continue;
                }
                _ = sleep => {
                    // What is queued already goes into this build (a burst
                    // of EndpointSlice changes is one push, not one each).
                    for _ in 0..DRAIN_BEFORE_BUILD {
                        match rx.try_recv() {
                            Ok(update) => self.take(update),
                            Err(_) => break,
                        }
                    }
                    self.dirty_since = None;
                    self.routing_dirty = false;
                    tokio::task::block_in_place(|| self.rebuild());
                    self.last_build = Some(Instant::now());
                    continue;
                }
            };
            let Some(update) = update else {
                return;
            };
            self.take(update);
        }
    }

    /// Applies an update and, if it changed anything, marks a build due.
    /// Only a change restarts the quiet time: echoes of our own status
    /// writes and other no-op updates do not hold a rebuild back.
    fn take(&mut self, update: Update) {
        let endpoints_only = match &update {
            Update::Apply(object) => matches!(**object, Object::EndpointSlice(_)),
            Update::Delete(kind, _) => matches!(kind, Kind::EndpointSlice),
            _ => false,
        };
        if self.apply(update) {
            let now = Instant::now();
            self.last_event = now;
            self.dirty_since.get_or_insert(now);
            self.routing_dirty |= !endpoints_only;
        }
    }
}
