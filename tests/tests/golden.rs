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
