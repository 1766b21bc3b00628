//! Node services (sync, miner) against a real NATS server in a container.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::collections::HashSet;
use std::time::{Duration, Instant};
use uwl_bus::proto::{ClientQuery, MinerReceiptQuery, ReplicateRequest, SubmitBatch, SubmitOrigin, SubmitReply, SubmitRequest, SubmitStatus};
use uwl_bus::{BusError, ErrorCode, RequestId};
use uwl_ledger::testkit::{contract_id, issued, pair};
use uwl_ledger::{current_leader, Block, TxPair, MAX_AMOUNT};
use uwl_tests::*;

const LONG: Duration = Duration::from_secs(30);

fn pairs(tag: &str, n: usize) -> Vec<TxPair> {
    (0..n).map(|i| pair(&format!("client-{}", i % 3), &format!("{tag}-{i}"), 0)).collect()
}

/// Waits until every node has the same tip, an empty mempool, and every
/// identity of `want` exactly once; returns the converged chain.
async fn converged(c: &Client, nodes: &[&str], want: &[TxPair]) -> anyhow::Result<Vec<Block>> {
    wait_for("convergence", LONG, || async {
        let mut chains = Vec::new();
        for n in nodes {
            if c.miner_stats(n).await?.pending > 0 {
                return Ok(None);
            }
            chains.push(c.chain(n).await?);
        }
        let tips: HashSet<_> = chains.iter().map(|ch| ch.last().map(|b| b.hash)).collect();
        if tips.len() != 1 {
            return Ok(None);
        }
        let counts = identity_counts(&chains[0]);
        anyhow::ensure!(counts.values().all(|n| *n == 1), "an identity is twice in the chain");
        Ok(want.iter().all(|p| counts.get(&p.identity()) == Some(&1)).then(|| chains.swap_remove(0)))
    })
    .await
}

