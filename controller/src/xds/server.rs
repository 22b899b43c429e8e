//! The gRPC adapter: drives the state-of-the-world and delta state machines
//! over tonic streams, for ADS and for the per-type services (LDS, RDS, CDS,
//! EDS, SDS). Each stream owns one state machine and follows the published
//! snapshot; everything it learns (ACKs, NACKs, pushes) goes to an
//! [`Observer`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_server::{
    ClusterDiscoveryService, ClusterDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::endpoint::v3::endpoint_discovery_service_server::{
    EndpointDiscoveryService, EndpointDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_server::{
    ListenerDiscoveryService, ListenerDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::route::v3::route_discovery_service_server::{
    RouteDiscoveryService, RouteDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::runtime::v3::runtime_discovery_service_server::{
    RuntimeDiscoveryService, RuntimeDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::delta::DeltaStream;
use super::request::SotwRequest;
use super::sotw::SotwStream;
use super::wire::{DeltaResponse, SotwResponse};
use super::{Event, Outcome, Snapshot, type_url};

/// The stream type the delta streaming methods return.
pub type ResponseStream<R> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<R, Status>> + Send>>;

/// What a stream's driver queues for the client. Boxed: a channel allocates
/// room for 32 items when it is made, whatever its capacity, and Envoy opens
/// a stream per EDS cluster and SDS secret (over 10,000 at scale), each with
/// its channel (3 KiB each unboxed, 0.5 KiB boxed).
pub type Queued<R> = Result<Box<R>, Box<Status>>;

/// State-of-the-world responses as tonic's own services send them (copied
/// into messages). The streaming methods are answered by
/// [`super::grpc`] instead, which shares the bodies; these remain for
/// completeness.
pub type SotwMessageStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;

/// Responses a stream may have queued before its driver waits for the
/// client to take them (HTTP/2 flow control): a slow or stuck client holds
/// at most this many, and they share their bodies with the snapshot.
const QUEUED_RESPONSES: usize = 4;

/// A snapshot as published, with the moment it was published (for push
/// latency).
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The resources.
    pub snapshot: Arc<Snapshot>,
    /// When it was published; `None` for the empty initial value.
    pub at: Option<Instant>,
}

/// Receives what the streams learn.
pub trait Observer: Send + Sync + 'static {
    /// A client ACKed or NACKed a version. `node` is the client's node id.
    fn event(&self, node: &str, event: &Event);
    /// A response was sent for a new snapshot; `latency` is publish → send.
    fn pushed(&self, type_url: &str, resources: usize, latency: Option<Duration>);
    /// A stream opened (`+1`) or closed (`-1`).
    fn stream(&self, delta: i64);
}

/// An observer that only logs.
#[derive(Debug, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn event(&self, node: &str, event: &Event) {
        log_event(node, event);
    }
    fn pushed(&self, _: &str, _: usize, _: Option<Duration>) {}
    fn stream(&self, _: i64) {}
}

/// Logs an ACK (debug) or a NACK (warning, with the client's reason).
pub fn log_event(node: &str, event: &Event) {
    match event {
        Event::Ack { type_url, version } => {
            tracing::debug!(node, type_url, version, "xDS ACK");
        }
        Event::Nack {
            type_url,
            version,
            message,
        } => {
            tracing::warn!(node, type_url, version, error = %message, "Envoy rejected configuration (NACK); it keeps its last accepted version");
        }
    }
}

/// Serves the published snapshots. Cheap to clone.
#[derive(Clone)]
pub struct XdsServer {
    snapshots: watch::Receiver<Published>,
    observer: Arc<dyn Observer>,
}

impl XdsServer {
    /// A server following `snapshots`.
    pub fn new(snapshots: watch::Receiver<Published>, observer: Arc<dyn Observer>) -> Self {
        Self {
            snapshots,
            observer,
        }
    }

    /// Every service (ADS + per type) as tonic routes; the
    /// state-of-the-world streaming methods are answered by
    /// [`super::grpc`], which sends the snapshot's bodies without copying them.
    pub fn routes(&self) -> tonic::service::Routes {
        let mut routes = tonic::service::RoutesBuilder::default();
        routes
            .add_service(AggregatedDiscoveryServiceServer::new(self.clone()))
            .add_service(ListenerDiscoveryServiceServer::new(self.clone()))
            .add_service(RouteDiscoveryServiceServer::new(self.clone()))
            .add_service(ClusterDiscoveryServiceServer::new(self.clone()))
            .add_service(EndpointDiscoveryServiceServer::new(self.clone()))
            .add_service(SecretDiscoveryServiceServer::new(self.clone()))
            .add_service(RuntimeDiscoveryServiceServer::new(self.clone()));
        let router = super::grpc::sotw_router(self)
            .merge(super::grpc::delta_router(self))
            .merge(routes.routes().into_axum_router());
        tonic::service::Routes::from(router)
    }

