//! xDS clients: mTLS channels to contour's xDS port, raw ADS streams that
//! never ACK, a drain that reads a stream without answering, and the normal
//! client (a Rust ADS client that ACKs like Envoy).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use contour_tests::XdsPki;
use contour_tests::bench::xds::{self as ads, Matcher, Watch};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::Error;
use super::common::Ground;

pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// An endpoint to contour's xDS port (or another port relaying to it) with
/// Envoy's client certificate.
pub fn endpoint(port: u16, tls: &ClientTlsConfig) -> Result<Endpoint, Error> {
    Ok(Endpoint::from_shared(format!("https://127.0.0.1:{port}"))?
        .connect_timeout(Duration::from_secs(10))
        .tls_config(tls.clone())?)
}

pub fn tls_config(pki: &XdsPki) -> Result<ClientTlsConfig, Error> {
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca)?))
        .identity(Identity::from_pem(
            std::fs::read(&pki.envoy_cert)?,
            std::fs::read(&pki.envoy_key)?,
        ))
        .domain_name("contour"))
}

pub fn request(node: &str, type_url: &str, names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(Node {
            id: node.to_string(),
            cluster: "hostile".into(),
            ..Default::default()
        }),
        type_url: type_url.to_string(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

/// An open ADS stream: the request sender (kept so the stream stays open)
/// and the responses.
pub struct Stream {
    _requests: mpsc::UnboundedSender<DiscoveryRequest>,
    pub responses: tonic::Streaming<DiscoveryResponse>,
}

/// Opens an ADS stream on `channel` and sends `requests` (no nonce, so none
/// of them ACKs anything).
pub async fn open_stream(
    channel: Channel,
    requests: Vec<DiscoveryRequest>,
) -> Result<Stream, Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    for r in requests {
        tx.send(r)?;
    }
    let mut client = AggregatedDiscoveryServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let responses = client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await?
        .into_inner();
    Ok(Stream {
        _requests: tx,
        responses,
    })
}

/// The normal client: a Rust ADS client that ACKs like Envoy.
pub fn normal_client(g: &Ground) -> ads::Client {
    ads::Client::start(
        ads::Target {
            port: g.contour.xds_port,
            pki: Some(g.pki.clone()),
            delta: false,
        },
        "normal",
        false,
        Duration::from_secs(10),
    )
}

/// Waits until the normal client received a route configuration containing
/// `needle`; returns how long it took.
pub async fn route_seen(client: &ads::Client, id: u64, needle: &str) -> Result<Duration, Error> {
    let start = Instant::now();
    Ok(route_seen_at(client, id, needle)
        .await?
        .saturating_duration_since(start))
}

/// When the response carrying `needle` (watch `id`) arrived.
pub async fn route_seen_at(client: &ads::Client, id: u64, needle: &str) -> Result<Instant, Error> {
    let seen = ads::wait_watch(std::slice::from_ref(client), id, Duration::from_secs(20)).await;
    match seen.first().copied().flatten() {
        Some(at) => Ok(at),
        None => Err(format!(
            "the normal ADS client did not receive {needle:?} within 20 s: {:?}",
            client.state()
        )
        .into()),
    }
}

pub fn watch_route(client: &ads::Client, id: u64, needle: &str) {
    client.watch(
        id,
        Watch {
            type_index: 3,
            name_prefix: None,
            matcher: Matcher::Bytes(needle.as_bytes().to_vec()),
        },
    );
}

/// Opens `n` connections to `port`, `with_stream` of them with an ADS stream
/// that sent one request and got its answer.
pub async fn open_idle(
    port: u16,
    tls: &ClientTlsConfig,
    n: usize,
    with_stream: usize,
) -> Result<Vec<(Channel, Option<Stream>)>, Error> {
    let results: Vec<Result<(Channel, Option<Stream>), Error>> = futures::stream::iter(0..n)
        .map(|i| {
            let tls = tls.clone();
            async move {
                let channel = endpoint(port, &tls)?.connect().await?;
                if i >= with_stream {
                    return Ok((channel, None));
                }
                let node = format!("idle-{i}");
                let mut s =
                    open_stream(channel.clone(), vec![request(&node, CLUSTER, &[])]).await?;
                tokio::time::timeout(Duration::from_secs(20), s.responses.message())
                    .await
                    .map_err(|_| "no CDS response within 20 s")??
                    .ok_or("stream ended")?;
                Ok((channel, Some(s)))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<_>, Error>>()
}

/// Reads a stream to its end without ever answering; counts the responses.
pub struct Drain {
    pub responses: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn drain(mut s: Stream) -> Drain {
    let responses = Arc::new(AtomicU64::new(0));
    let counter = responses.clone();
    let task = tokio::spawn(async move {
        // The whole stream moves in (not just its responses): dropping the
        // request sender would half-close the stream.
        let s = &mut s;
        while let Ok(Some(_)) = s.responses.message().await {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Drain { responses, task }
}

pub fn subscribe_all(node: &str) -> Vec<DiscoveryRequest> {
    vec![
        request(node, CLUSTER, &[]),
        request(node, LISTENER, &[]),
        request(node, ROUTE, &["ingress_http"]),
    ]
}
