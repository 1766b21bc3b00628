//! A small deterministic network for tests and benchmarks: fixed keys, a
//! genesis, pair and chain builders. Never used by a running node.

use crate::{result_hash, Block, Contract, Genesis, Hash32, KindBounds, NetworkParams, NodeKey, TaskBounds, TaskSpec, TxPair, MAX_AMOUNT};

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
        Self::with_params(n, NetworkParams { t_round_ms: 1_000, max_future_ms: 2_000, max_pairs_per_block: 50, tasks: bounds() })
    }

    pub fn with_params(n: usize, params: NetworkParams) -> Self {
        let keys: Vec<NodeKey> =
            (0..n).map(|i| NodeKey::from_secret(&format!("node-{}", i + 1), [i as u8 + 1; 32])).collect();
        let genesis = match Genesis::new("test-net", T0, keys.iter().map(NodeKey::validator).collect(), issuers(), params) {
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

/// The issuer key of every test network (listed first in its genesis).
pub fn issuer() -> NodeKey {
    NodeKey::from_secret("issuer", [0xee; 32])
}

/// The issuer's listed successor (key rotation).
pub fn successor() -> NodeKey {
    NodeKey::from_secret("issuer-2", [0xef; 32])
}

/// The issuer keys a test genesis lists: [`issuer`], then [`successor`].
pub fn issuers() -> Vec<crate::PublicKey> {
    vec![issuer().public_key(), successor().public_key()]
}

/// Task bounds of test networks: every reward a store can hold (so that
/// balance overflows stay testable with real contracts).
pub fn bounds() -> TaskBounds {
    TaskBounds {
        matmul: KindBounds { min: 1, max: 256, max_reward: MAX_AMOUNT },
        hash: KindBounds { min: 1, max: 64, max_reward: MAX_AMOUNT },
    }
}

/// A real contract id: a hash task tagged `tag`, issued by [`issuer`] to
/// `client`, paying `reward`. The same arguments give the same id.
pub fn contract_id(client: &str, tag: &str, reward: u64) -> String {
    let digest = Hash32::digest(&[b"uwl/testkit/seed", tag.as_bytes()]);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&digest.0[..8]);
    let contract = Contract {
        spec: TaskSpec::Hash { difficulty_bits: 4 },
        seed: u64::from_le_bytes(seed),
        client_id: client.to_owned(),
        reward,
        expires_at: T0 + 86_400_000,
    };
    contract.seal(&issuer())
}

/// A valid pair for the contract [`contract_id`]`(client, tag, reward)`;
/// `result` picks the result (same contract, another result: same identity).
pub fn issued(client: &str, tag: &str, reward: u64, result: u64) -> TxPair {
    TxPair::new(client, &contract_id(client, tag, reward), reward, result_hash(&serde_json::json!({ "nonce": result })))
}

/// A valid pair paying 10: [`issued`]`(client, tag, 10, result)`.
pub fn pair(client: &str, tag: &str, result: u64) -> TxPair {
    issued(client, tag, 10, result)
}
