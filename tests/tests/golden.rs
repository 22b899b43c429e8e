//! Golden tests as data: every `tests/fixtures/<case>/input.yaml` is built and
//! translated, and the result must equal the committed files next to it.
//! `UPDATE_GOLDEN=1 cargo test -p contour-tests --test golden` rewrites them.

use contour_tests::fixtures;

#[test]
fn every_fixture_matches_its_golden_files() -> Result<(), Box<dyn std::error::Error>> {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = fixtures::cases()?;
    assert!(
        !cases.is_empty(),
        "no fixtures under {}",
        fixtures::dir().display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (cache, config) = fixtures::load(case).map_err(|e| format!("{name}: {e}"))?;
        let rendered = fixtures::render(&cache, &config).map_err(|e| format!("{name}: {e}"))?;
        // Deterministic: a second build gives byte-equal output.
        assert_eq!(
            rendered,
            fixtures::render(&cache, &config)?,
            "{name}: output differs between two builds"
        );
        for (stem, text) in rendered {
            let path = case.join(format!("{stem}.yaml"));
            if update {
                std::fs::write(&path, &text)?;
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != text {
                failures.push(format!(
                    "{name}/{stem}.yaml differs:\n--- expected\n{expected}\n--- got\n{text}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es) (UPDATE_GOLDEN=1 to accept):\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

/// `v` with every object equal to `from` replaced by `to`.
fn replaced(
    v: &serde_json::Value,
    from: &serde_json::Value,
    to: &serde_json::Value,
) -> serde_json::Value {
    use serde_json::Value;
    if v == from {
        return to.clone();
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|i| replaced(i, from, to)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), replaced(i, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What an Envoy on an ADS stream gets: every fixture's listeners and
/// clusters with each RDS/EDS/SDS source replaced by `ads: {}`, and nothing
/// else changed.
#[test]
fn every_fixtures_ads_form_differs_only_in_its_config_sources()
-> Result<(), Box<dyn std::error::Error>> {
    use contour::envoy::json::to_json;
    use contour::xds::{Snapshot, type_url};
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use prost::Message;

    let from = to_json(&contour::envoy::xds_config_source())?;
    let to = to_json(&contour::envoy::ads::ads_config_source())?;
    let (mut rewritten, mut kept) = (0, 0);
    for case in fixtures::cases()? {
        let name = case.display().to_string();
        let (cache, config) = fixtures::load(&case).map_err(|e| format!("{name}: {e}"))?;
        let dag = contour::dag::build(&cache, &config);
        let snapshot = Snapshot::build(&contour::envoy::translate(&dag, &cache))?;
        for t in [type_url::LISTENER, type_url::CLUSTER] {
            let Some(ts) = snapshot.of(t) else { continue };
            for r in ts.resources.values() {
                let ads = r.for_ads();
                let json = |bytes: &[u8]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
                    Ok(if t == type_url::LISTENER {
                        to_json(&Listener::decode(bytes)?)?
                    } else {
                        to_json(&Cluster::decode(bytes)?)?
                    })
                };
                let (before, after) = (json(&r.value)?, json(&ads.value)?);
                assert_eq!(after, replaced(&before, &from, &to), "{name}: {}", r.name);
                assert_eq!(ads.version, r.version, "{name}: {}", r.name);
                if before == after {
                    kept += 1;
                } else {
                    assert!(
                        !after.to_string().contains("apiConfigSource"),
                        "{name}: {}",
                        r.name
                    );
                    rewritten += 1;
                }
            }
        }
    }
    assert!(
        rewritten > 20,
        "only {rewritten} resources had a source to rewrite"
    );
    assert!(
        kept > 0,
        "no resource without a source (static DNS clusters have none)"
    );
    Ok(())
}
