//! The chart lints and renders with the real helm, and ships the generated CRDs.

use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn helm(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let bin = contour_tests::tools::helm()?;
    let chart = contour_tests::tools::repo_root().join("helm/contour-operator");
    let out = Command::new(bin).args(args).arg(&chart).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("helm {args:?} failed:\n{text}").into());
    }
    Ok(text)
}

#[test]
fn chart_lints() -> TestResult {
    let out = helm(&["lint", "--strict"])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[test]
fn chart_renders_the_generated_crds() -> TestResult {
    let out = helm(&["template", "contour", "--include-crds"])?;
    for name in [
        "httpproxies.projectcontour.io",
        "tlscertificatedelegations.projectcontour.io",
        "ingressroutes.contour.heptio.com",
        "contourdeployments.projectcontour.io",
    ] {
        assert!(
            out.contains(&format!("name: {name}")),
            "{name} not rendered"
        );
    }
    Ok(())
}
