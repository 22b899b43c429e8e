//! `contour certgen`: a CA and the certificates Contour and Envoy use for
//! the xDS connection (mutual TLS).
//!
//! [`generate`] and [`secrets`] are pure (values in, PEM and Secrets out);
//! [`run`] writes PEM files, Secret YAML files, or Secrets through the
//! Kubernetes API.
//!
//! As upstream Contour v1.33: one CA (`Project Contour`), a `contour` and an
//! `envoy` certificate with the Service's DNS names, the same lifetime for
//! all three, the same file and Secret names. Where we differ: keys are
//! ECDSA P-256 (upstream: RSA 2048), the Secrets default to the `compact`
//! format (what upstream's own manifests ask for), and without `--overwrite`
//! an existing set of outputs is kept as a whole, so a new certificate is
//! never mixed with an old CA.

use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// File names of `--pem` output, as upstream.
pub const CA_CERT_FILE: &str = "cacert.pem";
/// Contour's certificate file.
pub const CONTOUR_CERT_FILE: &str = "contourcert.pem";
/// Contour's key file.
pub const CONTOUR_KEY_FILE: &str = "contourkey.pem";
/// Envoy's certificate file.
pub const ENVOY_CERT_FILE: &str = "envoycert.pem";
/// Envoy's key file.
pub const ENVOY_KEY_FILE: &str = "envoykey.pem";

const CA_COMMON_NAME: &str = "Project Contour";

/// Errors of `contour certgen`.
#[derive(Debug, thiserror::Error)]
pub enum CertgenError {
    /// Key or certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// The namespace or a Secret name is not a valid Kubernetes name.
    #[error("{0}")]
    InvalidName(String),
    /// No output was asked for.
    #[error("nothing to do: choose at least one of --pem, --yaml or --kube")]
    NoOutput,
    /// Some outputs exist and others do not; new certificates would not
    /// chain to the CA that is kept.
    #[error(
        "some outputs exist ({existing}) and others do not ({missing}); refusing to mix certificates from two CAs (use --overwrite to replace them all)"
    )]
    PartialOutput {
        /// What exists.
        existing: String,
        /// What is missing.
        missing: String,
    },
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A Secret could not be encoded as YAML.
    #[error("encoding Secret {name}: {source}")]
    Yaml {
        /// Secret name.
        name: String,
        /// Cause.
        source: serde_yaml::Error,
    },
    /// No Kubernetes client could be configured.
    #[error("kubernetes client configuration: {0}")]
    KubeConfig(String),
    /// A Kubernetes API call failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the certificates are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSettings {
    /// Days from now until all three certificates expire.
    pub lifetime_days: u32,
    /// Namespace of the Contour and Envoy Services.
    pub namespace: String,
    /// The cluster's DNS domain.
    pub dns_name: String,
    /// Name of Contour's Service.
    pub contour_service: String,
    /// Name of Envoy's Service.
    pub envoy_service: String,
}

impl Default for CertSettings {
    fn default() -> Self {
        CertSettings {
            lifetime_days: 365,
            namespace: "projectcontour".into(),
            dns_name: "cluster.local".into(),
            contour_service: "contour".into(),
            envoy_service: "envoy".into(),
        }
    }
}

/// A CA and two key pairs it signed, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificates {
    /// The CA certificate.
    pub ca_cert: String,
    /// Contour's certificate.
    pub contour_cert: String,
    /// Contour's private key.
    pub contour_key: String,
    /// Envoy's certificate.
    pub envoy_cert: String,
    /// Envoy's private key.
    pub envoy_key: String,
}

/// The DNS names of a Service: `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>`.
pub fn service_names(service: &str, namespace: &str, dns_name: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.{dns_name}"),
    ]
}

/// A certificate authority: its certificate and private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CaMaterial {
    /// The CA certificate.
    pub cert: String,
    /// The CA's private key.
    pub key: String,
}

impl std::fmt::Debug for CaMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaMaterial")
            .field("cert", &self.cert)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A new CA and two key pairs it signed, all valid for the lifetime.
