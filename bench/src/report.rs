//! Turns the load generator's results (JSON lines) into the benchmark
//! table (markdown, printed and written next to the results) and the plot
//! of throughput and p99 against offered load (SVG).
//!
//! Run: `cargo run --release -p uwl-bench --bin report -- RESULTS.jsonl [CHAIN_COST.txt]`;
//! `report steps LOG.jsonl STEP...` prints every submit run of the named
//! optimisation steps instead (bench/README.md, the optimisation log).

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

fn errors(v: &Value) -> u64 {
    v["errors"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0)
}

fn error_text(v: &Value) -> String {
    match v["errors"].as_object() {
        Some(m) if !m.is_empty() => m.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", "),
        _ => "0".into(),
    }
}

fn per_1000(v: &Value, key: &str) -> f64 {
    let ok = f(v, "ok");
    if ok == 0.0 {
        return 0.0;
    }
    v["cluster"][key].as_f64().unwrap_or(0.0) * 1_000.0 / ok
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

struct Results {
    rows: Vec<Value>,
}

impl Results {
    fn find(&self, label: &str, scenario: &str, target: &str) -> Option<&Value> {
        self.rows.iter().rev().find(|v| v["label"] == label && v["scenario"] == scenario && v["target"] == target)
    }

    fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in &self.rows {
            if let Some(l) = v["label"].as_str() {
                if !out.iter().any(|o| o == l) {
                    out.push(l.to_owned());
                }
            }
        }
        out
    }

    /// The last sweep's steps for `label` and `target`, by offered rate.
    fn sweep(&self, label: &str, target: &str) -> Vec<&Value> {
        let mut steps: Vec<&Value> = Vec::new();
        for v in self.rows.iter().filter(|v| v["label"] == label && v["scenario"] == "sweep" && v["target"] == target) {
            steps.retain(|s| s["offered_per_s"] != v["offered_per_s"]);
            steps.push(v);
        }
        steps.sort_by(|a, b| f(a, "offered_per_s").total_cmp(&f(b, "offered_per_s")));
        steps
    }
}

fn saturation_table(r: &Results, md: &mut String) {
    let _ = writeln!(md, "### Saturation (closed loop) against the /livez floor\n");
    let _ = writeln!(md, "| strategy | workers | rewards in blocks/s | p50 | p99 | /livez floor/s | ratio | CPU per reward | forks / 1,000 rewards | replacements / 1,000 | errors |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for label in r.labels() {
        let (Some(s), Some(l)) = (r.find(&label, "saturation", "submit"), r.find(&label, "saturation", "livez")) else { continue };
        let ratio = f(s, "throughput_per_s") / f(l, "throughput_per_s").max(1e-9);
        let _ = writeln!(
            md,
            "| {label} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.0} | {:.1}% | {} | {:.2} | {:.2} | {} |",
            s["concurrency"],
            f(s, "throughput_per_s"),
            f(s, "p50_ms"),
            f(s, "p99_ms"),
            f(l, "throughput_per_s"),
            ratio * 100.0,
            cpu_text(s),
            per_1000(s, "orphaned_blocks"),
            per_1000(s, "replacements"),
            error_text(s),
        );
    }
    let _ = writeln!(md, "\n`-published`: the same closed loop from the host through nginx's published port (docker-proxy in the path); the other rows from a container on the edge network.");
    if let (Some(s), Some(l)) = (r.find("hybrid", "saturation", "submit"), r.find("hybrid", "saturation", "livez")) {
        let (t, fl) = (f(s, "throughput_per_s"), f(l, "throughput_per_s"));
        let cpu = s["cpu_us_per_ok_total"].as_f64();
        let _ = writeln!(
            md,
            "\nTargets (hybrid): >= 5,000 rewards/s: {:.0}/s, {}; >= 20% of the floor: {:.1}%, {}; CPU <= 300 us per reward: {}, {}.\n",
            t,
            yes(t >= 5_000.0),
            t / fl * 100.0,
            yes(t >= 0.2 * fl),
            cpu_text(s),
            yes(cpu.is_some_and(|c| c <= 300.0)),
        );
    }
}

/// CPU per reward summed over the cluster's containers.
fn cpu_text(v: &Value) -> String {
    v["cpu_us_per_ok_total"].as_f64().map_or("-".into(), |us| format!("{us:.0} us"))
}

