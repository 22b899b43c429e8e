//! `contour bootstrap`: Envoy's bootstrap configuration.
//!
//! [`build`] is pure: a [`Settings`] value in, the files to write out (the
//! bootstrap itself and, with `--resources-dir`, the two SDS resource files
//! for the xDS client certificate). [`run`] parses the flags, checks the TLS
//! files exist and writes.
//!
//! The output follows upstream Contour v1.33: a `contour` cluster (HTTP/2,
//! keep-alive, upstream's circuit breakers) that serves LDS, CDS and the
//! `dynamic` runtime layer, an `envoy-admin` cluster that reaches the admin
//! interface, the admin on a unix socket (`/admin/admin.sock`), the RE2 regex
//! engine, and the overload manager when its limits are set. Where we differ:
//! Envoy follows Contour over one aggregated, incremental stream
//! (`--xds-mode delta-ads`, the default; `ads` is the same stream in state of
//! the world; `per-type` is upstream's and the seed's layout), the
//! `stats-health` listener is static here (upstream's `serve` sends it
//! over LDS), and `--admin-port` moves the admin to a TCP port on 127.0.0.1.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Name of the cluster that reaches Contour's xDS server.
pub const XDS_CLUSTER: &str = "contour";
/// Name of the cluster that reaches Envoy's own admin interface.
pub const ADMIN_CLUSTER: &str = "envoy-admin";
/// Name of the static listener that serves `/stats` and `/ready`.
pub const STATS_LISTENER: &str = "stats-health";
/// Sub-directory of `--resources-dir` with the SDS resource files.
pub const SDS_SUBDIRECTORY: &str = "sds";
/// SDS resource file with Envoy's xDS client certificate and key.
pub const SDS_TLS_CERTIFICATE_FILE: &str = "xds-tls-certificate.json";
/// SDS resource file with the CA that verifies Contour.
pub const SDS_VALIDATION_CONTEXT_FILE: &str = "xds-validation-context.json";
/// Paths the stats listener forwards to the admin interface (GET only).
pub const STATS_PATHS: [&str; 3] = ["/ready", "/stats", "/stats/prometheus"];

const SDS_TLS_CERTIFICATE_NAME: &str = "contour_xds_tls_certificate";
const SDS_VALIDATION_CONTEXT_NAME: &str = "contour_xds_tls_validation_context";
const TYPE_PREFIX: &str = "type.googleapis.com/";
/// The port upstream names the admin cluster's stats after when the admin
/// is a unix socket.
const DEFAULT_ADMIN_PORT: u16 = 9001;

/// Errors of `contour bootstrap`.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Only some of the three TLS flags were given.
    #[error(
        "you must supply all TLS parameters - \"--envoy-cafile\", \"--envoy-cert-file\", \"--envoy-key-file\", or none of them"
    )]
    PartialTls,
    /// A TLS file is missing or unreadable.
    #[error("{path}: {source}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A TLS file is empty.
    #[error("{0:?} is empty")]
    EmptyTlsFile(PathBuf),
    /// `--admin-address` is not a unix socket path.
    #[error("invalid value {0:?} for --admin-address, cannot be `localhost` or an ip address")]
    AdminAddress(String),
    /// `--xds-resource-version` is not `v3`.
    #[error("invalid xDS resource version {0:?}, only \"v3\" is supported")]
    ResourceVersion(String),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file (`-` for standard output).
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Encoding the JSON failed.
    #[error("encoding {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
}

/// How Envoy subscribes to Contour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum XdsMode {
    /// Everything over one aggregated (ADS) stream: `contour serve` hands an
    /// ADS stream its listeners and clusters with their RDS/EDS/SDS
    /// references pointing at that stream.
    Ads,
    /// The same over one incremental (delta) ADS stream: a change sends
    /// only the resources that changed, not every resource of its type.
    #[default]
    DeltaAds,
    /// One stream per resource type (upstream's and the seed's bootstrap);
    /// Envoy then also opens one per EDS cluster, secret and route
    /// configuration.
    PerType,
}

impl XdsMode {
    /// Its `--xds-mode` value.
    pub fn flag(self) -> &'static str {
        match self {
            XdsMode::Ads => "ads",
            XdsMode::DeltaAds => "delta-ads",
            XdsMode::PerType => "per-type",
        }
    }

    /// The mode an `--xds-mode` value names.
    pub fn from_flag(value: &str) -> Option<Self> {
        <Self as clap::ValueEnum>::from_str(value, false).ok()
    }
}

