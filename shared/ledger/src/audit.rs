//! A whole chain checked from block 0, offline: every rule a node applies
//! to a block it receives, plus what only the whole chain shows (each
//! identity once), and the balances recomputed from the pairs. What a
//! store keeps beside its blocks (balances, the identity index) is then
//! compared with this.

use crate::block::{Block, TipInfo};
use crate::genesis::Genesis;
use crate::tx::{Identity, MAX_AMOUNT};
use crate::validate::{check_block, BlockError, ForkError};
use std::collections::{BTreeMap, HashSet};

/// What a valid chain amounts to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainAudit {
    pub tip: Option<TipInfo>,
    pub blocks: u64,
    pub pairs: u64,
    /// Recomputed from the pairs, by client (wider than any stored balance).
    pub balances: BTreeMap<String, u128>,
}

/// Checks `blocks` (block 0 first, in order) as one chain of `genesis`:
/// block 0 is the genesis's, each later block passes [`check_block`]
/// against its parent (a timestamp ahead of the clock is not a fault here:
/// the chain is audited after the fact), and no identity appears twice.
/// Stops at the first fault, naming the block.
pub fn audit_chain(genesis: &Genesis, blocks: impl IntoIterator<Item = Block>) -> Result<ChainAudit, ForkError> {
    let mut out = ChainAudit::default();
    let mut seen: HashSet<Identity> = HashSet::new();
    let mut parent: Option<TipInfo> = None;
    for block in blocks {
        let fail = |error| ForkError { index: block.index, error };
        match parent {
            None => {
                if block != Block::genesis(genesis) {
                    return Err(fail(BlockError::BadHash));
                }
            }
            Some(p) => {
                match check_block(&block, &p, genesis, u64::MAX) {
                    Ok(()) | Err(BlockError::Deferred { .. }) => {}
                    Err(e) => return Err(fail(e)),
                }
                for pair in &block.transactions {
                    if !seen.insert(pair.identity()) {
                        return Err(fail(BlockError::DuplicateIdentity(pair.identity())));
                    }
                    let balance = out.balances.entry(pair.client_id().to_owned()).or_default();
                    *balance += u128::from(pair.amount());
                    if *balance > u128::from(MAX_AMOUNT) {
                        return Err(fail(BlockError::BalanceOverflow(pair.client_id().to_owned())));
                    }
                    out.pairs += 1;
                }
            }
        }
        out.blocks += 1;
        parent = Some(block.tip_info());
    }
    out.tip = parent;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Net as TestNet;

    #[test]
    fn a_sound_chain_adds_up_and_every_kind_of_fault_is_named_by_its_block() {
        let net = TestNet::new(2);
        let b0 = net.block0();
        let chain: Vec<Block> = std::iter::once(b0.clone()).chain(net.extend(&b0, 5, 3, "a")).collect();
        let audit = audit_chain(&net.genesis, chain.clone()).expect("sound");
        assert_eq!((audit.blocks, audit.pairs), (6, 15));
        assert_eq!(audit.tip, chain.last().map(Block::tip_info));
        let total: u128 = audit.balances.values().sum();
        assert_eq!(total, chain.iter().flat_map(|b| &b.transactions).map(|p| u128::from(p.amount())).sum::<u128>());

        // a pair's amount changed after signing
        let mut forged = chain.clone();
        forged[3].transactions[0].reward_tx.amount += 1;
        assert_eq!(audit_chain(&net.genesis, forged).map_err(|e| (e.index, e.error)), Err((3, BlockError::BadHash)));
        // a block left out
        let mut gap = chain.clone();
        gap.remove(2);
        assert!(matches!(audit_chain(&net.genesis, gap), Err(ForkError { index: 3, error: BlockError::BadIndex { .. } })));
        // another network's block 0
        let other = TestNet::new(3);
        let mut foreign = chain.clone();
        foreign[0] = other.block0();
        assert_eq!(audit_chain(&net.genesis, foreign).map_err(|e| e.index), Err(0));
        // an identity paid twice, in two validly signed blocks
        let again = Block::mine(&chain[5].tip_info(), chain[5].timestamp + 1, &net.keys[0], vec![chain[1].transactions[0].clone()]);
        let twice: Vec<Block> = chain.iter().cloned().chain([again]).collect();
        assert!(matches!(audit_chain(&net.genesis, twice), Err(ForkError { index: 6, error: BlockError::DuplicateIdentity(_) })));
        // two validly signed blocks whose payments to one client pass 2^63-1
        let h = crate::result_hash(&serde_json::json!({"nonce": 1}));
        let whale = |tag: &str| crate::TxPair::new("whale", &crate::testkit::contract_id("whale", tag, MAX_AMOUNT), MAX_AMOUNT, h);
        let w1 = Block::mine(&chain[5].tip_info(), chain[5].timestamp + 1, &net.keys[0], vec![whale("a")]);
        let w2 = Block::mine(&w1.tip_info(), w1.timestamp + 1, &net.keys[1], vec![whale("b")]);
        let over: Vec<Block> = chain.iter().cloned().chain([w1.clone()]).collect();
        assert!(audit_chain(&net.genesis, over).is_ok(), "one payment of 2^63-1 fits");
        let over: Vec<Block> = chain.iter().cloned().chain([w1, w2]).collect();
        assert!(matches!(audit_chain(&net.genesis, over), Err(ForkError { index: 7, error: BlockError::BalanceOverflow(c) }) if c == "whale"));
    }
}
