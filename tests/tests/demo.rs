//! `make demo` in its non-interactive mode ends with a 200 from the kuard
//! backend through Envoy for each of the three route kinds.

#[test]
fn the_demo_serves_the_seed_kuard_example_three_ways() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--once")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in ["Ingress", "IngressRoute", "HTTPProxy"] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(kind) && l.contains("curl"))
            .ok_or(format!("no response line for {kind}:\n{stdout}"))?;
        assert!(line.contains("->  200 {\"backend\":\"kuard\""), "{line}");
    }
    assert!(stdout.contains("valid IngressRoute"), "{stdout}");
    assert!(stdout.contains("Valid HTTPProxy"), "{stdout}");
    Ok(())
}
