//! Fork choice, leader rotation, and the decision to adopt a peer's blocks.

use crate::block::{Block, TipInfo};
use crate::genesis::{Genesis, Validator};
use crate::validate::{check_fork, ChainRead, ForkError};
use std::cmp::Ordering;

/// Fork choice as a total order: `Less` means `a` wins. Longest chain, then
/// the earlier tip timestamp, then the lower tip hash. Being a total order,
/// the winner among any set of tips does not depend on the order they are
/// compared in.
pub fn prefer(a: &TipInfo, b: &TipInfo) -> Ordering {
    b.index
        .cmp(&a.index)
        .then(a.timestamp.cmp(&b.timestamp))
        .then(a.hash.cmp(&b.hash))
}

/// Whether `candidate` strictly beats `current`.
pub fn is_better(candidate: &TipInfo, current: &TipInfo) -> bool {
    prefer(candidate, current) == Ordering::Less
}

/// `max(0, floor((now - tip_timestamp) / t_round))`; 0 when rounds are off.
pub fn round(tip_timestamp: u64, now_ms: u64, t_round_ms: u64) -> u64 {
    now_ms.saturating_sub(tip_timestamp).checked_div(t_round_ms).unwrap_or(0)
}

/// `(u64_be(tip_hash[0..8]) + round) mod n`, without overflow.
pub fn leader_index(tip: &TipInfo, round: u64, n: usize) -> usize {
    let n = n.max(1) as u64;
    ((tip.hash.prefix_u64() % n + round % n) % n) as usize
}

/// The validator expected to make the block after `tip` at time `now_ms`.
pub fn current_leader<'g>(genesis: &'g Genesis, tip: &TipInfo, now_ms: u64) -> &'g Validator {
    let r = round(tip.timestamp, now_ms, genesis.params.t_round_ms);
    &genesis.validators[leader_index(tip, r, genesis.validators.len())]
}

/// What to do with blocks received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every incoming block is already in our chain.
    Known,
    /// The candidate chain does not beat ours by fork choice.
    NotBetter { candidate: TipInfo },
    /// Replace our blocks after `fork_point` by `blocks` (a plain extension
    /// when `fork_point` is our tip). `deferred` names a later incoming block
    /// that was too far in the future and was left out for now.
    Adopt { fork_point: TipInfo, blocks: Vec<Block>, deferred: Option<ForkError> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    #[error("no blocks")]
    Empty,
    #[error("blocks are not consecutive at index {0}")]
    NotContiguous(u64),
    #[error("block {first_index} does not link to our chain: send earlier blocks")]
    NoCommonAncestor { first_index: u64 },
    #[error("the candidate has a different block 0")]
    GenesisMismatch,
    #[error("candidate rejected: {0}")]
    Invalid(ForkError),
    #[error("candidate deferred: {0}")]
    Deferred(ForkError),
}

/// Decides whether to adopt `incoming` (consecutive blocks from a peer's
/// chain). Work is proportional to the incoming blocks, never to our chain's
/// length: `local` answers point look-ups only.
pub fn plan_adoption(
    local: &(impl ChainRead + ?Sized),
    incoming: &[Block],
    genesis: &Genesis,
    now_ms: u64,
) -> Result<Plan, AdoptError> {
    let last = incoming.last().ok_or(AdoptError::Empty)?;
    if let Some(w) = incoming.windows(2).find(|w| w[1].index != w[0].index + 1) {
        return Err(AdoptError::NotContiguous(w[1].index));
    }
    let Some(k) = incoming
        .iter()
        .position(|b| local.tip_at(b.index).map(|t| t.hash) != Some(b.hash))
    else {
        return Ok(Plan::Known);
    };
    let first = &incoming[k];
    if first.index == 0 {
        return Err(AdoptError::GenesisMismatch);
    }
    let fork_point = local
        .tip_at(first.index - 1)
        .filter(|t| t.hash == first.prev_hash)
        .ok_or(AdoptError::NoCommonAncestor { first_index: first.index })?;
    let ours = local.tip();
    if !is_better(&last.tip_info(), &ours) {
        return Ok(Plan::NotBetter { candidate: last.tip_info() });
    }
    let candidate = &incoming[k..];
    match check_fork(local, &fork_point, candidate, genesis, now_ms) {
        Ok(()) => Ok(Plan::Adopt { fork_point, blocks: candidate.to_vec(), deferred: None }),
        Err(e) if e.error.is_deferred() => {
            let valid = &candidate[..(e.index - first.index) as usize];
            match valid.last() {
                Some(b) if is_better(&b.tip_info(), &ours) => {
                    Ok(Plan::Adopt { fork_point, blocks: valid.to_vec(), deferred: Some(e) })
                }
                _ => Err(AdoptError::Deferred(e)),
            }
        }
        Err(e) => Err(AdoptError::Invalid(e)),
    }
}
