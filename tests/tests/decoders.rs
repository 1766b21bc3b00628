//! Every decoder of outside input, fed arbitrary bytes and byte-level
//! mutations of valid inputs: API keys, contract ids, result data of each
//! task kind (then the verification itself), the bus's requests and replies
//! as peers and services send them, blocks and pairs from peers (then the
//! block checks). None may panic; a refusal is an error value.
//!
//! proptest drives the inputs on the stable toolchain (cargo-fuzz targets,
//! which need nightly, are not built yet). `UWL_FUZZ_CASES` sets the executions per
//! target (default 2,000 in the test suite); the long run is
//! `UWL_FUZZ_CASES=5000000 cargo test -p uwl-tests --test decoders -- --nocapture --test-threads 1`
//! (figures in the README).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};
use uwl_bus::proto::*;
use uwl_ledger::testkit::{pair, Net, T0};
use uwl_ledger::{check_block, Block, NodeKey, TxPair};
use uwl_ledger::{Contract, TaskSpec};

fn cases() -> u32 {
    std::env::var("UWL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// Arbitrary bytes, a valid sample as it is, or a valid sample with a few
/// bytes replaced, inserted or removed (structure-aware enough to get past
/// the JSON parser; a signed token rarely survives a mutation).
fn input(samples: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let n = samples.len();
    let originals = samples.clone();
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8);
    let mutated = (0..n, edits).prop_map(move |(i, edits)| {
        let mut b = samples[i].clone();
        for (pos, byte, op) in edits {
            let at = if b.is_empty() { 0 } else { pos % b.len() };
            match op {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        b
    });
    let valid = (0..n).prop_map(move |i| originals[i].clone());
    prop_oneof![1 => proptest::collection::vec(any::<u8>(), 0..512), 1 => valid, 4 => mutated].boxed()
}

/// Runs `check` on `cases()` inputs (it says whether the input decoded);
/// prints the executions; fails (with the smallest input found) if any
/// panics, or if no input got past the decoder (the target would test
/// nothing behind it).
fn fuzz(name: &str, samples: Vec<Vec<u8>>, check: impl Fn(&[u8]) -> bool) {
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let (executions, decoded) = (AtomicU64::new(0), AtomicU64::new(0));
    let result = runner.run(&input(samples), |bytes| {
        executions.fetch_add(1, Ordering::Relaxed);
        if check(&bytes) {
            decoded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (n, d) = (executions.load(Ordering::Relaxed), decoded.load(Ordering::Relaxed));
    println!("{name}: {n} executions ({d} decoded), {} crashes", u8::from(result.is_err()));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(d > 0, "{name}: no input decoded");
}

fn issuer() -> NodeKey {
    NodeKey::from_secret("issuer", [7; 32])
}

fn contract(spec: TaskSpec) -> Contract {
    Contract { spec, seed: 42, client_id: "c1".into(), reward: 5, expires_at: T0 + 60_000 }
}

#[test]
fn api_keys() {
    let key = issuer();
    let samples = (0..4).map(|i| uwl_ingest::ApiKey { client_id: format!("c{i}"), issued_at: T0 + i }.seal(&key).into_bytes()).collect();
    fuzz("api key", samples, |b| uwl_ledger::open_token::<uwl_ingest::ApiKey>(&[key.public_key()], "ak1", &String::from_utf8_lossy(b)).is_ok());
}

#[test]
fn contract_ids() {
    let key = issuer();
    let samples = [TaskSpec::Hash { difficulty_bits: 8 }, TaskSpec::Matmul { n: 4 }].map(|s| contract(s).seal(&key).into_bytes()).to_vec();
    fuzz("contract id", samples, |b| Contract::open(&[key.public_key()], &String::from_utf8_lossy(b)).is_ok());
}

#[test]
fn result_data_of_each_kind_then_verification() {
    for (name, spec) in [("result data (hash)", TaskSpec::Hash { difficulty_bits: 4 }), ("result data (matmul)", TaskSpec::Matmul { n: 3 })] {
        let c = contract(spec);
        let samples = vec![serde_json::to_vec(&uwl_tasks::solve(&uwl_tasks::params(&c))).unwrap_or_default()];
        fuzz(name, samples, |b| {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) else { return false };
            let Ok(r) = uwl_tasks::parse_result(&c, &v) else { return false };
            let _ = uwl_tasks::verify(&c, &r);
            true
        });
    }
}

#[test]
fn bus_requests_and_replies() {
    let p = pair("c1", "k1", 0);
    let samples = vec![
        serde_json::to_vec(&SubmitBatch { items: vec![SubmitRequest { pair: p.clone(), origin: SubmitOrigin::Forwarded, wait_block_ms: 0 }] }).unwrap_or_default(),
        serde_json::to_vec(&ReplicateRequest { from: "node-1".into(), pairs: vec![p.clone()], orphaned: vec![], superseded: vec![] }).unwrap_or_default(),
        serde_json::to_vec(&SyncQuery::from(ContainsQuery { ids: vec![p.identity()] })).unwrap_or_default(),
        serde_json::to_vec(&SyncQuery::from(TipQuery {})).unwrap_or_default(),
        serde_json::to_vec(&MinerQuery::from(ClientQuery { client_id: "c1".into(), limit: 10, pending_after: None, orphaned_after: None })).unwrap_or_default(),
        serde_json::to_vec(&EventsRequest { ack_through: Some(3), after: 3, limit: 16, skip_blocks: 2 }).unwrap_or_default(),
    ];
    fuzz("bus requests", samples, |b| {
        let submit = serde_json::from_slice::<SubmitBatch>(b).inspect(|r| r.items.iter().for_each(|i| drop(i.pair.check()))).is_ok();
        let replicate = serde_json::from_slice::<ReplicateRequest>(b)
            .inspect(|r| r.pairs.iter().chain(r.orphaned.iter().map(|o| &o.pair)).for_each(|p| drop(p.check())))
            .is_ok();
        submit | replicate |
        serde_json::from_slice::<SyncQuery>(b).is_ok() | serde_json::from_slice::<MinerQuery>(b).is_ok() | serde_json::from_slice::<EventsRequest>(b).is_ok()
    });
}

#[test]
fn blocks_and_pairs_from_peers_then_the_block_checks() {
    let net = Net::new(2);
    let parent = net.block0().tip_info();
    let block = Block::mine(&parent, T0 + 10, &net.keys[0], (0..3).map(|i| pair("c1", &format!("k{i}"), 0)).collect());
    let samples = vec![
        serde_json::to_vec(&block).unwrap_or_default(),
        serde_json::to_vec(&block.transactions[0]).unwrap_or_default(),
        serde_json::to_vec(&BlocksReply { blocks: vec![block.clone()], tip: block.tip_info() }).unwrap_or_default(),
    ];
    fuzz("blocks and pairs", samples, |b| {
        let block = serde_json::from_slice::<Block>(b).inspect(|blk| drop(check_block(blk, &parent, &net.genesis, T0 + 1_000))).is_ok();
        let pair = serde_json::from_slice::<TxPair>(b).inspect(|p| drop(p.check())).is_ok();
        let reply = serde_json::from_slice::<BlocksReply>(b)
            .inspect(|r| r.blocks.iter().for_each(|blk| drop(check_block(blk, &parent, &net.genesis, T0 + 1_000))))
            .is_ok();
        block | pair | reply
    });
}
