//! The flags of `contour serve` (upstream's names where they overlap), and
//! how the configuration file folds into them.

use std::path::PathBuf;
use std::time::Duration;

use super::{ServeError, config};
use crate::dag::BuilderConfig;
use crate::xds::transport::TlsFiles;

fn duration(s: &str) -> Result<Duration, String> {
    crate::dag::builder::parse_duration(s)?
        .ok_or_else(|| format!("{s:?} is not a positive duration"))
}

fn namespaced_name(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok((ns.into(), name.into())),
        _ => Err(format!("{s:?} is not namespace/name")),
    }
}

/// `--accesslog-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormatFlag {
    /// Envoy's default text format.
    Envoy,
    /// JSON, upstream's default fields.
    Json,
}

/// `--route-layout`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteLayoutFlag {
    /// `single` below `--route-layout-threshold` plain hosts, `scoped` from
    /// there on.
    #[default]
    Auto,
    /// One route configuration `ingress_http` with every plain host, as
    /// upstream.
    Single,
    /// A scoped route configuration per plain host (SRDS); pays off with
    /// `contour bootstrap --xds-mode delta-ads`.
    Scoped,
}

/// Flags of `contour serve` (upstream's names where they overlap).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Upstream Contour's configuration file (`contour.yaml`); flags win.
    #[arg(long)]
    pub config_path: Option<PathBuf>,
    /// Path to a kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Use the in-cluster service account.
    #[arg(long)]
    pub incluster: bool,
    /// Address the xDS gRPC server binds.
    #[arg(long, default_value = "127.0.0.1")]
    pub xds_address: String,
    /// Port of the xDS gRPC server.
    #[arg(long, default_value_t = 8001)]
    pub xds_port: u16,
    /// CA bundle that Envoy client certificates must chain to.
    #[arg(long)]
    pub contour_cafile: Option<PathBuf>,
    /// Contour's serving certificate.
    #[arg(long)]
    pub contour_cert_file: Option<PathBuf>,
    /// Contour's serving key.
    #[arg(long)]
    pub contour_key_file: Option<PathBuf>,
    /// Serve xDS without TLS. Anyone who can reach the port gets every secret.
    #[arg(long)]
    pub insecure: bool,
    /// Address of the metrics/debug endpoint.
    #[arg(long, default_value = "0.0.0.0")]
    pub http_address: String,
    /// Port of the metrics/debug endpoint.
    #[arg(long, default_value_t = 8000)]
    pub http_port: u16,
    /// Address of the health endpoint (`/healthz`, `/readyz`; default: the
    /// metrics address).
    #[arg(long)]
    pub health_address: Option<String>,
    /// Port of the health endpoint (default: the metrics port).
    #[arg(long)]
    pub health_port: Option<u16>,
    /// Address of the debug endpoint (`/debug/dag`).
    #[arg(long, default_value = "127.0.0.1")]
    pub debug_http_address: String,
    /// Port of the debug endpoint (0: off).
    #[arg(long, default_value_t = 6060)]
    pub debug_http_port: u16,
    /// Requests per second to the Kubernetes API (0: unlimited).
    #[arg(long, default_value_t = 0.0)]
    pub kubernetes_client_qps: f64,
    /// Requests the client may send at once above the QPS.
    #[arg(long, default_value_t = 100)]
    pub kubernetes_client_burst: u32,
    /// Namespaces to watch (comma separated; default all): objects elsewhere
    /// are not seen, and only these namespaces need to be readable.
    #[arg(long, value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Namespaces where root HTTPProxies/IngressRoutes may live (comma separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub root_namespaces: Vec<String>,
    /// Ingress class(es) to serve (comma separated).
    #[arg(long)]
    pub ingress_class_name: Option<String>,
    /// Follow ExternalName Services.
    #[arg(long)]
    pub enable_external_name_service: bool,
    /// Fallback certificate Secret as `namespace/name` (upstream's config
    /// `tls.fallback-certificate`), for proxies that enable it.
    #[arg(long, value_parser = namespaced_name)]
    pub fallback_certificate: Option<(String, String)>,
    /// Address Envoy's listeners bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub envoy_service_http_address: String,
    /// Port of Envoy's HTTP listener.
    #[arg(long, default_value_t = 8080)]
    pub envoy_service_http_port: u32,
    /// Port of Envoy's HTTPS listener.
    #[arg(long, default_value_t = 8443)]
    pub envoy_service_https_port: u32,
    /// Every replica writes status (no Lease).
    #[arg(long)]
    pub disable_leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "leader-elect")]
    pub leader_election_resource_name: String,
    /// Namespace of the leader Lease.
    #[arg(long, env = "CONTOUR_NAMESPACE", default_value = "projectcontour")]
    pub leader_election_resource_namespace: String,
    /// How long a leader lease lasts.
    #[arg(long, value_parser = duration, default_value = "15s")]
    pub leader_election_lease_duration: Duration,
    /// How long a leader tries to renew before stepping down.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub leader_election_renew_deadline: Duration,
    /// Time between lease attempts.
    #[arg(long, value_parser = duration, default_value = "2s")]
    pub leader_election_retry_period: Duration,
    /// Address(es) written to `status.loadBalancer` of Ingresses and
    /// HTTPProxies (comma separated; IPs as `ip`, others as `hostname`).
    /// Without it, the Envoy Service's load balancer status is used.
    #[arg(long)]
    pub ingress_status_address: Option<String>,
    /// Name of Envoy's Service, whose load balancer address is written to
    /// the status of Ingresses and HTTPProxies.
    #[arg(long, default_value = "envoy")]
    pub envoy_service_name: String,
    /// Namespace of Envoy's Service.
    #[arg(long, env = "CONTOUR_NAMESPACE", default_value = "projectcontour")]
    pub envoy_service_namespace: String,
    /// Format of Envoy's access log lines (`envoy`, the default: Envoy's
    /// default text format; `json`: one object per request with upstream's
    /// fields).
    #[arg(long, value_enum)]
    pub accesslog_format: Option<AccessLogFormatFlag>,
    /// Where `ingress_http` logs requests (empty: no access log).
    #[arg(long, default_value = "/dev/stdout")]
    pub envoy_http_access_log: String,
    /// Where `ingress_https` logs requests (empty: no access log).
    #[arg(long, default_value = "/dev/stdout")]
    pub envoy_https_access_log: String,
    /// Quiet time after a change before rebuilding (none for a change that
    /// comes at least this long after the last build, or of EndpointSlices only).
    #[arg(long, value_parser = duration, default_value = "10ms")]
    pub holdoff_delay: Duration,
    /// Longest a change waits for a rebuild while changes keep coming.
    #[arg(long, value_parser = duration, default_value = "100ms")]
    pub holdoff_max_delay: Duration,
    /// How Envoy gets the plain-HTTP routes: `single` (one route
    /// configuration, as upstream), `scoped` (one small scoped route
    /// configuration per host; see the README), or `auto` (`single` for
    /// fewer than `--route-layout-threshold` plain hosts, else `scoped`).
    #[arg(long, value_enum, default_value_t = RouteLayoutFlag::Auto)]
    pub route_layout: RouteLayoutFlag,
    /// With `--route-layout=auto`: the number of plain-HTTP hosts from which
    /// each host gets its own scoped route configuration.
    #[arg(long, default_value_t = crate::dag::SCOPED_FROM_HOSTS)]
    pub route_layout_threshold: usize,
}

