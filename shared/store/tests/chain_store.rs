#![allow(clippy::unwrap_used)] // test fixtures: a failed unwrap is a failed test
//! Chain store: round trip, replacement, failure atomicity, O(1) reopen,
//! indexed look-ups, and the store driving the pure adoption rules.

use uwl_ledger::testkit::{issued, pair, Net, T0};
use uwl_ledger::{plan_adoption, Block, Genesis, Identity, NetworkParams, Plan, TipInfo};
use uwl_store::{ChainStore, StoreError};

fn open(dir: &tempfile::TempDir, g: &Genesis) -> ChainStore {
    ChainStore::open(&dir.path().join("chain.sqlite"), g).unwrap()
}

fn balances(store: &ChainStore) -> Vec<u64> {
    (0..7).map(|c| store.balance(&format!("client-{c}")).unwrap()).collect()
}

#[test]
fn blocks_round_trip_and_survive_reopen() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let blocks = net.extend(&net.block0(), 5, 3, "a");
    {
        let mut s = open(&dir, &net.genesis);
        assert_eq!(s.tip(), &net.block0());
        let r = s.apply(0, &blocks, T0).unwrap();
        assert!(r.orphaned.is_empty() && r.event.is_none());
    }
    let s = open(&dir, &net.genesis);
    assert_eq!(s.tip(), &blocks[4]);
    assert_eq!(s.blocks(1, 100).unwrap(), blocks);
    assert_eq!(s.block(3).unwrap().as_ref(), Some(&blocks[2]));
    assert_eq!(s.block(6).unwrap(), None);
    let total: u64 = blocks.iter().flat_map(|b| &b.transactions).map(|p| p.amount()).sum();
    assert_eq!(balances(&s).iter().sum::<u64>(), total);
    let p = &blocks[1].transactions[2];
    let landed = s.landed(&p.identity()).unwrap().unwrap();
    assert_eq!((landed.block_index, landed.receipt_id), (2, p.receipt_id()));
    assert_eq!(s.receipt(&p.receipt_id()).unwrap(), Some((p.identity(), landed)));
    assert_eq!(s.landed(&Identity { client_id: "x".into(), contract_id: "y".into() }).unwrap(), None);
    assert_eq!(s.balance("nobody").unwrap(), 0);
}

#[test]
fn a_store_refuses_another_networks_genesis() {
    let net = Net::new(2);
    let other = Net::with_params(2, NetworkParams { t_round_ms: 5, ..net.genesis.params.clone() });
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir, &net.genesis));
    let err = ChainStore::open(&dir.path().join("chain.sqlite"), &other.genesis).unwrap_err();
    assert!(matches!(err, StoreError::GenesisMismatch { .. }), "{err}");
}

#[test]
fn replacement_undoes_balances_archives_orphans_and_writes_the_event() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, &net.genesis);
    let ours = net.extend(&net.block0(), 3, 2, "ours");
    s.apply(0, &ours, T0).unwrap();
    let theirs = net.extend(&ours[0], 3, 1, "theirs");
    let r = s.apply(1, &theirs, T0 + 5).unwrap();
    assert_eq!(r.orphaned, ours[1..].to_vec());
    let (seq, ev) = r.event.unwrap();
    assert_eq!(ev.old_tip, ours[2].tip_info());
    assert_eq!(ev.new_tip, theirs[2].tip_info());
    assert_eq!(ev.fork_point, ours[0].tip_info());
    assert_eq!(s.tip(), &theirs[2]);
    // balances equal the sum of the rewards now in the chain
    let chain: Vec<Block> = s.blocks(0, 100).unwrap();
    for c in 0..7 {
        let client = format!("client-{c}");
        let want: u64 = chain.iter().flat_map(|b| &b.transactions).filter(|p| p.client_id() == client).map(|p| p.amount()).sum();
        assert_eq!(s.balance(&client).unwrap(), want, "{client}");
    }
    for p in ours[1..].iter().flat_map(|b| &b.transactions) {
        assert_eq!(s.landed(&p.identity()).unwrap(), None);
    }
    assert_eq!(s.orphaned_block_count().unwrap(), 2);
    let stats = s.stats().unwrap();
    assert_eq!((stats.replacements_total, stats.last_replacement_depth, stats.orphaned_blocks_total), (1, 2, 2));
    // ours: node-1, node-2, node-1 mined 1..3; block 1 stays, theirs adds node-1, node-2, node-1 after it
    let by: Vec<(String, u64)> = stats.blocks_by_creator.into_iter().collect();
    assert_eq!(by, vec![("node-1".to_owned(), 3), ("node-2".to_owned(), 1)]);
    assert_eq!(s.index_of(&theirs[1].hash).unwrap(), Some(3));
    assert_eq!(s.index_of(&ours[2].hash).unwrap(), None);
    // the event is durable: a reopened store still has it until it is deleted
    drop(s);
    let s = open(&dir, &net.genesis);
    let events = s.events_after(0, 10).unwrap();
    assert_eq!(events, vec![(seq, ev)]);
    s.delete_events_through(seq).unwrap();
    assert!(s.events_after(0, 10).unwrap().is_empty());
}