/// CPU per reward by service for the hybrid runs that have it.
fn cpu_table(r: &Results, md: &mut String) {
    let runs: Vec<(&str, &Value)> =
        ["saturation", "half", "quarter"].iter().filter_map(|sc| Some((*sc, r.find("hybrid", sc, "submit")?))).filter(|(_, v)| v["cpu_us_per_ok"].is_object()).collect();
    let Some((_, first)) = runs.first() else { return };
    let services: Vec<&String> = first["cpu_us_per_ok"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    let _ = writeln!(md, "### CPU per reward by container (hybrid)\n");
    let _ = writeln!(md, "Each container's CPU time (cgroup accounting) over the measurement, divided by the rewards that reached a block; the load generator is not counted.\n");
    let _ = writeln!(md, "| container | {} |", runs.iter().map(|(sc, _)| *sc).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(runs.len()));
    for svc in services.iter().chain(std::iter::once(&&"all".to_owned())) {
        let cells: Vec<String> = runs
            .iter()
            .map(|(_, v)| {
                let us = if svc.as_str() == "all" { v["cpu_us_per_ok_total"].as_f64() } else { v["cpu_us_per_ok"][svc.as_str()].as_f64() };
                us.map_or("-".into(), |us| format!("{us:.1} us"))
            })
            .collect();
        let _ = writeln!(md, "| {svc} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
}

/// The open-loop runs below saturation and the p99 each must stay under.
const BELOW_SATURATION: [(&str, f64); 2] = [("half", 50.0), ("quarter", 25.0)];

fn half_table(r: &Results, md: &mut String) {
    let _ = writeln!(md, "### Below saturation: half and a quarter of the saturation rate (open loop)\n");
    let _ = writeln!(md, "| strategy | run | offered/s | rewards in blocks/s | p50 | p90 | p99 | p99.9 | ack p99 | CPU per reward | forks / 1,000 | replacements / 1,000 | errors | p99 target |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for label in r.labels() {
        for (scenario, bound) in BELOW_SATURATION {
            let Some(h) = r.find(&label, scenario, "submit") else { continue };
            let _ = writeln!(
                md,
                "| {label} | {scenario} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.2} | {:.2} | {} | <= {bound:.0} ms: {} |",
                h["offered_per_s"],
                f(h, "throughput_per_s"),
                f(h, "p50_ms"),
                f(h, "p90_ms"),
                f(h, "p99_ms"),
                f(h, "p999_ms"),
                f(h, "ack_p99_ms"),
                cpu_text(h),
                per_1000(h, "orphaned_blocks"),
                per_1000(h, "replacements"),
                error_text(h),
                yes(f(h, "p99_ms") <= bound && errors(h) == 0),
            );
        }
    }
    let _ = writeln!(md);
}

/// The highest offered rate served in full: >= 95% of it in blocks, < 1% errors.
fn knee(steps: &[&Value]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| f(s, "throughput_per_s") >= 0.95 * f(s, "offered_per_s") && (errors(s) as f64) < 0.01 * f(s, "ok").max(1.0))
        .map(|s| f(s, "offered_per_s"))
        .next_back()
}

fn sweep_table(r: &Results, md: &mut String) {
    for label in r.labels() {
        let submit = r.sweep(&label, "submit");
        if submit.is_empty() {
            continue;
        }
        let livez = r.sweep(&label, "livez");
        let _ = writeln!(md, "### Rising offered load ({label}, open loop)\n");
        let _ = writeln!(md, "| offered/s | rewards in blocks/s | p50 | p99 | p99.9 | errors | /livez/s | /livez p99 |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---|---:|---:|");
        for s in &submit {
            let l = livez.iter().find(|l| l["offered_per_s"] == s["offered_per_s"]);
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {} |",
                s["offered_per_s"],
                f(s, "throughput_per_s"),
                f(s, "p50_ms"),
                f(s, "p99_ms"),
                f(s, "p999_ms"),
                error_text(s),
                l.map_or("-".into(), |l| format!("{:.0}", f(l, "throughput_per_s"))),
                l.map_or("-".into(), |l| format!("{:.1} ms", f(l, "p99_ms"))),
            );
        }
        match knee(&submit) {
            Some(k) => {
                let _ = writeln!(md, "\nKnee: {k:.0} offered/s is the highest rate served in full (>= 95% in blocks, < 1% errors).\n");
            }
            None => {
                let _ = writeln!(md, "\nKnee: no step was served in full.\n");
            }
        }
    }
}

fn kill_table(r: &Results, md: &mut String) {
    for label in r.labels() {
        let Some(k) = r.find(&label, "leader-kill", "submit") else { continue };
        let offered = f(k, "offered_per_s");
        let at = f(k, "event_at_s");
        let timeline: Vec<f64> = k["timeline"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        let first = at.floor() as usize;
        let end = f(k, "duration_s") as usize;
        let after = timeline.get(first..end.min(timeline.len())).unwrap_or(&[]);
        let dip = after.iter().copied().fold(f64::INFINITY, f64::min);
        // Recovered: from the first second after which 3 seconds in a row carry >= 90% of the offered rate.
        let recovered = (first..end.saturating_sub(2)).find(|s| (*s..s + 3).all(|i| timeline.get(i).is_some_and(|n| *n >= 0.9 * offered)));
        let _ = writeln!(md, "### Leader killed mid-run ({label})\n");
        let _ = writeln!(md, "| offered/s | killed at | lowest 1 s after | recovered (>= 90% for 3 s) after | rewards in blocks | errors | p99 |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---|---:|");
        let _ = writeln!(
            md,
            "| {offered:.0} | {at:.1} s | {:.0}/s ({:.0}%) | {} | {} of {:.0} | {} | {:.1} ms |\n",
            if dip.is_finite() { dip } else { 0.0 },
            if dip.is_finite() { dip / offered * 100.0 } else { 0.0 },
            recovered.map_or("not within the run".into(), |s| format!("{:.1} s", (s as f64 - at).max(0.0))),
            k["ok"],
            offered * f(k, "duration_s"),
            error_text(k),
            f(k, "p99_ms"),
        );
        let _ = writeln!(md, "Per second (rewards reaching a block): {}\n", timeline.iter().map(|n| format!("{n:.0}")).collect::<Vec<_>>().join(" "));
        if let (Some(b50), Some(b99), Some(a50), Some(a99)) =
            (k["before_event_p50_ms"].as_f64(), k["before_event_p99_ms"].as_f64(), k["after_event_p50_ms"].as_f64(), k["after_event_p99_ms"].as_f64())
        {
            let _ = writeln!(
                md,
                "Fallback's added latency (submit -> in block): requests due before the kill p50 {b50:.1} ms / p99 {b99:.1} ms; due in the {:.0} s after it p50 {a50:.1} ms / p99 {a99:.1} ms: added {:.1} ms at p50, {:.1} ms at p99.\n",
                f(k, "after_event_s"),
                a50 - b50,
                a99 - b99,
            );
        }
    }
}

fn plot(r: &Results, path: &Path) -> anyhow::Result<bool> {
    let submit = r.sweep("hybrid", "submit");
    let livez = r.sweep("hybrid", "livez");
    if submit.is_empty() {
        return Ok(false);
    }
    let pts = |steps: &[&Value], k: &str| -> Vec<(f64, f64)> { steps.iter().map(|s| (f(s, "offered_per_s"), f(s, k))).collect() };
    let max_x = submit.iter().map(|s| f(s, "offered_per_s")).fold(0.0, f64::max) * 1.05;
    let max_y = submit.iter().chain(&livez).map(|s| f(s, "throughput_per_s")).fold(max_x, f64::max) * 1.05;
    let max_p99 = submit.iter().map(|s| f(s, "p99_ms")).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("uwl: rewards in blocks/s and p99 (submit -> in block) vs offered load, hybrid", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?
        .set_secondary_coord(0.0..max_x, 0.0..max_p99);
    chart.configure_mesh().x_desc("offered load (requests/s)").y_desc("completed/s").draw()?;
    chart.configure_secondary_axes().y_desc("p99 latency (ms)").draw()?;
    chart
        .draw_series(LineSeries::new(pts(&submit, "throughput_per_s"), BLUE.stroke_width(2)).point_size(3))?
        .label("rewards in blocks/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(pts(&livez, "throughput_per_s"), GREEN.stroke_width(2)).point_size(3))?
        .label("/livez floor/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .draw_secondary_series(LineSeries::new(pts(&submit, "p99_ms"), RED.stroke_width(2)).point_size(3))?
        .label("p99 submit -> in block (ms, right axis)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(true)
}

/// Every submit run of `steps`, in log order: one line each.
fn steps_table(r: &Results, steps: &[String], md: &mut String) {
    let _ = writeln!(md, "| step | run | rewards in blocks/s | p50 | p99 | CPU per reward | blocks mined | errors |\n|---|---|---:|---:|---:|---:|---:|---|");
    for step in steps {
        for v in r.rows.iter().filter(|v| v["step"] == step.as_str() && v["target"] == "submit") {
            let _ = writeln!(
                md,
                "| {step} | {} | {:.0} | {:.1} ms | {:.1} ms | {:.0} us | {} | {} |",
                v["scenario"].as_str().unwrap_or(""),
                f(v, "throughput_per_s"),
                f(v, "p50_ms"),
                f(v, "p99_ms"),
                f(v, "cpu_us_per_ok_total"),
                v["cluster"]["blocks_mined"].as_u64().unwrap_or(0),
                error_text(v)
            );
        }
    }
}

/// CPU per reward of one role (`sync`, `nats`, ...) summed over a sites
/// run's containers (named `node-N/<role>`).
fn role_us(v: &Value, role: &str) -> f64 {
    v["cpu_us_per_ok"].as_object().map_or(0.0, |m| m.iter().filter(|(k, _)| k.rsplit('/').next() == Some(role)).filter_map(|(_, us)| us.as_f64()).sum())
}

/// The capacity model against the sites runs (bench/sites): N validators,
/// each a site of its own on this host. From the fewest sites' run, each
/// more site adds its sync's and NATS server's cost per reward (every node
/// stores every block); the rest is paid once. Throughput follows total
/// CPU per reward (the same cores, equally busy).
fn sites_table(r: &Results, md: &mut String) {
    let mut runs: Vec<(usize, &Value)> = r
        .labels()
        .iter()
        .filter_map(|l| Some((l.strip_prefix("sites-")?.parse().ok()?, r.find(l, "saturation", "submit")?)))
        .collect();
    runs.sort_by_key(|(n, _)| *n);
    let Some(&(n0, base)) = runs.first() else { return };
    let per_site = (role_us(base, "sync") + role_us(base, "nats")) / n0 as f64;
    let _ = writeln!(md, "| sites | rewards in blocks/s | CPU per reward | sync | nats | miner | ingest | verifier | predicted CPU per reward | predicted rewards/s | off |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, v) in &runs {
        let total = f(v, "cpu_us_per_ok_total");
        let predicted = f(base, "cpu_us_per_ok_total") + (*n as f64 - n0 as f64) * per_site;
        let rate = f(base, "throughput_per_s") * f(base, "cpu_us_per_ok_total") / predicted;
        let measured = f(v, "throughput_per_s");
        let _ = writeln!(
            md,
            "| {n} | {measured:.0} | {total:.0} us | {:.0} us | {:.0} us | {:.0} us | {:.0} us | {:.0} us | {predicted:.0} us | {rate:.0} | {:+.0}% |",
            role_us(v, "sync"),
            role_us(v, "nats"),
            role_us(v, "miner"),
            role_us(v, "ingest"),
            role_us(v, "verifier"),
            (measured - rate) / rate * 100.0
        );
    }
    let _ = writeln!(md, "\nModel: from the {n0}-site run, each more site adds {per_site:.0} us a reward (its sync and NATS server); throughput = the {n0}-site rate x its CPU per reward / the predicted CPU per reward.");
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args.next().unwrap_or_else(|| "bench/results/latest.jsonl".into());
    if first == "sites" {
        let log = PathBuf::from(args.next().context("report sites RESULTS.jsonl")?);
        let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        let r = Results { rows: text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect() };
        let mut md = String::new();
        sites_table(&r, &mut md);
        print!("{md}");
        return Ok(());
    }
    if first == "steps" {
        let log = PathBuf::from(args.next().context("report steps LOG.jsonl STEP...")?);
        let text = std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        let r = Results { rows: text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect() };
        let mut md = String::new();
        steps_table(&r, &args.collect::<Vec<_>>(), &mut md);
        print!("{md}");
        return Ok(());
    }
    let results = PathBuf::from(first);
    let chain_cost = args.next().map(PathBuf::from);
    let text = std::fs::read_to_string(&results).with_context(|| format!("reading {}", results.display()))?;
    let r = Results { rows: text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect() };
    let mut md = String::new();
    saturation_table(&r, &mut md);
    half_table(&r, &mut md);
    cpu_table(&r, &mut md);
    sweep_table(&r, &mut md);
    kill_table(&r, &mut md);
    if let Some(cc) = chain_cost {
        let t = std::fs::read_to_string(&cc).with_context(|| format!("reading {}", cc.display()))?;
        let _ = writeln!(md, "### Cost vs chain length (chain-cost)\n\n```\n{}```", t);
    }
    let dir = results.parent().unwrap_or(Path::new("."));
    let svg = dir.join("throughput.svg");
    if plot(&r, &svg)? {
        let _ = writeln!(md, "\nPlot: {}", svg.display());
    }
    std::fs::write(dir.join("latest.md"), &md)?;
    print!("{md}");
    Ok(())
}