pub fn generate(s: &CertSettings, now: OffsetDateTime) -> Result<Certificates, CertgenError> {
    let ca = generate_ca(s.lifetime_days, now)?;
    issue(s, &ca, now)
}

/// A new self-signed CA valid for `lifetime_days` from `now` (backdated a
/// day for clock skew, as the leaves).
pub fn generate_ca(lifetime_days: u32, now: OffsetDateTime) -> Result<CaMaterial, CertgenError> {
    let key = KeyPair::generate()?;
    let params = ca_params(now, lifetime_days);
    Ok(CaMaterial {
        cert: params.self_signed(&key)?.pem(),
        key: key.serialize_pem(),
    })
}

fn ca_params(now: OffsetDateTime, lifetime_days: u32) -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = common_name(CA_COMMON_NAME);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    ca.not_before = now - Duration::days(1);
    ca.not_after = now + Duration::days(i64::from(lifetime_days));
    ca
}

/// New Contour and Envoy key pairs signed by `ca`, valid for the lifetime
/// from `now`: a rotation that keeps the CA, so both sides keep trusting
/// each other while they pick up the new files.
pub fn issue(
    s: &CertSettings,
    ca: &CaMaterial,
    now: OffsetDateTime,
) -> Result<Certificates, CertgenError> {
    let not_before = now - Duration::days(1);
    let not_after = now + Duration::days(i64::from(s.lifetime_days));
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, KeyPair::from_pem(&ca.key)?)?;
    let leaf = |service: &str, also: Option<&str>| -> Result<(String, String), CertgenError> {
        let key = KeyPair::generate()?;
        let mut names = service_names(service, &s.namespace, &s.dns_name);
        if let Some(extra) = also.filter(|n| !names.iter().any(|x| x == n)) {
            names.push(extra.to_string());
        }
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name = common_name(service);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::DataEncipherment,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::ContentCommitment,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = not_before;
        p.not_after = not_after;
        Ok((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    };
    // Envoy's bootstrap checks the name `contour` on Contour's certificate
    // (as upstream's does), whatever the Service is called.
    let (contour_cert, contour_key) =
        leaf(&s.contour_service, Some(crate::bootstrap::XDS_CLUSTER))?;
    let (envoy_cert, envoy_key) = leaf(&s.envoy_service, None)?;
    Ok(Certificates {
        ca_cert: ca.cert.clone(),
        contour_cert,
        contour_key,
        envoy_cert,
        envoy_key,
    })
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The `--pem` files: name and content.
pub fn pem_files(c: &Certificates) -> [(&'static str, &str); 5] {
    [
        (CA_CERT_FILE, &c.ca_cert),
        (CONTOUR_CERT_FILE, &c.contour_cert),
        (CONTOUR_KEY_FILE, &c.contour_key),
        (ENVOY_CERT_FILE, &c.envoy_cert),
        (ENVOY_KEY_FILE, &c.envoy_key),
    ]
}

/// How the certificates are laid out in Secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SecretsFormat {
    /// `contourcert` and `envoycert`, each with `ca.crt`, `tls.crt`, `tls.key`
    /// (what cert-manager writes).
    #[default]
    Compact,
    /// Contour 1.4's layout: `contourcert`, `envoycert` (`tls.crt`, `tls.key`)
    /// and an Opaque `cacert` with `cacert.pem`.
    Legacy,
}

/// The Secrets holding `certs`, named `contourcert<suffix>` and so on.
pub fn secrets(
    namespace: &str,
    suffix: &str,
    format: SecretsFormat,
    certs: &Certificates,
) -> Result<Vec<Secret>, CertgenError> {
    let mut problems = dns1123_label(namespace)
        .map(|e| format!("invalid namespace name {namespace:?}: {e}"))
        .into_iter()
        .collect::<Vec<_>>();
    // "contourcert" is the longest name; the others share the suffix.
    let longest = format!("contourcert{suffix}");
    if let Some(e) = dns1123_subdomain(&longest) {
        problems.push(format!("invalid secret name {longest:?}: {e}"));
    }
    if !problems.is_empty() {
        return Err(CertgenError::InvalidName(problems.join("; ")));
    }
    let with_ca = format == SecretsFormat::Compact;
    let tls = |name: &str, cert: &str, key: &str| {
        let mut data = vec![("tls.crt", cert), ("tls.key", key)];
        if with_ca {
            data.push(("ca.crt", &certs.ca_cert));
        }
        secret(
            namespace,
            &format!("{name}{suffix}"),
            "kubernetes.io/tls",
            &data,
        )
    };
    let mut out = vec![
        tls("contourcert", &certs.contour_cert, &certs.contour_key),
        tls("envoycert", &certs.envoy_cert, &certs.envoy_key),
    ];
    if !with_ca {
        out.push(secret(
            namespace,
            &format!("cacert{suffix}"),
            "Opaque",
            &[(CA_CERT_FILE, &certs.ca_cert)],
        ));
    }
    Ok(out)
}

fn secret(namespace: &str, name: &str, type_: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some([("app".to_string(), "contour".to_string())].into()),
            ..Default::default()
        },
        type_: Some(type_.to_string()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn dns1123_label(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 63 {
        return Some("must be no more than 63 characters and not empty".into());
    }
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".into()
    })
}

fn dns1123_subdomain(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some("must be no more than 253 characters and not empty".into());
    }
    s.split('.').find_map(dns1123_label).map(|_| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".into()
    })
}

