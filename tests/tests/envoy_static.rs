//! The real Envoy serves traffic from a static configuration to a backend in
//! the test network namespace.

use contour_tests::{Envoy, TestNet, free_port};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn envoy_routes_by_host_to_a_backend_in_the_test_network() -> TestResult {
    let net = TestNet::shared()?;
    let kuard = net.backend("kuard")?;
    let listen = free_port()?;

    let bootstrap = json!({
        "static_resources": {
            "listeners": [{
                "name": "ingress_http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "route_config": {
                            "name": "ingress_http",
                            "virtual_hosts": [{
                                "name": "kuard.local",
                                "domains": ["kuard.local", "kuard.local:*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "default/kuard/80/da39a3ee5e"}}]
                            }]
                        },
                        "http_filters": [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                        }]
                    }
                }]}]
            }],
            "clusters": [{
                "name": "default/kuard/80/da39a3ee5e",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "default/kuard/80/da39a3ee5e",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": kuard.addr.ip().to_string(),
                        "port_value": kuard.addr.port()
                    }}}}]}]
                }
            }]
        }
    });
    let envoy = Envoy::start(&bootstrap).await?;

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{listen}/hello/world");
    let resp = http.get(&url).header("Host", "kuard.local").send().await?;
    assert_eq!(resp.status(), 200, "envoy log:\n{}", envoy.log());
    let body: serde_json::Value = resp.json().await?;
    assert_eq!(body["backend"], "kuard");
    assert_eq!(body["path"], "/hello/world");
    assert_eq!(body["host"], "kuard.local");

    // A host no virtual host claims gets Envoy's own 404, not the backend.
    let resp = http.get(&url).header("Host", "other.local").send().await?;
    assert_eq!(resp.status(), 404);

    // Envoy reports the cluster and its healthy endpoint on the admin interface.
    let clusters = envoy.admin_get("/clusters").await?;
    assert!(
        clusters.contains(&format!(
            "default/kuard/80/da39a3ee5e::{}::health_flags::healthy",
            kuard.addr
        )),
        "clusters:\n{clusters}"
    );
    Ok(())
}
