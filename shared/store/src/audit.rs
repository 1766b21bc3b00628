//! A chain store checked offline (`uwl-admin verify`): the chain by the
//! ledger's rules from block 0 ([`uwl_ledger::audit_chain`]), then what the
//! store keeps beside the blocks (balances, the identity index) against it.

use crate::chain::ChainStore;
use crate::Result;
use uwl_ledger::{audit_chain, Block, ChainAudit, ForkError, Genesis};

/// Blocks decoded at a time.
const PAGE: u64 = 1_000;

/// What the audit found: the chain's figures, or its first faulty block;
/// and every way the store's own records disagree with the chain.
#[derive(Debug)]
pub struct StoreAudit {
    pub chain: std::result::Result<ChainAudit, ForkError>,
    pub mismatches: Vec<String>,
}

impl StoreAudit {
    pub fn is_sound(&self) -> bool {
        self.chain.is_ok() && self.mismatches.is_empty()
    }
}

impl ChainStore {
    /// Every stored balance, by client.
    fn balances(&self) -> Result<std::collections::BTreeMap<String, i64>> {
        let mut stmt = self.conn.prepare("SELECT client_id, balance FROM balances")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|r| r.map_err(Into::into)).collect()
    }

    fn identity_count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM identities", [], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    /// Reads every block in order (a page at a time) and checks them as one
    /// chain; then compares the stored balances and identity index with the
    /// chain. Cost: one pass over the blocks and one look-up per pair.
    pub fn audit(&self, genesis: &Genesis) -> Result<StoreAudit> {
        let mut read_error = None;
        let mut page: Vec<Block> = Vec::new();
        let mut next = 0u64;
        let blocks = std::iter::from_fn(|| {
            if page.is_empty() {
                match self.blocks(next, PAGE) {
                    Ok(p) => page = p.into_iter().rev().collect(),
                    Err(e) => {
                        read_error = Some(e);
                        return None;
                    }
                }
            }
            let b = page.pop()?;
            next = b.index + 1;
            Some(b)
        });
        let chain = audit_chain(genesis, blocks);
        if let Some(e) = read_error {
            return Err(e);
        }
        let mut mismatches = Vec::new();
        if let Ok(a) = &chain {
            if a.tip != Some(self.tip().tip_info()) {
                mismatches.push(format!("the stored tip {:?} is not the chain's last block {:?}", self.tip().tip_info(), a.tip));
            }
            let stored = self.balances()?;
            for client in a.balances.keys().chain(stored.keys()) {
                let (want, got) = (a.balances.get(client).copied().unwrap_or(0), stored.get(client).copied().unwrap_or(0));
                if i128::try_from(want).ok() != Some(i128::from(got)) {
                    mismatches.push(format!("balance of {client:?}: stored {got}, the chain pays {want}"));
                }
            }
            let indexed = self.identity_count()?;
            if indexed != a.pairs {
                mismatches.push(format!("the identity index holds {indexed} identities, the chain {} pairs", a.pairs));
            }
            let mut from = 1;
            loop {
                let blocks = self.blocks(from, PAGE)?;
                let Some(last) = blocks.last() else { break };
                from = last.index + 1;
                for b in &blocks {
                    for p in &b.transactions {
                        let l = self.landed(&p.identity())?;
                        if l.as_ref().map(|l| (l.block_index, l.block_hash, l.receipt_id)) != Some((b.index, b.hash, p.receipt_id())) {
                            mismatches.push(format!("identity {:?} is indexed at {l:?}, the chain has it in block {}", p.identity(), b.index));
                        }
                    }
                }
            }
        }
        mismatches.dedup();
        Ok(StoreAudit { chain, mismatches })
    }
}
