//! One test per validation rule (accepting and rejecting), fork choice,
//! leader rotation, adoption planning and reconciliation.

use uwl_ledger::testkit::{pair, Net, T0};
use std::collections::HashSet;
use uwl_ledger::memchain::MemChain;
use uwl_ledger::{
    check_block, check_fork, current_leader, is_better, leader_index, plan_adoption, prefer, reconcile, AdoptError,
    Block, BlockError, ChainRead, ForkView, Hash32, NodeKey, PairError, Plan, TipInfo,
};

fn child(net: &Net, parent: &Block, node: usize, dt: u64, txs: Vec<uwl_ledger::TxPair>) -> Block {
    Block::mine(&parent.tip_info(), parent.timestamp + dt, &net.keys[node], txs)
}

fn resign(b: &mut Block, key: &NodeKey) {
    b.hash = b.compute_hash();
    b.signature = Some(key.sign(&b.hash.0));
}

#[test]
fn a_well_formed_block_is_accepted() {
    let net = Net::new(2);
    let g0 = net.block0();
    let b = child(&net, &g0, 1, 10, vec![pair("a", "c1", 0)]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 10), Ok(()));
}

#[test]
fn linkage_index_and_timestamp_are_checked() {
    let net = Net::new(2);
    let g0 = net.block0();
    let b1 = child(&net, &g0, 0, 10, vec![pair("a", "c1", 0)]);
    let now = T0 + 100;

    let mut wrong_prev = b1.clone();
    wrong_prev.prev_hash = Hash32::digest(&[b"x"]);
    resign(&mut wrong_prev, &net.keys[0]);
    assert_eq!(check_block(&wrong_prev, &g0.tip_info(), &net.genesis, now), Err(BlockError::BadPrevHash));

    let mut wrong_index = b1.clone();
    wrong_index.index = 2;
    resign(&mut wrong_index, &net.keys[0]);
    assert_eq!(
        check_block(&wrong_index, &g0.tip_info(), &net.genesis, now),
        Err(BlockError::BadIndex { parent: 0, got: 2 })
    );

    let mut early = b1.clone();
    early.timestamp = T0 - 1;
    resign(&mut early, &net.keys[0]);
    assert_eq!(
        check_block(&early, &g0.tip_info(), &net.genesis, now),
        Err(BlockError::TimestampBeforeParent { parent: T0, got: T0 - 1 })
    );
    // equal to the parent's timestamp is fine
    let same = child(&net, &g0, 0, 0, vec![pair("a", "c1", 0)]);
    assert_eq!(check_block(&same, &g0.tip_info(), &net.genesis, now), Ok(()));
}

#[test]
fn hash_must_cover_the_contents() {
    let net = Net::new(2);
    let g0 = net.block0();
    let mut b = child(&net, &g0, 0, 10, vec![pair("a", "c1", 0)]);
    b.transactions[0].reward_tx.amount += 1; // tampered after hashing
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 10), Err(BlockError::BadHash));
    // the signature is not covered by the hash: a changed signature keeps the hash valid but fails verification
    let mut b = child(&net, &g0, 0, 10, vec![pair("a", "c1", 0)]);
    let h = b.hash;
    b.signature = Some(net.keys[1].sign(&b.hash.0));
    assert_eq!(b.compute_hash(), h);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 10), Err(BlockError::BadSignature("node-1".into())));
}

#[test]
fn signatures_must_come_from_a_genesis_validator() {
    let net = Net::new(2);
    let g0 = net.block0();
    let outsider = NodeKey::from_secret("node-9", [9; 32]);
    let b = Block::mine(&g0.tip_info(), T0 + 1, &outsider, vec![pair("a", "c1", 0)]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 1), Err(BlockError::UnknownCreator("node-9".into())));

    // a validator's name with someone else's key
    let impostor = NodeKey::from_secret("node-2", [9; 32]);
    let b = Block::mine(&g0.tip_info(), T0 + 1, &impostor, vec![pair("a", "c1", 0)]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 1), Err(BlockError::BadSignature("node-2".into())));

    let mut unsigned = child(&net, &g0, 0, 1, vec![pair("a", "c1", 0)]);
    unsigned.signature = None;
    assert_eq!(check_block(&unsigned, &g0.tip_info(), &net.genesis, T0 + 1), Err(BlockError::MissingSignature));

    // fallback blocks are legitimate: the creator need not be the leader
    let leader = current_leader(&net.genesis, &g0.tip_info(), T0 + 1).node_id.clone();
    let other = net.keys.iter().position(|k| k.node_id != leader).unwrap();
    let b = child(&net, &g0, other, 1, vec![pair("a", "c1", 0)]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 1), Ok(()));
}

