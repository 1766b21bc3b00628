//! A client's lists: `GET /get_balance` and `GET /orphaned_tx`.

use crate::error::ApiError;
use crate::http::{next_cursor, now_ms, query_cursor, query_int, rid};
use crate::state::{Ingest, Shared};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use std::collections::HashMap;
use uwl_api::{Balance, ErrorBody, OrphanStatus, OrphanedList, OrphanedReward, PendingReward};
use uwl_bus::proto::{BalanceQuery, ClientQuery, ContainsQuery, ContainsReply, PAGE_DEFAULT, PAGE_MAX};
use uwl_bus::RequestId;
use uwl_ledger::{Identity, OrphanRecord, TxPair};

const CHAIN: &str = "this node's chain";

/// The authenticated client, which must be the `client_id` asked about.
pub(crate) fn own_client(headers: &HeaderMap, state: &Ingest, q: &HashMap<String, String>) -> Result<String, ApiError> {
    let client = state.auth.authenticate(headers, now_ms())?;
    let asked = q.get("client_id").ok_or_else(|| ApiError::BadRequest("client_id is required".into()))?;
    if *asked != client {
        return Err(ApiError::Forbidden("an API key reads only its own client's data".into()));
    }
    Ok(client)
}

fn page_limit(q: &HashMap<String, String>) -> Result<u32, ApiError> {
    Ok(query_int(q, "limit", u64::from(PAGE_DEFAULT), 1..=u64::from(PAGE_MAX))? as u32)
}

/// The current status of pairs from orphaned blocks.
async fn orphan_statuses(state: &Ingest, records: &[OrphanRecord], rid: &RequestId) -> Result<Vec<OrphanedReward>, ApiError> {
    let ids: Vec<Identity> = records.iter().map(|r| r.pair.identity()).collect();
    let landed = state.ask(CHAIN, ContainsQuery { ids }, rid).await?;
    Ok(records
        .iter()
        .zip(landed.landed)
        .map(|(r, l)| OrphanedReward {
            receipt_id: r.pair.receipt_id(),
            contract_id: r.pair.reward_tx.contract_id.clone(),
            amount: r.pair.amount(),
            orphaned_from_block: r.block_index,
            orphaned_block_hash: r.block_hash,
            orphaned_at: r.orphaned_ms,
            // Not in the chain: re-queued (pending here or at a peer) until it lands again.
            status: match l {
                Some(l) if l.receipt_id == r.pair.receipt_id() => OrphanStatus::InBlock,
                Some(_) => OrphanStatus::Superseded,
                None => OrphanStatus::OrphanedRequeued,
            },
            block_index: l.map(|l| l.block_index),
        })
        .collect())
}

#[utoipa::path(get, path = "/get_balance", tag = "reads", security(("api_key" = [])),
    params(("client_id" = String, Query, description = "the key's own client"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 1000 (100)", minimum = 1, maximum = 1000),
        ("pending_cursor" = Option<String>, Query, description = "next_pending_cursor of the previous page"),
        ("orphaned_cursor" = Option<String>, Query, description = "next_orphaned_cursor of the previous page")),
    responses((status = 200, body = Balance), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn get_balance(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Result<Json<Balance>, ApiError> {
    let rid = rid(&headers);
    let client = own_client(&headers, &state, &q)?;
    let limit = page_limit(&q)?;
    let (pending_after, orphaned_after) = (query_cursor(&q, "pending_cursor")?, query_cursor(&q, "orphaned_cursor")?);
    let bal = state.ask(CHAIN, BalanceQuery { client_id: client.clone() }, &rid).await?;
    let mine = state.client_pending(ClientQuery { client_id: client.clone(), limit, pending_after, orphaned_after }, &rid).await?;
    let next_pending_cursor = next_cursor(mine.more_pending, mine.pending.last().map(TxPair::receipt_id));
    let next_orphaned_cursor = next_cursor(mine.more_orphaned, mine.orphaned.last().map(|o| o.pair.receipt_id()));
    // The mempool lets go of pairs a peer's block carried on its next
    // reconciliation: those already counted in the balance read above (in
    // a block at or below its tip) are not pending any more.
    let ids: Vec<Identity> = mine.pending.iter().map(TxPair::identity).collect();
    let landed = if ids.is_empty() { ContainsReply { landed: vec![], tip: bal.tip } } else { state.ask(CHAIN, ContainsQuery { ids }, &rid).await? };
    let counted = landed.landed.iter().map(|l| l.is_some_and(|l| l.block_index <= bal.tip.index)).chain(std::iter::repeat(false));
    let pending_reward = mine
        .pending
        .iter()
        .zip(counted)
        .filter(|(_, counted)| !counted)
        .map(|(p, _)| PendingReward {
            receipt_id: p.receipt_id(),
            contract_id: p.reward_tx.contract_id.clone(),
            amount: p.amount(),
            message: "Reward pending inclusion in block".into(),
        })
        .collect();
    let orphaned = orphan_statuses(&state, &mine.orphaned, &rid).await?;
    let last_sync_time = state.tips.last_heard(state.me()).map(|(_, at)| now_ms().saturating_sub(at.elapsed().as_millis() as u64));
    Ok(Json(Balance {
        client_id: client,
        balance: bal.balance,
        pending_reward,
        orphaned,
        next_pending_cursor,
        next_orphaned_cursor,
        chain_tip_index: bal.tip.index,
        chain_tip_hash: bal.tip.hash,
        last_sync_time,
        node_id: state.me().to_owned(),
    }))
}

#[utoipa::path(get, path = "/orphaned_tx", tag = "reads", security(("api_key" = [])),
    params(("client_id" = String, Query, description = "the key's own client"),
        ("limit" = Option<u32>, Query, description = "page size, 1 to 1000 (100)", minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = OrphanedList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn orphaned_tx(State(state): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Result<Json<OrphanedList>, ApiError> {
    let rid = rid(&headers);
    let client = own_client(&headers, &state, &q)?;
    let query = ClientQuery { client_id: client.clone(), limit: page_limit(&q)?, pending_after: None, orphaned_after: query_cursor(&q, "cursor")? };
    let mine = state.client_pending(query, &rid).await?;
    let next = next_cursor(mine.more_orphaned, mine.orphaned.last().map(|o| o.pair.receipt_id()));
    let orphaned = orphan_statuses(&state, &mine.orphaned, &rid).await?;
    Ok(Json(OrphanedList { client_id: client, orphaned, next_cursor: next, node_id: state.me().to_owned() }))
}
