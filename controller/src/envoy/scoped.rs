//! The scoped route layout of `ingress_http` (`--route-layout=scoped`): one
//! `ScopedRouteConfiguration` per plain virtual host instead of one
//! `RouteConfiguration` holding them all, so that a new or changed host is
//! one small resource for Envoy to load (over delta xDS) rather than the
//! whole table again.
//!
//! Envoy picks a scope by an exact key; a route table picks a host by
//! case-insensitive domain, ignores the port, and falls back to wildcard
//! hosts and the default host `*`. Two Lua filters in front of the others
//! bridge the two: the first sets the key header to the lower-cased host
//! without its port and asks for the route (which makes Envoy select the
//! scope again); when no scope has that host it sets `*.<parent domain>`.
//! The second, when that wildcard has no scope either, sets `*`. Each
//! scope's virtual host carries metadata under the filters' names, which is
//! how a filter sees that a scope was found (a found scope whose routes do
//! not match the path is a 404, as in one table, never a fallback). The
//! key header is removed before the request goes upstream.
//!
//! Measured with `make bench-layout` (BENCHMARKS.md, run 7).
//!
//! One difference remains: a host two labels under a wildcard host
//! (`a.b.example.com` under `*.example.com`) falls back to the default
//! host here, where one table answers 404 (upstream restricts wildcard
//! hosts to one label with an `:authority` match, so neither serves it
//! from the wildcard host).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{DataSource, Metadata, data_source::Specifier};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, ScopedRouteConfiguration, scoped_route_configuration,
};
use envoy_types::pb::envoy::extensions::filters::http::lua::v3::Lua;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, ScopedRds, ScopedRoutes, http_filter,
    scoped_routes::{
        ScopeKeyBuilder,
        scope_key_builder::{
            FragmentBuilder,
            fragment_builder::{HeaderValueExtractor, Type, header_value_extractor},
        },
    },
};
use envoy_types::pb::google::protobuf::{BoolValue, Struct, Value, value::Kind};

use super::{any, route::virtual_host, xds_config_source};
use crate::dag::{Dag, HTTP_LISTENER, Layout, VirtualHost};

/// The request header holding the scope key.
pub const SCOPE_HEADER: &str = "x-contour-scope";
/// Name of the Lua filter that keys on the host (and its metadata key).
pub const HOST_FILTER: &str = "contour.scope.host";
/// Name of the Lua filter that falls back from a wildcard to `*`.
pub const WILDCARD_FILTER: &str = "contour.scope.wildcard";

/// The first filter: the lower-cased host without its port (an IPv6
/// literal keeps its brackets); when no scope has it, the wildcard of its
/// parent domain, or `*` for a single-label host.
const HOST_LUA: &str = r#"function envoy_on_request(h)
  local headers = h:headers()
  local host = string.lower(headers:get(":authority") or "")
  host = string.match(host, "^%[[^%]]*%]") or string.match(host, "^[^:]*")
  headers:replace("x-contour-scope", host)
  h:metadata()
  if h:virtualHost():metadata():get("scope") then
    return
  end
  local parent = string.match(host, "^[^.]+(%..+)$")
  headers:replace("x-contour-scope", parent and ("*" .. parent) or "*")
end
"#;

/// The second filter: a wildcard key without a scope becomes `*`.
const WILDCARD_LUA: &str = r#"function envoy_on_request(h)
  local headers = h:headers()
  local key = headers:get("x-contour-scope") or ""
  if string.sub(key, 1, 2) ~= "*." then
    return
  end
  h:metadata()
  if h:virtualHost():metadata():get("scope") then
    return
  end
  headers:replace("x-contour-scope", "*")
end
"#;

/// The name of the scope of plain host `fqdn` (and of its route table).
pub fn scope_name(fqdn: &str) -> String {
    format!("{HTTP_LISTENER}/{fqdn}")
}

/// The two Lua filters, which go before every other HTTP filter.
pub fn lua_filters() -> Vec<HttpFilter> {
    [(HOST_FILTER, HOST_LUA), (WILDCARD_FILTER, WILDCARD_LUA)]
        .into_iter()
        .map(|(name, code)| HttpFilter {
            name: name.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any(&Lua {
                default_source_code: Some(DataSource {
                    specifier: Some(Specifier::InlineString(code.to_string())),
                    ..Default::default()
                }),
                ..Default::default()
            }))),
            ..Default::default()
        })
        .collect()
}

/// The connection manager's scoped routes: keyed on [`SCOPE_HEADER`]
/// (the whole value: a separator no host contains), scopes and their
/// route tables from Contour.
pub fn scoped_routes() -> ScopedRoutes {
    ScopedRoutes {
        name: HTTP_LISTENER.to_string(),
        scope_key_builder: Some(ScopeKeyBuilder {
            fragments: vec![FragmentBuilder {
                r#type: Some(Type::HeaderValueExtractor(HeaderValueExtractor {
                    name: SCOPE_HEADER.to_string(),
                    element_separator: ",".to_string(),
                    extract_type: Some(header_value_extractor::ExtractType::Index(0)),
                })),
            }],
        }),
        rds_config_source: Some(xds_config_source()),
        config_specifier: Some(
            envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::scoped_routes::ConfigSpecifier::ScopedRds(ScopedRds {
                scoped_rds_config_source: Some(xds_config_source()),
                ..Default::default()
            }),
        ),
    }
}