/// Flags of `contour certgen` (upstream's names; `--lifetime` and
/// `--output-dir` are accepted too).
#[derive(Debug, Clone, clap::Args)]
pub struct CertgenArgs {
    /// Directory to write output files into (default "certs").
    #[arg(value_name = "OUTPUTDIR", conflicts_with = "output_dir")]
    pub outputdir: Option<PathBuf>,
    /// Directory to write output files into (same as OUTPUTDIR).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Generated certificate lifetime (in days).
    #[arg(long = "certificate-lifetime", visible_alias = "lifetime", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub lifetime: u32,
    /// Use in-cluster configuration for --kube.
    #[arg(long)]
    pub incluster: bool,
    /// Apply the generated certs directly to the Kubernetes cluster as Secrets.
    #[arg(long)]
    pub kube: bool,
    /// Path to kubeconfig (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes namespace, used for the DNS names and the Secrets.
    #[arg(long, env = "CONTOUR_NAMESPACE", default_value = "projectcontour")]
    pub namespace: String,
    /// Overwrite existing files or Secrets.
    #[arg(long)]
    pub overwrite: bool,
    /// Render the generated certs as individual PEM files in the output directory.
    #[arg(long)]
    pub pem: bool,
    /// How to format the generated Kubernetes Secrets.
    #[arg(long, value_enum, default_value_t = SecretsFormat::Compact)]
    pub secrets_format: SecretsFormat,
    /// Suffix appended to the generated Secrets' names.
    #[arg(long, default_value = "")]
    pub secrets_name_suffix: String,
    /// Render the generated certs as Kubernetes Secrets in YAML files in the output directory.
    #[arg(long)]
    pub yaml: bool,
}

impl CertgenArgs {
    /// The output directory.
    pub fn dir(&self) -> PathBuf {
        self.outputdir
            .clone()
            .or_else(|| self.output_dir.clone())
            .unwrap_or_else(|| PathBuf::from("certs"))
    }
}

