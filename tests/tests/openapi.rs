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
    let (before, rest) = readme.split_once(BEGIN).ok_or_else(|| anyhow::anyhow!("README has no operations table marker"))?;
    let (_, after) = rest.split_once(END).ok_or_else(|| anyhow::anyhow!("README's operations table has no end marker"))?;
    let table = operations_table(&doc);
    let readme = if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&doc_path, &text)?;
        std::fs::write(&readme_path, format!("{before}{table}{after}"))?;
        std::fs::read_to_string(&readme_path)?
    } else {
        readme
    };
    let committed = std::fs::read_to_string(&doc_path)?;
    assert!(committed == text, "docs/openapi.json is not the generated document: UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi");
    assert!(readme.contains(&table), "README's operations table is stale: UPDATE_OPENAPI=1 cargo test -p uwl-tests --test openapi");
    assert_eq!(doc["openapi"], "3.1.0");
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
