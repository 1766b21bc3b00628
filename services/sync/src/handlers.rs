//! What sync answers on the bus: reads, blocks from its own miner,
//! chain-replaced events.

use crate::node::Node;
use std::sync::Arc;
use uwl_bus::proto::*;
use uwl_bus::{Answer, RemoteError, Request};
use uwl_ledger::{check_fork, BlockError, TxPair};

impl Node {
    /// A read query; each variant answered with its own reply type.
    pub(crate) async fn read(self: Arc<Self>, q: SyncQuery) -> Result<Answer, RemoteError> {
        let me = self.clone();
        let budget = self.bus.reply_budget();
        self.with_store(move |s| -> Result<Answer, RemoteError> {
            let tip = s.tip().tip_info();
            let store = |e: uwl_store::StoreError| RemoteError::internal(e);
            match q {
                SyncQuery::Tip(q) => q.answer(&TipReply { node_id: me.id.clone(), tip }),
                SyncQuery::Blocks(q) => {
                    let mut start = q.from;
                    for h in &q.locator {
                        if let Some(i) = s.index_of(h).map_err(store)? {
                            start = i + 1;
                            break;
                        }
                    }
                    let mut blocks = s.blocks(start, u64::from(q.limit.clamp(1, 1_000))).map_err(store)?;
                    blocks.truncate(fitting(&blocks, budget).map_err(RemoteError::internal)?);
                    q.answer(&BlocksReply { tip, blocks })
                }
                SyncQuery::Balance(q) => q.answer(&BalanceReply { balance: s.balance(&q.client_id).map_err(store)?, tip }),
                SyncQuery::Receipt(q) => q.answer(&ReceiptReply { landed: s.receipt(&q.receipt_id).map_err(store)?, tip }),
                SyncQuery::Contains(q) => {
                    let landed = q.ids.iter().map(|id| s.landed(id)).collect::<uwl_store::Result<Vec<_>>>().map_err(store)?;
                    q.answer(&ContainsReply { landed, tip })
                }
                SyncQuery::Stats(q) => {
                    let st = s.stats().map_err(store)?;
                    q.answer(&SyncStats {
                        node_id: me.id.clone(),
                        tip: Some(tip),
                        blocks_by_creator: st.blocks_by_creator,
                        replacements_total: st.replacements_total,
                        last_replacement_depth: st.last_replacement_depth,
                        orphaned_blocks_total: st.orphaned_blocks_total,
                        blocks_read_at_start: me.blocks_read_at_start,
                        bus_stalls_total: me.bus.stalls(),
                        peers: me.peers_heard(),
                    })
                }
            }
        })
        .await?
    }

    /// A block from this node's miner: it must extend the tip.
    pub(crate) async fn append(self: Arc<Self>, req: AppendRequest) -> Result<AppendReply, RemoteError> {
        let (genesis, now, me) = (self.genesis.clone(), self.now(), self.id.clone());
        let block = req.block;
        let reply = self
            .with_store(move |s| -> uwl_store::Result<(AppendReply, Option<NewBlock>)> {
                let tip = s.tip().tip_info();
                if block.prev_hash != tip.hash || block.index != tip.index + 1 {
                    return Ok((AppendReply::NotOnTip { tip }, None));
                }
                let slice = s.slice_for(std::slice::from_ref(&block))?;
                match check_fork(&slice, &tip, std::slice::from_ref(&block), &genesis, now) {
                    Ok(()) => {}
                    Err(e) if matches!(e.error, BlockError::DuplicateIdentity(_)) && !slice.landed.is_empty() => {
                        let ids = block.transactions.iter().map(|p| p.identity()).filter(|id| slice.landed.contains_key(id));
                        return Ok((AppendReply::Duplicates { ids: ids.collect(), tip }, None));
                    }
                    Err(e) => {
                        let pairs = match &e.error {
                            BlockError::InvalidPair { position, .. } => {
                                block.transactions.get(*position).map(TxPair::identity).into_iter().collect()
                            }
                            BlockError::DuplicateIdentity(id) => vec![id.clone()],
                            _ => Vec::new(),
                        };
                        return Ok((AppendReply::Invalid { reason: e.to_string(), pairs }, None));
                    }
                }
                match s.apply(tip.index, std::slice::from_ref(&block), now) {
                    Ok(_) => Ok((AppendReply::Appended { tip: block.tip_info() }, Some(NewBlock::of(&me, &block, block.tip_info())))),
                    Err(uwl_store::StoreError::BalanceOverflow { client_id, .. }) => {
                        let pairs = block.transactions.iter().filter(|p| p.client_id() == client_id).map(TxPair::identity).collect();
                        Ok((AppendReply::Invalid { reason: format!("the balance of {client_id:?} would overflow"), pairs }, None))
                    }
                    Err(e) => Err(e),
                }
            })
            .await?
            .map_err(RemoteError::internal)?;
        let (reply, new) = reply;
        if let AppendReply::Appended { tip } = &reply {
            self.metrics.blocks_appended.with_label_values(&["miner"]).inc();
            self.set_tip(*tip);
        }
        self.announce_blocks(new.as_slice()).await;
        Ok(reply)
    }

    /// Chain-replaced events, in a reply bounded in bytes: whole events
    /// while they fit, else one page of the first event's orphaned blocks.
    pub(crate) async fn events(self: Arc<Self>, req: EventsRequest) -> Result<EventsReply, RemoteError> {
        let budget = self.bus.reply_budget();
        self.with_store(move |s| -> Result<EventsReply, RemoteError> {
            if let Some(seq) = req.ack_through {
                s.delete_events_through(seq).map_err(RemoteError::internal)?;
            }
            let mut events = s.events_after(req.after, u64::from(req.limit.clamp(1, 100))).map_err(RemoteError::internal)?;
            if let Some((_, first)) = events.first_mut() {
                let skip = (req.skip_blocks as usize).min(first.orphaned.len());
                first.orphaned.drain(..skip);
            }
            let whole = fitting(&events, budget).map_err(RemoteError::internal)?;
            let mut partial = false;
            if let Some((_, first)) = events.first_mut() {
                if whole == 1 && serde_json::to_vec(&*first).map_err(RemoteError::internal)?.len() > budget {
                    let total = first.orphaned.len();
                    first.orphaned.truncate(fitting(&first.orphaned, budget / 2).map_err(RemoteError::internal)?);
                    partial = first.orphaned.len() < total;
                }
            }
            events.truncate(whole);
            Ok(EventsReply { events, tip: s.tip().tip_info(), partial })
        })
        .await?
    }

    /// A copy of the chain store for a backup, written while the store
    /// stays open (only into the data directory's backups).
    pub(crate) async fn copy(self: Arc<Self>, q: ChainCopyRequest) -> Result<ChainCopied, RemoteError> {
        let path = std::path::PathBuf::from(&q.path);
        if !uwl_store::files::is_backup_file(&self.settings.data_dir, &path) {
            return Err(RemoteError::bad_request(format!("{} is not a chain copy in this node's backups", q.path)));
        }
        let copied = self
            .with_store(move |s| -> uwl_store::Result<ChainCopied> { Ok(ChainCopied { bytes: s.copy_to(&path)?, tip: s.tip().tip_info() }) })
            .await?
            .map_err(RemoteError::internal)?;
        tracing::info!(path = %q.path, bytes = copied.bytes, tip = copied.tip.index, "chain store copied");
        Ok(copied)
    }
}
