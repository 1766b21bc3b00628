//! Cost of the ledger's durable operations as the chain grows.
//!
//! For each chain length (default 1,000 and 100,000; pass others as
//! arguments) it builds a chain directly into a fresh store and prints the
//! median of: a depth-3 chain replacement including planning, validation,
//! the store transaction and pending reconciliation; a balance look-up; a
//! reopen of the store. It then prints the ratio of each median to the
//! shortest chain's, against the target `<= 1.5x + 1 ms`, the block
//! append rate with `synchronous=FULL`, and what the ledger's contract
//! checks cost (per pair, cold and memoized; a 1,000-pair block).
//!
//! Run: `cargo run --release -p uwl-bench --bin chain-cost [LEN ...]`

use std::time::{Duration, Instant};
use uwl_ledger::testkit::{pair, Net, T0};
use uwl_ledger::{plan_adoption, reconcile, Plan};
use uwl_store::{ChainStore, Mempool, Origin};

const SAMPLES: usize = 31;

struct Row {
    len: u64,
    replace: Duration,
    balance: Duration,
    reopen: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn build(net: &Net, dir: &std::path::Path, len: u64) -> ChainStore {
    let mut store = ChainStore::open(&dir.join("chain.sqlite"), &net.genesis).expect("open store");
    let mut parent = net.block0();
    let mut left = len;
    while left > 0 {
        let n = left.min(10_000) as usize;
        let blocks = net.extend(&parent, n, 1, "bulk");
        store.apply(parent.index, &blocks, T0).expect("bulk append");
        parent = blocks[n - 1].clone();
        left -= n as u64;
    }
    store
}

fn measure(net: &Net, len: u64) -> Row {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let mut store = build(net, dir.path(), len);
    eprintln!("built {len} blocks in {:.1} s", t.elapsed().as_secs_f64());
    let mut mempool = Mempool::open(&dir.path().join("mempool.sqlite")).expect("mempool");
    let pending: Vec<_> = (0..50).map(|i| pair("client-9", &format!("pending-{i}"), 0)).collect();
    let batch: Vec<_> = pending.iter().map(|p| (p, Origin::Local)).collect();
    mempool.insert_many(&batch, T0).expect("pending");

    // depth-3 replacement: orphan the last 3 blocks, adopt a 4-block fork
    let mut replace = Vec::new();
    for i in 0..SAMPLES {
        let tip = store.tip().index;
        let fork_parent = store.block(tip - 3).expect("read").expect("fork parent");
        let fork = net.extend(&fork_parent, 4, 10, &format!("fork{i}"));
        let now = fork[3].timestamp;
        let t = Instant::now();
        let slice = store.slice_for(&fork).expect("slice");
        let Ok(Plan::Adopt { fork_point, blocks, .. }) = plan_adoption(&slice, &fork, &net.genesis, now) else {
            panic!("fork not adopted")
        };
        let replaced = store.apply(fork_point.index, &blocks, now).expect("replace");
        let pend = mempool.pending(1_000).expect("pending");
        let ids = replaced.orphaned.iter().flat_map(|b| &b.transactions).chain(&pend).map(|p| p.identity());
        let ids: Vec<_> = ids.collect();
        let winning = store.landed_many(&ids).expect("landed");
        let r = reconcile(&winning, &replaced.orphaned, &pend);
        mempool.apply_reconciliation(&r, Some(&store.tip().tip_info()), None, now).expect("reconcile");
        replace.push(t.elapsed());
        assert_eq!(replaced.orphaned.len(), 3);
    }

    let mut balance = Vec::new();
    for i in 0..1_000 {
        let client = format!("client-{}", i % 7);
        let t = Instant::now();
        std::hint::black_box(store.balance(&client).expect("balance"));
        balance.push(t.elapsed());
    }

    drop(store);
    let mut reopen = Vec::new();
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let s = ChainStore::open(&dir.path().join("chain.sqlite"), &net.genesis).expect("reopen");
        reopen.push(t.elapsed());
        assert_eq!(s.blocks_read(), 1);
    }
    Row { len, replace: median(replace), balance: median(balance), reopen: median(reopen) }
}

