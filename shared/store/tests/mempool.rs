//! Mempool store: idempotent inserts, conflicts, reconciliation applied
//! durably and idempotently, per-client records.

use uwl_ledger::testkit::{pair, Net, T0};
use uwl_ledger::{reconcile, ForkView};
use uwl_ledger::memchain::MemChain;
use uwl_store::{Insert, Mempool, Origin};

#[test]
fn inserts_are_idempotent_and_conflicts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mempool::open(&dir.path().join("mempool.sqlite")).unwrap();
    let a = pair("alice", "c1", 0);
    assert_eq!(m.insert(&a, Origin::Local, T0).unwrap(), Insert::Added);
    assert_eq!(m.insert(&a, Origin::Replicated, T0 + 1).unwrap(), Insert::AlreadyPending);
    let other = pair("alice", "c1", 1);
    assert_eq!(m.insert(&other, Origin::Forwarded, T0).unwrap(), Insert::Conflict { existing: a.receipt_id() });
    let (b1, b2) = (pair("bob", "c1", 0), pair("bob", "c2", 0));
    let batch = vec![(&b1, Origin::Forwarded), (&b2, Origin::Fallback), (&a, Origin::Forwarded)];
    assert_eq!(m.insert_many(&batch, T0 + 2).unwrap(), vec![Insert::Added, Insert::Added, Insert::AlreadyPending]);
    assert_eq!(m.fallback(10).unwrap(), vec![b2.clone()]);
    assert_eq!(m.len().unwrap(), 3);
    assert_eq!(m.oldest_received_ms().unwrap(), Some(T0));
    assert_eq!(m.pending(10).unwrap()[0], a);
    assert_eq!(m.pending_for_client("bob", None, 100).unwrap().len(), 2);
    assert_eq!(m.get(&a.identity()).unwrap(), Some(a.clone()));
    assert_eq!(m.by_receipt(&a.receipt_id()).unwrap(), Some(a.clone()));
    assert_eq!(m.remove(&[a.identity()]).unwrap(), 1);
    assert_eq!(m.get(&a.identity()).unwrap(), None);
    // durable across reopen
    drop(m);
    let m = Mempool::open(&dir.path().join("mempool.sqlite")).unwrap();
    assert_eq!(m.len().unwrap(), 2);
}

#[test]
fn reconciliation_is_applied_durably_and_idempotently() {
    let net = Net::new(2);
    let g0 = net.block0();
    let (x, y, z) = (pair("alice", "x", 0), pair("alice", "y", 0), pair("alice", "z", 0));
    let y2 = pair("alice", "y", 1);
    let ours = uwl_ledger::Block::mine(&g0.tip_info(), T0 + 5, &net.keys[0], vec![x.clone(), y.clone(), z.clone()]);
    let w1 = uwl_ledger::Block::mine(&g0.tip_info(), T0 + 3, &net.keys[1], vec![x.clone(), y2.clone()]);
    let w2 = uwl_ledger::Block::mine(&w1.tip_info(), T0 + 4, &net.keys[1], vec![pair("bob", "p", 0)]);
    let mut chain = MemChain::new(&net.genesis);
    chain.apply(0, vec![ours.clone()]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mempool.sqlite");
    let mut m = Mempool::open(&path).unwrap();
    m.insert(&pair("bob", "p", 0), Origin::Replicated, T0).unwrap();
    m.insert(&pair("bob", "q", 0), Origin::Local, T0).unwrap();

    let winning = ForkView::new(&chain, 0, &[w1.clone(), w2.clone()]);
    let r = reconcile(&winning, std::slice::from_ref(&ours), &m.pending(100).unwrap());
    m.apply_reconciliation(&r, Some(&w2.tip_info()), Some(4), T0 + 10).unwrap();
    assert_eq!(m.last_event_seq().unwrap(), 4);
    let state = |m: &Mempool| {
        let mut ids: Vec<_> = m.pending(100).unwrap().iter().map(|p| p.identity().contract_id).collect();
        ids.sort();
        ids
    };
    let q = pair("bob", "q", 0);
    let mut expected = vec![q.identity().contract_id, z.identity().contract_id];
    expected.sort();
    assert_eq!(state(&m), expected);
    assert_eq!(m.superseded_by(&y.receipt_id()).unwrap(), Some(y2.receipt_id()));
    assert_eq!(m.orphaned_for_client("alice", None, 100).unwrap().len(), 3);

    // again, after a reopen: same state
    drop(m);
    let mut m = Mempool::open(&path).unwrap();
    assert_eq!(m.reconciled_tip().unwrap(), Some(w2.tip_info()));
    let again = reconcile(&winning, &[ours], &m.pending(100).unwrap());
    m.apply_reconciliation(&again, Some(&w2.tip_info()), None, T0 + 20).unwrap();
    assert_eq!(m.last_event_seq().unwrap(), 4);
    assert_eq!(state(&m), expected);
    assert_eq!(m.orphaned_for_client("alice", None, 100).unwrap().len(), 3);
    assert_eq!(m.orphaned_for_client("alice", None, 100).unwrap()[0].orphaned_ms, T0 + 10, "first record kept");
}

/// A version-1 store (before set-aside records) is migrated on open, and a
/// pending row that no longer decodes (an amount past what a store holds)
/// is set aside instead of failing every read and every mining attempt.
#[test]
fn a_version_1_store_migrates_to_the_latest_and_an_undecodable_pair_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mempool.sqlite");
    let (good, bad) = (pair("alice", "c1", 0), pair("mallory", "c2", 0));
    {
        let mut m = Mempool::open(&path).unwrap();
        m.insert_many(&[(&good, Origin::Local), (&bad, Origin::Local)], T0).unwrap();
    }
    {
        // Back to what release 1 wrote, with an amount it let through.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE set_aside; DROP INDEX pending_fallback; UPDATE meta SET value = '1' WHERE key = 'schema_version';").unwrap();
        let mut v = serde_json::to_value(&bad).unwrap();
        v["reward_tx"]["amount"] = serde_json::json!(u64::MAX);
        conn.execute("UPDATE pending SET pair = ?1 WHERE client_id = 'mallory'", [v.to_string()]).unwrap();
    }
    let mut m = Mempool::open(&path).unwrap();
    assert_eq!(m.pending(10).unwrap(), vec![good.clone()], "the bad row no longer stops reads");
    // version 3: the fallback look-up no longer scans every pending pair
    for (sql, plan) in m.query_plans().unwrap() {
        assert!(plan.contains("USING INDEX pending_fallback"), "{sql}: {plan}");
    }
    let aside = m.set_aside_records(10).unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].0, bad.receipt_id());
    assert!(aside[0].1.contains("does not decode"), "{}", aside[0].1);
    // set-aside by identity (a refused block) works on the migrated store
    assert_eq!(m.set_aside(&[good.identity()], "refused", T0 + 1).unwrap(), 1);
    assert!(m.is_empty().unwrap());
    assert_eq!(m.set_aside_records(10).unwrap()[0], (good.receipt_id(), "refused".to_owned()));
}

