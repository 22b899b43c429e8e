//! Golden tests of the pure steps: `fixtures/<case>/contourdeployment.yaml`
//! (and optionally `cluster.yaml`, what dereference would have found) →
//! validate → build → one `<kind>.yaml` per child kind (several objects of a
//! kind are one multi-document file), or `degraded.txt` with the message the
//! `Degraded` condition carries when the spec is invalid.
//!
//! `UPDATE_GOLDEN=1 cargo test -p contour-operator --test golden` rewrites
//! the expected files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use contour::certgen::Certificates;
use contour_crds::ContourDeployment;
use contour_operator::build;
use contour_operator::dereference::Dereferenced;
use contour_operator::validate::{self, Images};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn certificates() -> Certificates {
    Certificates {
        ca_cert: "<ca.crt>".into(),
        contour_cert: "<contour tls.crt>".into(),
        contour_key: "<contour tls.key>".into(),
        envoy_cert: "<envoy tls.crt>".into(),
        envoy_key: "<envoy tls.key>".into(),
    }
}

fn images() -> Images {
    Images {
        contour: "contour:test".into(),
        envoy: "envoy:test".into(),
    }
}

/// The expected files of a case: name → content.
fn render(dir: &Path) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let cd: ContourDeployment = serde_yaml::from_str(&std::fs::read_to_string(
        dir.join("contourdeployment.yaml"),
    )?)?;
    let mut deref = Dereferenced::default();
    if let Ok(text) = std::fs::read_to_string(dir.join("cluster.yaml")) {
        let cluster: serde_json::Value = serde_yaml::from_str(&text)?;
        deref.service_monitor_crd = cluster["serviceMonitorCrd"].as_bool().unwrap_or(false);
        deref.autoscaled = cluster["autoscaledDeployments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
    }
    let mut out = BTreeMap::new();
    let v = match validate::validate(&cd, &deref, &images()) {
        Ok(v) => v,
        Err(e) => {
            out.insert("degraded.txt".to_string(), format!("{e}\n"));
            return Ok(out);
        }
    };
    let generated = contour_operator::certs::Generated {
        certs: certificates(),
        ca: contour::certgen::CaMaterial {
            cert: "<ca.crt>".into(),
            key: "<ca.key>".into(),
        },
        rotated_for: None,
    };
    let children = build::build(&v, Some(&generated))?.children()?;
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in children {
        by_kind
            .entry(format!("{}.yaml", c.resource.kind.to_ascii_lowercase()))
            .or_default()
            .push(serde_yaml::to_string(&c.object)?);
    }
    for (file, docs) in by_kind {
        out.insert(file, docs.join("---\n"));
    }
    Ok(out)
}

#[test]
fn build_matches_golden_files() -> TestResult {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("contourdeployment.yaml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "fixtures missing: {cases:?}");
    for dir in cases {
        let case = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let want = render(&dir)?;
        let existing: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                name != "contourdeployment.yaml" && name != "cluster.yaml"
            })
            .collect();
        if update {
            for p in &existing {
                std::fs::remove_file(p)?;
            }
            for (file, text) in &want {
                std::fs::write(dir.join(file), text)?;
            }
            continue;
        }
        for (file, text) in &want {
            match std::fs::read_to_string(dir.join(file)) {
                Ok(got) if &got == text => {}
                Ok(_) => {
                    failures.push(format!("{case}/{file} differs (UPDATE_GOLDEN=1 to accept)"))
                }
                Err(_) => failures.push(format!("{case}/{file} missing")),
            }
        }
        for p in existing {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !want.contains_key(&name) {
                failures.push(format!("{case}/{name} is no longer produced"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn an_invalid_spec_builds_nothing_and_names_every_problem() -> TestResult {
    let text = std::fs::read_to_string(fixtures().join("invalid-many/contourdeployment.yaml"))?;
    let cd: ContourDeployment = serde_yaml::from_str(&text)?;
    let Err(e) = validate::validate(&cd, &Dereferenced::default(), &images()) else {
        panic!("invalid-many must not validate");
    };
    assert!(e.0.len() >= 3, "{e}");
    Ok(())
}