/// DNS resolution policy for the `contour` cluster's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DnsLookupFamily {
    /// Envoy's default: IPv4 if there is no IPv6 answer.
    #[default]
    Auto,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both.
    All,
}

/// Where Envoy's admin interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// A unix socket at this path (upstream's only choice).
    Socket(String),
    /// A TCP port on 127.0.0.1.
    Port(u16),
}

/// Envoy's client certificate for the xDS connection and the CA that
/// verifies Contour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsTls {
    /// CA bundle that verifies Contour's serving certificate.
    pub ca_file: String,
    /// Envoy's client certificate.
    pub cert_file: String,
    /// Envoy's client key.
    pub key_file: String,
}

/// Everything the bootstrap depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The bootstrap file; `-` is standard output.
    pub path: PathBuf,
    /// Contour's xDS address (name or IP).
    pub xds_address: String,
    /// Contour's xDS port.
    pub xds_port: u16,
    /// The admin interface.
    pub admin: Admin,
    /// The admin interface's access log.
    pub admin_access_log_path: String,
    /// The stats listener's address and port; `None` leaves it out.
    pub stats: Option<(String, u16)>,
    /// Namespace Envoy runs in (used in stat names).
    pub namespace: String,
    /// DNS policy of the `contour` cluster.
    pub dns_lookup_family: DnsLookupFamily,
    /// TLS to Contour; `None` is plaintext.
    pub tls: Option<XdsTls>,
    /// Where SDS files for the xDS certificate go; with TLS, makes Envoy
    /// reload rotated certificates.
    pub resources_dir: Option<PathBuf>,
    /// ADS or one stream per type.
    pub xds_mode: XdsMode,
    /// Overload manager: heap size at which Envoy sheds load.
    pub max_heap_bytes: Option<u64>,
    /// Overload manager: global limit of downstream connections.
    pub max_downstream_connections: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            path: PathBuf::from("-"),
            xds_address: "127.0.0.1".into(),
            xds_port: 8001,
            admin: Admin::Socket("/admin/admin.sock".into()),
            admin_access_log_path: "/dev/null".into(),
            stats: Some(("0.0.0.0".into(), 8002)),
            namespace: "projectcontour".into(),
            dns_lookup_family: DnsLookupFamily::Auto,
            tls: None,
            resources_dir: None,
            xds_mode: XdsMode::default(),
            max_heap_bytes: None,
            max_downstream_connections: None,
        }
    }
}

/// One file to write: its path and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFile {
    /// Path (`-` is standard output).
    pub path: PathBuf,
    /// Content.
    pub json: Value,
}

/// The files of a bootstrap: SDS resources first (when used), the bootstrap last.
pub fn build(s: &Settings) -> Vec<OutputFile> {
    let mut files = Vec::new();
    let transport_socket = match (&s.tls, &s.resources_dir) {
        (None, _) => None,
        (Some(tls), None) => Some(tls_socket(file_tls_context(tls))),
        (Some(tls), Some(dir)) => {
            let sds = dir.join(SDS_SUBDIRECTORY);
            let cert_path = sds.join(SDS_TLS_CERTIFICATE_FILE);
            let ca_path = sds.join(SDS_VALIDATION_CONTEXT_FILE);
            files.push(OutputFile {
                json: sds_file(json!({
                    "name": SDS_TLS_CERTIFICATE_NAME,
                    "tls_certificate": tls_certificate(tls),
                })),
                path: cert_path.clone(),
            });
            files.push(OutputFile {
                json: sds_file(json!({
                    "name": SDS_VALIDATION_CONTEXT_NAME,
                    "validation_context": validation_context(tls),
                })),
                path: ca_path.clone(),
            });
            Some(tls_socket(sds_tls_context(&cert_path, &ca_path)))
        }
    };
    files.push(OutputFile {
        path: s.path.clone(),
        json: bootstrap(s, transport_socket),
    });
    files
}