#[test]
fn pairs_must_be_well_formed_unique_and_capped() {
    let net = Net::with_params(2, uwl_ledger::NetworkParams { t_round_ms: 1000, max_future_ms: 2000, max_pairs_per_block: 2, tasks: uwl_ledger::testkit::bounds() });
    let g0 = net.block0();
    let now = T0 + 10;
    let mut bad = pair("a", "c1", 0);
    bad.work_receipt_tx.contract_id = "c2".into();
    let b = child(&net, &g0, 0, 1, vec![pair("a", "c0", 0), bad]);
    assert_eq!(
        check_block(&b, &g0.tip_info(), &net.genesis, now),
        Err(BlockError::InvalidPair { position: 1, error: PairError::MismatchedIds })
    );
    let b = child(&net, &g0, 0, 1, vec![pair("a", "c1", 0), pair("a", "c1", 1)]);
    assert!(matches!(check_block(&b, &g0.tip_info(), &net.genesis, now), Err(BlockError::DuplicateIdentity(_))));
    let b = child(&net, &g0, 0, 1, vec![pair("a", "c1", 0), pair("a", "c2", 0), pair("a", "c3", 0)]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, now), Err(BlockError::TooManyPairs { count: 3, cap: 2 }));
    let b = child(&net, &g0, 0, 1, vec![]);
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, now), Err(BlockError::Empty));
}

#[test]
fn a_block_too_far_in_the_future_is_deferred_then_accepted() {
    let net = Net::new(2); // max_future_ms = 2000
    let g0 = net.block0();
    let b = child(&net, &g0, 0, 10_000, vec![pair("a", "c1", 0)]);
    let early = check_block(&b, &g0.tip_info(), &net.genesis, T0 + 5_000).unwrap_err();
    assert!(early.is_deferred(), "{early}");
    // exactly at the limit is fine, and so is later
    assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 8_000), Ok(()));
    // a block that is both in the future and badly signed is invalid, not deferred
    let mut forged = b.clone();
    forged.signature = Some(net.keys[1].sign(&forged.hash.0));
    assert!(!check_block(&forged, &g0.tip_info(), &net.genesis, T0).unwrap_err().is_deferred());
}

#[test]
fn no_identity_twice_in_a_chain() {
    let net = Net::new(2);
    let mut chain = MemChain::new(&net.genesis);
    let b1 = child(&net, chain.tip_block(), 0, 1, vec![pair("a", "c1", 0)]);
    chain.apply(0, vec![b1]);
    // same identity, even with a different result, cannot land again
    let b2 = child(&net, chain.tip_block(), 1, 1, vec![pair("a", "c1", 1)]);
    let err = check_fork(&chain, &chain.tip(), &[b2], &net.genesis, T0 + 10).unwrap_err();
    assert_eq!(err.index, 2);
    assert!(matches!(err.error, BlockError::DuplicateIdentity(_)));
    // nor twice within the new blocks of a fork
    let b2 = child(&net, chain.tip_block(), 1, 1, vec![pair("a", "c2", 0)]);
    let b3 = child(&net, &b2, 1, 1, vec![pair("a", "c2", 1)]);
    let err = check_fork(&chain, &chain.tip(), &[b2, b3], &net.genesis, T0 + 10).unwrap_err();
    assert_eq!(err.index, 3);
}

