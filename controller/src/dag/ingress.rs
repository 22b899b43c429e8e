//! The Ingress processor (networking.k8s.io/v1): TLS hosts first, then every
//! rule's paths become routes on `ingress_http` and, for TLS hosts, on
//! `ingress_https`. Ingress has no status: problems are logged and the
//! offending path (or rule) is skipped, never the other hosts.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{HTTPIngressPath, Ingress, IngressRule};

use super::builder::{BuilderConfig, parse_duration};
use super::common::{
    parse_i32, resolve_service, resolve_tls_secret, service_port_by_name, wildcard_authority,
};
use super::{
    Dag, HTTP_LISTENER, HTTPS_LISTENER, HeaderMatch, PathMatch, RetryPolicy, Route, RouteAction,
    SecureVirtualHost, TlsVersion, VirtualHost, WeightedCluster,
};
use crate::cache::Key;
use crate::dag::source::Source;

const CONTOUR_PREFIX: &str = "projectcontour.io/";
const FORCE_SSL_REDIRECT: &str = "ingress.kubernetes.io/force-ssl-redirect";
const ALLOW_HTTP: &str = "kubernetes.io/ingress.allow-http";

/// Processes every Ingress of the (class-filtered) cache into `dag`.
pub fn process(cache: &dyn Source, config: &BuilderConfig, dag: &mut Dag) {
    // TLS first, so that the set of secure hosts is known to every rule.
    secure_virtual_hosts(cache, dag);
    for (key, ingress) in cache.ingresses() {
        let Some(spec) = &ingress.spec else { continue };
        // The default backend is a rule for any host and path, placed first
        // so that an explicit rule for the same match replaces it.
        let default_rule = spec.default_backend.as_ref().map(|backend| IngressRule {
            host: None,
            http: Some(k8s_openapi::api::networking::v1::HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    backend: backend.clone(),
                    path: None,
                    path_type: String::new(),
                }],
            }),
        });
        for rule in default_rule.iter().chain(spec.rules.iter().flatten()) {
            process_rule(cache, config, key, ingress, rule, dag);
        }
    }
}

fn annotation<'a>(ingress: &'a Ingress, key: &str) -> &'a str {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .unwrap_or_default()
}

fn contour_annotation<'a>(ingress: &'a Ingress, key: &str) -> &'a str {
    annotation(ingress, &format!("{CONTOUR_PREFIX}{key}"))
}

/// `1.2` or `1.3`; anything else is the default.
fn tls_version(value: &str, default: TlsVersion) -> TlsVersion {
    match value {
        "1.2" => TlsVersion::V1_2,
        "1.3" => TlsVersion::V1_3,
        _ => default,
    }
}

