//! The monitoring's configuration, checked by Debian's promtool (in the
//! project's image): the alert rules parse and pass their unit tests
//! (`deploy/monitoring/rules.test.yml`), and Prometheus's configuration is
//! valid. The live half (every service's `/metrics` through `promtool check
//! metrics`, an alert firing on a killed miner, delivered to a webhook) is
//! in tests/tests/cluster.rs.

use std::process::Command;
use uwl_tests::*;

/// `promtool args...` in the project's image, with the repository's
/// `deploy/monitoring` where the image keeps it.
fn promtool(args: &[&str]) -> anyhow::Result<String> {
    let ok = Command::new("docker").args(["image", "inspect", "uwl:dev"]).output()?.status.success();
    anyhow::ensure!(ok, "image uwl:dev is missing: build it with deploy/images/build.sh (deploy/test does)");
    let dir = repo().join("deploy/monitoring");
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/etc/uwl/monitoring:ro", dir.canonicalize()?.display()))
        .args(["-w", "/etc/uwl/monitoring", "uwl:dev", "promtool"])
        .args(args)
        .output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "promtool {args:?} failed:\n{text}");
    Ok(text)
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() -> anyhow::Result<()> {
    let checked = promtool(&["check", "rules", "rules.yml"])?;
    println!("{checked}");
    let rules = std::fs::read_to_string(repo().join("deploy/monitoring/rules.yml"))?;
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(checked.contains(&format!("SUCCESS: {} rules found", alerts.len())), "{checked}");
    let tested = promtool(&["test", "rules", "rules.test.yml"])?;
    println!("{tested}");
    assert!(tested.contains("SUCCESS"), "{tested}");
    // every alert has a unit test
    let tests = std::fs::read_to_string(repo().join("deploy/monitoring/rules.test.yml"))?;
    for a in &alerts {
        assert!(tests.contains(&format!("alertname: {a}")), "alert {a} has no test in rules.test.yml");
    }
    Ok(())
}

#[test]
fn the_prometheus_configuration_is_valid() -> anyhow::Result<()> {
    let checked = promtool(&["check", "config", "prometheus.yml"])?;
    assert!(checked.contains("SUCCESS"), "{checked}");
    Ok(())
}