/// Node 1 mines A on block 0 while node 2 is away; node 2 then mines B on
/// block 0 while node 1 is away: two chains from block 0, one will lose.
/// Returns the loser, its chain, and the winner.
async fn forked_pair(net: &TestNet, nats: &Nats, c: &Client, a: &[TxPair], b: &[TxPair]) -> anyhow::Result<(String, Vec<Block>, String)> {
    let mut chains = Vec::new();
    for (node, work) in [("node-1", a), ("node-2", b)] {
        let (s, m) = (net.sync(node, &nats.url, &[])?, net.miner(node, &nats.url, &[])?);
        c.ready(node, true).await?;
        // replicated: false, the other node is away: only this node has its pairs
        for r in futures_join(work.iter().map(|p| c.submit(node, p, SubmitOrigin::Fallback, 0))).await {
            let r = r?;
            anyhow::ensure!(r.status == SubmitStatus::Accepted && !r.replicated, "{r:?}");
        }
        let chain = wait_for("pairs mined", LONG, || async {
            let chain = c.chain(node).await?;
            let ids = identity_counts(&chain);
            Ok(work.iter().all(|p| ids.contains_key(&p.identity())).then_some(chain))
        })
        .await?;
        chains.push(chain);
        s.stop().await?;
        m.stop().await?;
    }
    let tip = |ch: &[Block]| ch.last().map(Block::tip_info).unwrap_or_else(|| Block::genesis(&net.genesis).tip_info());
    let one_wins = uwl_ledger::is_better(&tip(&chains[0]), &tip(&chains[1]));
    let (loser, winner) = if one_wins { ("node-2", "node-1") } else { ("node-1", "node-2") };
    let lost = chains.swap_remove(usize::from(one_wins));
    Ok((loser.to_owned(), lost, winner.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fork_and_the_losers_pairs_are_requeued_and_mined() -> anyhow::Result<()> {
    let _serial = serial();
    capture_logs();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let (a, b) = (pairs("a", 6), pairs("b", 6)); // two per client on each side
    let (loser, lost, winner) = forked_pair(&net, &nats, &c, &a, &b).await?;
    let lost_pairs: usize = lost.iter().map(|b| b.transactions.len()).sum();

    // Both nodes back: fork choice picks one chain, the other node replaces its own.
    let services = [
        net.sync("node-1", &nats.url, &[])?,
        net.miner("node-1", &nats.url, &[])?,
        net.sync("node-2", &nats.url, &[])?,
        net.miner("node-2", &nats.url, &[])?,
    ];
    let all: Vec<TxPair> = a.iter().chain(&b).cloned().collect();
    // The loser's pairs were mined again without any new submission.
    let chain = converged(&c, &["node-1", "node-2"], &all).await?;
    assert_eq!(chain[0].creator_node_id, winner);
    let stats = c.sync_stats(&loser).await?;
    assert_eq!(stats.replacements_total, 1, "the chain-replaced event");
    assert_eq!(stats.orphaned_blocks_total, lost.len() as u64);
    assert_eq!(c.miner_stats(&loser).await?.requeued_total, lost_pairs as u64, "the re-queue counter");
    assert!(logs_contain(&format!("our block orphaned, re-queuing {lost_pairs} tx")), "the log line");
    println!("fork: {loser} lost {} blocks, {lost_pairs} pairs re-queued and mined again", lost.len());
    // The owners' records are on every validator (replicated), so a client
    // reads the same orphaned list and receipt status from either node, and
    // in pages that together are the whole list.
    let owner = lost[0].transactions[0].client_id().to_owned();
    let read = |node: &'static str, after: Option<uwl_ledger::ReceiptId>, limit: u32| {
        let (c, owner) = (&c, owner.clone());
        async move {
            let q = ClientQuery { client_id: owner, limit, pending_after: None, orphaned_after: after };
            anyhow::Ok(c.bus.ask(node, q, c.timeout, &uwl_bus::RequestId::new()).await?)
        }
    };
    let on_loser: Vec<_> = read(if loser == "node-1" { "node-1" } else { "node-2" }, None, 1_000).await?.orphaned;
    assert!(!on_loser.is_empty());
    let winner_node = if winner == "node-1" { "node-1" } else { "node-2" };
    wait_for("the orphan records replicated to the winner", LONG, || async {
        Ok((read(winner_node, None, 1_000).await?.orphaned.len() == on_loser.len()).then_some(()))
    })
    .await?;
    let first = read(winner_node, None, 1).await?;
    assert!(first.more_orphaned && first.orphaned.len() == 1);
    let rest = read(winner_node, Some(first.orphaned[0].pair.receipt_id()), 1_000).await?;
    let paged: Vec<_> = first.orphaned.iter().chain(&rest.orphaned).map(|o| o.pair.receipt_id()).collect();
    assert_eq!(paged, on_loser.iter().map(|o| o.pair.receipt_id()).collect::<Vec<_>>(), "same records, same order");
    for o in &on_loser {
        let q = MinerReceiptQuery { receipt_id: o.pair.receipt_id() };
        let r = c.bus.ask(winner_node, q, c.timeout, &uwl_bus::RequestId::new()).await?;
        assert_eq!(r.orphaned.map(|x| x.block_hash), Some(o.block_hash), "the receipt's orphan record is on the winner too");
    }
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_while_the_miner_is_down_is_reconciled_when_it_returns() -> anyhow::Result<()> {
    let _serial = serial();
    capture_logs();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let (a, b) = (pairs("a", 2), pairs("b", 4));
    let (loser, lost, winner) = forked_pair(&net, &nats, &c, &a, &b).await?;
    let lost_pairs: usize = lost.iter().map(|b| b.transactions.len()).sum();

    // The loser's sync replaces its chain while the loser's miner is down.
    let s1 = net.sync("node-1", &nats.url, &[])?;
    let s2 = net.sync("node-2", &nats.url, &[])?;
    wait_for("the loser replaced its chain", LONG, || async {
        Ok((c.sync_stats(&loser).await?.replacements_total == 1).then_some(()))
    })
    .await?;
    // The lost pairs are in no chain now; only the loser's mempool store
    // and the event in its sync's outbox can bring them back.
    let m_loser = net.miner(&loser, &nats.url, &[])?;
    let m_winner = net.miner(&winner, &nats.url, &[])?;
    let all: Vec<TxPair> = a.iter().chain(&b).cloned().collect();
    converged(&c, &["node-1", "node-2"], &all).await?;
    assert_eq!(c.miner_stats(&loser).await?.requeued_total, lost_pairs as u64);
    for s in [s1, s2, m_loser, m_winner] {
        s.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_acknowledged_by_a_killed_leader_is_mined_by_the_other_node() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let g0 = Block::genesis(&net.genesis).tip_info();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let leader = current_leader(&net.genesis, &g0, now).node_id.clone();
    let other = net.nodes.iter().find(|n| **n != leader).cloned().unwrap_or_default();

    let leader_miner = net.miner(&leader, &nats.url, &[])?;
    let other_sync = net.sync(&other, &nats.url, &[])?;
    let other_miner = net.miner(&other, &nats.url, &[])?;
    c.ready(&other, true).await?;
    wait_for("leader's miner up", LONG, || async { Ok(Some(c.miner_stats(&leader).await?)) }).await?;
    // The leader's sync is not running, so the leader cannot mine before it dies.
    let p = pair("alice", "survivor", 0);
    let r = c.submit(&leader, &p, SubmitOrigin::Local, 0).await?;
    assert_eq!(r.status, SubmitStatus::Accepted);
    assert!(r.replicated, "acknowledged after replication to {other}");
    leader_miner.kill();

    let block = wait_for("the pair in a block of the other node", LONG, || async {
        let chain = c.chain(&other).await?;
        Ok(chain.into_iter().find(|b| b.transactions.iter().any(|t| t.identity() == p.identity())))
    })
    .await?;
    assert_eq!(block.creator_node_id, other, "mined by {other} once rounds made it the leader");
    other_sync.stop().await?;
    other_miner.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_chain_and_pending_and_reads_one_block_at_start() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    // A long chain written straight into node 1's store.
    {
        let key = net.key("node-1")?;
        let mut store = uwl_store::ChainStore::open(&net.data_dir("node-1").join("chain.sqlite"), &net.genesis)?;
        let mut parent = store.tip().clone();
        let mut blocks = Vec::new();
        for i in 0..10_000u64 {
            let b = Block::mine(&parent.tip_info(), parent.timestamp, &key, vec![pair("bulk", &format!("bulk-{i}"), 0)]);
            parent = b.clone();
            blocks.push(b);
        }
        store.apply(0, &blocks, 0)?;
    }
    let (s1, m1) = (net.sync("node-1", &nats.url, &[])?, net.miner("node-1", &nats.url, &[])?);
    c.ready("node-1", true).await?;
    let stats = c.sync_stats("node-1").await?;
    assert_eq!(stats.tip.map(|t| t.index), Some(10_000));
    assert_eq!(stats.blocks_read_at_start, 1, "start-up read the tip, not the chain");
    // Pending that cannot be mined (sync stopped), then everything restarts.
    s1.stop().await?;
    let waiting = pairs("w", 5);
    for p in &waiting {
        assert_eq!(c.submit("node-1", p, SubmitOrigin::Fallback, 0).await?.status, SubmitStatus::Accepted);
    }
    m1.stop().await?;
    {
        let m = uwl_store::Mempool::open(&net.data_dir("node-1").join("mempool.sqlite"))?;
        assert_eq!(m.len()?, 5, "pending survived the stop");
        let s = uwl_store::ChainStore::open(&net.data_dir("node-1").join("chain.sqlite"), &net.genesis)?;
        assert_eq!(s.tip().index, 10_000);
    }
    let (s1, m1) = (net.sync("node-1", &nats.url, &[])?, net.miner("node-1", &nats.url, &[])?);
    c.ready("node-1", true).await?;
    let chain = wait_for("the pending pairs mined after the restart", LONG, || async {
        let chain = c.chain("node-1").await?;
        let ids = identity_counts(&chain);
        Ok(waiting.iter().all(|p| ids.contains_key(&p.identity())).then_some(chain))
    })
    .await?;
    assert_eq!(chain.len(), 10_001);
    assert_eq!(c.sync_stats("node-1").await?.blocks_read_at_start, 1);
    s1.stop().await?;
    m1.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_submissions_is_group_committed() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let services = [
        net.sync("node-1", &nats.url, &[])?,
        net.miner("node-1", &nats.url, &[])?,
        net.sync("node-2", &nats.url, &[])?,
        net.miner("node-2", &nats.url, &[])?,
    ];
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let burst = pairs("burst", 1_000);
    let start = Instant::now();
    let replies = futures_join(burst.iter().map(|p| c.submit("node-1", p, SubmitOrigin::Fallback, 0))).await;
    let acked = replies.iter().filter(|r| matches!(r, Ok(r) if r.status == SubmitStatus::Accepted)).count();
    let ack_time = start.elapsed();
    assert_eq!(acked, 1_000, "{:?}", replies.iter().find(|r| r.is_err()));
    let chain = converged(&c, &["node-1", "node-2"], &burst).await?;
    let blocks = chain.iter().filter(|b| b.transactions.iter().any(|p| p.identity().contract_id.starts_with("burst"))).count();
    let mean = 1_000.0 / blocks as f64;
    println!("burst: 1000 acknowledged in {ack_time:?}, in the chain in {:?}: {blocks} blocks, mean {mean:.1} pairs per block", start.elapsed());
    assert!(mean >= 10.0, "mean pairs per block {mean:.1} < 10");
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_mining_concurrently_converge() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(3, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let mut services = Vec::new();
    for n in &net.nodes {
        services.push(net.sync(n, &nats.url, &[])?);
        services.push(net.miner(n, &nats.url, &[])?);
    }
    for n in &net.nodes {
        c.ready(n, true).await?;
    }
    let work = pairs("three", 60);
    // Every node mines its own share at once (fallback): forks are expected.
    let sends = work.iter().enumerate().map(|(i, p)| {
        let node = &net.nodes[i % 3];
        let origin = if i % 2 == 0 { SubmitOrigin::Fallback } else { SubmitOrigin::Local };
        c.submit(node, p, origin, 0)
    });
    for r in futures_join(sends).await {
        assert!(matches!(r?.status, SubmitStatus::Accepted));
    }
    let nodes: Vec<&str> = net.nodes.iter().map(String::as_str).collect();
    let chain = converged(&c, &nodes, &work).await?;
    let creators: HashSet<&str> = chain.iter().map(|b| b.creator_node_id.as_str()).collect();
    println!("three nodes: {} blocks by {:?}", chain.len(), creators);
    stop_all(services).await
}

async fn futures_join<F: std::future::Future>(it: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(it).await
}

/// An amount no store can hold is refused when the submission is decoded;
/// a block that would overflow a client's balance is refused by sync, its
/// pairs set aside, and block production goes on with the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_pair_never_stops_block_production() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(1, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let (s, m) = (net.sync("node-1", &nats.url, &[])?, net.miner("node-1", &nats.url, &[])?);
    c.ready("node-1", true).await?;

    let batch = |p: &TxPair| SubmitBatch { items: vec![SubmitRequest { pair: p.clone(), origin: SubmitOrigin::Local, wait_block_ms: 0, verified: true }] };
    let mut forged = serde_json::to_value(batch(&pair("forger", "f-1", 0)))?;
    forged["items"][0]["pair"]["reward_tx"]["amount"] = serde_json::json!(MAX_AMOUNT + 1);
    // below the typed contract: the forged message as raw bytes
    let subject = <SubmitBatch as uwl_bus::Message>::subject("node-1");
    let msg = tokio::time::timeout(LONG, c.bus.client().request(subject, serde_json::to_vec(&forged)?.into())).await??;
    let reply: Result<Vec<Result<SubmitReply, uwl_bus::RemoteError>>, uwl_bus::RemoteError> = serde_json::from_slice(&msg.payload)?;
    let e = reply.expect_err("the forged batch is refused");
    assert!(e.code == uwl_bus::ErrorCode::BadRequest && e.message.contains("largest amount"), "{e}");

    // Each pair is valid, but together they overflow one balance.
    let rich = [issued("rich", "r-1", MAX_AMOUNT, 1), issued("rich", "r-2", 1, 1)];
    let honest = pair("honest", "h-1", 0);
    for r in futures_join([&rich[0], &rich[1], &honest].into_iter().map(|p| c.submit("node-1", p, SubmitOrigin::Local, 0))).await {
        assert_eq!(r?.status, SubmitStatus::Accepted);
    }
    let mined = |want: Vec<TxPair>| {
        let c = &c;
        async move {
            wait_for("the honest pairs mined past the bad ones", LONG, || async {
                let chain = c.chain("node-1").await?;
                let ids = identity_counts(&chain);
                Ok(want.iter().all(|p| ids.contains_key(&p.identity())).then_some(chain))
            })
            .await
        }
    };
    mined(vec![honest.clone()]).await?;
    // and production goes on after it
    let later = pair("honest", "h-2", 0);
    assert_eq!(c.submit("node-1", &later, SubmitOrigin::Local, 0).await?.status, SubmitStatus::Accepted);
    let chain = mined(vec![honest, later]).await?;
    let paid: u128 = chain.iter().flat_map(|b| &b.transactions).filter(|p| p.client_id() == "rich").map(|p| u128::from(p.amount())).sum();
    assert!(paid <= u128::from(MAX_AMOUNT), "no balance past what a store holds: {paid}");
    let ids = identity_counts(&chain);
    assert!(rich.iter().any(|p| !ids.contains_key(&p.identity())), "the overflowing pair was set aside");
    let stats = c.miner_stats("node-1").await?;
    assert_eq!(stats.pending, 0, "nothing left pending: set aside, not retried forever");
    // reported: named with its reason in the miner's stats (uwl-admin
    // status prints them) and counted in its metrics
    let aside: Vec<_> = stats.set_aside.iter().map(|a| a.receipt_id).collect();
    assert!(rich.iter().any(|p| aside.contains(&p.receipt_id())), "the set-aside pair is named: {:?}", stats.set_aside);
    assert!(stats.set_aside.iter().all(|a| a.reason.contains("overflow")), "{:?}", stats.set_aside);
    let text = reqwest::get(format!("http://{}/metrics", m.admin_addr().await?)).await?.text().await?;
    let counted = |name: &str, label: &str| {
        text.lines().filter(|l| l.starts_with(name) && l.contains(label)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>()
    };
    let failures = counted("uwl_miner_block_failures_total{", "");
    assert!(failures >= 1.0 && failures == counted("uwl_miner_block_failures_total{", "stage=\"invalid_pairs\""), "{text}");
    assert!(counted("uwl_miner_pairs_set_aside_total", "") >= 1.0, "{text}");
    s.stop().await?;
    m.stop().await?;
    Ok(())
}

/// Only what the network issued is paid, whoever offers it: a pair for a
/// made-up contract, for another client's contract or for another amount is
/// refused by a miner on submit and on replication, and a block that a
/// validator signed carrying one is rejected by the other node (its pulls
/// count it), which goes on producing blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_pairs_are_refused_on_every_path_and_blocks_go_on() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let h = uwl_ledger::result_hash(&serde_json::json!({"nonce": 1}));
    let theirs = contract_id("bob", "t", 10);
    let forged =
        [TxPair::new("mallory", "c-1", 1_000, h), TxPair::new("mallory", &theirs, 10, h), TxPair::new("bob", &theirs, 1_000, h)];
    // node-1's validator key signs a block paying a forged pair, written
    // straight into node-1's store (as a validator gone rogue would).
    {
        let key = net.key("node-1")?;
        let mut store = uwl_store::ChainStore::open(&net.data_dir("node-1").join("chain.sqlite"), &net.genesis)?;
        let parent = store.tip().clone();
        store.apply(0, &[Block::mine(&parent.tip_info(), parent.timestamp + 1, &key, vec![forged[0].clone()])], 0)?;
    }
    let c = Client::connect(&nats.url).await?;
    let s1 = net.sync("node-1", &nats.url, &[])?;
    let (s2, m2) = (net.sync("node-2", &nats.url, &[])?, net.miner("node-2", &nats.url, &[])?);
    c.ready("node-2", true).await?;

    let refused = |r: Result<_, BusError>, what: &str| match r {
        Err(BusError::Remote(e)) if e.code == ErrorCode::BadRequest => Ok(e.message),
        other => Err(anyhow::anyhow!("{what}: expected a bad_request, got {other:?}")),
    };
    for p in &forged {
        let why = refused(c.submit("node-2", p, SubmitOrigin::Local, 0).await.map(|_| ()), "submit")?;
        assert!(why.contains("contract"), "{why}");
    }
    let replicate = ReplicateRequest { from: "node-1".into(), pairs: forged.to_vec(), orphaned: vec![], superseded: vec![] };
    refused(c.bus.ask("node-2", replicate, LONG, &RequestId::new()).await.map(|_| ()), "replicate")?;

    let rejected = wait_for("node-2 rejected node-1's chain", LONG, || async {
        let text = reqwest::get(format!("http://{}/metrics", s2.admin_addr().await?)).await?.text().await?;
        let n: f64 = text
            .lines()
            .filter(|l| l.starts_with("uwl_sync_pulls_total{") && l.contains("result=\"rejected\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        Ok((n > 0.0).then_some(n))
    })
    .await?;
    println!("node-2's pulls of node-1's forged chain rejected: {rejected}");

    let honest = pair("honest", "h-1", 0);
    assert_eq!(c.submit("node-2", &honest, SubmitOrigin::Fallback, 0).await?.status, SubmitStatus::Accepted);
    let chain = wait_for("the honest pair mined by node-2", LONG, || async {
        let chain = c.chain("node-2").await?;
        Ok(identity_counts(&chain).contains_key(&honest.identity()).then_some(chain))
    })
    .await?;
    let ids = identity_counts(&chain);
    assert!(forged.iter().all(|p| !ids.contains_key(&p.identity())), "no forged pair in node-2's chain");
    assert_eq!(c.miner_stats("node-2").await?.pending, 0);
    for s in [s1, s2, m2] {
        s.stop().await?;
    }
    Ok(())
}

/// A replacement orphaning more pairs than one message holds is delivered
/// to the miner in pages bounded in bytes and reconciled completely (a NATS
/// server with a 64 KiB max payload; blocks of at most 60 pairs fit in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_larger_than_one_message_is_reconciled_in_pages() -> anyhow::Result<()> {
    let _serial = serial();
    capture_logs();
    let nats = nats_with_max_payload(Some(64 * 1024)).await?;
    let params = uwl_ledger::NetworkParams { max_pairs_per_block: 60, ..fast_params() };
    let net = TestNet::new(2, params)?;
    let c = Client::connect(&nats.url).await?;
    let (a, b) = (pairs("a", 300), pairs("b", 300));
    let (loser, lost, _winner) = forked_pair(&net, &nats, &c, &a, &b).await?;
    let lost_pairs: usize = lost.iter().map(|b| b.transactions.len()).sum();
    let lost_bytes = serde_json::to_vec(&lost)?.len();
    assert!(lost_bytes > 64 * 1024, "the orphaned blocks ({lost_bytes} bytes) do not fit one message");
    let services = [
        net.sync("node-1", &nats.url, &[])?,
        net.miner("node-1", &nats.url, &[])?,
        net.sync("node-2", &nats.url, &[])?,
        net.miner("node-2", &nats.url, &[])?,
    ];
    let all: Vec<TxPair> = a.iter().chain(&b).cloned().collect();
    converged(&c, &["node-1", "node-2"], &all).await?;
    // Every orphaned pair re-queued (a later, ordinary fork while both nodes
    // mine may re-queue a few more; `converged` checked each pair is in the
    // chain exactly once).
    let requeued = c.miner_stats(&loser).await?.requeued_total;
    assert!(requeued >= lost_pairs as u64, "every orphaned pair re-queued: {requeued} of {lost_pairs}");
    assert!(logs_contain("reconciled in pages"), "the event came in pages");
    println!("{loser} lost {} blocks ({lost_bytes} bytes, {lost_pairs} pairs): reconciled in pages", lost.len());
    stop_all(services).await
}

/// `uwl-admin status` while the nodes run: both answer on one chain and the
/// leader is named; with node-2's miner stopped, the report says so and
/// the cluster is not healthy (the command's exit status).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_status_shows_every_node_and_what_does_not_answer() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let (s1, m1) = (net.sync("node-1", &nats.url, &[])?, net.miner("node-1", &nats.url, &[])?);
    let (s2, m2) = (net.sync("node-2", &nats.url, &[])?, net.miner("node-2", &nats.url, &[])?);
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let connect = uwl_admin::Connect { nats_url: nats.url.clone(), nats_password: None, genesis_file: net.genesis_file.clone(), timeout: Duration::from_secs(2) };
    let cfg = uwl_admin::Status { connect };
    let st = wait_for("status: one chain", LONG, || async {
        let st = uwl_admin::status(&cfg).await?;
        Ok(st.healthy().then_some(st))
    })
    .await?;
    let report = st.report();
    for line in ["node-1: sync up, tip 0", "node-2: sync up, tip 0", "miner up, 0 pending", "cluster: every service answers, one chain"] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }
    // Each sync hears the other's announcements (a heartbeat at least).
    let heard = |st: &uwl_admin::ClusterStatus, node: &str, peer: &str| {
        st.nodes.iter().any(|n| n.node == node && n.sync.as_ref().is_ok_and(|s| s.peers.iter().any(|p| p.node_id == peer && p.heard_ms_ago < 10_000)))
    };
    let st = wait_for("each sync hears the other", LONG, || async {
        let st = uwl_admin::status(&cfg).await?;
        Ok((heard(&st, "node-1", "node-2") && heard(&st, "node-2", "node-1")).then_some(st))
    })
    .await?;
    let report = st.report();
    assert!(report.contains("  peers heard: node-2 at ") && report.contains("  peers heard: node-1 at "), "{report}");
    let leader = st.leader.as_ref().map(|(_, l)| l.clone()).unwrap_or_default();
    assert!(net.nodes.contains(&leader) && report.contains(&format!("leader now: {leader}")), "{report}");
    m2.stop().await?;
    let st = uwl_admin::status(&cfg).await?;
    let report = st.report();
    assert!(!st.healthy(), "{report}");
    assert!(report.contains("node-2: sync up") && report.contains("miner DOWN") && report.contains("cluster: NOT healthy"), "{report}");
    for s in [s1, m1, s2] {
        s.stop().await?;
    }
    Ok(())
}
