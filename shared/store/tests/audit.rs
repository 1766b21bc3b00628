#![allow(clippy::unwrap_used)] // test fixtures: a failed unwrap is a failed test
//! The offline audit of a chain store (`uwl-admin verify`): a sound store
//! passes, a replaced chain still passes, and each kind of damage to what
//! is on disk is named.

use rusqlite::Connection;
use uwl_ledger::testkit::{Net, T0};
use uwl_ledger::BlockError;
use uwl_store::ChainStore;

/// A store of 6 blocks (one replacement on the way), closed; its path.
fn store(net: &Net, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("chain.sqlite");
    let mut s = ChainStore::open(&path, &net.genesis).unwrap();
    let a = net.extend(&net.block0(), 4, 3, "a");
    s.apply(0, &a, T0).unwrap();
    let b = net.extend(&a[1], 4, 2, "b");
    assert!(!s.apply(2, &b, T0).unwrap().orphaned.is_empty(), "a real replacement");
    path
}

fn audit(net: &Net, path: &std::path::Path) -> uwl_store::StoreAudit {
    ChainStore::open(path, &net.genesis).unwrap().audit(&net.genesis).unwrap()
}

#[test]
fn a_sound_store_passes_and_each_kind_of_damage_is_named() {
    let net = Net::new(2);
    let dir = tempfile::tempdir().unwrap();
    let path = store(&net, &dir);
    let a = audit(&net, &path);
    assert!(a.is_sound(), "{a:?}");
    let c = a.chain.as_ref().unwrap();
    assert_eq!((c.blocks, c.pairs), (7, 3 + 3 + 4 * 2));

    let sql = |q: &str| Connection::open(&path).unwrap().execute(q, []).unwrap();
    // a balance that is not what the chain pays
    sql("UPDATE balances SET balance = balance + 5 WHERE client_id = 'client-1'");
    let a = audit(&net, &path);
    assert!(a.chain.is_ok() && a.mismatches.iter().any(|m| m.contains("client-1")), "{:?}", a.mismatches);
    sql("UPDATE balances SET balance = balance - 5 WHERE client_id = 'client-1'");
    assert!(audit(&net, &path).is_sound());

    // an identity missing from the index
    sql("DELETE FROM identities WHERE (client_id, contract_id) IN (SELECT client_id, contract_id FROM identities LIMIT 1)");
    let a = audit(&net, &path);
    assert!(a.mismatches.iter().any(|m| m.contains("identity index")), "{:?}", a.mismatches);
    assert!(a.mismatches.iter().any(|m| m.contains("is indexed at None")), "{:?}", a.mismatches);

    // a block whose stored contents were altered: its hash no longer matches
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = store(&net, &dir2);
    let body: String = Connection::open(&path2).unwrap().query_row("SELECT body FROM blocks WHERE idx = 4", [], |r| r.get(0)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["transactions"][0]["reward_tx"]["amount"] = serde_json::json!(999);
    Connection::open(&path2).unwrap().execute("UPDATE blocks SET body = ?1 WHERE idx = 4", [v.to_string()]).unwrap();
    let a = audit(&net, &path2);
    let e = a.chain.as_ref().unwrap_err();
    assert_eq!((e.index, &e.error), (4, &BlockError::BadHash), "{a:?}");
    assert!(!a.is_sound());
}
