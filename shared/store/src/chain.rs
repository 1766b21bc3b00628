//! The chain store: owned by a node's sync process.

use crate::db::{self, decode, encode, hash_from_sql, to_i64};
use crate::schema;
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use uwl_ledger::{Block, ChainReplaced, ChainSlice, Genesis, Identity, Landed, ReceiptId, TipInfo};

pub const CHAIN_SCHEMA_VERSION: i64 = 1;

/// The result of [`ChainStore::apply`].
#[derive(Debug, Default)]
pub struct Replaced {
    /// Blocks that left the chain (empty for a plain extension).
    pub orphaned: Vec<Block>,
    /// The chain-replaced event written to the outbox, with its sequence.
    pub event: Option<(u64, ChainReplaced)>,
}

/// Counters of a chain store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainStats {
    pub blocks_by_creator: std::collections::BTreeMap<String, u64>,
    pub replacements_total: u64,
    pub last_replacement_depth: u64,
    pub orphaned_blocks_total: u64,
}

/// A node's chain. Not `Sync`: its owner serialises access.
#[derive(Debug)]
pub struct ChainStore {
    pub(crate) conn: Connection,
    tip: Block,
    blocks_read: AtomicU64,
}

impl ChainStore {
    /// Opens (or creates, with block 0 from `genesis`) the chain at `path`.
    /// Reads one block, the tip, whatever the chain's length.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Self> {
        let mut conn = db::open(path, schema::CHAIN, CHAIN_SCHEMA_VERSION, &[])?;
        let g0 = Block::genesis(genesis);
        let stored: Option<String> =
            conn.query_row("SELECT hash FROM blocks WHERE idx = 0", [], |r| r.get(0)).optional()?;
        match stored {
            None => {
                let tx = conn.transaction()?;
                insert_block(&tx, &g0)?;
                tx.commit()?;
            }
            Some(h) => {
                let stored = hash_from_sql(h)?;
                if stored != g0.hash {
                    return Err(StoreError::GenesisMismatch { stored, expected: g0.hash });
                }
            }
        }
        let mut store = Self { conn, tip: g0, blocks_read: AtomicU64::new(0) };
        let tip: String = store.conn.query_row(schema::TIP_SQL, [], |r| r.get(0))?;
        store.tip = store.decode_block(&tip)?;
        Ok(store)
    }

    fn decode_block(&self, body: &str) -> Result<Block> {
        decode_counted(&self.blocks_read, body)
    }

    /// A consistent copy of the store at `path` (a new file), while it
    /// stays open: the online backup. Returns the copy's size in bytes.
    pub fn copy_to(&self, path: &Path) -> Result<u64> {
        db::copy_into(&self.conn, path)
    }

    /// How many blocks this handle has decoded from disk since it was opened.
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(Ordering::Relaxed)
    }

    pub fn tip(&self) -> &Block {
        &self.tip
    }

    /// The block at `index` (none past what a store can hold).
    pub fn block(&self, index: u64) -> Result<Option<Block>> {
        let Ok(index) = i64::try_from(index) else { return Ok(None) };
        let body: Option<String> = self.conn.prepare_cached(schema::BLOCK_SQL)?.query_row([index], |r| r.get(0)).optional()?;
        body.map(|b| self.decode_block(&b)).transpose()
    }

    /// Up to `limit` blocks from index `from` on (none from past what a
    /// store can hold: such a range is empty, not an error).
    pub fn blocks(&self, from: u64, limit: u64) -> Result<Vec<Block>> {
        let Ok(from) = i64::try_from(from) else { return Ok(Vec::new()) };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached("SELECT body FROM blocks WHERE idx >= ?1 ORDER BY idx LIMIT ?2")?;
        let bodies = stmt
            .query_map([from, limit], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        bodies.iter().map(|b| self.decode_block(b)).collect()
    }

    /// Confirmed balance of `client_id` (0 if it was never paid).
    pub fn balance(&self, client_id: &str) -> Result<u64> {
        let b: Option<i64> = self.conn.prepare_cached(schema::BALANCE_SQL)?.query_row([client_id], |r| r.get(0)).optional()?;
        Ok(b.unwrap_or(0).max(0) as u64)
    }

    /// Where `id` landed in this chain.
    pub fn landed(&self, id: &Identity) -> Result<Option<Landed>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .prepare_cached(schema::LANDED_SQL)?
            .query_row([&id.client_id, &id.contract_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        row.map(|(idx, rid, hash)| {
            Ok(Landed { block_index: idx as u64, block_hash: hash_from_sql(hash)?, receipt_id: hash_from_sql(rid)? })
        })
        .transpose()
    }

    /// [`Self::landed`] for many identities; absent ones are left out.
    pub fn landed_many<'a>(&self, ids: impl IntoIterator<Item = &'a Identity>) -> Result<HashMap<Identity, Landed>> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(l) = self.landed(id)? {
                out.insert(id.clone(), l);
            }
        }
        Ok(out)
    }

    /// The identity and landing of a receipt that is in the chain.
    pub fn receipt(&self, receipt_id: &ReceiptId) -> Result<Option<(Identity, Landed)>> {
        let row: Option<(String, String, i64, String)> = self
            .conn
            .prepare_cached(schema::RECEIPT_SQL)?
            .query_row([receipt_id.to_hex()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(client_id, contract_id, idx, hash)| {
            let landed = Landed { block_index: idx as u64, block_hash: hash_from_sql(hash)?, receipt_id: *receipt_id };
            Ok((Identity { client_id, contract_id }, landed))
        })
        .transpose()
    }

    /// What [`uwl_ledger::plan_adoption`] needs to judge `incoming`: the tip,
    /// our blocks over the incoming range and its parent, and where the
    /// incoming identities already landed. Cost is that of `incoming`.
    pub fn slice_for(&self, incoming: &[Block]) -> Result<ChainSlice> {
        let mut blocks = std::collections::BTreeMap::new();
        if let (Some(first), Some(last)) = (incoming.first(), incoming.last()) {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT idx, hash, timestamp FROM blocks WHERE idx BETWEEN ?1 AND ?2")?;
            let rows = stmt.query_map([to_i64(first.index.saturating_sub(1))?, to_i64(last.index)?], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })?;
            for row in rows {
                let (idx, hash, ts) = row?;
                let t = TipInfo { index: idx as u64, timestamp: ts as u64, hash: hash_from_sql(hash)? };
                blocks.insert(t.index, t);
            }
        }
        let ids: Vec<Identity> = incoming.iter().flat_map(|b| &b.transactions).map(|p| p.identity()).collect();
        Ok(ChainSlice { tip: self.tip.tip_info(), blocks, landed: self.landed_many(&ids)? })
    }

    /// Makes `blocks` follow the block at `fork_point`, orphaning whatever
    /// followed it: a plain extension when `fork_point` is the tip, a chain
    /// replacement otherwise. One transaction: on any error nothing changes.
    /// Blocks must have been validated ([`uwl_ledger::check_fork`]); the store
    /// itself enforces linkage and identity uniqueness, and names the
    /// identities already in the chain so a miner can drop them.
    pub fn apply(&mut self, fork_point: u64, blocks: &[Block], now_ms: u64) -> Result<Replaced> {
        let old_tip = self.tip.tip_info();
        if fork_point > old_tip.index {
            return Err(StoreError::ForkPointAboveTip { fork_point, tip: old_tip.index });
        }
        let Some(new_tip) = blocks.last().map(Block::tip_info) else { return Ok(Replaced::default()) };
        let fp = to_i64(fork_point)?;
        let tx = self.conn.transaction()?;
        let (hash, ts): (String, i64) =
            tx.query_row("SELECT hash, timestamp FROM blocks WHERE idx = ?1", [fp], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let fork_tip = TipInfo { index: fork_point, timestamp: ts as u64, hash: hash_from_sql(hash)? };

        // Orphan what follows the fork point: read (depth blocks), undo, archive.
        let bodies = tx
            .prepare("SELECT body FROM blocks WHERE idx > ?1 ORDER BY idx")?
            .query_map([fp], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let orphaned = bodies.iter().map(|b| decode_counted(&self.blocks_read, b)).collect::<Result<Vec<Block>>>()?;
        for pair in orphaned.iter().flat_map(|b| &b.transactions) {
            tx.prepare_cached("UPDATE balances SET balance = balance - ?1 WHERE client_id = ?2")?
                .execute(params![to_i64(pair.amount())?, pair.client_id()])?;
        }
        for (b, body) in orphaned.iter().zip(&bodies) {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO orphaned_blocks (hash, idx, creator_node_id, body, orphaned_at_ms, replaced_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![b.hash.to_hex(), to_i64(b.index)?, b.creator_node_id, body, to_i64(now_ms)?, new_tip.hash.to_hex()])?;
        }
        for b in &orphaned {
            tx.prepare_cached("UPDATE creators SET blocks = blocks - 1 WHERE creator_node_id = ?1")?.execute([&b.creator_node_id])?;
        }
        tx.execute("DELETE FROM identities WHERE block_idx > ?1", [fp])?;
        tx.execute("DELETE FROM blocks WHERE idx > ?1", [fp])?;

        // Refuse identities the resulting chain would hold twice, naming them.
        let mut seen = HashSet::new();
        let mut dups = Vec::new();
        for pair in blocks.iter().flat_map(|b| &b.transactions) {
            let id = pair.identity();
            let exists = tx
                .prepare_cached("SELECT 1 FROM identities WHERE client_id = ?1 AND contract_id = ?2")?
                .exists([&id.client_id, &id.contract_id])?;
            if exists || !seen.insert(id.clone()) {
                dups.push(id);
            }
        }
        if !dups.is_empty() {
            return Err(StoreError::DuplicateIdentities(dups));
        }

        let mut parent = fork_tip;
        for b in blocks {
            if b.index != parent.index + 1 || b.prev_hash != parent.hash {
                return Err(StoreError::BadLink { index: b.index, parent: parent.index });
            }
            insert_block(&tx, b)?;
            parent = b.tip_info();
        }

        let event = if orphaned.is_empty() {
            None
        } else {
            let ev = ChainReplaced { old_tip, new_tip, fork_point: fork_tip, orphaned: orphaned.clone() };
            tx.execute(
                "INSERT INTO outbox (kind, body, created_ms) VALUES ('chain_replaced', ?1, ?2)",
                params![encode(&ev)?, to_i64(now_ms)?],
            )?;
            let seq = tx.last_insert_rowid() as u64;
            let total = db::get_meta(&tx, "replacements_total")?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            db::set_meta(&tx, "replacements_total", &(total + 1).to_string())?;
            db::set_meta(&tx, "last_replacement_depth", &orphaned.len().to_string())?;
            Some((seq, ev))
        };
        tx.commit()?;
        self.tip = blocks[blocks.len() - 1].clone();
        Ok(Replaced { orphaned, event })
    }

    /// Chain-replaced events after `after_seq`, oldest first.
    pub fn events_after(&self, after_seq: u64, limit: u64) -> Result<Vec<(u64, ChainReplaced)>> {
        let mut stmt = self.conn.prepare_cached("SELECT seq, body FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let rows = stmt
            .query_map([to_i64(after_seq)?, to_i64(limit)?], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(seq, body)| Ok((seq as u64, decode(&body)?))).collect()
    }

    /// Drops delivered events up to and including `seq`.
    pub fn delete_events_through(&self, seq: u64) -> Result<usize> {
        Ok(self.conn.execute("DELETE FROM outbox WHERE seq <= ?1", [to_i64(seq)?])?)
    }

    /// The hashes of the blocks at `indexes` that exist.
    pub fn hashes_at(&self, indexes: &[u64]) -> Result<Vec<uwl_ledger::Hash32>> {
        let mut stmt = self.conn.prepare_cached("SELECT hash FROM blocks WHERE idx = ?1")?;
        let mut out = Vec::with_capacity(indexes.len());
        for i in indexes {
            if let Some(h) = stmt.query_row([to_i64(*i)?], |r| r.get::<_, String>(0)).optional()? {
                out.push(hash_from_sql(h)?);
            }
        }
        Ok(out)
    }

    /// The index of the block with `hash`, if it is in the chain.
    pub fn index_of(&self, hash: &uwl_ledger::Hash32) -> Result<Option<u64>> {
        let idx: Option<i64> = self
            .conn
            .prepare_cached("SELECT idx FROM blocks WHERE hash = ?1")?
            .query_row([hash.to_hex()], |r| r.get(0))
            .optional()?;
        Ok(idx.map(|i| i as u64))
    }

    /// Counters kept in the store (they survive restarts).
    pub fn stats(&self) -> Result<ChainStats> {
        let mut stmt = self.conn.prepare_cached("SELECT creator_node_id, blocks FROM creators WHERE blocks > 0")?;
        let blocks_by_creator = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<std::result::Result<_, _>>()?;
        let meta = |k: &str| -> Result<u64> { Ok(db::get_meta(&self.conn, k)?.and_then(|v| v.parse().ok()).unwrap_or(0)) };
        Ok(ChainStats {
            blocks_by_creator,
            replacements_total: meta("replacements_total")?,
            last_replacement_depth: meta("last_replacement_depth")?,
            orphaned_blocks_total: self.orphaned_block_count()?,
        })
    }

    /// Number of blocks ever orphaned on this node (kept for audit).
    pub fn orphaned_block_count(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM orphaned_blocks", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// `EXPLAIN QUERY PLAN` of every point look-up the store serves, so tests
    /// can hold them to indexes.
    pub fn query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        [schema::TIP_SQL, schema::BLOCK_SQL, schema::BALANCE_SQL, schema::LANDED_SQL, schema::RECEIPT_SQL]
            .into_iter()
            .map(|sql| Ok((sql, db::query_plan(&self.conn, sql)?)))
            .collect()
    }
}

fn decode_counted(counter: &AtomicU64, body: &str) -> Result<Block> {
    counter.fetch_add(1, Ordering::Relaxed);
    decode(body)
}

fn insert_block(tx: &Transaction<'_>, b: &Block) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO blocks (idx, hash, prev_hash, timestamp, creator_node_id, tx_count, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        to_i64(b.index)?,
        b.hash.to_hex(),
        b.prev_hash.to_hex(),
        to_i64(b.timestamp)?,
        b.creator_node_id,
        b.transactions.len() as i64,
        encode(b)?
    ])?;
    if b.index > 0 {
        tx.prepare_cached(
            "INSERT INTO creators (creator_node_id, blocks) VALUES (?1, 1)
             ON CONFLICT(creator_node_id) DO UPDATE SET blocks = blocks + 1",
        )?
        .execute([&b.creator_node_id])?;
    }
    for p in &b.transactions {
        let amount = to_i64(p.amount())?;
        tx.prepare_cached(
            "INSERT INTO identities (client_id, contract_id, receipt_id, block_idx, amount) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![p.reward_tx.client_id, p.reward_tx.contract_id, p.receipt_id().to_hex(), to_i64(b.index)?, amount])?;
        // SQLite turns an overflowing sum into a float: the update is made
        // only while the sum fits, and a block that would overflow a
        // balance is refused (on every node: every store applies this).
        let changed = tx
            .prepare_cached(
                "INSERT INTO balances (client_id, balance) VALUES (?1, ?2)
                 ON CONFLICT(client_id) DO UPDATE SET balance = balance + excluded.balance
                 WHERE balance <= 9223372036854775807 - excluded.balance",
            )?
            .execute(params![p.client_id(), amount])?;
        if changed == 0 {
            return Err(StoreError::BalanceOverflow { index: b.index, client_id: p.client_id().to_owned() });
        }
    }
    Ok(())
}