impl ServeArgs {
    pub(super) fn builder_config(&self) -> BuilderConfig {
        BuilderConfig {
            root_namespaces: self.root_namespaces.clone(),
            address: self.envoy_service_http_address.clone(),
            http_port: self.envoy_service_http_port,
            https_port: self.envoy_service_https_port,
            ingress_class_name: self.ingress_class_name.clone(),
            enable_external_name_service: self.enable_external_name_service,
            fallback_certificate: self.fallback_certificate.clone(),
            http_access_log: self.access_log(&self.envoy_http_access_log),
            https_access_log: self.access_log(&self.envoy_https_access_log),
            route_layout: match self.route_layout {
                RouteLayoutFlag::Single => crate::dag::RouteLayout::Single,
                RouteLayoutFlag::Scoped => crate::dag::RouteLayout::Scoped,
                RouteLayoutFlag::Auto => crate::dag::RouteLayout::Auto {
                    scoped_from: self.route_layout_threshold,
                },
            },
        }
    }

    fn access_log(&self, path: &str) -> Option<crate::dag::AccessLog> {
        (!path.is_empty()).then(|| crate::dag::AccessLog {
            path: path.to_string(),
            format: match self.accesslog_format {
                None | Some(AccessLogFormatFlag::Envoy) => crate::dag::AccessLogFormat::Envoy,
                Some(AccessLogFormatFlag::Json) => crate::dag::AccessLogFormat::Json,
            },
        })
    }

