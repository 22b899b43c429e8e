//! Raw gRPC calls over an HTTP/2 channel: any framing, any method, read to
//! the end of the stream.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::Error;

/// What a raw gRPC call ended with.
#[derive(Debug)]
pub struct RawOutcome {
    pub http: u16,
    /// `grpc-status` (from the headers of a trailers-only response, or the trailers).
    pub status: Option<tonic::Status>,
    /// gRPC messages received (bytes of data).
    pub data: usize,
}

/// POSTs `body` (raw gRPC framing, as given) to `path` over `channel` and
/// reads the answer to its end.
pub async fn raw_call(channel: &Channel, path: &str, body: Vec<u8>) -> Result<RawOutcome, Error> {
    use tonic::codegen::Service;
    // The request body is a `String` (an `http_body::Body` this crate can
    // build without more dependencies), so the framing must be ASCII.
    let text = String::from_utf8(body).map_err(|_| "raw bodies must be ASCII")?;
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("https://contour{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(text))?;
    let mut svc = channel.clone();
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
    let resp = tokio::time::timeout(Duration::from_secs(10), svc.call(req))
        .await
        .map_err(|_| format!("{path}: no response headers within 10 s"))??;
    let http = resp.status().as_u16();
    let mut status = tonic::Status::from_header_map(resp.headers());
    let mut body = resp.into_body();
    let mut data = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    while status.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(
            left,
            std::future::poll_fn(|cx| tonic::codegen::Body::poll_frame(Pin::new(&mut body), cx)),
        )
        .await
        .map_err(|_| format!("{path}: the stream neither ended nor failed within 10 s"))?;
        match frame {
            None => break,
            Some(Err(e)) => return Err(format!("{path}: the stream failed: {e}").into()),
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(trailers) => status = tonic::Status::from_header_map(&trailers),
                Err(frame) => data += frame.data_ref().map_or(0, |d| d.len()),
            },
        }
    }
    Ok(RawOutcome { http, status, data })
}

/// A gRPC frame: compressed flag, length prefix, payload.
pub fn frame(compressed: u8, len: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![compressed];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(payload);
    v
}
