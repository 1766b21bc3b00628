//! An in-memory chain with the same rules as the durable store: the model
//! the property tests run many simulated nodes on.

use crate::block::{Block, TipInfo};
use crate::genesis::Genesis;
use crate::tx::Identity;
use crate::validate::{ChainRead, ChainView, Landed};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct MemChain {
    blocks: Vec<Block>,
    landed: HashMap<Identity, Landed>,
}

impl MemChain {
    pub fn new(genesis: &Genesis) -> Self {
        Self { blocks: vec![Block::genesis(genesis)], landed: HashMap::new() }
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub fn tip_block(&self) -> &Block {
        &self.blocks[self.blocks.len() - 1]
    }

    /// Replaces every block after `fork_point` by `blocks` (already
    /// validated) and returns the orphaned ones.
    pub fn apply(&mut self, fork_point: u64, blocks: Vec<Block>) -> Vec<Block> {
        let orphaned = self.blocks.split_off(fork_point as usize + 1);
        for pair in orphaned.iter().flat_map(|b| &b.transactions) {
            self.landed.remove(&pair.identity());
        }
        for b in &blocks {
            for pair in &b.transactions {
                self.landed.insert(pair.identity(), Landed { block_index: b.index, block_hash: b.hash, receipt_id: pair.receipt_id() });
            }
        }
        self.blocks.extend(blocks);
        orphaned
    }

    /// Confirmed balance by scanning (a model, not a store).
    pub fn balance(&self, client_id: &str) -> u64 {
        self.blocks
            .iter()
            .flat_map(|b| &b.transactions)
            .filter(|p| p.client_id() == client_id)
            .map(|p| p.amount())
            .sum()
    }
}

impl ChainView for MemChain {
    fn landed(&self, id: &Identity) -> Option<Landed> {
        self.landed.get(id).copied()
    }
}

impl ChainRead for MemChain {
    fn tip(&self) -> TipInfo {
        self.tip_block().tip_info()
    }
    fn tip_at(&self, index: u64) -> Option<TipInfo> {
        self.blocks.get(index as usize).map(Block::tip_info)
    }
}