fn snapshot(s: &ChainStore) -> (TipInfo, Vec<Block>, Vec<u64>, u64, usize) {
    (s.tip().tip_info(), s.blocks(0, 1000).unwrap(), balances(s), s.orphaned_block_count().unwrap(), s.events_after(0, 10).unwrap().len())
}

#[test]
fn a_failure_in_the_middle_of_a_replacement_leaves_the_old_chain() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, &net.genesis);
    let ours = net.extend(&net.block0(), 4, 2, "ours");
    s.apply(0, &ours, T0).unwrap();
    let before = snapshot(&s);

    // (1) the third new block does not link: found after two blocks were written
    let mut theirs = net.extend(&ours[0], 4, 1, "theirs");
    theirs[2].prev_hash = uwl_ledger::Hash32::digest(&[b"nowhere"]);
    let err = s.apply(1, &theirs, T0).unwrap_err();
    assert!(matches!(err, StoreError::BadLink { index: 4, parent: 3 }), "{err}");
    assert_eq!(snapshot(&s), before);

    // (2) an amount the store cannot hold, in the third new block
    let mut theirs = net.extend(&ours[0], 4, 1, "theirs");
    let key = &net.keys[0];
    let mut big = pair("client-1", "huge", 0);
    big.reward_tx.amount = u64::MAX;
    theirs[2] = Block::mine(&theirs[1].tip_info(), theirs[1].timestamp, key, vec![big]);
    let err = s.apply(1, &theirs[..3], T0).unwrap_err();
    assert!(matches!(err, StoreError::Overflow(_)), "{err}");
    assert_eq!(snapshot(&s), before);

    // (3) an identity of the surviving prefix again: named, nothing changes
    let dup = ours[0].transactions[1].clone();
    let b = Block::mine(&ours[0].tip_info(), ours[0].timestamp + 1, key, vec![pair("client-2", "fresh", 0), dup.clone()]);
    let err = s.apply(1, &[b], T0).unwrap_err();
    let StoreError::DuplicateIdentities(ids) = err else { panic!("{err}") };
    assert_eq!(ids, vec![dup.identity()]);
    assert_eq!(snapshot(&s), before);

    drop(s);
    assert_eq!(snapshot(&open(&dir, &net.genesis)), before, "nothing of the failed replacements reached the disk");
}

#[test]
fn appending_a_block_with_identities_already_in_the_chain_names_them() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, &net.genesis);
    let b1 = net.extend(&net.block0(), 1, 3, "a");
    s.apply(0, &b1, T0).unwrap();
    let again = vec![b1[0].transactions[0].clone(), pair("client-5", "new", 0), b1[0].transactions[2].clone()];
    let b2 = Block::mine(&b1[0].tip_info(), b1[0].timestamp, &net.keys[1], again.clone());
    match s.apply(1, &[b2], T0) {
        Err(StoreError::DuplicateIdentities(ids)) => assert_eq!(ids, vec![again[0].identity(), again[2].identity()]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.apply(5, &b1, T0), Err(StoreError::ForkPointAboveTip { fork_point: 5, tip: 1 })));
}