fn found() -> Struct {
    let scope = Value {
        kind: Some(Kind::BoolValue(true)),
    };
    Struct {
        fields: [("scope".to_string(), scope)].into_iter().collect(),
    }
}

/// The scope of one plain host: its key is the host name, its route table
/// holds the host alone and drops the key header.
pub fn scope(v: &VirtualHost) -> ScopedRouteConfiguration {
    let mut host = virtual_host(v);
    let mut filter_metadata = HashMap::new();
    filter_metadata.insert(HOST_FILTER.to_string(), found());
    if v.name.starts_with("*.") {
        filter_metadata.insert(WILDCARD_FILTER.to_string(), found());
    }
    host.metadata = Some(Metadata {
        filter_metadata,
        ..Default::default()
    });
    let name = scope_name(&v.name);
    ScopedRouteConfiguration {
        name: name.clone(),
        key: Some(scoped_route_configuration::Key {
            fragments: vec![scoped_route_configuration::key::Fragment {
                r#type: Some(scoped_route_configuration::key::fragment::Type::StringKey(
                    v.name.clone(),
                )),
            }],
        }),
        route_configuration: Some(RouteConfiguration {
            name,
            virtual_hosts: vec![host],
            request_headers_to_remove: vec![SCOPE_HEADER.to_string()],
            // Envoy checks the clusters of an inline table by default, and a
            // scope that comes before its clusters (per-type streams have no
            // order) would be refused; RDS tables are not checked either.
            validate_clusters: Some(BoolValue { value: false }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The scopes of `ingress_http` when it uses the scoped layout, sorted by
/// name.
pub fn scoped_route_configurations(dag: &Dag) -> Vec<ScopedRouteConfiguration> {
    match dag.listeners.get(HTTP_LISTENER) {
        Some(l) if l.layout() == Layout::Scoped => {
            l.virtual_hosts.values().map(|v| scope(v)).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn host(name: &str) -> VirtualHost {
        VirtualHost {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// The Lua code and the resources agree on the header and metadata
    /// names (the code spells them out).
    #[test]
    fn the_scripts_use_the_names_the_resources_carry() {
        for code in [HOST_LUA, WILDCARD_LUA] {
            assert!(code.contains(&format!("\"{SCOPE_HEADER}\"")));
            assert!(code.contains("get(\"scope\")"));
        }
        let s = scope(&host("a.example.com"));
        let table = s.route_configuration.unwrap_or_default();
        assert_eq!(table.request_headers_to_remove, vec![SCOPE_HEADER]);
        let metadata = table.virtual_hosts[0].metadata.clone().unwrap_or_default();
        assert!(
            metadata.filter_metadata[HOST_FILTER].fields["scope"]
                .kind
                .is_some()
        );
        assert!(!metadata.filter_metadata.contains_key(WILDCARD_FILTER));
    }

    /// The key of a scope is its host's name; a wildcard host is also
    /// found by the wildcard filter.
    #[test]
    fn scopes_are_keyed_by_host_name() {
        let s = scope(&host("*.apps.example.com"));
        assert_eq!(s.name, "ingress_http/*.apps.example.com");
        let key = s.key.unwrap_or_default();
        assert_eq!(
            key.fragments[0].r#type,
            Some(scoped_route_configuration::key::fragment::Type::StringKey(
                "*.apps.example.com".into()
            ))
        );
        let table = s.route_configuration.unwrap_or_default();
        let metadata = table.virtual_hosts[0].metadata.clone().unwrap_or_default();
        assert!(metadata.filter_metadata.contains_key(WILDCARD_FILTER));
    }

    /// Only `ingress_http` in the scoped layout has scopes.
    #[test]
    fn only_the_scoped_layout_has_scopes() {
        let mut dag = Dag::default();
        let mut l = crate::dag::Listener {
            name: HTTP_LISTENER.into(),
            ..Default::default()
        };
        l.virtual_hosts
            .insert("a.example.com".into(), Arc::new(host("a.example.com")));
        dag.listeners.insert(HTTP_LISTENER.into(), l.clone());
        assert!(scoped_route_configurations(&dag).is_empty());
        l.route_layout = crate::dag::RouteLayout::Scoped;
        dag.listeners.insert(HTTP_LISTENER.into(), l);
        let names: Vec<String> = scoped_route_configurations(&dag)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["ingress_http/a.example.com"]);
        assert!(super::super::route::route_configurations(&dag).is_empty());
    }
}