    /// Starts the driver of one state-of-the-world stream; its responses
    /// come out of the returned channel.
    pub(super) fn sotw_responses(
        &self,
        requests: Requests<SotwRequest>,
        fixed: Option<&'static str>,
    ) -> mpsc::Receiver<Queued<SotwResponse>> {
        self.responses::<SotwStream>(requests, fixed)
    }

    /// Starts the driver of one delta stream; its responses come out of
    /// the returned channel.
    pub(super) fn delta_responses(
        &self,
        requests: Requests<DeltaDiscoveryRequest>,
        fixed: Option<&'static str>,
    ) -> mpsc::Receiver<Queued<DeltaResponse>> {
        self.responses::<DeltaStream>(requests, fixed)
    }

    fn responses<M: Machine>(
        &self,
        requests: Requests<M::Req>,
        fixed: Option<&'static str>,
    ) -> mpsc::Receiver<Queued<M::Resp>> {
        let (tx, rx) = mpsc::channel(QUEUED_RESPONSES);
        let driver = Driver::<M> {
            snapshots: self.snapshots.clone(),
            observer: self.observer.clone(),
            fixed,
            tx,
        };
        tokio::spawn(driver.run(requests));
        rx
    }

    /// The tonic-generated state-of-the-world methods land here. In `serve`
    /// they are never reached: `xds/grpc.rs` answers those paths first with
    /// its own request decoder (tonic's keeps a per-stream buffer as large as
    /// Envoy's node). They stay working because the generated service traits
    /// require them and a plain tonic router (no `grpc.rs`) still uses them.
    fn sotw(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
        fixed: Option<&'static str>,
    ) -> Response<SotwMessageStream> {
        let requests = req.into_inner().map(|r| r.map(SotwRequest::from));
        let rx = self.sotw_responses(Box::pin(requests), fixed);
        let messages =
            ReceiverStream::new(rx).map(|r| r.map(|resp| resp.to_message()).map_err(|s| *s));
        Response::new(Box::pin(messages))
    }

    fn delta(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
        fixed: Option<&'static str>,
    ) -> Response<ResponseStream<DeltaDiscoveryResponse>> {
        let rx = self.delta_responses(Box::pin(req.into_inner()), fixed);
        let messages =
            ReceiverStream::new(rx).map(|r| r.map(|resp| resp.to_message()).map_err(|s| *s));
        Response::new(Box::pin(messages))
    }

    /// A unary fetch: what a new subscription would get.
    fn fetch(
        &self,
        mut req: DiscoveryRequest,
        fixed: &'static str,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        check_type(&mut req.type_url, Some(fixed))?;
        req.response_nonce.clear();
        let published = self.snapshots.borrow().clone();
        if published.at.is_none() {
            return Err(Status::unavailable("no configuration built yet"));
        }
        let snapshot = published.snapshot;
        let mut stream = SotwStream::new(false);
        let out = stream.on_request(&SotwRequest::from(req), &snapshot);
        out.responses
            .into_iter()
            .next()
            .map(|r| Response::new(r.to_message()))
            .ok_or_else(|| Status::unavailable("no resources yet"))
    }
}

/// Fills in the type of a per-type stream's request and refuses another type.
fn check_type(type_url: &mut String, fixed: Option<&'static str>) -> Result<(), Status> {
    match fixed {
        Some(t) if type_url.is_empty() => {
            *type_url = t.to_string();
            Ok(())
        }
        Some(t) if type_url != t => Err(Status::invalid_argument(format!(
            "this service serves {t}, not {type_url}"
        ))),
        _ if type_url.is_empty() => Err(Status::invalid_argument("request without type_url")),
        _ => Ok(()),
    }
}

fn node_id(node: Option<&Node>) -> String {
    node.map(|n| n.id.clone()).unwrap_or_default()
}

/// One stream kind's state machine, as the driver sees it.
trait Machine: Send + 'static {
    type Req: Send + 'static;
    type Resp: Send + 'static;
    /// A new stream's state; `aggregated` on an ADS stream.
    fn for_stream(aggregated: bool) -> Self;
    fn type_url(req: &mut Self::Req) -> &mut String;
    fn node(req: &Self::Req) -> Option<&Node>;
    fn on_request(&mut self, req: &Self::Req, snapshot: &Snapshot) -> Outcome<Self::Resp>;
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<Self::Resp>;
    /// Type URL and resource count of a response (for metrics).
    fn describe(resp: &Self::Resp) -> (String, usize);
}

