//! The miner against a scripted sync: replacements timed into the window
//! between sync's answer to a block and the miner's mempool update, where
//! a real sync's pull lands only now and then (the randomized fault run
//! lost a block's worth of acknowledged rewards there once).
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::*;
use uwl_bus::{serve, Answer, Bus, Login, RemoteError, Request, Role};
use uwl_ledger::testkit::pair;
use uwl_ledger::{Block, ChainReplaced, Identity, Landed, NodeKey, TipInfo, TxPair};
use uwl_tests::*;

const NODE: &str = "node-1";
/// How long the scripted sync holds its answer to a block while the
/// miner's reconciliation may run (below the miner's sync timeout, 2 s).
const HOLD: Duration = Duration::from_millis(1_000);

/// A sync of one node, in memory, that answers the miner like the real one,
/// except that a block carrying one of the `traps` is orphaned by a peer's
/// block the moment it arrives: the chain-replaced event is published and
/// the answer to the block (`Appended`, or `Duplicates` when the trapped
/// pair was already in the chain) waits until the miner acknowledged the
/// event, or `HOLD`.
struct ScriptedSync {
    chain: Mutex<Vec<Block>>,
    events: Mutex<Vec<(u64, ChainReplaced)>>,
    acked: watch::Sender<u64>,
    traps: Mutex<HashSet<Identity>>,
    peer: NodeKey,
    bus: Bus,
    /// Blocks answered `Duplicates` (they carried a pair already in the chain).
    refused: AtomicUsize,
}

impl ScriptedSync {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tip(&self) -> TipInfo {
        Self::lock(&self.chain).last().map(Block::tip_info).unwrap_or_else(|| unreachable!("block 0 is always there"))
    }

    fn landed(&self, id: &Identity) -> Option<Landed> {
        Self::lock(&self.chain).iter().find_map(|b| {
            b.transactions.iter().find(|p| p.identity() == *id).map(|p| Landed { block_index: b.index, block_hash: b.hash, receipt_id: p.receipt_id() })
        })
    }

    fn trap(&self, p: &TxPair) {
        Self::lock(&self.traps).insert(p.identity());
    }

    fn creator_at(&self, index: u64) -> String {
        Self::lock(&self.chain).iter().find(|b| b.index == index).map(|b| b.creator_node_id.clone()).unwrap_or_default()
    }

    /// A peer's block on the tip (how a pair gets into the chain without this node's miner).
    fn peer_block(&self, pairs: Vec<TxPair>) {
        let tip = self.tip();
        let b = Block::mine(&tip, tip.timestamp + 1, &self.peer, pairs);
        Self::lock(&self.chain).push(b);
    }

