//! Every expected Envoy resource in the golden files is accepted by a real
//! Envoy 1.40: each case's listeners, routes, clusters, endpoints and secrets
//! are loaded as a static bootstrap (RDS inlined, SRDS scopes listed inline,
//! EDS made static, SDS secrets static), and Envoy must start and report
//! every listener and cluster.

use std::collections::BTreeMap;

use contour_tests::{Envoy, fixtures};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A static bootstrap and the listener and cluster names it must report.
struct Static {
    config: Value,
    listeners: Vec<String>,
    clusters: Vec<String>,
}

fn read(case: &std::path::Path, stem: &str) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(case.join(format!("{stem}.yaml")))?;
    let v: Value = serde_yaml::from_str(&text)?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// Replaces RDS references by the route configuration itself and SRDS by
/// the list of scopes, and drops SDS config sources (static secrets are
/// found by name).
fn inline(v: &mut Value, routes: &BTreeMap<String, Value>, scopes: &[Value]) {
    match v {
        Value::Object(map) => {
            if map.remove("scopedRds").is_some() {
                map.insert(
                    "scopedRouteConfigurationsList".into(),
                    json!({"scopedRouteConfigurations": scopes}),
                );
            }
            if let Some(rds) = map.remove("rds") {
                let name = rds["routeConfigName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let rc = routes
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| json!({"name": name}));
                map.insert("routeConfig".into(), rc);
            }
            map.remove("sdsConfig");
            for child in map.values_mut() {
                inline(child, routes, scopes);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| inline(i, routes, scopes)),
        _ => {}
    }
}

fn bootstrap(case: &std::path::Path) -> Result<Static, Box<dyn std::error::Error>> {
    let routes: BTreeMap<String, Value> = read(case, "routes")?
        .into_iter()
        .map(|r| (r["name"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    let endpoints: BTreeMap<String, Value> = read(case, "endpoints")?
        .into_iter()
        .map(|e| (e["clusterName"].as_str().unwrap_or_default().to_string(), e))
        .collect();
    // Only cases in the scoped layout have scopes.
    let scopes = match case.join("scopedroutes.yaml").is_file() {
        true => read(case, "scopedroutes")?,
        false => Vec::new(),
    };
    let mut listeners = read(case, "listeners")?;
    let mut names = Vec::new();
    for l in &mut listeners {
        names.push(l["name"].as_str().unwrap_or_default().to_string());
        l["address"]["socketAddress"] = json!({"address": "127.0.0.1", "portValue": 0});
        inline(l, &routes, &scopes);
    }
    let mut clusters = read(case, "clusters")?;
    let mut cluster_names = Vec::new();
    for c in &mut clusters {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        cluster_names.push(name.clone());
        if c["type"] == "EDS" {
            let service = c["edsClusterConfig"]["serviceName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut cla = endpoints
                .get(&service)
                .cloned()
                .unwrap_or_else(|| json!({}));
            cla["clusterName"] = json!(name);
            if let Some(obj) = c.as_object_mut() {
                obj.remove("edsClusterConfig");
                obj.insert("type".into(), json!("STATIC"));
                obj.insert("loadAssignment".into(), cla);
            }
        }
    }
    let secrets = read(case, "secrets")?;
    let config = json!({
        "static_resources": {"listeners": listeners, "clusters": clusters, "secrets": secrets}
    });
    Ok(Static {
        config,
        listeners: names,
        clusters: cluster_names,
    })
}

#[tokio::test]
async fn envoy_accepts_every_golden_resource() -> TestResult {
    let cases = fixtures::cases()?;
    assert!(!cases.is_empty());
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Static {
            config,
            listeners,
            clusters,
        } = bootstrap(case)?;
        let envoy = Envoy::start(&config)
            .await
            .map_err(|e| format!("{name}: Envoy refused the resources: {e}"))?;
        let reported = envoy.admin_get("/listeners").await?;
        for l in &listeners {
            assert!(
                reported
                    .lines()
                    .any(|line| line.starts_with(&format!("{l}::"))),
                "{name}: listener {l} missing:\n{reported}"
            );
        }
        let reported = envoy.admin_get("/clusters").await?;
        for c in &clusters {
            assert!(
                reported.contains(&format!("{c}::")),
                "{name}: cluster {c} missing:\n{reported}"
            );
        }
    }
    Ok(())
}
