//! The xDS listener: mutual TLS by default (a client certificate signed by the
//! configured CA is required), with the certificate files re-read when they
//! change, so rotation needs no restart. Plain TCP only when asked for.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// Errors of the xDS transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A certificate file could not be read or parsed.
    #[error("reading {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The files do not make a usable TLS configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// The files of the server's identity and of the CA its clients must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) (PEM) that client certificates must chain to.
    pub ca: PathBuf,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
}

type Stamp = Vec<(Option<SystemTime>, u64)>;

/// A TLS acceptor rebuilt whenever one of its files changes. A change that
/// does not load (a half-written file, a key that does not match) keeps the
/// previous configuration and is logged.
pub struct ReloadingTls {
    files: TlsFiles,
    current: Mutex<(Stamp, TlsAcceptor)>,
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(_) => (None, 0),
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|e| TransportError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Builds a server configuration that requires client certificates.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TransportError> {
    let bad = |path: &Path, e: &dyn std::fmt::Display| TransportError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let ca_pem = read(&files.ca)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| bad(&files.ca, &e))?;
        roots.add(cert).map_err(|e| bad(&files.ca, &e))?;
    }
    if roots.is_empty() {
        return Err(bad(&files.ca, &"no certificate in file"));
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&files.cert, &e))?;
    if chain.is_empty() {
        return Err(bad(&files.cert, &"no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?).map_err(|e| bad(&files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TransportError::Config(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TransportError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

impl ReloadingTls {
    /// Loads the files; fails if they do not make a configuration.
    pub fn new(files: TlsFiles) -> Result<Self, TransportError> {
        let s = stamp(&files);
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&files)?));
        Ok(Self {
            files,
            current: Mutex::new((s, acceptor)),
        })
    }

    /// The acceptor for a new connection, reloaded first if a file changed.
    pub fn acceptor(&self) -> TlsAcceptor {
        let now = stamp(&self.files);
        let mut guard = match self.current.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.0 != now {
            match server_config(&self.files) {
                Ok(config) => {
                    tracing::info!(cert = %self.files.cert.display(), "xDS TLS certificates reloaded");
                    *guard = (now, TlsAcceptor::from(Arc::new(config)));
                }
                Err(e) => {
                    tracing::error!(error = %e, "xDS TLS certificates changed but do not load; keeping the previous ones");
                    guard.0 = now;
                }
            }
        }
        guard.1.clone()
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves: over mutual TLS
/// when `tls` is given, plain gRPC otherwise.
pub async fn serve(
    routes: tonic::service::Routes,
    listener: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), TransportError> {
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // As upstream Contour: Envoy may open a stream per type (and, in
        // older versions, per EDS cluster) on one connection.
        .max_concurrent_streams(Some(1 << 20))
        // tonic turns hyper's limit of streams reset for protocol errors
        // off; hyper's default (GOAWAY after 1024) guards against clients
        // that make the server reset streams in a loop (RUSTSEC-2024-0003).
        .http2_max_local_error_reset_streams(Some(1024))
        .add_routes(routes);
    match tls {
        None => {
            let plain = |tcp: TcpStream| std::future::ready(Ok(tcp));
            serve_opened(server, listener, plain, shutdown).await
        }
        Some(tls) => {
            let handshake = move |tcp: TcpStream| tls.acceptor().accept(tcp);
            serve_opened(server, listener, handshake, shutdown).await
        }
    }
}

/// Serves the connections [`accept`] opens with `handshake`.
async fn serve_opened<S, H, F>(
    server: tonic::transport::server::Router,
    listener: TcpListener,
    handshake: H,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TransportError>
where
    H: Fn(TcpStream) -> F + Send + 'static,
    F: Future<Output = std::io::Result<S>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    S::ConnectInfo: Clone + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Prefaced<S>, std::io::Error>>(64);
    let accepting = tokio::spawn(accept(listener, handshake, tx));
    let result = server
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
        .await;
    accepting.abort();
    Ok(result?)
}

/// Sends small writes at once. Without it a push (or the last segment of
/// one) waits for the client's delayed ACK, 40 ms on Linux, behind Nagle's
/// algorithm; Go's servers, upstream Contour's among them, set it by default.
fn no_delay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on an xDS connection");
    }
}

