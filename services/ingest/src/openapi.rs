//! The API's OpenAPI 3.1 document, generated from the handlers' own types
//! and annotations; served at `/openapi.json` and committed as
//! `docs/openapi.json` (a test keeps the two equal).

use crate::routes;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Useful-work ledger API",
        description = "Workers get tasks, submit results and read their rewards. Every answer is JSON; \
            every error is an ErrorBody with a stable `error` code. Authenticated operations take \
            `Authorization: Bearer <api_key>` (POST /register issues one). 429 and 503 answers carry Retry-After."
    ),
    paths(
        routes::keys::register,
        routes::keys::renew_key,
        routes::keys::get_task,
        routes::submit::submit_work,
        routes::balance::get_balance,
        routes::balance::orphaned_tx,
        routes::receipt::receipt,
        routes::node::chain,
        routes::node::health,
        routes::node::livez,
    ),
    modifiers(&ApiKey, &TaskLink)
)]
struct ApiDoc;

/// The bearer API key scheme the authenticated operations name.
struct ApiKey;

impl Modify for ApiKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// A task leads to its submission: `get_task`'s answer links to
/// `submit_work` with the task's client and contract (a client follows it
/// with its computed result).
struct TaskLink;

impl Modify for TaskLink {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(op) = doc.paths.paths.get_mut("/get_task").and_then(|p| p.get.as_mut()) else { return };
        let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") else { return };
        let body = serde_json::json!({
            "client_id": "$response.body#/client_id",
            "contract_id": "$response.body#/contract_id",
            "result_data": {"nonce": 0},
        });
        let link = LinkBuilder::new()
            .operation_id("submit_work")
            .request_body(Some(body))
            .description("submit a result for this task")
            .build();
        ok.links.insert("submit".into(), RefOr::T(link));
    }
}

/// The document, as JSON.
pub fn document() -> Result<serde_json::Value, serde_json::Error> {
    // utoipa 5.5 writes a link's fields in snake case (`operation_id`,
    // `request_body`); OpenAPI spells them in camel case.
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            for response in op["responses"].as_object_mut().into_iter().flat_map(|r| r.values_mut()) {
                for link in response.get_mut("links").and_then(|l| l.as_object_mut()).into_iter().flat_map(|l| l.values_mut()) {
                    if let Some(link) = link.as_object_mut() {
                        for (snake, camel) in [("operation_id", "operationId"), ("request_body", "requestBody")] {
                            if let Some(v) = link.remove(snake) {
                                link.insert(camel.into(), v);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(doc)
}