fn bootstrap(s: &Settings, transport_socket: Option<Value>) -> Value {
    let source = config_source(s.xds_mode);
    let mut dynamic = json!({"lds_config": source, "cds_config": source});
    match s.xds_mode {
        XdsMode::Ads => dynamic["ads_config"] = api_config_source("GRPC"),
        XdsMode::DeltaAds => dynamic["ads_config"] = api_config_source("DELTA_GRPC"),
        XdsMode::PerType => {}
    }
    let mut contour = xds_cluster(s);
    if let Some(socket) = transport_socket {
        contour["transport_socket"] = socket;
    }
    let mut b = json!({
        "static_resources": {"clusters": [contour, admin_cluster(s)]},
        "dynamic_resources": dynamic,
        "default_regex_engine": {
            "name": "envoy.regex_engines.google_re2",
            "typed_config": {"@type": type_url("envoy.extensions.regex_engines.v3.GoogleRE2")},
        },
        "admin": {
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": type_url("envoy.extensions.access_loggers.file.v3.FileAccessLog"),
                    "path": s.admin_access_log_path,
                },
            }],
            "address": admin_address(&s.admin),
        },
        "layered_runtime": {"layers": [
            {"name": "dynamic", "rtds_layer": {"name": "dynamic", "rtds_config": source}},
            {"name": "admin", "admin_layer": {}},
        ]},
    });
    if let Some((address, port)) = &s.stats {
        b["static_resources"]["listeners"] = json!([stats_listener(address, *port)]);
    }
    if let Some(overload) = overload_manager(s) {
        b["overload_manager"] = overload;
    }
    b
}

fn type_url(name: &str) -> String {
    format!("{TYPE_PREFIX}{name}")
}

/// The gRPC service of the `contour` cluster (no timeout, as upstream).
/// Envoy names its node (with the list of every extension it has, ~50 KB)
/// in the first request of a stream only, not in every ACK: `contour
/// serve` and upstream both take it from the first request.
fn api_config_source(api_type: &str) -> Value {
    json!({
        "api_type": api_type,
        "transport_api_version": "V3",
        "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER, "authority": XDS_CLUSTER}}],
        "set_node_on_first_message_only": true,
    })
}

fn config_source(mode: XdsMode) -> Value {
    match mode {
        XdsMode::Ads | XdsMode::DeltaAds => json!({"ads": {}, "resource_api_version": "V3"}),
        XdsMode::PerType => {
            json!({"api_config_source": api_config_source("GRPC"), "resource_api_version": "V3"})
        }
    }
}

/// STATIC for an IP address, else the given DNS discovery type.
fn discovery_type(address: &str, by_name: &'static str) -> &'static str {
    if address.parse::<IpAddr>().is_ok() {
        "STATIC"
    } else {
        by_name
    }
}

fn socket_address(address: &str, port: u16) -> Value {
    if address == "::" {
        json!({"socket_address": {"address": address, "port_value": port, "ipv4_compat": true}})
    } else {
        json!({"socket_address": {"address": address, "port_value": port}})
    }
}

fn admin_address(admin: &Admin) -> Value {
    match admin {
        Admin::Socket(path) => json!({"pipe": {"path": path, "mode": 0o644}}),
        Admin::Port(port) => socket_address("127.0.0.1", *port),
    }
}

fn load_assignment(cluster: &str, address: Value) -> Value {
    json!({
        "cluster_name": cluster,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
    })
}

fn xds_cluster(s: &Settings) -> Value {
    let threshold = |priority: Option<&str>| {
        let mut t = json!({
            "max_connections": 100000,
            "max_pending_requests": 100000,
            "max_requests": 60000000,
            "max_retries": 50,
            "track_remaining": true,
        });
        if let Some(p) = priority {
            t["priority"] = json!(p);
        }
        t
    };
    let mut c = json!({
        "name": XDS_CLUSTER,
        "alt_stat_name": format!("{}_{XDS_CLUSTER}_{}", s.namespace, s.xds_port),
        "type": discovery_type(&s.xds_address, "STRICT_DNS"),
        "connect_timeout": "5s",
        "load_assignment": load_assignment(XDS_CLUSTER, socket_address(&s.xds_address, s.xds_port)),
        "circuit_breakers": {"thresholds": [threshold(Some("HIGH")), threshold(None)]},
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": type_url("envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        "upstream_connection_options": {
            "tcp_keepalive": {"keepalive_probes": 3, "keepalive_time": 30, "keepalive_interval": 5},
        },
    });
    let family = match s.dns_lookup_family {
        DnsLookupFamily::Auto => None,
        DnsLookupFamily::V4 => Some("V4_ONLY"),
        DnsLookupFamily::V6 => Some("V6_ONLY"),
        DnsLookupFamily::All => Some("ALL"),
    };
    if let Some(f) = family {
        c["dns_lookup_family"] = json!(f);
    }
    c
}

fn admin_cluster(s: &Settings) -> Value {
    let port = match s.admin {
        Admin::Socket(_) => DEFAULT_ADMIN_PORT,
        Admin::Port(p) => p,
    };
    json!({
        "name": ADMIN_CLUSTER,
        "alt_stat_name": format!("{}_{ADMIN_CLUSTER}_{port}", s.namespace),
        "type": "STATIC",
        "connect_timeout": "0.250s",
        "load_assignment": load_assignment(ADMIN_CLUSTER, admin_address(&s.admin)),
    })
}

/// Upstream's `stats-health` listener: `GET` of `/ready`, `/stats` and
/// `/stats/prometheus` goes to the admin interface, anything else is 404.
fn stats_listener(address: &str, port: u16) -> Value {
    let routes: Vec<Value> = STATS_PATHS
        .iter()
        .map(|path| {
            json!({
                "match": {
                    "path": path,
                    "headers": [{"name": ":method", "string_match": {"exact": "GET", "ignore_case": true}}],
                },
                "route": {"cluster": ADMIN_CLUSTER},
            })
        })
        .collect();
    json!({
        "name": STATS_LISTENER,
        "address": socket_address(address, port),
        "socket_options": keepalive_socket_options(),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": type_url("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"),
                "stat_prefix": "stats",
                "route_config": {"virtual_hosts": [{"name": "backend", "domains": ["*"], "routes": routes}]},
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": type_url("envoy.extensions.filters.http.router.v3.Router")},
                }],
                "normalize_path": true,
            },
        }]}],
        "ignore_global_conn_limit": true,
    })
}

