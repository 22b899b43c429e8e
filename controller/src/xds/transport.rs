//! The xDS listener: mutual TLS by default (a client certificate signed by the
//! configured CA is required), with the certificate files re-read when they
//! change, so rotation needs no restart. Plain TCP only when asked for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};

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
            server
                .serve_with_incoming_shutdown(
                    tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |c| {
                        c.inspect(no_delay)
                    }),
                    shutdown,
                )
                .await?
        }
        Some(tls) => {
            let (tx, rx) = mpsc::channel::<Result<TlsStream<TcpStream>, std::io::Error>>(64);
            let accept = tokio::spawn(accept_tls(listener, tls, tx));
            let result = server
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown)
                .await;
            accept.abort();
            result?
        }
    }
    Ok(())
}

/// Accepts TCP connections and completes TLS handshakes concurrently; failed
/// handshakes (no or a wrong client certificate) are logged and dropped.
/// Sends small writes at once. Without it a push (or the last segment of
/// one) waits for the client's delayed ACK, 40 ms on Linux, behind Nagle's
/// algorithm; Go's servers, upstream Contour's among them, set it by default.
fn no_delay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on an xDS connection");
    }
}

async fn accept_tls(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    tx: mpsc::Sender<Result<TlsStream<TcpStream>, std::io::Error>>,
) {
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
        let acceptor = tls.acceptor();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = tx.send(Ok(stream)).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(peer = %peer, error = %e, "xDS client refused: TLS handshake failed");
                }
                Err(_) => {
                    tracing::warn!(peer = %peer, "xDS client refused: TLS handshake timed out")
                }
            }
        });
    }
}
