//! Envoy's admin interface, over a unix socket (our bootstrap's and
//! upstream's default, `/admin/admin.sock`) or TCP (`contour bootstrap
//! --admin-port` puts it on 127.0.0.1): one HTTP/1.1 request per connection.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::ShutdownError;
use super::drain::EnvoyAdmin;
use super::stats::STATS_PATH;

/// Longest wait for one admin request (upstream sets none; a hung admin
/// would then stall the drain forever).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read (the filtered `/stats` is a few lines).
const MAX_BODY: usize = 16 << 20;

/// Where Envoy's admin interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAddress {
    /// A unix socket.
    Unix(PathBuf),
    /// `host:port` over TCP.
    Tcp(String),
}

impl AdminAddress {
    /// The address the `shutdown` flags name: `--admin-port` (as `contour
    /// bootstrap --admin-port`: TCP on 127.0.0.1) wins over
    /// `--admin-address`, which is `host:port` for TCP or else a socket path.
    pub fn from_flags(address: &str, port: Option<u16>) -> AdminAddress {
        match port {
            Some(p) => AdminAddress::Tcp(format!("127.0.0.1:{p}")),
            None => AdminAddress::parse(address),
        }
    }

    /// `host:port` (no `/`, a numeric port, a non-empty host; `[::1]:9001`
    /// for IPv6) is TCP; anything else is a unix socket path.
    pub fn parse(address: &str) -> AdminAddress {
        let tcp = !address.contains('/')
            && address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if tcp {
            AdminAddress::Tcp(address.to_string())
        } else {
            AdminAddress::Unix(PathBuf::from(address))
        }
    }
}

impl fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            AdminAddress::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A client of Envoy's admin interface.
#[derive(Debug, Clone)]
pub struct AdminClient {
    address: AdminAddress,
    timeout: Duration,
}

impl AdminClient {
    /// A client of the admin interface at `address`, with [`REQUEST_TIMEOUT`].
    pub fn new(address: AdminAddress) -> AdminClient {
        AdminClient {
            address,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// Sends one request without a body; the status code and the body.
    pub async fn request(&self, method: Method, path: &str) -> Result<(u16, Bytes), ShutdownError> {
        let exchange = async {
            match &self.address {
                AdminAddress::Unix(socket) => {
                    let stream = tokio::net::UnixStream::connect(socket).await;
                    self.exchange(stream, &method, path).await
                }
                AdminAddress::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr.as_str()).await;
                    self.exchange(stream, &method, path).await
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ShutdownError::Timeout {
                address: self.address.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                after: self.timeout,
            })?
    }

    /// A request that must answer 200; its body.
    async fn expect_ok(&self, method: Method, path: &str) -> Result<Bytes, ShutdownError> {
        let (status, body) = self.request(method.clone(), path).await?;
        if status == 200 {
            Ok(body)
        } else {
            Err(ShutdownError::Status {
                address: self.address.to_string(),
                method: method.to_string(),
                path: path.to_string(),
                status,
            })
        }
    }

    async fn exchange<S>(
        &self,
        stream: std::io::Result<S>,
        method: &Method,
        path: &str,
    ) -> Result<(u16, Bytes), ShutdownError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http = |source| ShutdownError::Http {
            address: self.address.to_string(),
            source,
        };
        let stream = stream.map_err(|source| ShutdownError::Connect {
            address: self.address.to_string(),
            source,
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .map_err(ShutdownError::Request)?;
        // The connection task ends once the response is read and the sender
        // dropped, or with an error that the request reports as well.
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%address, error = %e, "admin connection closed with an error");
            }
        });
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY)
            .await
            .map_err(|source| ShutdownError::Body {
                address: self.address.to_string(),
                path: path.to_string(),
                source,
            })?;
        Ok((status, body))
    }
}

impl EnvoyAdmin for AdminClient {
    async fn fail_health_checks(&self) -> Result<(), ShutdownError> {
        self.expect_ok(Method::POST, "/healthcheck/fail").await?;
        Ok(())
    }

    async fn stats(&self) -> Result<String, ShutdownError> {
        let body = self.expect_ok(Method::GET, STATS_PATH).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_only_when_they_are_host_and_port() {
        let unix = |p: &str| AdminAddress::Unix(PathBuf::from(p));
        let tcp = |a: &str| AdminAddress::Tcp(a.to_string());
        for (flag, want) in [
            ("/admin/admin.sock", unix("/admin/admin.sock")),
            ("admin.sock", unix("admin.sock")),
            ("./run/admin:1", unix("./run/admin:1")),
            ("127.0.0.1:9001", tcp("127.0.0.1:9001")),
            ("localhost:9001", tcp("localhost:9001")),
            ("[::1]:9001", tcp("[::1]:9001")),
            (":9001", unix(":9001")),
            ("localhost:http", unix("localhost:http")),
            ("localhost:99999", unix("localhost:99999")),
        ] {
            assert_eq!(AdminAddress::parse(flag), want, "{flag}");
        }
        assert_eq!(
            AdminAddress::from_flags("/admin/admin.sock", Some(9001)),
            tcp("127.0.0.1:9001")
        );
        assert_eq!(
            AdminAddress::from_flags("/admin/admin.sock", None),
            unix("/admin/admin.sock")
        );
    }
}
