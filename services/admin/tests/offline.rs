#![allow(clippy::unwrap_used)] // test fixtures: a failed unwrap is a failed test
//! `uwl-admin restore` and `resync` on a stopped node's files: what they
//! keep, what they refuse.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use uwl_admin::{restore, resync, Restore, Resync};
use uwl_ledger::testkit::{pair, Net, T0};
use uwl_ledger::{Block, Identity};
use uwl_store::{ChainStore, Mempool};

struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    net: Net,
}

impl Node {
    /// node-1's data: a chain of 5 blocks (node-1 made 1, 3, 4 and 5,
    /// node-2 made 2), after a replacement that orphaned node-2's block 4,
    /// whose event node-1's miner has not applied; an empty mempool.
    fn new() -> (Self, Vec<Block>, Block) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let net = Net::new(2);
        std::fs::create_dir_all(root.join("data")).unwrap();
        net.genesis.save(&root.join("genesis.json")).unwrap();
        let mut store = ChainStore::open(&root.join("data/chain.sqlite"), &net.genesis).unwrap();
        let blocks = net.extend(&net.block0(), 4, 2, "a");
        store.apply(0, &blocks, T0).unwrap();
        let orphaned = blocks[3].clone();
        let winner = Block::mine(&blocks[2].tip_info(), blocks[2].timestamp + 1, &net.keys[0], vec![pair("w", "w-1", 0), pair("w", "w-2", 0)]);
        let winner2 = Block::mine(&winner.tip_info(), winner.timestamp + 1, &net.keys[0], vec![pair("w", "w-3", 0)]);
        let r = store.apply(3, &[winner.clone(), winner2.clone()], T0).unwrap();
        assert_eq!(r.orphaned, vec![orphaned.clone()]);
        drop(store);
        drop(Mempool::open(&root.join("data/mempool.sqlite")).unwrap());
        let chain = vec![blocks[0].clone(), blocks[1].clone(), blocks[2].clone(), winner, winner2];
        (Self { _dir: dir, root, net }, chain, orphaned)
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn resync(&self, force: bool) -> anyhow::Result<String> {
        resync(&Resync { data_dir: self.data(), node: "node-1".into(), genesis_file: self.root.join("genesis.json"), force })
    }

    fn restore(&self, from: &Path, replace: bool) -> anyhow::Result<String> {
        restore(&Restore {
            from: from.to_owned(),
            node: "node-1".into(),
            data_dir: self.root.join("restored"),
            key_dir: self.root.join("key"),
            genesis_file: self.root.join("genesis.json"),
            replace,
        })
    }
}

fn ids<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> HashSet<Identity> {
    blocks.into_iter().flat_map(|b| &b.transactions).map(|p| p.identity()).collect()
}

#[test]
fn resync_keeps_own_blocks_and_unapplied_orphans_then_moves_the_chain() {
    let (node, chain, orphaned) = Node::new();
    let text = node.resync(false).unwrap();
    assert!(text.contains("the chain store moved to"), "{text}");
    assert!(!node.data().join("chain.sqlite").exists());
    let aside: Vec<_> = std::fs::read_dir(node.data())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("resync-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(aside[0].path().join("chain.sqlite").exists(), "moved, never deleted");
    let m = Mempool::open(&node.data().join("mempool.sqlite")).unwrap();
    let want = ids(chain.iter().filter(|b| b.creator_node_id == "node-1").chain([&orphaned]));
    let pending: HashSet<Identity> = m.pending(1_000).unwrap().iter().map(|p| p.identity()).collect();
    assert_eq!(pending, want, "node-1's blocks' pairs and the unapplied orphan's, nothing else");
    assert!(!pending.is_superset(&ids(&chain)), "node-2's block in the chain is not re-queued");
    assert_eq!((m.last_event_seq().unwrap(), m.reconciled_tip().unwrap()), (0, None));
}

#[test]
fn resync_refuses_a_running_node_and_a_damaged_store_unless_forced() {
    let (node, _, _) = Node::new();
    {
        let _sync = ChainStore::open(&node.data().join("chain.sqlite"), &node.net.genesis).unwrap();
        let e = node.resync(false).unwrap_err();
        assert!(e.to_string().contains("does not open"), "{e:#}");
        assert!(node.data().join("chain.sqlite").exists(), "nothing moved");
    }
    {
        let _miner = Mempool::open(&node.data().join("mempool.sqlite")).unwrap();
        assert!(node.resync(false).is_err(), "the miner holds its mempool");
    }
    std::fs::write(node.data().join("chain.sqlite"), b"not a database at all, not even close").unwrap();
    assert!(node.resync(false).is_err(), "a damaged store needs --force");
    assert!(node.resync(true).unwrap().contains("0 pairs"));
    assert!(!node.data().join("chain.sqlite").exists());
}

#[test]
fn restore_puts_a_sound_backup_and_the_nodes_key_in_place_and_refuses_the_rest() {
    let (node, chain, _) = Node::new();
    let backup = node.root.join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    {
        let store = ChainStore::open(&node.data().join("chain.sqlite"), &node.net.genesis).unwrap();
        store.copy_to(&backup.join("chain.sqlite")).unwrap();
    }
    // no mempool copy: not a backup
    assert!(node.restore(&backup, false).unwrap_err().to_string().contains("not a backup"));
    Mempool::open(&node.data().join("mempool.sqlite")).unwrap().copy_to(&backup.join("mempool.sqlite")).unwrap();
    // no key anywhere
    assert!(node.restore(&backup, false).unwrap_err().to_string().contains("no key"));
    // another node's key
    node.net.keys[1].save(&backup.join("node.key")).unwrap();
    assert!(node.restore(&backup, false).unwrap_err().to_string().contains("is not the key the genesis lists"));
    std::fs::remove_file(backup.join("node.key")).unwrap();
    node.net.keys[0].save(&backup.join("node.key")).unwrap();

    let text = node.restore(&backup, false).unwrap();
    assert!(text.contains("restored node-1") && text.contains("chain of 6 blocks"), "{text}");
    let restored = ChainStore::open(&node.root.join("restored/chain.sqlite"), &node.net.genesis).unwrap();
    assert_eq!(restored.tip(), chain.last().unwrap());
    drop(restored);
    let key = node.root.join("key/node.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // stores there: refused without --replace, and while their owner runs
    assert!(node.restore(&backup, false).unwrap_err().to_string().contains("--replace"));
    {
        let _sync = ChainStore::open(&node.root.join("restored/chain.sqlite"), &node.net.genesis).unwrap();
        assert!(node.restore(&backup, true).unwrap_err().to_string().contains("stop the node's sync"));
    }
    assert!(node.restore(&backup, true).unwrap().contains("what was there is in"));
}
