//! `GET /receipt/{id}`, with an optional long-poll for a change of status.

use crate::error::ApiError;
use crate::http::{now_ms, query_int, rid};
use crate::state::{Ingest, Shared};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use std::collections::HashMap;
use std::time::Duration;
use uwl_api::{ErrorBody, Receipt, ReceiptStatus};
use uwl_bus::proto::ReceiptQuery;
use uwl_bus::RequestId;
use uwl_ledger::Hash32;

/// The longest receipt long-poll by default (the `MAX_RECEIPT_WAIT_MS`
/// setting; the document states this default).
pub const MAX_RECEIPT_WAIT_MS: u64 = 30_000;

/// A receipt's status on this node, and the client it belongs to.
async fn receipt_status(state: &Ingest, receipt_id: &Hash32, rid: &RequestId) -> Result<(Receipt, Option<String>), ApiError> {
    let in_chain = state.ask("this node's chain", ReceiptQuery { receipt_id: *receipt_id }, rid).await?;
    let local = state.receipt_pending(*receipt_id, rid).await?;
    let orphaned_from_block = local.orphaned.as_ref().map(|o| o.block_index);
    let mut r = Receipt {
        receipt_id: *receipt_id,
        status: ReceiptStatus::Unknown,
        node_id: state.me().to_owned(),
        orphaned_from_block,
        block_index: None,
        block_hash: None,
        confirmations: None,
        contract_id: None,
        superseded_by: None,
    };
    let client = if let Some((id, l)) = in_chain.landed {
        r.status = ReceiptStatus::InBlock;
        (r.block_index, r.block_hash, r.confirmations) = (Some(l.block_index), Some(l.block_hash), Some(l.confirmations(&in_chain.tip)));
        r.contract_id = Some(id.contract_id);
        Some(id.client_id)
    } else if let Some(by) = local.superseded_by {
        r.status = ReceiptStatus::Superseded;
        r.superseded_by = Some(by);
        local.orphaned.map(|o| o.pair.client_id().to_owned())
    } else if let Some(p) = local.pending {
        r.status = if orphaned_from_block.is_some() { ReceiptStatus::OrphanedRequeued } else { ReceiptStatus::Pending };
        r.contract_id = Some(p.reward_tx.contract_id.clone());
        Some(p.client_id().to_owned())
    } else if let Some(o) = local.orphaned {
        r.status = ReceiptStatus::OrphanedRequeued;
        Some(o.pair.client_id().to_owned())
    } else {
        None
    };
    Ok((r, client))
}

#[utoipa::path(get, path = "/receipt/{receipt_id}", tag = "reads", security(("api_key" = [])),
    params(("receipt_id" = String, Path, description = "64 hex digits"),
        ("wait_ms" = Option<u64>, Query, description = "long-poll: wait up to this long (at most MAX_RECEIPT_WAIT_MS, 30000 by default) for the status to change", minimum = 0, maximum = 30000)),
    responses((status = 200, body = Receipt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn receipt(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(receipt_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Receipt>, ApiError> {
    let rid = rid(&headers);
    let client = state.auth.authenticate(&headers, now_ms())?;
    let receipt_id = Hash32::from_hex(&receipt_id).map_err(|_| ApiError::BadRequest("receipt_id must be 64 hex digits".into()))?;
    let max_wait = u64::try_from(state.settings.max_receipt_wait.as_millis()).unwrap_or(u64::MAX);
    let wait_ms = query_int(&q, "wait_ms", 0, 0..=max_wait)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let (first, owner) = receipt_status(&state, &receipt_id, &rid).await?;
    if owner.as_ref().is_some_and(|o| *o != client) {
        return Err(ApiError::Forbidden("this receipt belongs to another client".into()));
    }
    let mut current = first.clone();
    while current.status == first.status && tokio::time::Instant::now() < deadline {
        let changed = state.tip_changed.notified();
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        current = receipt_status(&state, &receipt_id, &rid).await?.0;
    }
    Ok(Json(current))
}