    /// Serves the miner of `NODE` on the bus until the token is cancelled.
    async fn serve(net: &TestNet, nats: &Nats) -> anyhow::Result<(Arc<Self>, CancellationToken)> {
        let bus = Bus::connect(&nats.url, &Login::open(Role::Sync, NODE)).await?;
        let sync = Arc::new(ScriptedSync {
            chain: Mutex::new(vec![Block::genesis(&net.genesis)]),
            events: Mutex::new(Vec::new()),
            acked: watch::channel(0).0,
            traps: Mutex::new(HashSet::new()),
            peer: NodeKey::generate("node-9"),
            bus: bus.clone(),
            refused: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        let s = sync.clone();
        tokio::spawn(serve(bus.clone(), NODE, None, 16, stop.clone(), move |q: SyncQuery, _| s.clone().read(q)));
        let s = sync.clone();
        tokio::spawn(serve(bus.clone(), NODE, None, 1, stop.clone(), move |q: AppendRequest, _| s.clone().append(q)));
        let s = sync.clone();
        tokio::spawn(serve(bus, NODE, None, 1, stop.clone(), move |q: EventsRequest, _| s.clone().events(q)));
        Ok((sync, stop))
    }

    async fn read(self: Arc<Self>, q: SyncQuery) -> Result<Answer, RemoteError> {
        match q {
            SyncQuery::Contains(q) => q.answer(&ContainsReply { landed: q.ids.iter().map(|id| self.landed(id)).collect(), tip: self.tip() }),
            SyncQuery::Tip(q) => q.answer(&TipReply { node_id: NODE.into(), tip: self.tip() }),
            other => Err(RemoteError::internal(format!("the scripted sync does not answer {other:?}"))),
        }
    }

    async fn append(self: Arc<Self>, req: AppendRequest) -> Result<AppendReply, RemoteError> {
        let block = req.block;
        let tip = self.tip();
        if block.prev_hash != tip.hash || block.index != tip.index + 1 {
            return Ok(AppendReply::NotOnTip { tip });
        }
        let trapped: Vec<Identity> = {
            let mut traps = Self::lock(&self.traps);
            block.transactions.iter().map(TxPair::identity).filter(|id| traps.remove(id)).collect()
        };
        let dups: Vec<Identity> = block.transactions.iter().map(TxPair::identity).filter(|id| self.landed(id).is_some()).collect();
        if !dups.is_empty() {
            self.refused.fetch_add(1, Ordering::SeqCst);
        }
        if trapped.is_empty() {
            if !dups.is_empty() {
                return Ok(AppendReply::Duplicates { ids: dups, tip });
            }
            Self::lock(&self.chain).push(block.clone());
            return Ok(AppendReply::Appended { tip: block.tip_info() });
        }
        // The trap: the block (or the peer's block already holding the
        // pair) is orphaned by another peer block at its height.
        let seq = {
            let mut chain = Self::lock(&self.chain);
            let appended = dups.is_empty();
            if appended {
                chain.push(block.clone());
            }
            let at = chain.iter().rposition(|b| b.transactions.iter().any(|p| trapped.contains(&p.identity()))).unwrap_or(chain.len() - 1);
            let orphaned: Vec<Block> = chain.drain(at..).collect();
            let fork = chain[at - 1].tip_info();
            let rival = Block::mine(&fork, fork.timestamp + 2, &self.peer, Vec::new());
            chain.push(rival.clone());
            let old_tip = orphaned.last().map(Block::tip_info).unwrap_or(fork);
            let mut events = Self::lock(&self.events);
            let seq = events.len() as u64 + 1;
            events.push((seq, ChainReplaced { old_tip, new_tip: rival.tip_info(), fork_point: fork, orphaned }));
            seq
        };
        self.bus.publish(NODE, &Replaced(seq)).await.map_err(RemoteError::internal)?;
        let mut acked = self.acked.subscribe();
        let _ = tokio::time::timeout(HOLD, acked.wait_for(|a| *a >= seq)).await;
        Ok(if dups.is_empty() { AppendReply::Appended { tip: block.tip_info() } } else { AppendReply::Duplicates { ids: dups, tip } })
    }

    async fn events(self: Arc<Self>, req: EventsRequest) -> Result<EventsReply, RemoteError> {
        if let Some(a) = req.ack_through {
            self.acked.send_if_modified(|seen| std::mem::replace(seen, (*seen).max(a)) < a);
        }
        let events: Vec<_> = Self::lock(&self.events).iter().filter(|(s, _)| *s > req.after).cloned().collect();
        Ok(EventsReply { events, tip: self.tip(), partial: false })
    }
}

/// The miner of `NODE` against a scripted sync. Its level-triggered
/// reconciliation (which also drops pending pairs found in the chain) runs
/// at start and then a minute apart: what the tests look at is the only
/// other way pairs leave the mempool.
struct Rig {
    sync: Arc<ScriptedSync>,
    stop: CancellationToken,
    miner: Service,
    c: Client,
    _net: TestNet,
    _nats: Nats,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Rig {
    async fn start() -> anyhow::Result<Self> {
        let serial = serial();
        let nats = nats().await?;
        let net = TestNet::new(1, fast_params())?;
        let (sync, stop) = ScriptedSync::serve(&net, &nats).await?;
        let miner = net.miner(NODE, &nats.url, &["--reconcile-interval-ms", "60000"])?;
        let c = Client::connect(&nats.url).await?;
        wait_for("the miner answers", Duration::from_secs(20), || async { Ok(c.miner_stats(NODE).await.ok().map(|_| ())) }).await?;
        Ok(Self { sync, stop, miner, c, _net: net, _nats: nats, _serial: serial })
    }

    /// `pairs` offered by a peer's replication (a local submission of a
    /// pair in the chain would be answered from the chain, not stored).
    async fn replicated(&self, pairs: Vec<TxPair>) -> anyhow::Result<()> {
        let req = ReplicateRequest { from: "node-9".into(), pairs, orphaned: Vec::new(), superseded: Vec::new() };
        self.c.bus.ask(NODE, req, Duration::from_secs(5), &uwl_bus::RequestId::new()).await?;
        Ok(())
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.miner.stop().await?;
        self.stop.cancel();
        Ok(())
    }
}

/// A pair mined into a block that a replacement orphans before the miner
/// has taken it out of its mempool, and a pair that sync names as already
/// in the chain in a block orphaned at that moment: both are re-queued and
/// land, whatever order the miner's mining and reconciliation run in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_racing_the_miners_own_block_loses_no_pair() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (sync, c) = (&rig.sync, &rig.c);

    // 1. The miner's own block orphaned between `Appended` and its mempool update.
    let mined = pair("racer", "appended", 0);
    sync.trap(&mined);
    assert_eq!(c.submit(NODE, &mined, SubmitOrigin::Local, 0).await?.status, SubmitStatus::Accepted);
    let landed = wait_for("the orphaned pair re-queued and mined again", Duration::from_secs(15), || async { Ok(sync.landed(&mined.identity())) }).await;
    assert!(landed.is_ok(), "a pair acknowledged and orphaned while its block was being answered is in no chain and {} pending", c.miner_stats(NODE).await?.pending);

    // 2. A pair sync names as in the chain, in a block orphaned at that moment.
    let dup = pair("racer", "duplicate", 0);
    sync.peer_block(vec![dup.clone()]);
    sync.trap(&dup);
    // The miner checks its pairs against a tip it did not make before it
    // mines on it (so a peer's block is no reason for a refused block): a
    // block of its own on the peer's block first, then the pair arrives
    // already in the chain, as a late replication does.
    let filler = pair("racer", "filler", 0);
    assert_eq!(c.submit(NODE, &filler, SubmitOrigin::Local, 0).await?.status, SubmitStatus::Accepted);
    wait_for("a block of the miner's own on the peer's block", Duration::from_secs(15), || async { Ok(sync.landed(&filler.identity())) }).await?;
    rig.replicated(vec![dup.clone()]).await?;
    let landed = wait_for("the pair named a duplicate re-queued and mined", Duration::from_secs(15), || async {
        Ok(sync.landed(&dup.identity()).filter(|l| sync.creator_at(l.block_index) == NODE))
    })
    .await;
    assert!(landed.is_ok(), "a pair dropped as a duplicate of an orphaned block is in no chain and {} pending", c.miner_stats(NODE).await?.pending);
    assert!(ScriptedSync::lock(&sync.traps).is_empty(), "both traps sprang");

    rig.finish().await
}

/// Pairs pending here that a peer's block (a tip this miner did not make)
/// already carries leave the mempool before the miner mines on that tip:
/// no block of its own is refused for them, and the rest is mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_a_peers_block_carries_leave_the_mempool_before_the_next_block() -> anyhow::Result<()> {
    let rig = Rig::start().await?;
    let (sync, c) = (&rig.sync, &rig.c);

    // The peer's pairs land in its block (which this miner has not heard
    // of), then reach this mempool by replication together with one more.
    let paid: Vec<TxPair> = (0..3).map(|i| pair("peer", &format!("paid-{i}"), 0)).collect();
    let fresh = pair("peer", "fresh", 0);
    sync.peer_block(paid.clone());
    let mut pairs = paid.clone();
    pairs.push(fresh.clone());
    rig.replicated(pairs).await?;

    let landed = wait_for("the fresh pair mined", Duration::from_secs(15), || async { Ok(sync.landed(&fresh.identity())) }).await?;
    assert_eq!(sync.creator_at(landed.block_index), NODE);
    assert_eq!(sync.refused.load(Ordering::SeqCst), 0, "a block carrying pairs of the peer's block was handed to sync");
    for p in &paid {
        assert_eq!(c.miner_receipt(NODE, p.receipt_id()).await?.pending, None, "a paid pair is still pending");
        assert_eq!(sync.creator_at(sync.landed(&p.identity()).map(|l| l.block_index).unwrap_or_default()), "node-9");
    }

    rig.finish().await
}