fn append_rate(net: &Net) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = ChainStore::open(&dir.path().join("chain.sqlite"), &net.genesis).expect("open");
    let blocks = net.extend(&net.block0(), 300, 10, "append");
    let t = Instant::now();
    for b in &blocks {
        store.apply(b.index - 1, std::slice::from_ref(b), T0).expect("append");
    }
    let s = t.elapsed().as_secs_f64();
    (blocks.len() as f64 / s, blocks.len() as f64 * 10.0 / s)
}

/// Pairs in the block whose whole check is timed.
const CHECKED_BLOCK: usize = 1_000;

/// What the ledger's contract checks cost: per pair, for contracts this
/// process has not opened yet (a signature verification each) and for ones
/// it has (the memo); and `check_block` of a full block, first and again.
fn contract_checks(net: &Net) -> (Duration, Duration, Duration, Duration) {
    let pairs: Vec<_> = (0..10_000).map(|i| pair("client-c", &format!("checked-{i}"), 0)).collect();
    let per_pair = |pairs: &[uwl_ledger::TxPair]| {
        let t = Instant::now();
        for p in pairs {
            p.check_issued(&net.genesis).expect("issued");
        }
        t.elapsed() / pairs.len() as u32
    };
    let (cold, warm) = (per_pair(&pairs), per_pair(&pairs));
    let txs: Vec<_> = (0..CHECKED_BLOCK).map(|i| pair("client-b", &format!("block-{i}"), 0)).collect();
    let mut params = net.genesis.params.clone();
    params.max_pairs_per_block = CHECKED_BLOCK as u32;
    let mut genesis = net.genesis.clone();
    genesis.params = params;
    let parent = net.block0().tip_info();
    let block = uwl_ledger::Block::mine(&parent, T0 + 1, &net.keys[0], txs);
    let timed = || {
        let t = Instant::now();
        uwl_ledger::check_block(&block, &parent, &genesis, T0 + 10).expect("valid block");
        t.elapsed()
    };
    let (block_cold, block_warm) = (timed(), timed());
    (cold, warm, block_cold, block_warm)
}

fn main() {
    let mut lens: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.replace([',', '_'], "").parse().ok()).collect();
    if lens.is_empty() {
        lens = vec![1_000, 100_000];
    }
    let net = Net::new(2);
    let rows: Vec<Row> = lens.iter().map(|l| measure(&net, *l)).collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("chain-cost: SQLite WAL, synchronous=FULL; {cores} cores; medians of {SAMPLES} (balance: 1,000)");
    println!("{:>12} | {:>28} | {:>16} | {:>12}", "blocks", "depth-3 replace + reconcile", "balance look-up", "reopen");
    for r in &rows {
        println!("{:>12} | {:>28} | {:>16} | {:>12}", r.len, ms(r.replace), ms(r.balance), ms(r.reopen));
    }
    let base = &rows[0];
    let mut all_ok = true;
    for r in &rows[1..] {
        for (name, a, b) in [("replace", base.replace, r.replace), ("balance", base.balance, r.balance), ("reopen", base.reopen, r.reopen)] {
            let ratio = b.as_secs_f64() / a.as_secs_f64();
            let ok = b <= a.mul_f64(1.5) + Duration::from_millis(1);
            all_ok &= ok;
            println!(
                "{name:>8} {} -> {}: ratio {ratio:.2}, target <= 1.5x + 1 ms: {}",
                base.len,
                r.len,
                if ok { "met" } else { "NOT met" }
            );
        }
    }
    let (bps, pps) = append_rate(&net);
    println!("append, one block per transaction (fsync), 10 pairs per block: {bps:.0} blocks/s = {pps:.0} pairs/s");
    let (cold, warm, block_cold, block_warm) = contract_checks(&net);
    println!(
        "contract checks (TxPair::check_issued): {:.1} us/pair the first time a process sees a contract (signature), {:.1} us/pair after (memo); \
         check_block of {CHECKED_BLOCK} pairs: {} first, {} again",
        cold.as_secs_f64() * 1e6,
        warm.as_secs_f64() * 1e6,
        ms(block_cold),
        ms(block_warm)
    );
    if !all_ok {
        std::process::exit(1);
    }
}