/// Secure virtual hosts of every `spec.tls` entry whose secret resolves.
fn secure_virtual_hosts(cache: &dyn Source, dag: &mut Dag) {
    for (key, ingress) in cache.ingresses() {
        let Some(spec) = &ingress.spec else { continue };
        for tls in spec.tls.iter().flatten() {
            let secret_name = tls.secret_name.clone().unwrap_or_default();
            let reference = if secret_name.contains('/') {
                secret_name.clone()
            } else {
                let ns = match contour_annotation(ingress, "tls-cert-namespace") {
                    "" => key.namespace.as_str(),
                    ns => ns,
                };
                format!("{ns}/{secret_name}")
            };
            let secret = match resolve_tls_secret(cache, &key.namespace, &reference) {
                Ok(secret) => secret,
                Err(error) => {
                    let what = if error.starts_with("certificate delegation not permitted") {
                        "certificate delegation not permitted"
                    } else {
                        "unresolved secret reference"
                    };
                    tracing::error!(
                        name = %key.name, namespace = %key.namespace, secret = %reference,
                        %error, "{what}"
                    );
                    continue;
                }
            };
            for host in tls.hosts.iter().flatten() {
                // Host names compare without case (as HTTPProxy fqdns,
                // which are lowercased): two spellings of one name would be
                // two virtual hosts with the same domain, which Envoy refuses
                // for the whole route configuration.
                let host = host.to_ascii_lowercase();
                let min = tls_version(
                    contour_annotation(ingress, "tls-minimum-protocol-version"),
                    TlsVersion::V1_2,
                );
                let max = tls_version(
                    contour_annotation(ingress, "tls-maximum-protocol-version"),
                    TlsVersion::V1_3,
                );
                if max < min {
                    // Upstream abandons the whole TLS pass here.
                    tracing::error!(
                        name = %key.name, namespace = %key.namespace,
                        min_tls_version = ?min, max_tls_version = ?max,
                        "error TLS protocol version, the minimum protocol version is greater than the maximum protocol version"
                    );
                    return;
                }
                let Some(listener) = dag.listeners.get_mut(HTTPS_LISTENER) else {
                    return;
                };
                let svh = Arc::make_mut(
                    listener
                        .secure_virtual_hosts
                        .entry(host.clone())
                        .or_insert_with(|| {
                            Arc::new(SecureVirtualHost {
                                virtual_host: VirtualHost {
                                    name: host.clone(),
                                    ..VirtualHost::default()
                                },
                                ..Default::default()
                            })
                        }),
                );
                svh.secret = Some(Arc::clone(&secret));
                svh.min_tls_version = min;
                svh.max_tls_version = max;
            }
        }
    }
}

fn process_rule(
    cache: &dyn Source,
    config: &BuilderConfig,
    key: &Key,
    ingress: &Ingress,
    rule: &IngressRule,
    dag: &mut Dag,
) {
    // Lowercased as the TLS hosts are (see `secure_virtual_hosts`).
    let host = match rule.host.as_deref() {
        None | Some("") => "*".to_string(),
        Some(h) => h.to_ascii_lowercase(),
    };
    let host = host.as_str();
    let force_ssl = annotation(ingress, FORCE_SSL_REDIRECT) == "true";
    let http_allowed = annotation(ingress, ALLOW_HTTP) != "false";
    let websocket_routes: Vec<&str> = contour_annotation(ingress, "websocket-routes")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();

    for http_path in rule.http.iter().flat_map(|h| &h.paths) {
        let path = match http_path.path.as_deref() {
            None | Some("") => "/",
            Some(p) => p,
        };
        let Some(backend) = &http_path.backend.service else {
            tracing::error!(
                name = %key.name, namespace = %key.namespace, path,
                "ingress backend does not reference a service, resource backends are not supported"
            );
            continue;
        };
        let port_name = backend
            .port
            .as_ref()
            .and_then(|p| p.name.as_deref())
            .unwrap_or_default();
        let mut port = backend.port.as_ref().and_then(|p| p.number).unwrap_or(0);
        if !port_name.is_empty() {
            match service_port_by_name(cache, &key.namespace, &backend.name, port_name) {
                Ok(number) => port = number,
                Err(error) => {
                    tracing::error!(
                        name = %key.name, namespace = %key.namespace, service = %backend.name,
                        %error, "service is not found"
                    );
                    continue;
                }
            }
        }
        let cluster = match resolve_service(
            cache,
            config,
            &key.namespace,
            &backend.name,
            port,
            String::new(),
        ) {
            Ok(c) => c,
            Err((_, _, error)) => {
                tracing::error!(
                    name = %key.name, namespace = %key.namespace, service = %backend.name,
                    %error, "unresolved service reference"
                );
                continue;
            }
        };

        let Some(path_match) = path_match(path, &http_path.path_type) else {
            // Upstream gives up on the rest of this rule.
            tracing::error!(
                name = %key.name, namespace = %key.namespace, regex = path,
                path_type = %http_path.path_type, "path regex is not valid"
            );
            return;
        };
        let headers: Vec<HeaderMatch> = wildcard_authority(host).into_iter().collect();
        let route = Route {
            path: path_match,
            headers,
            action: RouteAction::Forward(vec![WeightedCluster {
                cluster: Arc::new(cluster),
                weight: 1,
                ..Default::default()
            }]),
            https_redirect: force_ssl,
            websocket: websocket_routes.contains(&path),
            timeout: timeout(key, ingress),
            retry: retry_policy(key, ingress),
            ..Route::default()
        };

        if (force_ssl || http_allowed)
            && let Some(listener) = dag.listeners.get_mut(HTTP_LISTENER)
        {
            let vhost = listener
                .virtual_hosts
                .entry(host.to_string())
                .or_insert_with(|| {
                    Arc::new(VirtualHost {
                        name: host.to_string(),
                        ..VirtualHost::default()
                    })
                });
            Arc::make_mut(vhost).add_route(route.clone());
        }
        if host != "*"
            && let Some(svh) = dag
                .listeners
                .get_mut(HTTPS_LISTENER)
                .and_then(|l| l.secure_virtual_hosts.get_mut(host))
        {
            Arc::make_mut(svh).virtual_host.add_route(Route {
                https_redirect: false,
                ..route
            });
        }
    }
}

