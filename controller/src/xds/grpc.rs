//! The state-of-the-world streaming methods (ADS and the per-type
//! `Stream*`) and delta ADS, answered at the HTTP/2 level so that responses
//! go out as chunks shared with the snapshot ([`super::wire`]). (tonic's
//! encoder copies every resource into its message and keeps one buffer per
//! stream as large as the largest response it sent: the initial delta
//! response of a client with 5k scopes is megabytes, kept for the life of
//! the stream.)
//!
//! Requests are decoded here (tonic's limits and error codes, without its
//! per-stream buffer); the response body is the gRPC messages
//! followed by the `grpc-status` trailers. Everything else (per-type delta
//! streams, unary fetches, unknown methods) is left to tonic's generated
//! services.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::body::Body;
use bytes::{Buf, Bytes, BytesMut};
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue};
use http_body::Frame;
use http_body_util::StreamBody;
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use super::request::SotwRequest;
use super::server::{Queued, Requests, XdsServer};
use super::type_url;

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
        "/envoy.service.route.v3.ScopedRoutesDiscoveryService/StreamScopedRoutes",
        Some(type_url::SCOPED_ROUTE),
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

/// The decoded requests of a body: gRPC messages (a 5-byte prefix, then a
/// `DiscoveryRequest`), with tonic's limits and error codes. The buffer is
/// released whenever it has been used up: Envoy's first request on a stream
/// carries its node, with every extension it was built with (well over
/// 100 KB), and tonic's own decoder keeps a buffer of that size for the
/// life of the stream — with a stream per EDS cluster and SDS secret, that
/// was most of the controller's memory.
fn requests(body: Body) -> Requests<SotwRequest> {
    decoded(body, SotwRequest::decode)
}

/// The requests of a body, each message decoded by `decode`.
fn decoded<R, E>(body: Body, decode: fn(Bytes) -> Result<R, E>) -> Requests<R>
where
    R: Send + 'static,
    E: std::fmt::Display + 'static,
{
    struct State {
        body: axum::body::BodyDataStream,
        buf: BytesMut,
        done: bool,
    }
    let state = State {
        body: body.into_data_stream(),
        buf: BytesMut::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            match next_message(&mut st.buf) {
                Ok(Some(msg)) => {
                    if st.buf.is_empty() {
                        st.buf = BytesMut::new();
                    }
                    let decoded = decode(msg)
                        .map_err(|e| Status::internal(format!("failed to decode request: {e}")));
                    st.done = decoded.is_err();
                    return Some((decoded, st));
                }
                Ok(None) => {}
                Err(status) => {
                    st.done = true;
                    return Some((Err(status), st));
                }
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(Status::internal(e.to_string())), st));
                }
                None if st.buf.is_empty() => return None,
                None => {
                    st.done = true;
                    return Some((Err(Status::internal("Unexpected EOF decoding stream.")), st));
                }
            }
        }
    }))
}

