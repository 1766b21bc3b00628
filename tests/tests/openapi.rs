//! The API's OpenAPI document: generated from the handlers' types, committed
//! as docs/openapi.json, summarised in the README's operations table, served
//! at /openapi.json, and covering every JSON route the router has.
//! `UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi` rewrites the
//! committed copies after a change.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::collections::BTreeSet;
use uwl_tests::*;

const BEGIN: &str = "<!-- operations: generated from docs/openapi.json by tests/tests/openapi.rs -->";
const END: &str = "<!-- operations end -->";

fn generated() -> anyhow::Result<serde_json::Value> {
    Ok(uwl_ingest::openapi::document()?)
}

const CODES_BEGIN: &str = "<!-- error codes: generated from docs/openapi.json by tests/tests/openapi.rs -->";
const CODES_END: &str = "<!-- error codes end -->";

/// The error codes of the document's `ErrorCode`.
fn error_codes(doc: &serde_json::Value) -> Vec<String> {
    doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)).collect()
}

/// Replaces the text between `begin` and `end` in `text`.
fn replace_between(text: &str, begin: &str, end: &str, with: &str) -> anyhow::Result<String> {
    let (before, rest) = text.split_once(begin).ok_or_else(|| anyhow::anyhow!("README has no marker {begin}"))?;
    let (_, after) = rest.split_once(end).ok_or_else(|| anyhow::anyhow!("README has no end marker {end}"))?;
    Ok(format!("{before}{with}{after}"))
}

/// The README's operations table, from the document.
fn operations_table(doc: &serde_json::Value) -> String {
    let mut rows = vec!["| operation | key | answers |".to_owned(), "|---|---|---|".to_owned()];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let key = if op.get("security").is_some() { "yes" } else { "no" };
            let statuses: Vec<&str> = op["responses"].as_object().into_iter().flatten().map(|(s, _)| s.as_str()).collect();
            rows.push(format!("| `{} {path}` | {key} | {} |", method.to_uppercase(), statuses.join(", ")));
        }
    }
    format!("{BEGIN}\n{}\n{END}", rows.join("\n"))
}

#[test]
fn the_committed_document_and_the_readme_table_are_the_generated_ones() -> anyhow::Result<()> {
    let doc = generated()?;
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    let (doc_path, readme_path) = (repo().join("docs/openapi.json"), repo().join("README.md"));
    let readme = std::fs::read_to_string(&readme_path)?;
    let table = operations_table(&doc);
    let codes = format!("{CODES_BEGIN}\n{}\n{CODES_END}", error_codes(&doc).iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(",\n"));
    let readme = if std::env::var_os("UPDATE_OPENAPI").is_some() {
        let updated = replace_between(&readme, BEGIN, END, &table)?;
        let updated = replace_between(&updated, CODES_BEGIN, CODES_END, &codes)?;
        std::fs::write(&doc_path, &text)?;
        std::fs::write(&readme_path, updated)?;
        std::fs::read_to_string(&readme_path)?
    } else {
        readme
    };
    let committed = std::fs::read_to_string(&doc_path)?;
    assert!(committed == text, "docs/openapi.json is not the generated document: UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi");
    assert!(readme.contains(&table), "README's operations table is stale: UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi");
    assert!(readme.contains(&codes), "README's error codes are stale: UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi");
    assert_eq!(doc["openapi"], "3.1.0");
    // the long-poll's documented maximum is ingest's default
    let wait = &doc["paths"]["/receipt/{receipt_id}"]["get"]["parameters"];
    let wait = wait.as_array().into_iter().flatten().find(|p| p["name"] == "wait_ms").ok_or_else(|| anyhow::anyhow!("no wait_ms"))?;
    assert_eq!(wait["schema"]["maximum"], serde_json::json!(uwl_ingest::MAX_RECEIPT_WAIT_MS), "{wait}");
    Ok(())
}

/// Every route of ingest's router is documented, except the pages that are
/// not JSON API (the dashboard, its assets, the metrics text, the document).
#[test]
fn every_json_route_is_in_the_document() -> anyhow::Result<()> {
    let router = std::fs::read_to_string(repo().join("services/ingest/src/http.rs"))?;
    let routes: BTreeSet<String> = router
        .split(".route(\"")
        .skip(1)
        .filter_map(|r| r.split('"').next().map(str::to_owned))
        .filter(|r| !["/", "/static/{file}", "/metrics", "/openapi.json"].contains(&r.as_str()))
        .collect();
    assert!(routes.len() >= 10, "found only {routes:?}");
    let doc = generated()?;
    let documented: BTreeSet<String> = doc["paths"].as_object().into_iter().flatten().map(|(p, _)| p.clone()).collect();
    assert_eq!(routes, documented, "routes and documented paths differ");
    // every error answer names the shared error body
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                if status.starts_with('4') {
                    assert_eq!(r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody", "{method} {path} {status}");
                }
            }
        }
    }
    Ok(())
}

/// nginx's own error pages use the document's codes, and all of them appear.
#[test]
fn nginx_error_pages_use_the_documented_codes() -> anyhow::Result<()> {
    let codes = error_codes(&generated()?);
    assert!(codes.len() >= 17, "{codes:?}");
    let template = std::fs::read_to_string(repo().join("nginx/nginx.conf.template"))?;
    let used: BTreeSet<String> = template.split("{\"error\":\"").skip(1).filter_map(|r| r.split('"').next().map(str::to_owned)).collect();
    assert!(used.len() >= 10, "found only {used:?} in nginx's error pages");
    for code in &used {
        assert!(codes.contains(code), "nginx answers error code {code:?}, which the document does not list");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_serves_the_document() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(1, fast_params())?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &[]).await?;
    let (code, body, headers) = h.get("/openapi.json", None).await?;
    assert_eq!(code, 200);
    assert!(headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(body, generated()?);
    ingest.stop().await?;
    Ok(())
}
