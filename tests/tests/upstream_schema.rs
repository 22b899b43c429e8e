//! Our CRDs accept what upstream Contour's accept: every field path (and its
//! JSON type) of upstream's published schemas exists in ours, so existing
//! manifests apply unchanged, also under `kubectl apply --validate=strict`.

use std::collections::BTreeMap;

use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Field path → JSON type ("" when untyped). Subtrees that keep unknown
/// fields are recorded as `path/*` with type "*".
fn paths(schema: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    let ty = schema["type"].as_str().unwrap_or("").to_string();
    out.insert(prefix.to_string(), ty);
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        out.insert(format!("{prefix}/*"), "*".into());
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            paths(v, &format!("{prefix}.{k}"), out);
        }
    }
    if let Some(items) = schema.get("items") {
        paths(items, &format!("{prefix}[]"), out);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        paths(extra, &format!("{prefix}{{}}"), out);
    }
}

fn docs(text: &str) -> Result<Vec<Value>, serde_yaml::Error> {
    serde_yaml::Deserializer::from_str(text)
        .map(serde::Deserialize::deserialize)
        .filter(|r: &Result<Value, _>| r.as_ref().map(|v| !v.is_null()).unwrap_or(true))
        .collect()
}

/// The openAPIV3Schema of a CRD named `name` (apiextensions v1 or v1beta1).
fn schema_of(crds: &[Value], name: &str, version: &str) -> Option<Value> {
    let crd = crds.iter().find(|c| c["metadata"]["name"] == name)?;
    if let Some(s) = crd["spec"]["validation"].get("openAPIV3Schema") {
        return Some(s.clone());
    }
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version)
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
}

fn ours(name: &str, version: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let crds: Vec<Value> = contour_crds::all_crds()?
        .into_iter()
        .map(|f| serde_json::to_value(f.crd))
        .collect::<Result<_, _>>()?;
    schema_of(&crds, name, version).ok_or_else(|| format!("we define no CRD {name}").into())
}

/// Upstream paths our schema lacks or types differently. A path under a
/// subtree of ours that keeps unknown fields is accepted.
fn missing(upstream: &Value, ours: &Value) -> Vec<String> {
    let (mut up, mut we) = (BTreeMap::new(), BTreeMap::new());
    paths(upstream, "", &mut up);
    paths(ours, "", &mut we);
    let free: Vec<&String> = we.keys().filter(|k| k.ends_with("/*")).collect();
    up.iter()
        .filter(|(path, _)| {
            ![".metadata", ".status", ".apiVersion", ".kind"]
                .iter()
                .any(|p| path.starts_with(p))
        })
        .filter(|(path, _)| {
            !free
                .iter()
                .any(|f| path.starts_with(f.trim_end_matches("/*")) && path.len() > f.len() - 2)
        })
        .filter_map(|(path, ty)| match we.get(path) {
            None => Some(format!("{path} (missing)")),
            Some(t) if !ty.is_empty() && !t.is_empty() && t != ty => {
                Some(format!("{path} (ours {t}, upstream {ty})"))
            }
            _ => None,
        })
        .collect()
}

fn check(version_dir: &str, name: &str, version: &str) -> TestResult {
    let dir = contour_tests::tools::upstream_contour(version_dir)?;
    let upstream = docs(&std::fs::read_to_string(
        dir.join("examples/contour/01-crds.yaml"),
    )?)?;
    let theirs = schema_of(&upstream, name, version)
        .ok_or_else(|| format!("upstream {version_dir} has no {name}"))?;
    let gaps = missing(&theirs, &ours(name, version)?);
    assert!(
        gaps.is_empty(),
        "{name}: {} upstream field(s) we would refuse:\n{}",
        gaps.len(),
        gaps.join("\n")
    );
    Ok(())
}

fn current() -> &'static str {
    contour_tests::tools::version("CONTOUR_VERSION").unwrap_or("v1.33.8")
}

#[test]
fn httpproxy_accepts_every_upstream_field() -> TestResult {
    check(current(), "httpproxies.projectcontour.io", "v1")
}

#[test]
fn tlscertificatedelegation_accepts_every_upstream_field() -> TestResult {
    check(
        current(),
        "tlscertificatedelegations.projectcontour.io",
        "v1",
    )
}

#[test]
fn contourdeployment_accepts_every_upstream_field() -> TestResult {
    check(
        current(),
        "contourdeployments.projectcontour.io",
        "v1alpha1",
    )
}

#[test]
fn ingressroute_accepts_every_field_of_the_last_release_that_had_it() -> TestResult {
    let v = contour_tests::tools::version("CONTOUR_INGRESSROUTE_VERSION").unwrap_or("v1.0.1");
    check(v, "ingressroutes.contour.heptio.com", "v1beta1")
}

#[test]
fn the_check_notices_a_missing_field() {
    // Guard against a comparison that can never fail.
    let upstream = serde_json::json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "integer"}}}}});
    let ours = serde_json::json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "integer"}}}}});
    assert_eq!(
        missing(&upstream, &ours),
        [
            ".spec.a (ours integer, upstream string)",
            ".spec.b (missing)"
        ]
    );
}