/// The next whole message in `buf`, if there is one.
fn next_message(buf: &mut BytesMut) -> Result<Option<Bytes>, Status> {
    if buf.len() < 5 {
        return Ok(None);
    }
    match buf[0] {
        0 => {}
        1 => {
            return Err(Status::internal(
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ));
        }
        f => {
            return Err(Status::internal(format!(
                "protocol error: received message with invalid compression flag: {f}"
            )));
        }
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_REQUEST_BYTES {
        return Err(Status::out_of_range(format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: {MAX_REQUEST_BYTES} bytes"
        )));
    }
    if buf.len() < 5 + len {
        buf.reserve(5 + len - buf.len());
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
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

/// A request compression other than identity is refused (as tonic does
/// without compression configured).
fn refuse_compression(req: &axum::extract::Request) -> Option<http::Response<Body>> {
    let identity = |v: &HeaderValue| v.as_bytes() == b"identity";
    let encoding = req
        .headers()
        .get("grpc-encoding")
        .filter(|v| !identity(v))?;
    let status = Status::unimplemented(format!(
        "request compression {} is not supported",
        String::from_utf8_lossy(encoding.as_bytes())
    ));
    Some(status.into_http())
}

fn stream(
    server: &XdsServer,
    fixed: Option<&'static str>,
    req: axum::extract::Request,
) -> http::Response<Body> {
    if let Some(refused) = refuse_compression(&req) {
        return refused;
    }
    let responses = server.sotw_responses(requests(req.into_body()), fixed);
    grpc_response(Body::new(StreamBody::new(frames(responses, |r| r.frame()))))
}

/// The delta ADS method.
pub const DELTA_ADS: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// A route for delta ADS on `server`.
pub fn delta_router(server: &XdsServer) -> axum::Router {
    let server = server.clone();
    axum::Router::new().route(
        DELTA_ADS,
        axum::routing::post(move |req: axum::extract::Request| {
            let server = server.clone();
            async move {
                if let Some(refused) = refuse_compression(&req) {
                    return refused;
                }
                let requests = decoded(req.into_body(), |msg: Bytes| {
                    DeltaDiscoveryRequest::decode(msg)
                });
                let responses = server.delta_responses(requests, None);
                grpc_response(Body::new(StreamBody::new(frames(responses, |r| r.frame()))))
            }
        }),
    )
}

/// What is left to write of one response stream.
struct Writer<R> {
    responses: mpsc::Receiver<Queued<R>>,
    pending: VecDeque<Bytes>,
    done: bool,
}

/// The response body: each response's chunks (as `frame` cuts them), then
/// the trailers.
fn frames<R, E>(
    responses: mpsc::Receiver<Queued<R>>,
    frame: fn(&R) -> Result<Vec<Bytes>, E>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send
where
    R: Send + 'static,
    E: std::fmt::Display + 'static,
{
    let writer = Writer {
        responses,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(writer, move |mut w| async move {
        if let Some(chunk) = w.pending.pop_front() {
            return Some((Ok(Frame::data(chunk)), w));
        }
        if w.done {
            return None;
        }
        let end = match w.responses.recv().await {
            Some(Ok(response)) => match frame(&response) {
                Ok(chunks) => {
                    w.pending.extend(chunks);
                    let first = w.pending.pop_front().unwrap_or_default();
                    return Some((Ok(Frame::data(first)), w));
                }
                Err(e) => Status::resource_exhausted(e.to_string()),
            },
            Some(Err(status)) => *status,
            None => Status::ok(""),
        };
        w.done = true;
        Some((Ok(Frame::trailers(trailers(&end))), w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use prost::Message;

    fn framed(msg: &DiscoveryRequest) -> Vec<u8> {
        let body = msg.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[tokio::test]
    async fn requests_are_decoded_across_chunks_and_errors_keep_tonics_codes() {
        let a = DiscoveryRequest {
            type_url: "a".into(),
            ..Default::default()
        };
        let b = DiscoveryRequest {
            version_info: "b".repeat(300),
            ..Default::default()
        };
        let mut wire = framed(&a);
        wire.extend(framed(&b));
        // Split at every byte boundary as separate chunks.
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            wire.iter().map(|b| Ok(Bytes::from(vec![*b]))).collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let got: Vec<_> = requests(body).collect().await;
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Ok(r) if r.message == a));
        assert!(matches!(&got[1], Ok(r) if r.message == b));

        let cut = framed(&b)[..20].to_vec();
        let got: Vec<_> = requests(Body::from(cut)).collect().await;
        assert!(matches!(&got[..], [Err(s)] if s.code() == Code::Internal));

        let mut huge = vec![0];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let got: Vec<_> = requests(Body::from(huge)).collect().await;
        assert!(matches!(&got[..], [Err(s)] if s.code() == Code::OutOfRange));

        let mut compressed = framed(&a);
        compressed[0] = 1;
        let got: Vec<_> = requests(Body::from(compressed)).collect().await;
        assert!(matches!(&got[..], [Err(s)] if s.code() == Code::Internal));

        let garbage = vec![0, 0, 0, 0, 2, 0xff, 0xff];
        let got: Vec<_> = requests(Body::from(garbage)).collect().await;
        assert!(matches!(&got[..], [Err(s)] if s.code() == Code::Internal));
    }

    #[test]
    fn the_buffer_is_released_once_used_up() {
        let msg = DiscoveryRequest {
            version_info: "x".repeat(100_000),
            ..Default::default()
        };
        let mut buf = BytesMut::from(&framed(&msg)[..]);
        assert!(matches!(next_message(&mut buf), Ok(Some(_))));
        assert!(buf.is_empty());
    }
}
