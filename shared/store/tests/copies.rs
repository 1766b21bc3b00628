#![allow(clippy::unwrap_used)] // test fixtures: a failed unwrap is a failed test
//! Online copies (the backup): a store copied while its owner keeps it
//! open and keeps writing holds exactly what was committed at the copy;
//! a copy never overwrites a file; the mempool forgets its chain position
//! on request (the resync).

use uwl_ledger::testkit::{pair, Net, T0};
use uwl_store::{ChainStore, Mempool, Origin, StoreError};

#[test]
fn a_chain_copied_while_open_holds_what_was_committed() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let mut store = ChainStore::open(&dir.path().join("chain.sqlite"), &net.genesis).unwrap();
    let blocks = net.extend(&net.block0(), 6, 3, "a");
    store.apply(0, &blocks[..4], T0).unwrap();
    let copy = dir.path().join("copy.sqlite");
    let bytes = store.copy_to(&copy).unwrap();
    assert!(bytes > 0);
    assert!(matches!(store.copy_to(&copy), Err(StoreError::Copy { .. })), "a copy never overwrites");
    // the owner goes on writing; the copy keeps the moment of the copy
    store.apply(4, &blocks[4..], T0).unwrap();
    assert_eq!(store.tip(), &blocks[5]);
    let copied = ChainStore::open(&copy, &net.genesis).unwrap();
    assert_eq!(copied.tip(), &blocks[3]);
    let audit = copied.audit(&net.genesis).unwrap();
    assert!(audit.is_sound(), "{audit:?}");
    assert_eq!(audit.chain.unwrap().pairs, 12);
}

#[test]
fn a_mempool_copy_and_its_chain_position_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = Mempool::open(&dir.path().join("mempool.sqlite")).unwrap();
    let p = pair("client-1", "c-1", 0);
    m.insert(&p, Origin::Local, T0).unwrap();
    let tip = Net::new(2).block0().tip_info();
    m.apply_reconciliation(&Default::default(), Some(&tip), Some(7), T0).unwrap();
    assert_eq!((m.last_event_seq().unwrap(), m.reconciled_tip().unwrap()), (7, Some(tip)));
    let copy = dir.path().join("copy.sqlite");
    m.copy_to(&copy).unwrap();
    let back = pair("client-2", "c-2", 0);
    assert_eq!(m.requeue_and_forget_chain(&[p.clone(), back.clone()], T0).unwrap(), 1, "a pending identity stays as it is");
    assert_eq!((m.last_event_seq().unwrap(), m.reconciled_tip().unwrap()), (0, None));
    assert_eq!(m.len().unwrap(), 2);
    assert_eq!(m.get(&back.identity()).unwrap(), Some(back));
    let copied = Mempool::open(&copy).unwrap();
    assert_eq!((copied.last_event_seq().unwrap(), copied.len().unwrap()), (7, 1));
    assert_eq!(copied.get(&p.identity()).unwrap(), Some(p));
}