/// Accepts TCP connections and opens them concurrently: the TLS handshake
/// (none for plain TCP), then the client's HTTP/2 preface, both within
/// [`OPENING`]. A connection that fails either (no or a wrong client
/// certificate, no HTTP/2) is logged and closed; only opened ones reach the
/// gRPC server, which would otherwise wait for a preface for ever and keep
/// the descriptor.
async fn accept<S, H, F>(
    listener: TcpListener,
    handshake: H,
    tx: mpsc::Sender<Result<Prefaced<S>, std::io::Error>>,
) where
    H: Fn(TcpStream) -> F,
    F: Future<Output = std::io::Result<S>> + Send + 'static,
    S: AsyncRead + Unpin + Send + 'static,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "xDS accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        no_delay(&tcp);
        let handshake = handshake(tcp);
        let tx = tx.clone();
        tokio::spawn(async move {
            let opening = async {
                let stream = handshake.await.map_err(Opening::Tls)?;
                Prefaced::open(stream).await.map_err(Opening::Preface)
            };
            match tokio::time::timeout(OPENING, opening).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send(Ok(stream)).await;
                }
                Ok(Err(Opening::Tls(e))) => {
                    if let Some(suppressed) = REFUSALS.allow(Instant::now()) {
                        tracing::warn!(peer = %peer, error = %e, suppressed, "xDS client refused: TLS handshake failed");
                    }
                }
                Ok(Err(Opening::Preface(e))) => {
                    if let Some(suppressed) = REFUSALS.allow(Instant::now()) {
                        tracing::warn!(peer = %peer, error = %e, suppressed, "xDS connection closed before it began HTTP/2");
                    }
                }
                Err(_) => {
                    if let Some(suppressed) = REFUSALS.allow(Instant::now()) {
                        tracing::warn!(
                            peer = %peer,
                            seconds = OPENING.as_secs(),
                            suppressed,
                            "xDS connection closed: no TLS handshake and HTTP/2 preface in time"
                        )
                    }
                }
            }
        });
    }
}

/// Warnings about connections that never opened: a client retrying with a
/// wrong certificate, or a port scan, would otherwise write a line per
/// attempt. At most [`LogThrottle::BURST`] per [`LogThrottle::WINDOW`]; the
/// next one logged says how many were left out (`suppressed`).
static REFUSALS: LogThrottle = LogThrottle::new();

/// A window of log lines (see [`REFUSALS`]).
pub struct LogThrottle {
    /// Start of the window, lines logged in it, lines left out since the last
    /// one logged.
    state: std::sync::Mutex<Option<(Instant, u32, u64)>>,
}

impl LogThrottle {
    /// Lines allowed per window.
    pub const BURST: u32 = 10;
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// A throttle with nothing logged yet.
    pub const fn new() -> Self {
        Self {
            state: std::sync::Mutex::new(None),
        }
    }

    /// `Some(left out since the last line)` when a line may be logged `now`.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (start, logged, suppressed) = state.get_or_insert((now, 0, 0));
        if now.saturating_duration_since(*start) >= Self::WINDOW {
            (*start, *logged) = (now, 0);
        }
        if *logged >= Self::BURST {
            *suppressed += 1;
            return None;
        }
        *logged += 1;
        Some(std::mem::take(suppressed))
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a new connection has for its TLS handshake and HTTP/2 preface
/// together (Envoy sends the preface at once; gRPC-Go's servers allow 120 s).
pub const OPENING: Duration = Duration::from_secs(10);

/// The length of the HTTP/2 client preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
const PREFACE_LEN: usize = 24;

/// What went wrong while a connection opened.
enum Opening {
    Tls(std::io::Error),
    Preface(std::io::Error),
}

/// A connection whose first bytes (the HTTP/2 preface) were read before it
/// was handed to the gRPC server, which reads them again first.
pub struct Prefaced<S> {
    head: Bytes,
    inner: S,
}

impl<S: AsyncRead + Unpin> Prefaced<S> {
    /// Reads the preface's length of bytes from `inner` (what they are is
    /// for the HTTP/2 server to check).
    async fn open(mut inner: S) -> std::io::Result<Self> {
        let mut head = [0u8; PREFACE_LEN];
        inner.read_exact(&mut head).await?;
        Ok(Self {
            head: Bytes::copy_from_slice(&head),
            inner,
        })
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefaced<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.head.is_empty() {
            let n = this.head.len().min(buf.remaining());
            buf.put_slice(&this.head.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefaced<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for Prefaced<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn refusal_warnings_are_throttled_and_say_how_many_were_left_out() {
        let t = LogThrottle::new();
        let t0 = Instant::now();
        for _ in 0..LogThrottle::BURST {
            assert_eq!(t.allow(t0), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        }
        // The next window logs again, first with the count left out.
        let next = t0 + LogThrottle::WINDOW;
        assert_eq!(t.allow(next), Some(5));
        assert_eq!(t.allow(next), Some(0));
    }

    #[tokio::test]
    async fn the_preface_is_read_again_first() {
        let (mut client, server) = tokio::io::duplex(64);
        let wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nand the rest";
        client.write_all(wire).await.unwrap_or_default();
        drop(client);
        let mut prefaced = match Prefaced::open(server).await {
            Ok(p) => p,
            Err(e) => panic!("no preface read: {e}"),
        };
        let mut got = Vec::new();
        let mut one = [0u8; 5];
        // Small reads straddle the preface's end.
        loop {
            match prefaced.read(&mut one).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&one[..n]),
            }
        }
        assert_eq!(got, wire);
    }

    #[tokio::test]
    async fn a_connection_without_a_preface_is_not_opened() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"PRI * HTTP").await.unwrap_or_default();
        drop(client);
        assert!(Prefaced::open(server).await.is_err());
    }
}