    pub(super) fn tls_files(&self) -> Result<Option<TlsFiles>, ServeError> {
        match (
            &self.contour_cafile,
            &self.contour_cert_file,
            &self.contour_key_file,
        ) {
            (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None, None) if self.insecure => Ok(None),
            _ if self.insecure => Err(ServeError::Flags(
                "--insecure cannot be combined with --contour-cafile/--contour-cert-file/--contour-key-file".into(),
            )),
            _ => Err(ServeError::Flags(
                "xDS is served over mutual TLS: give --contour-cafile, --contour-cert-file and --contour-key-file (or --insecure for local use)".into(),
            )),
        }
    }
}

impl ServeArgs {
    /// Folds in the configuration file's settings; flags win.
    pub(super) fn with_config(mut self, file: &config::ConfigFile) -> Self {
        for key in file.ignored_keys() {
            tracing::warn!(key = %key, "configuration file key not supported by this build; ignored");
        }
        self.incluster |= file.incluster.unwrap_or(false);
        if self.kubeconfig.is_none() {
            self.kubeconfig = file.kubeconfig.clone().map(PathBuf::from);
        }
        self.enable_external_name_service |= file.enable_external_name_service.unwrap_or(false);
        if self.accesslog_format.is_none() {
            self.accesslog_format = match file.accesslog_format.as_deref() {
                Some("json") => Some(AccessLogFormatFlag::Json),
                Some("envoy") | None => None,
                Some(other) => {
                    tracing::warn!(value = %other, "accesslog-format must be envoy or json; using envoy");
                    None
                }
            };
        }
        if self.fallback_certificate.is_none() {
            self.fallback_certificate = file.fallback_certificate();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::{Layout, RouteLayout};
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn layout(args: &[&str]) -> Result<RouteLayout, clap::Error> {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Ok(Flags::try_parse_from(argv)?
            .serve
            .builder_config()
            .route_layout)
    }

    #[test]
    fn route_layout_is_auto_at_a_thousand_hosts_unless_set() -> Result<(), clap::Error> {
        let auto = layout(&[])?;
        assert_eq!(auto, RouteLayout::Auto { scoped_from: 1000 });
        assert_eq!(auto.resolve(999), Layout::Single);
        assert_eq!(auto.resolve(1000), Layout::Scoped);
        assert_eq!(
            layout(&["--route-layout-threshold=3"])?,
            RouteLayout::Auto { scoped_from: 3 }
        );
        assert_eq!(layout(&["--route-layout=single"])?, RouteLayout::Single);
        assert_eq!(RouteLayout::Single.resolve(1 << 20), Layout::Single);
        assert_eq!(layout(&["--route-layout=scoped"])?, RouteLayout::Scoped);
        assert_eq!(RouteLayout::Scoped.resolve(0), Layout::Scoped);
        assert!(layout(&["--route-layout=wide"]).is_err());
        Ok(())
    }
}
