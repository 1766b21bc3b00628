//! `POST /submit_work`: the checks in the documented order, then placement.

use crate::error::ApiError;
use crate::http::{now_ms, rid};
use crate::state::Shared;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use uwl_api::{ErrorBody, SubmitAnswer, SubmitStatus, SubmitWork};
use uwl_bus::proto::{BlockRef, SubmitStatus as MinerStatus, VerifyReply, VerifyRequest};
use uwl_bus::{BusError, ErrorCode};
use uwl_ledger::{result_hash, Contract, ReceiptId, TxPair};

const IN_BLOCK_MESSAGE: &str = "Reward is in a block (not final: a chain replacement can move it; it then lands again)";
const PENDING_MESSAGE: &str = "Reward will be applied when included in a block";

/// The 200 answer.
struct Placed<'a> {
    status: SubmitStatus,
    receipt_id: ReceiptId,
    block: Option<BlockRef>,
    served_by: &'a str,
    leader: &'a str,
    fallback: bool,
    replicated: bool,
}

impl Placed<'_> {
    fn answer(self) -> Json<SubmitAnswer> {
        let b = self.block.as_ref();
        Json(SubmitAnswer {
            status: self.status,
            receipt_id: self.receipt_id,
            message: if b.is_some() { IN_BLOCK_MESSAGE } else { PENDING_MESSAGE }.to_owned(),
            served_by: self.served_by.to_owned(),
            leader: self.leader.to_owned(),
            fallback: self.fallback,
            replicated: self.replicated,
            in_block: b.is_some(),
            block_index: b.map(|b| b.index),
            block_hash: b.map(|b| b.hash),
            confirmations: b.map(|b| b.confirmations),
        })
    }
}

/// `POST /submit_work`, checks in the documented order.
#[utoipa::path(post, path = "/submit_work", tag = "work", security(("api_key" = [])), request_body = SubmitWork,
    description = "Checks in this order: 401, 400/413, 403, 400, 200/409, 410, 422; a refused submission changes nothing.",
    responses(
        (status = 200, description = "taken (or taken before: already_processed)", body = SubmitAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "another result for this task was taken", body = ErrorBody),
        (status = 410, description = "the task expired", body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, description = "the result does not solve the task", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, description = "retry after Retry-After", body = ErrorBody)))]
pub(crate) async fn submit_work(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SubmitAnswer>, ApiError> {
    let rid = rid(&headers);
    let client = state.auth.authenticate(&headers, now_ms())?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => ApiError::PayloadTooLarge(state.settings.max_body_bytes),
        other => ApiError::BadRequest(other.body_text()),
    })?;
    let body: SubmitWork =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body must be {{client_id, contract_id, result_data}}: {e}")))?;
    if body.client_id.len() > 128 || body.contract_id.len() > 2_048 {
        return Err(ApiError::BadRequest("client_id or contract_id is too long".into()));
    }
    if body.client_id != client {
        return Err(ApiError::Forbidden("client_id is not the API key's client".into()));
    }
    let contract = Contract::open(&state.genesis.issuers, &body.contract_id)
        .map_err(|_| ApiError::Forbidden("contract_id is not a task issued by this network".into()))?;
    if contract.client_id != client {
        return Err(ApiError::Forbidden("this task was issued to another client".into()));
    }
    uwl_tasks::parse_result(&contract, &body.result_data).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let pair = TxPair::new(&client, &body.contract_id, contract.reward, result_hash(&body.result_data));
    let receipt_id = pair.receipt_id();

    // The checks that need no state come first: expiry, then (for a task
    // not expired) the verifier's verdict. They are judged only after the
    // pair's status, in the documented order (200/409, then 410, then
    // 422): the miner that receives the pair is the one authority on that
    // status; it answers a pair it or its chain holds whatever the verdict,
    // and stores only a verified one.
    let phase = |name: &str, since: std::time::Instant| state.metrics.phases.with_label_values(&[name]).observe(since.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let verdict = if contract.is_expired(now_ms()) {
        Err(ApiError::Expired { expires_at: contract.expires_at })
    } else {
        judge(state.verify.call(VerifyRequest { contract: contract.clone(), result_data: body.result_data }, &rid).await)
    };
    phase("checks", t);

    // Waiting for the block starts before the pair is placed: no block
    // carrying it can be announced unseen in between.
    let waiting = (verdict.is_ok() && !state.settings.wait_block.is_zero()).then(|| state.confirmations.expect(&receipt_id));
    let t = std::time::Instant::now();
    let routed = state.route(&pair, verdict.is_ok(), &rid).await?;
    phase("place", t);
    let r = routed.reply;
    let status = match r.status {
        MinerStatus::Accepted => SubmitStatus::Accepted,
        MinerStatus::AlreadyPending | MinerStatus::AlreadyInChain => SubmitStatus::AlreadyProcessed,
        MinerStatus::Conflict => return Err(ApiError::Conflict { existing: r.existing_receipt.unwrap_or(r.receipt_id) }),
        MinerStatus::Refused => {
            return Err(verdict.err().unwrap_or_else(|| ApiError::unavailable(format!("{} refused a verified pair", r.served_by))))
        }
    };
    let mut block = r.in_block.clone();
    if let Some(waiting) = waiting.filter(|_| block.is_none()) {
        let t = std::time::Instant::now();
        block = waiting.wait(state.settings.wait_block).await;
        phase("block", t);
    }
    let placed = Placed { status, receipt_id, block, served_by: &r.served_by, leader: &routed.leader, fallback: routed.fallback, replicated: r.replicated };
    Ok(placed.answer())
}

/// The verifier's answer as the request's outcome: 400 for a result of the
/// wrong shape, 422 for one that does not solve the task.
fn judge(verdict: Result<VerifyReply, BusError>) -> Result<(), ApiError> {
    let verdict = verdict.map_err(|e| match e {
        BusError::Remote(r) if r.code == ErrorCode::BadRequest => ApiError::BadRequest(r.message),
        other => ApiError::unavailable(format!("verifier: {other}")),
    })?;
    if let Some(shape) = verdict.shape_error {
        return Err(ApiError::BadRequest(shape));
    }
    if !verdict.valid {
        return Err(ApiError::InvalidResult("the result does not solve the task".into()));
    }
    Ok(())
}