#[test]
fn reopening_a_100000_block_chain_reads_one_block() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let blocks = net.extend(&net.block0(), 100_000, 1, "long");
    {
        let mut s = open(&dir, &net.genesis);
        for chunk in blocks.chunks(20_000) {
            let fp = s.tip().index;
            s.apply(fp, chunk, T0).unwrap();
        }
    }
    let s = open(&dir, &net.genesis);
    assert_eq!(s.tip().index, 100_000);
    assert_eq!(s.blocks_read(), 1, "open decodes the tip and nothing else");
    let p = &blocks[49_999].transactions[0];
    assert_eq!(s.landed(&p.identity()).unwrap().map(|l| l.block_index), Some(50_000));
    assert!(s.balance("client-0").unwrap() > 0);
    assert_eq!(s.blocks_read(), 1, "look-ups do not decode blocks");
}

#[test]
fn look_ups_use_indexes() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, &net.genesis);
    let plans = s.query_plans().unwrap();
    assert_eq!(plans.len(), 5);
    for (sql, plan) in plans {
        eprintln!("{sql}\n  -> {plan}");
        assert!(!plan.contains("SCAN"), "{sql}: {plan}");
        assert!(plan.contains("USING") && (plan.contains("INDEX") || plan.contains("PRIMARY KEY")), "{sql}: {plan}");
    }
}

#[test]
fn the_store_drives_adoption_of_a_better_fork() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, &net.genesis);
    let ours = net.extend(&net.block0(), 2, 2, "ours");
    s.apply(0, &ours, T0).unwrap();
    // the peer sends its whole chain: a fork from block 0 that is one longer
    let theirs = net.extend(&net.block0(), 3, 1, "theirs");
    let slice = s.slice_for(&theirs).unwrap();
    let plan = plan_adoption(&slice, &theirs, &net.genesis, T0 + 10).unwrap();
    let Plan::Adopt { fork_point, blocks, .. } = plan else { panic!("{plan:?}") };
    let r = s.apply(fork_point.index, &blocks, T0 + 10).unwrap();
    assert_eq!(r.orphaned.len(), 2);
    // sending it again is known
    let slice = s.slice_for(&theirs).unwrap();
    assert_eq!(plan_adoption(&slice, &theirs, &net.genesis, T0 + 10), Ok(Plan::Known));
    assert_eq!(s.tip(), &theirs[2]);
}

/// A block that would take a balance past what the store holds is refused
/// whole (SQLite would silently turn the sum into a float), and the chain
/// is left as it was.
#[test]
fn a_block_overflowing_a_balance_is_refused_and_changes_nothing() {
    let net = Net::new(1);
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, &net.genesis);
    let first = Block::mine(&net.block0().tip_info(), T0 + 1, &net.keys[0], vec![issued("rich", "r-1", uwl_ledger::MAX_AMOUNT, 1)]);
    s.apply(0, std::slice::from_ref(&first), T0).unwrap();
    let second = Block::mine(&first.tip_info(), T0 + 2, &net.keys[0], vec![issued("rich", "r-2", 1, 1)]);
    let e = s.apply(1, std::slice::from_ref(&second), T0).unwrap_err();
    assert!(matches!(&e, StoreError::BalanceOverflow { client_id, .. } if client_id == "rich"), "{e}");
    assert_eq!(s.tip(), &first);
    assert_eq!(s.balance("rich").unwrap(), uwl_ledger::MAX_AMOUNT);
    drop(s);
    let s = open(&dir, &net.genesis);
    assert_eq!(s.tip(), &first, "nothing of the refused block is on disk");
}
