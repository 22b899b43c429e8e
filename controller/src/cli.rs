//! `contour cli lds|rds|srds|cds|eds|sds`: subscribes to a running Contour over
//! ADS, as an Envoy would, and prints every response (YAML or JSON) as it
//! arrives, ACKing each one.

use std::path::PathBuf;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::endpoint::v3::endpoint_discovery_service_client::EndpointDiscoveryServiceClient;
use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_client::ListenerDiscoveryServiceClient;
use envoy_types::pb::envoy::service::route::v3::route_discovery_service_client::RouteDiscoveryServiceClient;
use envoy_types::pb::envoy::service::route::v3::scoped_routes_discovery_service_client::ScopedRoutesDiscoveryServiceClient;
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::xds::type_url;

/// Errors of `contour cli`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A certificate file could not be read.
    #[error("reading {0}: {1}")]
    File(PathBuf, std::io::Error),
    /// Bad flags.
    #[error("{0}")]
    Flags(String),
    /// Connecting failed.
    #[error("connecting to {0}: {1}")]
    Connect(String, tonic::transport::Error),
    /// The stream failed.
    #[error("xDS stream: {0}")]
    Stream(#[from] tonic::Status),
    /// A response could not be shown.
    #[error("decoding a response: {0}")]
    Decode(String),
}

/// Which resources to stream.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Listeners.
    Lds,
    /// Route configurations.
    Rds,
    /// Scoped route configurations (`serve --route-layout=scoped`).
    Srds,
    /// Clusters.
    Cds,
    /// Cluster load assignments.
    Eds,
    /// Secrets.
    Sds,
}

impl Resource {
    fn type_url(self) -> &'static str {
        match self {
            Resource::Lds => type_url::LISTENER,
            Resource::Rds => type_url::ROUTE,
            Resource::Srds => type_url::SCOPED_ROUTE,
            Resource::Cds => type_url::CLUSTER,
            Resource::Eds => type_url::ENDPOINT,
            Resource::Sds => type_url::SECRET,
        }
    }
}

/// Output format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML documents.
    Yaml,
    /// One JSON object per line.
    Json,
}

/// Flags of `contour cli`.
#[derive(clap::Args, Debug, Clone)]
pub struct CliArgs {
    /// What to stream.
    #[arg(value_enum)]
    pub resource: Resource,
    /// Resource names to subscribe to (RDS, EDS, SDS; default: all).
    pub names: Vec<String>,
    /// Contour's xDS address.
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub contour: String,
    /// CA certificate that Contour's certificate chains to.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Client certificate.
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// Client key.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Name expected in Contour's certificate.
    #[arg(long, default_value = "contour")]
    pub server_name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// Print the first response and exit.
    #[arg(long)]
    pub once: bool,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::File(path.clone(), e))
}

async fn channel(args: &CliArgs) -> Result<Channel, CliError> {
    let tls = match (&args.cafile, &args.cert_file, &args.key_file) {
        (Some(ca), Some(cert), Some(key)) => Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca)?))
                .identity(Identity::from_pem(read(cert)?, read(key)?))
                .domain_name(args.server_name.clone()),
        ),
        // Server verified, no client identity: a server that requires
        // client certificates refuses this.
        (Some(ca), None, None) => Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca)?))
                .domain_name(args.server_name.clone()),
        ),
        (None, None, None) => None,
        _ => {
            return Err(CliError::Flags(
                "give --cafile with --cert-file and --key-file (or --cafile alone, or none for plain gRPC)".into(),
            ));
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = format!("{scheme}://{}", args.contour);
    let connect = |e| CliError::Connect(args.contour.clone(), e);
    let mut endpoint = Channel::from_shared(uri).map_err(|e| CliError::Flags(e.to_string()))?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(connect)?;
    }
    endpoint.connect().await.map_err(connect)
}

/// The resource type's own discovery service (as upstream's `contour cli`):
/// resources come in the form a per-type Envoy gets, as the seed shows them.
async fn stream(
    channel: Channel,
    resource: Resource,
    requests: ReceiverStream<DiscoveryRequest>,
) -> Result<tonic::Response<tonic::Streaming<DiscoveryResponse>>, tonic::Status> {
    match resource {
        Resource::Lds => {
            ListenerDiscoveryServiceClient::new(channel)
                .stream_listeners(requests)
                .await
        }
        Resource::Rds => {
            RouteDiscoveryServiceClient::new(channel)
                .stream_routes(requests)
                .await
        }
        Resource::Srds => {
            ScopedRoutesDiscoveryServiceClient::new(channel)
                .stream_scoped_routes(requests)
                .await
        }
        Resource::Cds => {
            ClusterDiscoveryServiceClient::new(channel)
                .stream_clusters(requests)
                .await
        }
        Resource::Eds => {
            EndpointDiscoveryServiceClient::new(channel)
                .stream_endpoints(requests)
                .await
        }
        Resource::Sds => {
            SecretDiscoveryServiceClient::new(channel)
                .stream_secrets(requests)
                .await
        }
    }
}

/// Streams until the server closes the stream (or after one response with
/// `--once`), writing each response to `out`.
pub async fn run(args: CliArgs, out: &mut (dyn std::io::Write + Send)) -> Result<(), CliError> {
    let channel = channel(&args).await?;
    let (tx, rx) = mpsc::channel(4);
    let first = DiscoveryRequest {
        node: Some(Node {
            id: "contour-cli".into(),
            cluster: "contour-cli".into(),
            ..Default::default()
        }),
        type_url: args.resource.type_url().into(),
        // No names: everything ("*" is the explicit wildcard RDS/EDS/SDS need).
        resource_names: if args.names.is_empty() {
            vec!["*".to_string()]
        } else {
            args.names.clone()
        },
        ..Default::default()
    };
    let _ = tx.send(first.clone()).await;
    let mut responses = stream(channel, args.resource, ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(resp) = responses.message().await? {
        let json =
            crate::envoy::json::to_json(&resp).map_err(|e| CliError::Decode(e.to_string()))?;
        let text = match args.output {
            Format::Yaml => format!(
                "---\n{}",
                serde_yaml::to_string(&json).map_err(|e| CliError::Decode(e.to_string()))?
            ),
            Format::Json => format!("{json}\n"),
        };
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        if args.once {
            break;
        }
        let ack = DiscoveryRequest {
            version_info: resp.version_info.clone(),
            response_nonce: resp.nonce.clone(),
            ..first.clone()
        };
        if tx.send(ack).await.is_err() {
            break;
        }
    }
    Ok(())
}