/// `contour certgen`: generates, then writes every output asked for.
pub fn run(args: &CertgenArgs) -> Result<(), CertgenError> {
    if !(args.pem || args.yaml || args.kube) {
        return Err(CertgenError::NoOutput);
    }
    let settings = CertSettings {
        lifetime_days: args.lifetime,
        namespace: args.namespace.clone(),
        ..CertSettings::default()
    };
    let certs = generate(&settings, OffsetDateTime::now_utc())?;
    let secrets = if args.yaml || args.kube {
        secrets(
            &args.namespace,
            &args.secrets_name_suffix,
            args.secrets_format,
            &certs,
        )?
    } else {
        Vec::new()
    };
    let dir = args.dir();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    if args.pem {
        for (name, pem) in pem_files(&certs) {
            files.push((dir.join(name), pem.as_bytes().to_vec()));
        }
    }
    if args.yaml {
        for s in &secrets {
            let name = s.metadata.name.clone().unwrap_or_default();
            let yaml = serde_yaml::to_string(s).map_err(|source| CertgenError::Yaml {
                name: name.clone(),
                source,
            })?;
            files.push((dir.join(format!("{name}.yaml")), yaml.into_bytes()));
        }
    }
    if !files.is_empty() {
        write_files(&dir, &files, args.overwrite)?;
    }
    if args.kube {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CertgenError::Runtime)?;
        runtime.block_on(write_kube(args, &secrets))?;
    }
    Ok(())
}

/// Existence check shared by files and Secrets: all or nothing.
fn check_set(existing: &[String], missing: &[String]) -> Result<bool, CertgenError> {
    match (existing.is_empty(), missing.is_empty()) {
        (true, _) => Ok(false),
        (false, true) => Ok(true),
        (false, false) => Err(CertgenError::PartialOutput {
            existing: existing.join(", "),
            missing: missing.join(", "),
        }),
    }
}

fn write_files(
    dir: &Path,
    files: &[(PathBuf, Vec<u8>)],
    overwrite: bool,
) -> Result<(), CertgenError> {
    if !overwrite {
        let (existing, missing): (Vec<String>, Vec<String>) = {
            let mut e = Vec::new();
            let mut m = Vec::new();
            for (path, _) in files {
                let shown = path.display().to_string();
                if path.exists() {
                    e.push(shown)
                } else {
                    m.push(shown)
                }
            }
            (e, m)
        };
        if check_set(&existing, &missing)? {
            tracing::info!(dir = %dir.display(), files = existing.len(),
                "certificate files already exist, keeping them (use --overwrite to replace)");
            return Ok(());
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| CertgenError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for (path, bytes) in files {
        write_private(path, bytes, overwrite)?;
        tracing::info!(path = %path.display(), "created");
    }
    Ok(())
}

/// Writes a file readable by its owner only; never follows into an
/// existing file unless overwriting (then it is replaced, mode included).
fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), CertgenError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| CertgenError::Write {
        path: path.to_path_buf(),
        source,
    };
    if overwrite {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)
}

async fn kube_client(args: &CertgenArgs) -> Result<kube::Client, CertgenError> {
    // kube's TLS needs a process-wide rustls provider; ours is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config_err = |e: &dyn std::fmt::Display| CertgenError::KubeConfig(e.to_string());
    let config = if args.incluster {
        kube::Config::incluster().map_err(|e| config_err(&e))?
    } else if let Some(path) = &args.kubeconfig {
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| config_err(&e))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| config_err(&e))?
    } else {
        kube::Config::infer().await.map_err(|e| config_err(&e))?
    };
    kube::Client::try_from(config).map_err(CertgenError::from)
}

async fn write_kube(args: &CertgenArgs, secrets: &[Secret]) -> Result<(), CertgenError> {
    let client = kube_client(args).await?;
    let api: kube::Api<Secret> = kube::Api::namespaced(client, &args.namespace);
    let mut existing = Vec::new();
    let mut missing = Vec::new();
    for s in secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        if api.get_opt(&name).await?.is_some() {
            existing.push(name);
        } else {
            missing.push(name);
        }
    }
    if !args.overwrite && check_set(&existing, &missing)? {
        tracing::info!(namespace = %args.namespace, secrets = ?existing,
            "Secrets already exist, keeping them (use --overwrite to replace)");
        return Ok(());
    }
    let pp = kube::api::PostParams::default();
    for s in secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        if existing.contains(&name) {
            api.replace(&name, &pp, s).await?;
            tracing::info!(namespace = %args.namespace, secret = %name, "Secret replaced");
        } else {
            api.create(&pp, s).await?;
            tracing::info!(namespace = %args.namespace, secret = %name, "Secret created");
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "certgen_tests.rs"]
mod tests;
