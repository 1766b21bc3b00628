//! A small network for tests: deterministic keys, genesis, pair builders.
#![allow(dead_code)]

use uwl_ledger::{result_hash, Block, Genesis, NetworkParams, NodeKey, TxPair};

pub const T0: u64 = 1_700_000_000_000;

pub struct Net {
    pub genesis: Genesis,
    pub keys: Vec<NodeKey>,
}

impl Net {
    pub fn new(n: usize) -> Self {
        Self::with_params(n, NetworkParams { t_round_ms: 1_000, max_future_ms: 2_000, max_pairs_per_block: 50 })
    }

    pub fn with_params(n: usize, params: NetworkParams) -> Self {
        let keys: Vec<NodeKey> = (0..n).map(|i| NodeKey::from_secret(&format!("node-{}", i + 1), [i as u8 + 1; 32])).collect();
        let genesis = Genesis::new("test-net", T0, keys.iter().map(NodeKey::validator).collect(), params).unwrap();
        Self { genesis, keys }
    }

    pub fn block0(&self) -> Block {
        Block::genesis(&self.genesis)
    }
}

pub fn pair(client: &str, contract: &str, result: u64) -> TxPair {
    TxPair::new(client, contract, 10 + result, result_hash(&serde_json::json!({ "nonce": result })))
}
