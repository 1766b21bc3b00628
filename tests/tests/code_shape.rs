//! The code's shape, checked on every run so later work cannot undo it:
//! no file in `services/` or `shared/` over 400 lines, and no
//! serialization error swallowed in product code (an encoding that fails
//! must be answered or logged, never turned into an empty body or a null).

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

fn root() -> PathBuf {
    uwl_tests::repo()
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Places in `text` where a `serde_json::to_*` call's error is dropped:
/// the call followed by `.unwrap_or…` or `.ok()`, or bound to `_`; and
/// fallbacks to `Value::Null`.
fn swallowed(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("serde_json::to_") {
        let start = from + at;
        from = start + 1;
        let Some(open) = text[start..].find('(').map(|i| start + i) else { break };
        let mut depth = 0usize;
        let mut end = None;
        for (i, ch) in text[open..].char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let after: String = text[end..].chars().filter(|c| !c.is_whitespace()).take(12).collect();
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let bound_to_nothing = text[line_start..start].trim_start().starts_with("let _ =");
        if after.starts_with(".unwrap_or") || after.starts_with(".ok()") || bound_to_nothing {
            found.push(text[line_start..end].trim().to_owned());
        }
    }
    for (i, line) in text.lines().enumerate() {
        if line.contains("unwrap_or(Value::Null)") || line.contains("unwrap_or(serde_json::Value::Null)") {
            found.push(format!("line {}: {}", i + 1, line.trim()));
        }
    }
    found
}

#[test]
fn the_checks_catch_what_they_look_for() {
    assert_eq!(swallowed("let b = serde_json::to_vec(&x).unwrap_or_default();").len(), 1);
    assert_eq!(swallowed("let b = serde_json::to_vec(&f(a, (b)))\n    .ok();").len(), 1);
    assert_eq!(swallowed("    let _ = serde_json::to_writer(w, &x);").len(), 1);
    assert_eq!(swallowed("v.unwrap_or(Value::Null)").len(), 1);
    assert!(swallowed("let b = serde_json::to_vec(&x)?; serde_json::to_value(y).map_err(E::from)?").is_empty());
}

#[test]
fn no_product_file_is_over_400_lines() {
    let mut long = Vec::new();
    let files: Vec<PathBuf> = ["services", "shared"].iter().flat_map(|d| rust_files(&root().join(d))).collect();
    assert!(files.len() > 30, "found only {} files: is the root right?", files.len());
    for f in files {
        let n = std::fs::read_to_string(&f).map(|t| t.lines().count()).unwrap_or(0);
        if n > MAX_LINES {
            long.push(format!("{} ({n} lines)", f.strip_prefix(root()).unwrap_or(&f).display()));
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines (split them by concern): {long:#?}");
}

#[test]
fn no_serialization_error_is_swallowed_in_product_code() {
    let mut found = Vec::new();
    for dir in ["services", "shared"] {
        for f in rust_files(&root().join(dir)) {
            // product code: a crate's src/, not its tests
            if !f.components().any(|c| c.as_os_str() == "src") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for s in swallowed(&text) {
                found.push(format!("{}: {s}", f.strip_prefix(root()).unwrap_or(&f).display()));
            }
        }
    }
    assert!(found.is_empty(), "serialization errors swallowed: {found:#?}");
}

/// Every setting a service takes from the environment is in the README's
/// configuration table (its variable name in backquotes there).
#[test]
fn every_setting_is_documented() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let table = readme.split("## Configuration").nth(1).and_then(|s| s.split("\n## ").next()).unwrap_or_default();
    let commands = [
        uwl_sync::Settings::command(),
        uwl_miner::Settings::command(),
        uwl_verifier::Settings::command(),
        uwl_metrics::Settings::command(),
        uwl_ingest::Settings::command(),
        uwl_worker::Settings::command(),
        uwl_admin::Cli::command(),
    ];
    let mut missing = Vec::new();
    for cmd in commands.iter().flat_map(|c| std::iter::once(c).chain(c.get_subcommands())) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
                if !table.contains(&format!("`{env}`")) && !missing.contains(&env.to_owned()) {
                    missing.push(env.to_owned());
                }
            }
        }
    }
    assert!(!table.is_empty(), "README has no Configuration section");
    assert!(missing.is_empty(), "settings missing from the README's configuration section: {missing:?}");
}
