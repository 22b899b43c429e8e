//! Compiles a protobuf descriptor set of the Envoy API from the `.proto`
//! files that the `envoy-types` crate ships, so that Envoy resources can be
//! written and read as canonical proto3 JSON/YAML (golden files, `contour cli`,
//! static bootstraps) with `prost-reflect`.

use std::error::Error;
use std::path::{Path, PathBuf};

/// The API files whose messages we emit or embed in `Any` fields; their
/// imports come along.
const FILES: &[&str] = &[
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/service/runtime/v3/rtds.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/transport_sockets/tls/v3/secret.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto",
    "envoy/extensions/filters/http/compressor/v3/compressor.proto",
    "envoy/extensions/filters/http/health_check/v3/health_check.proto",
    // Not emitted by `serve` yet: the layout bench's scope-key filter.
    "envoy/extensions/filters/http/lua/v3/lua.proto",
    "envoy/extensions/compression/gzip/compressor/v3/gzip.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/extensions/upstreams/tcp/v3/tcp_protocol_options.proto",
    "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
    "envoy/config/rbac/v3/rbac.proto",
    "envoy/extensions/regex_engines/v3/google_re2.proto",
    "envoy/extensions/resource_monitors/fixed_heap/v3/fixed_heap.proto",
    "envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto",
];

/// Include roots inside envoy-types' `proto/` folder.
const INCLUDES: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec/proto",
    "opentelemetry-proto",
    "client_model",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ENVOY_PROTO_DIR");
    let root = proto_root()?;
    let includes: Vec<PathBuf> = INCLUDES
        .iter()
        .map(|i| root.join(i))
        .filter(|p| p.is_dir())
        .collect();
    let set = protox::compile(FILES, &includes)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("envoy_descriptor.bin");
    std::fs::write(out, prost::Message::encode_to_vec(&set))?;
    Ok(())
}

/// `ENVOY_PROTO_DIR`, else `proto/` of the locked envoy-types release in the
/// cargo registry (or a `vendor/` folder).
fn proto_root() -> Result<PathBuf, Box<dyn Error>> {
    if let Some(dir) = std::env::var_os("ENVOY_PROTO_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest.parent().unwrap_or(&manifest).to_path_buf();
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock"))?;
    let version = locked_version(&lock, "envoy-types").ok_or("envoy-types is not in Cargo.lock")?;
    let dir_name = format!("envoy-types-{version}");
    let vendored = workspace.join("vendor").join(&dir_name).join("proto");
    if vendored.is_dir() {
        return Ok(vendored);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    let registry = cargo_home.join("registry").join("src");
    for index in std::fs::read_dir(&registry)?.flatten() {
        let candidate = index.path().join(&dir_name).join("proto");
        if candidate.is_dir() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{dir_name}/proto not found under {}; set ENVOY_PROTO_DIR",
        display(&registry)
    )
    .into())
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let v = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .trim_end_matches('"');
            return Some(v.to_string());
        }
    }
    None
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