/// The match of a path by its type: `Prefix` matches whole segments (a bare
/// `/` is a plain prefix), `Exact` the path, and `ImplementationSpecific`
/// (or no type) a regex when the path contains any of `^+*[]%`, else a plain
/// prefix. `None` for an invalid regex or an unknown type.
fn path_match(path: &str, path_type: &str) -> Option<PathMatch> {
    match path_type {
        "Prefix" if path == "/" => Some(PathMatch::Prefix {
            prefix: "/".into(),
            segment: false,
        }),
        "Prefix" => Some(PathMatch::Prefix {
            prefix: path.trim_end_matches('/').to_string(),
            segment: true,
        }),
        "Exact" => Some(PathMatch::Exact(path.to_string())),
        "" | "ImplementationSpecific" => {
            if path.contains(['^', '+', '*', '[', ']', '%']) {
                regex::Regex::new(path).ok()?;
                Some(PathMatch::Regex(path.to_string()))
            } else {
                Some(PathMatch::Prefix {
                    prefix: path.to_string(),
                    segment: false,
                })
            }
        }
        _ => None,
    }
}

/// `projectcontour.io/response-timeout`, else the older `request-timeout`
/// (applied to the response all the same); invalid values are the default.
fn timeout(key: &Key, ingress: &Ingress) -> Option<std::time::Duration> {
    let value = match contour_annotation(ingress, "response-timeout") {
        "" => contour_annotation(ingress, "request-timeout"),
        v => v,
    };
    parse_duration(value).unwrap_or_else(|error| {
        tracing::error!(
            name = %key.name, namespace = %key.namespace, %error,
            "Error parsing response-timeout annotation, using the default value"
        );
        None
    })
}

