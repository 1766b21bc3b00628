//! A small deterministic network for tests and benchmarks: fixed keys, a
//! genesis, pair and chain builders. Never used by a running node.

use crate::{result_hash, Block, Genesis, NetworkParams, NodeKey, TxPair};

/// Genesis time of every test network.
pub const T0: u64 = 1_700_000_000_000;

#[derive(Debug)]
pub struct Net {
    pub genesis: Genesis,
    pub keys: Vec<NodeKey>,
}

impl Net {
    /// `n` validators `node-1..node-n`; 1 s rounds, 2 s future limit, 50 pairs per block.
    pub fn new(n: usize) -> Self {
        Self::with_params(n, NetworkParams { t_round_ms: 1_000, max_future_ms: 2_000, max_pairs_per_block: 50 })
    }

    pub fn with_params(n: usize, params: NetworkParams) -> Self {
        let keys: Vec<NodeKey> =
            (0..n).map(|i| NodeKey::from_secret(&format!("node-{}", i + 1), [i as u8 + 1; 32])).collect();
        let genesis = match Genesis::new("test-net", T0, keys.iter().map(NodeKey::validator).collect(), params) {
            Ok(g) => g,
            Err(e) => panic!("test genesis: {e}"),
        };
        Self { genesis, keys }
    }

    pub fn block0(&self) -> Block {
        Block::genesis(&self.genesis)
    }

    /// `len` blocks after `parent`, mined in turn by the validators, one
    /// millisecond apart, each with `per_block` fresh pairs tagged `tag`.
    pub fn extend(&self, parent: &Block, len: usize, per_block: usize, tag: &str) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::with_capacity(len);
        for i in 0..len {
            let p = out.last().unwrap_or(parent);
            let txs = (0..per_block).map(|j| pair(&format!("client-{}", j % 7), &format!("{tag}-{}-{j}", p.index + 1), 0)).collect();
            out.push(Block::mine(&p.tip_info(), p.timestamp + 1, &self.keys[i % self.keys.len()], txs));
        }
        out
    }
}

/// A well-formed pair; `result` picks the result (and the amount, 10 + result).
pub fn pair(client: &str, contract: &str, result: u64) -> TxPair {
    TxPair::new(client, contract, 10 + result, result_hash(&serde_json::json!({ "nonce": result })))
}