impl Machine for SotwStream {
    type Req = SotwRequest;
    type Resp = SotwResponse;
    fn for_stream(aggregated: bool) -> Self {
        SotwStream::new(aggregated)
    }
    fn type_url(req: &mut SotwRequest) -> &mut String {
        &mut req.message.type_url
    }
    fn node(req: &SotwRequest) -> Option<&Node> {
        req.message.node.as_ref()
    }
    fn on_request(&mut self, req: &SotwRequest, snapshot: &Snapshot) -> Outcome<SotwResponse> {
        SotwStream::on_request(self, req, snapshot)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<SotwResponse> {
        SotwStream::on_snapshot(self, snapshot)
    }
    fn describe(resp: &SotwResponse) -> (String, usize) {
        (resp.type_url.clone(), resp.resources.len())
    }
}

impl Machine for DeltaStream {
    type Req = DeltaDiscoveryRequest;
    type Resp = DeltaResponse;
    fn for_stream(aggregated: bool) -> Self {
        DeltaStream::new(aggregated)
    }
    fn type_url(req: &mut DeltaDiscoveryRequest) -> &mut String {
        &mut req.type_url
    }
    fn node(req: &DeltaDiscoveryRequest) -> Option<&Node> {
        req.node.as_ref()
    }
    fn on_request(
        &mut self,
        req: &DeltaDiscoveryRequest,
        snapshot: &Snapshot,
    ) -> Outcome<DeltaResponse> {
        DeltaStream::on_request(self, req, snapshot)
    }
    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Vec<DeltaResponse> {
        DeltaStream::on_snapshot(self, snapshot)
    }
    fn describe(resp: &DeltaResponse) -> (String, usize) {
        (resp.type_url.clone(), resp.resources.len())
    }
}

/// The requests of one stream, decoded.
pub type Requests<R> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<R, Status>> + Send>>;

/// Runs one stream: requests and new snapshots in, responses out.
struct Driver<M: Machine> {
    snapshots: watch::Receiver<Published>,
    observer: Arc<dyn Observer>,
    fixed: Option<&'static str>,
    tx: mpsc::Sender<Queued<M::Resp>>,
}

/// What the driver does after a request or a new snapshot.
enum Step<R> {
    /// Send these (in response to the snapshot published at this moment).
    Send(Vec<R>, Option<Instant>),
    /// End the stream with this status; `patient`: wait for the client to
    /// take it no longer than a second.
    Fail(Box<Status>, bool),
    /// End the stream.
    End,
}

impl<M: Machine> Driver<M> {
    /// The stream's task. A request or a snapshot is turned into a [`Step`]
    /// by plain functions, so that neither a request (with Envoy's node, a
    /// few hundred bytes inline) nor its copies live across an `.await`:
    /// this future is held for every open stream.
    async fn run(mut self, mut requests: Requests<M::Req>) {
        self.observer.stream(1);
        // Nothing is answered before the first build: an empty snapshot
        // would make a (re)connecting Envoy drop every listener.
        if self.snapshots.wait_for(|p| p.at.is_some()).await.is_err() {
            self.observer.stream(-1);
            return;
        }
        let mut state = M::for_stream(self.fixed.is_none());
        let mut node = String::new();
        loop {
            let step = tokio::select! {
                msg = requests.next() => self.on_message(msg, &mut state, &mut node),
                changed = self.snapshots.changed() => self.on_changed(changed.is_ok(), &mut state),
            };
            match step {
                Step::Send(responses, at) => {
                    if !self.send(responses, at).await {
                        break;
                    }
                }
                Step::Fail(status, patient) => {
                    tracing::debug!(node, error = %status, "xDS stream ended");
                    // Tell the client why (a message over the size limit, one
                    // that does not decode, a compressed one without an
                    // encoding, a type this service does not serve):
                    // otherwise the stream would end with grpc-status 0.
                    if patient {
                        let wait = Duration::from_secs(1);
                        let _ = self.tx.send_timeout(Err(status), wait).await;
                    } else {
                        let _ = self.tx.send(Err(status)).await;
                    }
                    break;
                }
                Step::End => break,
            }
        }
        self.observer.stream(-1);
    }

    /// A request (or the end of the requests, or a broken one).
    fn on_message(
        &self,
        msg: Option<Result<M::Req, Status>>,
        state: &mut M,
        node: &mut String,
    ) -> Step<M::Resp> {
        let mut req = match msg {
            Some(Ok(req)) => req,
            None => return Step::End,
            // A client that does not read is not waited for long.
            Some(Err(status)) => return Step::Fail(Box::new(status), true),
        };
        if node.is_empty() {
            *node = node_id(M::node(&req));
        }
        if let Err(status) = check_type(M::type_url(&mut req), self.fixed) {
            return Step::Fail(Box::new(status), false);
        }
        let snapshot = self.snapshots.borrow().snapshot.clone();
        let out = state.on_request(&req, &snapshot);
        for event in &out.events {
            self.observer.event(node, event);
        }
        Step::Send(out.responses, None)
    }

