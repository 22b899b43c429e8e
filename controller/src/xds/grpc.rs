//! The state-of-the-world streaming methods (ADS and the per-type
//! `Stream*`), answered at the HTTP/2 level so that responses go out as
//! [`SotwResponse::frame`] chunks shared with the snapshot.
//!
//! Requests are decoded by tonic's own [`Streaming`] (same limits and errors
//! as tonic's generated services); the response body is the gRPC messages
//! followed by the `grpc-status` trailers. Everything else (delta streams,
//! unary fetches, unknown methods) is left to tonic's generated services.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Body;
use bytes::{Buf, Bytes};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::mpsc;
use tonic::codec::{DecodeBuf, Decoder, Streaming};
use tonic::{Code, Status};

use super::server::XdsServer;
use super::type_url;
use super::wire::SotwResponse;

/// The largest request accepted (tonic's default for its services).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The state-of-the-world streaming methods and the type each serves
/// (`None`: any, ADS).
const METHODS: &[(&str, Option<&str>)] = &[
    (
        "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        None,
    ),
    (
        "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
        Some(type_url::LISTENER),
    ),
    (
        "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes",
        Some(type_url::ROUTE),
    ),
    (
        "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
        Some(type_url::CLUSTER),
    ),
    (
        "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints",
        Some(type_url::ENDPOINT),
    ),
    (
        "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets",
        Some(type_url::SECRET),
    ),
    (
        "/envoy.service.runtime.v3.RuntimeDiscoveryService/StreamRuntime",
        Some(type_url::RUNTIME),
    ),
];

/// Routes for the state-of-the-world streaming methods of `server`.
pub fn sotw_router(server: &XdsServer) -> axum::Router {
    let mut router = axum::Router::new();
    for (path, fixed) in METHODS {
        let server = server.clone();
        let fixed = *fixed;
        router = router.route(
            path,
            axum::routing::post(move |req: axum::extract::Request| {
                let server = server.clone();
                async move { stream(&server, fixed, req) }
            }),
        );
    }
    router
}

/// Decodes `DiscoveryRequest`s with prost.
#[derive(Debug, Default)]
struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = DiscoveryRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let len = src.remaining();
        prost::Message::decode(src.copy_to_bytes(len))
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

fn grpc_response(body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The trailers that end a response with `status`.
fn trailers(status: &Status) -> HeaderMap {
    let mut map = HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert(
            Status::GRPC_STATUS,
            HeaderValue::from(Code::Internal as i32),
        );
    }
    map
}

fn stream(
    server: &XdsServer,
    fixed: Option<&'static str>,
    req: axum::extract::Request,
) -> http::Response<Body> {
    let identity = |v: &HeaderValue| v.as_bytes() == b"identity";
    if let Some(encoding) = req.headers().get("grpc-encoding").filter(|v| !identity(v)) {
        let status = Status::unimplemented(format!(
            "request compression {} is not supported",
            String::from_utf8_lossy(encoding.as_bytes())
        ));
        return status.into_http();
    }
    let requests = Streaming::new_request(
        RequestDecoder,
        req.into_body(),
        None,
        Some(MAX_REQUEST_BYTES),
    );
    let responses = server.sotw_responses(requests, fixed);
    grpc_response(Body::new(StreamBody::new(frames(responses))))
}

/// What is left to write of one response stream.
struct Writer {
    responses: mpsc::Receiver<Result<SotwResponse, Status>>,
    pending: VecDeque<Bytes>,
    done: bool,
}

/// The response body: each response's chunks, then the trailers.
fn frames(
    responses: mpsc::Receiver<Result<SotwResponse, Status>>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    let writer = Writer {
        responses,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(writer, |mut w| async move {
        if let Some(chunk) = w.pending.pop_front() {
            return Some((Ok(Frame::data(chunk)), w));
        }
        if w.done {
            return None;
        }
        let end = match w.responses.recv().await {
            Some(Ok(response)) => match response.frame() {
                Ok(chunks) => {
                    w.pending.extend(chunks);
                    let first = w.pending.pop_front().unwrap_or_default();
                    return Some((Ok(Frame::data(first)), w));
                }
                Err(e) => Status::resource_exhausted(e.to_string()),
            },
            Some(Err(status)) => status,
            None => Status::ok(""),
        };
        w.done = true;
        Some((Ok(Frame::trailers(trailers(&end))), w))
    })
}