#[test]
fn fork_duplicates_are_judged_against_the_candidate_not_the_orphaned_blocks() {
    let net = Net::new(2);
    let mut local = MemChain::new(&net.genesis);
    let g0 = net.block0();
    // local: g0 <- L1{c1}
    let l1 = child(&net, &g0, 0, 5, vec![pair("a", "c1", 0)]);
    local.apply(0, vec![l1]);
    // peer: g0 <- P1{c1 (other result)} <- P2{c2}: legitimate, c1 is not in the candidate's prefix
    let p1 = child(&net, &g0, 1, 3, vec![pair("a", "c1", 1)]);
    let p2 = child(&net, &p1, 1, 3, vec![pair("a", "c2", 0)]);
    assert_eq!(check_fork(&local, &g0.tip_info(), &[p1.clone(), p2.clone()], &net.genesis, T0 + 100), Ok(()));
    let plan = plan_adoption(&local, &[p1.clone(), p2.clone()], &net.genesis, T0 + 100).unwrap();
    let Plan::Adopt { fork_point, blocks, deferred: None } = plan else { panic!("expected adopt, got {plan:?}") };
    assert_eq!(fork_point.index, 0);
    assert_eq!(blocks.len(), 2);
    // but an identity in the common prefix is a duplicate
    let mut local2 = MemChain::new(&net.genesis);
    local2.apply(0, vec![p1.clone()]);
    let dup = child(&net, &p1, 0, 1, vec![pair("a", "c1", 0)]);
    assert!(check_fork(&local2, &p1.tip_info(), &[dup], &net.genesis, T0 + 100).is_err());
}

#[test]
fn adoption_handles_known_worse_unlinked_and_deferred_candidates() {
    let net = Net::new(2);
    let g0 = net.block0();
    let mut local = MemChain::new(&net.genesis);
    let l1 = child(&net, &g0, 0, 5, vec![pair("a", "c1", 0)]);
    let l2 = child(&net, &l1, 0, 5, vec![pair("a", "c2", 0)]);
    local.apply(0, vec![l1.clone(), l2.clone()]);
    let now = T0 + 100;

    assert_eq!(plan_adoption(&local, &[l1.clone(), l2.clone()], &net.genesis, now), Ok(Plan::Known));
    assert_eq!(plan_adoption(&local, &[], &net.genesis, now), Err(AdoptError::Empty));
    // shorter fork: not better
    let p1 = child(&net, &g0, 1, 1, vec![pair("b", "c1", 0)]);
    assert!(matches!(plan_adoption(&local, std::slice::from_ref(&p1), &net.genesis, now), Ok(Plan::NotBetter { .. })));
    // a suffix whose parent we do not have: ask for earlier blocks
    let p2 = child(&net, &p1, 1, 1, vec![pair("b", "c2", 0)]);
    let p3 = child(&net, &p2, 1, 1, vec![pair("b", "c3", 0)]);
    assert_eq!(
        plan_adoption(&local, std::slice::from_ref(&p3), &net.genesis, now),
        Err(AdoptError::NoCommonAncestor { first_index: 3 })
    );
    assert_eq!(plan_adoption(&local, &[p1.clone(), p3.clone()], &net.genesis, now), Err(AdoptError::NotContiguous(3)));
    // a longer fork whose last block is far in the future: adopt the prefix if it already wins
    let p4 = child(&net, &p3, 1, 60_000, vec![pair("b", "c4", 0)]);
    let plan = plan_adoption(&local, &[p1.clone(), p2.clone(), p3.clone(), p4.clone()], &net.genesis, now).unwrap();
    let Plan::Adopt { blocks, deferred: Some(d), .. } = plan else { panic!("{plan:?}") };
    assert_eq!(blocks.len(), 3);
    assert_eq!(d.index, 4);
    // the same candidate with only its future block able to win: deferred, and accepted later
    let mut local3 = MemChain::new(&net.genesis);
    local3.apply(0, vec![p1.clone(), p2.clone(), p3.clone()]);
    assert!(matches!(plan_adoption(&local3, std::slice::from_ref(&p4), &net.genesis, now), Err(AdoptError::Deferred(_))));
    assert!(matches!(plan_adoption(&local3, std::slice::from_ref(&p4), &net.genesis, p4.timestamp), Ok(Plan::Adopt { .. })));
    // an invalid candidate is rejected
    let mut forged = p2.clone();
    forged.signature = Some(net.keys[0].sign(&forged.hash.0));
    assert!(matches!(
        plan_adoption(&local, &[p1.clone(), forged, p3.clone()], &net.genesis, now),
        Err(AdoptError::Invalid(_))
    ));
    // a different network's block 0
    let other = Net::with_params(2, uwl_ledger::NetworkParams { t_round_ms: 7, max_future_ms: 2000, max_pairs_per_block: 50, tasks: uwl_ledger::testkit::bounds() });
    assert_eq!(plan_adoption(&local, &[other.block0()], &net.genesis, now), Err(AdoptError::GenesisMismatch));
}

