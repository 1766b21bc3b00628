//! Every decoder of outside input, as a fuzz target: bytes in, whether they
//! decoded out. A refusal is an answer; a panic is the bug. The inputs are
//! what the network takes from outside: API keys and contract ids (signed
//! tokens), result data of each task kind (then the verification itself),
//! HTTP request bodies, the bus's requests and replies as peers and
//! services send them, and blocks and pairs from peers (then the block
//! checks, contracts included).
//!
//! Two drivers run the same [`TARGETS`]: cargo-fuzz (`tests/fuzz`,
//! libFuzzer, nightly toolchain) and proptest (`tests/tests/decoders.rs`,
//! stable); [`Target::seeds`] gives each valid inputs to mutate from.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use std::sync::LazyLock;
use uwl_bus::proto::*;
use uwl_ledger::testkit::{self, pair, Net, T0};
use uwl_ledger::{check_block, Block, Contract, TaskSpec, TipInfo, TxPair};

/// One decoder under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// Feeds `bytes` to the decoder (and what runs on what it decoded);
    /// true if they decoded.
    pub run: fn(&[u8]) -> bool,
    /// Valid inputs, for mutation.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target { name: "api_key", run: api_key, seeds: api_key_seeds },
    Target { name: "contract_id", run: contract_id, seeds: contract_id_seeds },
    Target { name: "result_hash", run: result_hash, seeds: result_hash_seeds },
    Target { name: "result_matmul", run: result_matmul, seeds: result_matmul_seeds },
    Target { name: "request_bodies", run: request_bodies, seeds: request_body_seeds },
    Target { name: "bus_messages", run: bus_messages, seeds: bus_message_seeds },
    Target { name: "peer_blocks", run: peer_blocks, seeds: peer_block_seeds },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A test network: its genesis lists the testkit's issuer keys.
static NET: LazyLock<Net> = LazyLock::new(|| Net::new(2));

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn api_key(bytes: &[u8]) -> bool {
    uwl_api::ApiKey::open(&NET.genesis.issuers, &text(bytes)).is_ok()
}

fn api_key_seeds() -> Vec<Vec<u8>> {
    (0..4).map(|i| uwl_api::ApiKey { client_id: format!("c{i}"), issued_at: T0 + i }.seal(&testkit::issuer()).into_bytes()).collect()
}

fn contract(spec: TaskSpec) -> Contract {
    Contract { spec, seed: 42, client_id: "c1".into(), reward: 5, expires_at: T0 + 60_000 }
}

fn contract_id(bytes: &[u8]) -> bool {
    Contract::open(&NET.genesis.issuers, &text(bytes)).is_ok()
}

fn contract_id_seeds() -> Vec<Vec<u8>> {
    [TaskSpec::Hash { difficulty_bits: 8 }, TaskSpec::Matmul { n: 4 }].map(|s| contract(s).seal(&testkit::issuer()).into_bytes()).to_vec()
}

static HASH_TASK: LazyLock<Contract> = LazyLock::new(|| contract(TaskSpec::Hash { difficulty_bits: 4 }));
static MATMUL_TASK: LazyLock<Contract> = LazyLock::new(|| contract(TaskSpec::Matmul { n: 3 }));

/// Decodes a result for `c`, checks its shape, then verifies it.
fn result_for(c: &Contract, bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else { return false };
    let Ok(r) = uwl_tasks::parse_result(c, &v) else { return false };
    let _ = uwl_tasks::verify(c, &r);
    true
}

fn result_hash(bytes: &[u8]) -> bool {
    result_for(&HASH_TASK, bytes)
}

fn result_hash_seeds() -> Vec<Vec<u8>> {
    vec![json(&uwl_tasks::solve(&uwl_tasks::params(&HASH_TASK)))]
}

fn result_matmul(bytes: &[u8]) -> bool {
    result_for(&MATMUL_TASK, bytes)
}

fn result_matmul_seeds() -> Vec<Vec<u8>> {
    vec![json(&uwl_tasks::solve(&uwl_tasks::params(&MATMUL_TASK)))]
}