/// TCP keep-alive on the listening socket, with upstream's timings.
fn keepalive_socket_options() -> Value {
    const SOL_SOCKET: i64 = 1;
    const SO_KEEPALIVE: i64 = 9;
    const IPPROTO_TCP: i64 = 6;
    const TCP_KEEPIDLE: i64 = 4;
    const TCP_KEEPINTVL: i64 = 5;
    const TCP_KEEPCNT: i64 = 6;
    let option = |description: &str, level: i64, name: i64, value: i64| {
        json!({
            "description": description,
            "level": level,
            "name": name,
            "int_value": value,
            "state": "STATE_LISTENING",
        })
    };
    json!([
        option("Enable TCP keep-alive", SOL_SOCKET, SO_KEEPALIVE, 1),
        option(
            "TCP keep-alive initial idle time",
            IPPROTO_TCP,
            TCP_KEEPIDLE,
            45
        ),
        option(
            "TCP keep-alive time between probes",
            IPPROTO_TCP,
            TCP_KEEPINTVL,
            5
        ),
        option("TCP keep-alive probe count", IPPROTO_TCP, TCP_KEEPCNT, 9),
    ])
}

fn tls_socket(context: Value) -> Value {
    json!({"name": "envoy.transport_sockets.tls", "typed_config": context})
}

fn tls_certificate(tls: &XdsTls) -> Value {
    json!({
        "certificate_chain": {"filename": tls.cert_file},
        "private_key": {"filename": tls.key_file},
    })
}

/// Trust the CA bundle and require the DNS name `contour` on the server.
fn validation_context(tls: &XdsTls) -> Value {
    json!({
        "trusted_ca": {"filename": tls.ca_file},
        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": XDS_CLUSTER}}],
    })
}

fn upstream_tls_context(common: Value) -> Value {
    json!({
        "@type": type_url("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"),
        "common_tls_context": common,
    })
}

/// Certificate files named directly in the bootstrap (no rotation).
fn file_tls_context(tls: &XdsTls) -> Value {
    upstream_tls_context(json!({
        "tls_params": {"tls_maximum_protocol_version": "TLSv1_3"},
        "tls_certificates": [tls_certificate(tls)],
        "validation_context": validation_context(tls),
    }))
}