fn tip(index: u64, timestamp: u64, h: u8) -> TipInfo {
    TipInfo { index, timestamp, hash: Hash32([h; 32]) }
}

#[test]
fn fork_choice_prefers_length_then_earlier_timestamp_then_lower_hash() {
    assert!(is_better(&tip(5, 100, 9), &tip(4, 1, 0)));
    assert!(is_better(&tip(5, 100, 9), &tip(5, 101, 0)));
    assert!(is_better(&tip(5, 100, 1), &tip(5, 100, 2)));
    assert!(!is_better(&tip(5, 100, 1), &tip(5, 100, 1)));
}

#[test]
fn fork_choice_is_order_independent() {
    use proptest::prelude::*;
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&proptest::collection::vec((0u64..4, 0u64..4, 0u8..4), 1..8), |tips| {
            let tips: Vec<TipInfo> = tips.into_iter().map(|(i, t, h)| tip(i, t, h)).collect();
            let best = |v: &[TipInfo]| v.iter().copied().reduce(|a, b| if is_better(&b, &a) { b } else { a }).unwrap();
            let winner = best(&tips);
            let mut rev = tips.clone();
            rev.reverse();
            prop_assert_eq!(best(&rev), winner);
            let mut sorted = tips.clone();
            sorted.sort_by(prefer);
            prop_assert_eq!(sorted[0], winner);
            for t in &tips {
                prop_assert!(!is_better(t, &winner));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn leader_rotation_covers_every_validator() {
    for n in 1..=5 {
        let net = Net::new(n);
        // over rounds, for any tip
        for h in 0..20u8 {
            let t = tip(3, T0, h);
            let seen: HashSet<String> =
                (0..n as u64).map(|r| current_leader(&net.genesis, &t, T0 + r * 1_000).node_id.clone()).collect();
            assert_eq!(seen.len(), n, "rounds from tip {h} cover all {n} validators");
        }
        // over tip hashes, in round 0
        let seen: HashSet<usize> = (0..200u8).map(|h| leader_index(&tip(1, 0, h), 0, n)).collect();
        assert_eq!(seen.len(), n);
    }
}

#[test]
fn leader_follows_the_spec_formula() {
    let net = Net::new(3);
    let t = TipInfo { index: 1, timestamp: T0, hash: Hash32::digest(&[b"tip"]) };
    let base = t.hash.prefix_u64();
    for (now, round) in [(T0 - 50, 0u64), (T0, 0), (T0 + 999, 0), (T0 + 1_000, 1), (T0 + 5_500, 5)] {
        let want = ((base as u128 + round as u128) % 3) as usize;
        assert_eq!(current_leader(&net.genesis, &t, now).node_id, net.genesis.validators[want].node_id);
    }
    // no overflow at the top of the range
    assert_eq!(leader_index(&TipInfo { hash: Hash32([0xff; 32]), ..t }, u64::MAX, 3), ((u64::MAX as u128 * 2) % 3) as usize);
    // rounds off: the leader depends on the tip only
    let off = Net::with_params(3, uwl_ledger::NetworkParams { t_round_ms: 0, max_future_ms: 1, max_pairs_per_block: 1, tasks: uwl_ledger::testkit::bounds() });
    let l0 = current_leader(&off.genesis, &t, T0).node_id.clone();
    assert_eq!(current_leader(&off.genesis, &t, T0 + 1_000_000).node_id, l0);
}

#[test]
fn reconciliation_requeues_removes_and_supersedes() {
    let net = Net::new(2);
    let g0 = net.block0();
    // ours: g0 <- O1{x, y, z}; theirs: g0 <- W1{x, y'} <- W2{p}
    let (x, y, z) = (pair("a", "x", 0), pair("a", "y", 0), pair("a", "z", 0));
    let y2 = pair("a", "y", 1);
    let p = pair("b", "p", 0);
    let q = pair("b", "q", 0);
    let o1 = child(&net, &g0, 0, 5, vec![x.clone(), y.clone(), z.clone()]);
    let w1 = child(&net, &g0, 1, 3, vec![x.clone(), y2.clone()]);
    let w2 = child(&net, &w1, 1, 3, vec![p.clone()]);
    let mut local = MemChain::new(&net.genesis);
    local.apply(0, vec![o1.clone()]);
    let winning = ForkView::new(&local, 0, &[w1.clone(), w2.clone()]);
    let pending = vec![p.clone(), q.clone()];
    let r = reconcile(&winning, std::slice::from_ref(&o1), &pending);
    assert_eq!(r.orphaned.len(), 3);
    assert_eq!(r.requeue, vec![z.clone()], "only the pair absent from the winner goes back");
    assert_eq!(r.remove, vec![p.identity()], "pending pairs now in the chain are dropped");
    assert_eq!(r.superseded.len(), 1);
    assert_eq!(r.superseded[0].pair, y);
    assert_eq!(r.superseded[0].by, y2.receipt_id());

    // idempotent: applying and reconciling again changes nothing more
    let mut after: Vec<_> = pending.iter().filter(|p| !r.remove.contains(&p.identity())).cloned().collect();
    after.extend(r.requeue.clone());
    let again = reconcile(&winning, &[o1], &after);
    assert!(again.requeue.is_empty() && again.remove.is_empty());
}

/// A block may pay only what the network issued: a validator's signature
/// does not make a made-up contract, another client's contract or another
/// amount valid.
#[test]
fn a_validators_block_paying_a_forged_pair_is_invalid() {
    let net = Net::new(2);
    let g0 = net.block0();
    let h = uwl_ledger::result_hash(&serde_json::json!({"nonce": 1}));
    let theirs = uwl_ledger::testkit::contract_id("bob", "t", 10);
    for (forged, why) in [
        (uwl_ledger::TxPair::new("mallory", "c-1", 1_000, h), PairError::NotIssued),
        (uwl_ledger::TxPair::new("mallory", &theirs, 10, h), PairError::NotTheContractsClient),
        (uwl_ledger::TxPair::new("bob", &theirs, 1_000, h), PairError::NotTheContractsReward { contract: 10, pair: 1_000 }),
    ] {
        let b = child(&net, &g0, 0, 1, vec![pair("a", "c0", 0), forged]);
        assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 10), Err(BlockError::InvalidPair { position: 1, error: why }));
    }
}

mod forged {
    use super::*;
    use proptest::prelude::*;
    use uwl_ledger::{testkit::issued, TxPair, MAX_AMOUNT};

    proptest! {
        /// A pair that differs from an issued one in its client, its amount
        /// or any bit of its contract id (each well formed, receipt id
        /// recomputed) is refused alone and inside a validator's block;
        /// only the issued pair itself passes.
        #[test]
        fn forged_pairs_are_refused(
            client in "[a-z]{1,6}",
            amount in 1u64..=MAX_AMOUNT,
            at in 0usize..1_000,
            bit in 0u8..8,
            how in 0u8..3,
        ) {
            let net = Net::new(2);
            let g0 = net.block0();
            let good = issued("alice", "t", 10, 1);
            let (id, h) = (good.reward_tx.contract_id.clone(), good.work_receipt_tx.result_hash);
            let forged = match how {
                0 => TxPair::new(&client, &id, 10, h),
                1 => TxPair::new("alice", &id, amount, h),
                _ => {
                    let mut bytes = id.clone().into_bytes();
                    let i = at % bytes.len();
                    bytes[i] ^= 1 << bit;
                    TxPair::new("alice", &String::from_utf8_lossy(&bytes), 10, h)
                }
            };
            let honest = forged == good;
            prop_assert_eq!(forged.check_issued(&net.genesis).is_ok(), honest);
            let b = child(&net, &g0, 0, 1, vec![forged]);
            prop_assert_eq!(check_block(&b, &g0.tip_info(), &net.genesis, T0 + 10).is_ok(), honest);
        }
    }
}