fn request_bodies(bytes: &[u8]) -> bool {
    serde_json::from_slice::<uwl_api::SubmitWork>(bytes).is_ok()
}

fn request_body_seeds() -> Vec<Vec<u8>> {
    let p = pair("c1", "k1", 0);
    vec![json(&serde_json::json!({
        "client_id": p.client_id(),
        "contract_id": p.reward_tx.contract_id,
        "result_data": {"nonce": 7},
    }))]
}

/// Every pair a message carries goes through the ledger's whole check.
fn check_pairs<'a>(pairs: impl IntoIterator<Item = &'a TxPair>) {
    for p in pairs {
        let _ = p.check_issued(&NET.genesis);
    }
}

fn bus_messages(bytes: &[u8]) -> bool {
    let submit = serde_json::from_slice::<SubmitBatch>(bytes).inspect(|r| check_pairs(r.items.iter().map(|i| &i.pair))).is_ok();
    let replicate = serde_json::from_slice::<ReplicateRequest>(bytes)
        .inspect(|r| check_pairs(r.pairs.iter().chain(r.orphaned.iter().map(|o| &o.pair)).chain(r.superseded.iter().map(|s| &s.pair))))
        .is_ok();
    let queries = serde_json::from_slice::<SyncQuery>(bytes).is_ok()
        | serde_json::from_slice::<MinerQuery>(bytes).is_ok()
        | serde_json::from_slice::<EventsRequest>(bytes).is_ok();
    submit | replicate | queries
}

fn bus_message_seeds() -> Vec<Vec<u8>> {
    let p = pair("c1", "k1", 0);
    vec![
        json(&SubmitBatch { items: vec![SubmitRequest { pair: p.clone(), origin: SubmitOrigin::Forwarded, wait_block_ms: 0, verified: true }] }),
        json(&ReplicateRequest { from: "node-1".into(), pairs: vec![p.clone()], orphaned: vec![], superseded: vec![] }),
        json(&SyncQuery::from(ContainsQuery { ids: vec![p.identity()] })),
        json(&SyncQuery::from(TipQuery {})),
        json(&MinerQuery::from(ClientQuery { client_id: "c1".into(), limit: 10, pending_after: None, orphaned_after: None })),
        json(&EventsRequest { ack_through: Some(3), after: 3, limit: 16, skip_blocks: 2 }),
    ]
}

fn parent() -> TipInfo {
    NET.block0().tip_info()
}

fn peer_blocks(bytes: &[u8]) -> bool {
    let checked = |b: &Block| drop(check_block(b, &parent(), &NET.genesis, T0 + 1_000));
    let block = serde_json::from_slice::<Block>(bytes).inspect(checked).is_ok();
    let pair = serde_json::from_slice::<TxPair>(bytes).inspect(|p| check_pairs([p])).is_ok();
    let reply = serde_json::from_slice::<BlocksReply>(bytes).inspect(|r| r.blocks.iter().for_each(checked)).is_ok();
    block | pair | reply
}

fn peer_block_seeds() -> Vec<Vec<u8>> {
    let block = Block::mine(&parent(), T0 + 10, &NET.keys[0], (0..3).map(|i| pair("c1", &format!("k{i}"), 0)).collect());
    vec![json(&block), json(&block.transactions[0]), json(&BlocksReply { blocks: vec![block.clone()], tip: block.tip_info() })]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each target decodes its own seeds (else mutating them tests nothing
    /// behind the decoder) and refuses an empty input.
    #[test]
    fn every_target_decodes_its_seeds_and_refuses_nothing() {
        for t in TARGETS {
            let seeds = (t.seeds)();
            assert!(!seeds.is_empty(), "{}", t.name);
            for s in &seeds {
                assert!((t.run)(s), "{} does not decode its seed {}", t.name, String::from_utf8_lossy(s));
            }
            assert!(!(t.run)(b""), "{} decoded nothing", t.name);
        }
        assert!(target("api_key").is_some() && target("nope").is_none());
    }
}