/// Certificates through SDS files, which Envoy watches and reloads.
fn sds_tls_context(cert_sds: &Path, ca_sds: &Path) -> Value {
    let sds = |name: &str, path: &Path| {
        json!({
            "name": name,
            "sds_config": {
                "path_config_source": {"path": path.to_string_lossy()},
                "resource_api_version": "V3",
            },
        })
    };
    upstream_tls_context(json!({
        "tls_params": {
            "tls_maximum_protocol_version": "TLSv1_3",
            // BoringSSL's default list lacks P-521; upstream adds it.
            "signature_algorithms": [
                "ecdsa_secp256r1_sha256",
                "rsa_pss_rsae_sha256",
                "rsa_pkcs1_sha256",
                "ecdsa_secp384r1_sha384",
                "rsa_pss_rsae_sha384",
                "rsa_pkcs1_sha384",
                "ecdsa_secp521r1_sha512",
                "rsa_pss_rsae_sha512",
                "rsa_pkcs1_sha512",
                "rsa_pkcs1_sha1",
            ],
        },
        "tls_certificate_sds_secret_configs": [sds(SDS_TLS_CERTIFICATE_NAME, cert_sds)],
        "validation_context_sds_secret_config": sds(SDS_VALIDATION_CONTEXT_NAME, ca_sds),
    }))
}

/// A file-based SDS resource: a DiscoveryResponse with one Secret.
fn sds_file(mut secret: Value) -> Value {
    secret["@type"] = json!(type_url("envoy.extensions.transport_sockets.tls.v3.Secret"));
    json!({"resources": [secret]})
}

fn overload_manager(s: &Settings) -> Option<Value> {
    let heap = s.max_heap_bytes.filter(|b| *b > 0);
    let conns = s.max_downstream_connections.filter(|c| *c > 0);
    if heap.is_none() && conns.is_none() {
        return None;
    }
    let mut monitors = Vec::new();
    let mut actions = Vec::new();
    if let Some(bytes) = heap {
        const HEAP: &str = "envoy.resource_monitors.fixed_heap";
        monitors.push(json!({
            "name": HEAP,
            "typed_config": {
                "@type": type_url("envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"),
                "max_heap_size_bytes": bytes.to_string(),
            },
        }));
        for (action, value) in [
            ("envoy.overload_actions.shrink_heap", 0.95),
            ("envoy.overload_actions.stop_accepting_requests", 0.98),
        ] {
            actions.push(json!({
                "name": action,
                "triggers": [{"name": HEAP, "threshold": {"value": value}}],
            }));
        }
    }
    if let Some(limit) = conns {
        monitors.push(json!({
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": type_url("envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"),
                "max_active_downstream_connections": limit.to_string(),
            },
        }));
    }
    let mut o = json!({"refresh_interval": "0.250s", "resource_monitors": monitors});
    if !actions.is_empty() {
        o["actions"] = json!(actions);
    }
    Some(o)
}

/// Flags of `contour bootstrap` (upstream's names and defaults).
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// Configuration file ('-' for standard output).
    pub path: PathBuf,
    /// Path to Envoy admin unix domain socket.
    #[arg(long, default_value = "/admin/admin.sock")]
    pub admin_address: String,
    /// Serve Envoy's admin interface on this TCP port of 127.0.0.1 instead
    /// of the unix socket.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// DNS resolution policy for the Envoy -> Contour cluster name lookup.
    #[arg(long, value_enum, default_value_t = DnsLookupFamily::Auto)]
    pub dns_lookup_family: DnsLookupFamily,
    /// CA filename for Envoy secure xDS gRPC communication.
    #[arg(long, env = "ENVOY_CAFILE")]
    pub envoy_cafile: Option<String>,
    /// Client certificate filename for Envoy secure xDS gRPC communication.
    #[arg(long, env = "ENVOY_CERT_FILE")]
    pub envoy_cert_file: Option<String>,
    /// Client key filename for Envoy secure xDS gRPC communication.
    #[arg(long, env = "ENVOY_KEY_FILE")]
    pub envoy_key_file: Option<String>,
    /// The namespace the Envoy container will run in.
    #[arg(long, env = "CONTOUR_NAMESPACE", default_value = "projectcontour")]
    pub namespace: String,
    /// Envoy's global downstream connection limit.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub overload_downstream_max_conn: Option<i64>,
    /// Heap size in bytes at which the overload manager stops accepting new
    /// requests.
    #[arg(long)]
    pub overload_max_heap: Option<u64>,
    /// Directory for the SDS resource files of the xDS certificate.
    #[arg(long)]
    pub resources_dir: Option<PathBuf>,
    /// xDS gRPC API address.
    #[arg(long, default_value = "127.0.0.1")]
    pub xds_address: String,
    /// xDS gRPC API port.
    #[arg(long, default_value_t = 8001)]
    pub xds_port: u16,
    /// The version of the xDS resources to request from Contour.
    #[arg(long, default_value = "v3")]
    pub xds_resource_version: String,
    /// One incremental aggregated stream for everything (`delta-ads`, the
    /// default), the same in state of the world (`ads`), or one stream per
    /// type and per referenced resource (`per-type`, upstream's bootstrap).
    #[arg(long, value_enum, default_value_t = XdsMode::default())]
    pub xds_mode: XdsMode,
    /// Address of the listener that serves /stats, /stats/prometheus and /ready.
    #[arg(long, default_value = "0.0.0.0")]
    pub stats_address: String,
    /// Port of that listener; 0 leaves the listener out.
    #[arg(long, default_value_t = 8002)]
    pub stats_port: u16,
}