/// Retries when `projectcontour.io/retry-on` is set: `num-retries` (-1 → 0,
/// 0 or unparsable → 1) and `per-try-timeout`.
fn retry_policy(key: &Key, ingress: &Ingress) -> Option<RetryPolicy> {
    let retry_on = contour_annotation(ingress, "retry-on");
    if retry_on.is_empty() {
        return None;
    }
    let num_retries = match parse_i32(contour_annotation(ingress, "num-retries")).unwrap_or(0) {
        -1 => 0,
        n if n <= 1 => 1,
        n => n.unsigned_abs(),
    };
    let per_try_timeout = parse_duration(contour_annotation(ingress, "per-try-timeout"))
        .unwrap_or_else(|error| {
            tracing::error!(
                name = %key.name, namespace = %key.namespace, %error,
                "Error parsing per-try-timeout annotation"
            );
            None
        });
    Some(RetryPolicy {
        retry_on: retry_on.to_string(),
        num_retries,
        per_try_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn annotations(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ingress(pairs: &[(&str, &str)]) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                name: Some("i".into()),
                namespace: Some("default".into()),
                annotations: Some(annotations(pairs)),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn path_types_match_as_upstream() {
        let prefix = |p: &str, segment| {
            Some(PathMatch::Prefix {
                prefix: p.into(),
                segment,
            })
        };
        assert_eq!(path_match("/", "Prefix"), prefix("/", false));
        assert_eq!(path_match("/foo/", "Prefix"), prefix("/foo", true));
        assert_eq!(
            path_match("/foo", "Exact"),
            Some(PathMatch::Exact("/foo".into()))
        );
        assert_eq!(path_match("/foo", ""), prefix("/foo", false));
        assert_eq!(
            path_match("/foo/.*", "ImplementationSpecific"),
            Some(PathMatch::Regex("/foo/.*".into()))
        );
        assert_eq!(
            path_match("/foo.bar", "ImplementationSpecific"),
            prefix("/foo.bar", false)
        );
        assert_eq!(path_match("/foo[", "ImplementationSpecific"), None);
        assert_eq!(path_match("/foo", "Bogus"), None);
    }

    #[test]
    fn retries_follow_upstream_defaults() {
        let key = Key::new("default", "i");
        assert_eq!(retry_policy(&key, &ingress(&[])), None);
        let n = |v: &str| {
            retry_policy(
                &key,
                &ingress(&[
                    ("projectcontour.io/retry-on", "5xx"),
                    ("projectcontour.io/num-retries", v),
                ]),
            )
            .map(|p| p.num_retries)
        };
        assert_eq!(n(""), Some(1));
        assert_eq!(n("0"), Some(1));
        assert_eq!(n("-1"), Some(0));
        assert_eq!(n("-7"), Some(1));
        assert_eq!(n("7"), Some(7));
        assert_eq!(n("seven"), Some(1));
        assert_eq!(n("99999999999"), Some(1));
    }

    #[test]
    fn timeouts_fall_back_to_request_timeout_and_default() {
        let key = Key::new("default", "i");
        let t = |pairs: &[(&str, &str)]| timeout(&key, &ingress(pairs));
        assert_eq!(t(&[]), None);
        assert_eq!(
            t(&[("projectcontour.io/request-timeout", "3s")]),
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(
            t(&[
                ("projectcontour.io/response-timeout", "infinity"),
                ("projectcontour.io/request-timeout", "3s")
            ]),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(t(&[("projectcontour.io/response-timeout", "soon")]), None);
    }

    /// Found by fuzzing (fuzz/, dag_translate): two spellings of one host
    /// made two virtual hosts whose domains Envoy takes as duplicates, and
    /// it refused the whole `ingress_http` route configuration.
    #[test]
    fn hosts_differing_only_in_case_are_one_virtual_host() -> Result<(), serde_json::Error> {
        use crate::cache::{Cache, Object};
        let mut cache = Cache::default();
        cache.insert(Object::Service(serde_json::from_value(
            serde_json::json!({
                "metadata": {"name": "s0", "namespace": "default"},
                "spec": {"ports": [{"port": 80}]}
            }),
        )?));
        for (name, host, path) in [("a", "A.Example.com", "/a"), ("b", "a.example.com", "/b")] {
            cache.insert(Object::Ingress(serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"rules": [{"host": host, "http": {"paths": [{"path": path, "pathType": "Prefix",
                    "backend": {"service": {"name": "s0", "port": {"number": 80}}}}]}}]}
            }))?));
        }
        let dag = crate::dag::build(&cache, &BuilderConfig::default());
        let hosts: Vec<&String> = dag
            .listeners
            .get(HTTP_LISTENER)
            .map(|l| l.virtual_hosts.keys().collect())
            .unwrap_or_default();
        assert_eq!(hosts, ["a.example.com"]);
        let routes = dag
            .listeners
            .get(HTTP_LISTENER)
            .and_then(|l| l.virtual_hosts.get("a.example.com"))
            .map(|v| v.routes.len());
        assert_eq!(routes, Some(2), "both Ingresses' routes on the one host");
        Ok(())
    }
}