/// A client's lists come in pages in receipt-id order (the same on every
/// node), and a peer's records are stored once, keeping their origin's time.
#[test]
fn client_lists_page_by_receipt_and_peer_records_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mempool::open(&dir.path().join("mempool.sqlite")).unwrap();
    let mine: Vec<_> = (0..7).map(|i| pair("carol", &format!("c{i}"), 0)).collect();
    let refs: Vec<_> = mine.iter().map(|p| (p, Origin::Local)).collect();
    m.insert_many(&refs, T0).unwrap();
    let mut sorted: Vec<_> = mine.iter().map(|p| p.receipt_id()).collect();
    sorted.sort();
    let first = m.pending_for_client("carol", None, 3).unwrap();
    let rest = m.pending_for_client("carol", Some(&first[2].receipt_id()), 10).unwrap();
    let got: Vec<_> = first.iter().chain(&rest).map(|p| p.receipt_id()).collect();
    assert_eq!(got, sorted, "two pages cover the list once, in receipt order");

    let records: Vec<uwl_ledger::OrphanRecord> = mine
        .iter()
        .map(|p| uwl_ledger::OrphanRecord { pair: p.clone(), block_index: 3, block_hash: uwl_ledger::Hash32::default(), orphaned_ms: T0 + 5 })
        .collect();
    let sup = vec![uwl_ledger::Superseded { pair: mine[0].clone(), by: mine[1].receipt_id() }];
    assert_eq!(m.insert_records(&records, &sup, T0 + 9).unwrap(), 8);
    assert_eq!(m.insert_records(&records, &sup, T0 + 99).unwrap(), 0, "idempotent");
    let page = m.orphaned_for_client("carol", None, 100).unwrap();
    assert_eq!(page.len(), 7);
    assert!(page.iter().all(|o| o.orphaned_ms == T0 + 5), "the origin's time is kept");
    assert_eq!(m.orphaned_page(Some(&sorted[5]), 100).unwrap().len(), 1);
    assert_eq!(m.superseded_page(None, 10).unwrap(), sup);
    assert_eq!(m.superseded_by(&mine[0].receipt_id()).unwrap(), Some(mine[1].receipt_id()));
}

/// Anti-entropy pushes only pairs pending for a while: the look-up by age.
#[test]
fn pending_before_a_time_leaves_younger_pairs_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mempool::open(&dir.path().join("mempool.sqlite")).unwrap();
    let (old, young) = (pair("dave", "old", 0), pair("dave", "young", 0));
    m.insert(&old, Origin::Replicated, T0).unwrap();
    m.insert(&young, Origin::Local, T0 + 10).unwrap();
    assert_eq!(m.pending_before(T0 + 5, 10).unwrap(), vec![old.clone()]);
    assert_eq!(m.pending_before(T0 + 11, 10).unwrap(), vec![old, young]);
    assert!(m.pending_before(T0, 10).unwrap().is_empty());
}