impl BootstrapArgs {
    /// The settings these flags describe, checked as upstream checks them.
    pub fn settings(&self) -> Result<Settings, BootstrapError> {
        if self.xds_resource_version != "v3" {
            return Err(BootstrapError::ResourceVersion(
                self.xds_resource_version.clone(),
            ));
        }
        let admin = match self.admin_port {
            Some(port) => Admin::Port(port),
            None => {
                let a = &self.admin_address;
                if a == "localhost" || a.parse::<IpAddr>().is_ok() {
                    return Err(BootstrapError::AdminAddress(a.clone()));
                }
                Admin::Socket(a.clone())
            }
        };
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let tls = match (
            nonempty(&self.envoy_cafile),
            nonempty(&self.envoy_cert_file),
            nonempty(&self.envoy_key_file),
        ) {
            (None, None, None) => None,
            (Some(ca_file), Some(cert_file), Some(key_file)) => Some(XdsTls {
                ca_file,
                cert_file,
                key_file,
            }),
            _ => return Err(BootstrapError::PartialTls),
        };
        Ok(Settings {
            path: self.path.clone(),
            xds_address: self.xds_address.clone(),
            xds_port: self.xds_port,
            admin,
            admin_access_log_path: "/dev/null".into(),
            stats: (self.stats_port != 0).then(|| (self.stats_address.clone(), self.stats_port)),
            namespace: self.namespace.clone(),
            dns_lookup_family: self.dns_lookup_family,
            tls,
            resources_dir: self.resources_dir.clone(),
            xds_mode: self.xds_mode,
            max_heap_bytes: self.overload_max_heap,
            max_downstream_connections: self.overload_downstream_max_conn,
        })
    }
}

/// `contour bootstrap`: checks the flags and the TLS files, then writes.
pub fn run(args: &BootstrapArgs) -> Result<(), BootstrapError> {
    let settings = args.settings()?;
    if let Some(tls) = &settings.tls {
        for f in [&tls.cert_file, &tls.key_file, &tls.ca_file] {
            // A missing file would make Envoy refuse the bootstrap later,
            // where nobody sees it; failing here shows in the Pod's status.
            let meta = std::fs::metadata(f).map_err(|source| BootstrapError::TlsFile {
                path: f.into(),
                source,
            })?;
            if meta.len() == 0 {
                return Err(BootstrapError::EmptyTlsFile(f.into()));
            }
        }
    }
    if let (Some(_), Some(dir)) = (&settings.tls, &settings.resources_dir) {
        let sds = dir.join(SDS_SUBDIRECTORY);
        std::fs::create_dir_all(&sds).map_err(|source| BootstrapError::Write {
            path: sds.clone(),
            source,
        })?;
    }
    for file in build(&settings) {
        write(&file)?;
        tracing::info!(path = %file.path.display(), "wrote bootstrap file");
    }
    Ok(())
}

fn write(file: &OutputFile) -> Result<(), BootstrapError> {
    let mut bytes =
        serde_json::to_vec_pretty(&file.json).map_err(|source| BootstrapError::Encode {
            path: file.path.clone(),
            source,
        })?;
    bytes.push(b'\n');
    let written = if file.path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes).and_then(|()| out.flush())
    } else {
        std::fs::write(&file.path, &bytes)
    };
    written.map_err(|source| BootstrapError::Write {
        path: file.path.clone(),
        source,
    })
}

#[cfg(test)]
#[path = "bootstrap_tests.rs"]
mod tests;