    /// A new snapshot (`open`: false when the publisher is gone).
    fn on_changed(&mut self, open: bool, state: &mut M) -> Step<M::Resp> {
        if !open {
            return Step::End;
        }
        let published = self.snapshots.borrow_and_update().clone();
        Step::Send(state.on_snapshot(&published.snapshot), published.at)
    }

    async fn send(&self, responses: Vec<M::Resp>, at: Option<Instant>) -> bool {
        for r in responses {
            let (t, n) = M::describe(&r);
            if self.tx.send(Ok(Box::new(r))).await.is_err() {
                return false;
            }
            self.observer.pushed(&t, n, at.map(|a| a.elapsed()));
        }
        true
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for XdsServer {
    type StreamAggregatedResourcesStream = SotwMessageStream;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        req: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Ok(self.sotw(req, None))
    }

    async fn delta_aggregated_resources(
        &self,
        req: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        Ok(self.delta(req, None))
    }
}

/// Implements one per-type service (stream, delta and fetch) for `XdsServer`.
macro_rules! per_type_service {
    ($trait:ident, $type_url:expr, $stream:ident, $stream_ty:ident, $delta:ident, $delta_ty:ident, $fetch:ident) => {
        #[tonic::async_trait]
        impl $trait for XdsServer {
            type $stream_ty = SotwMessageStream;
            type $delta_ty = ResponseStream<DeltaDiscoveryResponse>;

            async fn $stream(
                &self,
                req: Request<Streaming<DiscoveryRequest>>,
            ) -> Result<Response<Self::$stream_ty>, Status> {
                Ok(self.sotw(req, Some($type_url)))
            }

            async fn $delta(
                &self,
                req: Request<Streaming<DeltaDiscoveryRequest>>,
            ) -> Result<Response<Self::$delta_ty>, Status> {
                Ok(self.delta(req, Some($type_url)))
            }

            async fn $fetch(
                &self,
                req: Request<DiscoveryRequest>,
            ) -> Result<Response<DiscoveryResponse>, Status> {
                self.fetch(req.into_inner(), $type_url)
            }
        }
    };
}

per_type_service!(
    ListenerDiscoveryService,
    type_url::LISTENER,
    stream_listeners,
    StreamListenersStream,
    delta_listeners,
    DeltaListenersStream,
    fetch_listeners
);
per_type_service!(
    RouteDiscoveryService,
    type_url::ROUTE,
    stream_routes,
    StreamRoutesStream,
    delta_routes,
    DeltaRoutesStream,
    fetch_routes
);
per_type_service!(
    ClusterDiscoveryService,
    type_url::CLUSTER,
    stream_clusters,
    StreamClustersStream,
    delta_clusters,
    DeltaClustersStream,
    fetch_clusters
);
per_type_service!(
    EndpointDiscoveryService,
    type_url::ENDPOINT,
    stream_endpoints,
    StreamEndpointsStream,
    delta_endpoints,
    DeltaEndpointsStream,
    fetch_endpoints
);
per_type_service!(
    SecretDiscoveryService,
    type_url::SECRET,
    stream_secrets,
    StreamSecretsStream,
    delta_secrets,
    DeltaSecretsStream,
    fetch_secrets
);

per_type_service!(
    RuntimeDiscoveryService,
    type_url::RUNTIME,
    stream_runtime,
    StreamRuntimeStream,
    delta_runtime,
    DeltaRuntimeStream,
    fetch_runtime
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The task of every open stream holds this future: Envoy opens one
    /// stream per EDS cluster and SDS secret, over 10,000 at scale.
    #[test]
    fn a_stream_task_stays_small() {
        let (tx, _rx) = mpsc::channel(1);
        let (_publish, snapshots) = watch::channel(Published::default());
        let driver = Driver::<SotwStream> {
            snapshots,
            observer: Arc::new(LogObserver),
            fixed: None,
            tx,
        };
        let requests: Requests<SotwRequest> = Box::pin(tokio_stream::empty());
        let size = std::mem::size_of_val(&driver.run(requests));
        eprintln!("driver future: {size} bytes");
        assert!(size <= 1024, "a stream's future is {size} bytes");
    }

    #[test]
    fn per_type_streams_take_their_own_type_only() {
        let mut empty = String::new();
        assert!(check_type(&mut empty, Some(type_url::CLUSTER)).is_ok());
        assert_eq!(empty, type_url::CLUSTER);
        let mut other = type_url::LISTENER.to_string();
        assert!(check_type(&mut other, Some(type_url::CLUSTER)).is_err());
        let mut none = String::new();
        assert!(check_type(&mut none, None).is_err());
        let mut ads = type_url::ROUTE.to_string();
        assert!(check_type(&mut ads, None).is_ok());
    }
}
