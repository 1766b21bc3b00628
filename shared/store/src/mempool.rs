//! The mempool store: owned by a node's miner process.

use crate::db::{self, decode, encode, to_i64};
use crate::records::{insert_orphan, insert_superseded};
use crate::schema;
use crate::Result;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use std::path::Path;
use uwl_ledger::{Identity, ReceiptId, Reconciliation, TipInfo, TxPair};

pub const MEMPOOL_SCHEMA_VERSION: i64 = 3;

/// How a pair reached this mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Submitted to this node's miner by its own ingest.
    Local,
    /// Forwarded by another node's ingest to us as leader.
    Forwarded,
    /// Copied from a peer miner (replication, anti-entropy).
    Replicated,
    /// Back from one of our orphaned blocks.
    Requeued,
    /// Submitted here because the leader did not answer: mined here even
    /// when this node is not the leader.
    Fallback,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Forwarded => "forwarded",
            Self::Replicated => "replicated",
            Self::Requeued => "requeued",
            Self::Fallback => "fallback",
        }
    }
}

/// The outcome of offering a pair to the mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    Added,
    /// The same pair (same receipt) is already pending.
    AlreadyPending,
    /// The identity is pending with a different result.
    Conflict { existing: ReceiptId },
}

/// A node's pending pairs and its records of orphaned and superseded ones.
#[derive(Debug)]
pub struct Mempool {
    pub(crate) conn: Connection,
}

impl Mempool {
    pub fn open(path: &Path) -> Result<Self> {
        let tables = format!("{}{}{}", schema::MEMPOOL, schema::SET_ASIDE, schema::FALLBACK_INDEX);
        let mut m = Self { conn: db::open(path, &tables, MEMPOOL_SCHEMA_VERSION, &[schema::SET_ASIDE, schema::FALLBACK_INDEX])? };
        m.set_aside_undecodable()?;
        Ok(m)
    }

    /// Moves pending rows that no longer decode (for example an amount
    /// above [`uwl_ledger::MAX_AMOUNT`] stored by an earlier release) out
    /// of the way, so one bad row never stops reads or mining.
    fn set_aside_undecodable(&mut self) -> Result<usize> {
        let rows = self
            .conn
            .prepare("SELECT client_id, receipt_id, pair FROM pending")?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let bad: Vec<_> = rows.into_iter().filter_map(|(c, r, p)| decode::<TxPair>(&p).err().map(|e| (c, r, p, e))).collect();
        let tx = self.conn.transaction()?;
        for (client, receipt, pair, e) in &bad {
            tx.execute(
                "INSERT OR REPLACE INTO set_aside (receipt_id, client_id, pair, reason, at_ms) VALUES (?1, ?2, ?3, ?4, 0)",
                params![receipt, client, pair, format!("does not decode: {e}")],
            )?;
            tx.execute("DELETE FROM pending WHERE receipt_id = ?1", [receipt])?;
            tracing::warn!(receipt_id = %receipt, error = %e, "pending pair does not decode: set aside");
        }
        tx.commit()?;
        Ok(bad.len())
    }

    /// Offers one pair; durable when this returns.
    pub fn insert(&mut self, pair: &TxPair, origin: Origin, now_ms: u64) -> Result<Insert> {
        Ok(self.insert_many(&[(pair, origin)], now_ms)?[0])
    }

    /// Offers many pairs in one transaction (one fsync: group commit).
    pub fn insert_many(&mut self, pairs: &[(&TxPair, Origin)], now_ms: u64) -> Result<Vec<Insert>> {
        let tx = self.conn.transaction()?;
        let out = pairs.iter().map(|(p, o)| insert_pair(&tx, p, *o, now_ms)).collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(out)
    }

    /// What this mempool holds for `p`'s identity, without storing it:
    /// the same pair ([`Insert::AlreadyPending`]), another result
    /// ([`Insert::Conflict`]) or nothing.
    pub fn held(&self, p: &TxPair) -> Result<Option<Insert>> {
        held(&self.conn, p)
    }

    pub fn get(&self, id: &Identity) -> Result<Option<TxPair>> {
        let row: Option<String> = self
            .conn
            .prepare_cached("SELECT pair FROM pending WHERE client_id = ?1 AND contract_id = ?2")?
            .query_row([&id.client_id, &id.contract_id], |r| r.get(0))
            .optional()?;
        row.map(|p| decode(&p)).transpose()
    }

    pub fn by_receipt(&self, receipt_id: &ReceiptId) -> Result<Option<TxPair>> {
        let row: Option<String> = self
            .conn
            .prepare_cached("SELECT pair FROM pending WHERE receipt_id = ?1")?
            .query_row([receipt_id.to_hex()], |r| r.get(0))
            .optional()?;
        row.map(|p| decode(&p)).transpose()
    }

    /// Up to `limit` pending pairs, oldest first.
    pub fn pending(&self, limit: u64) -> Result<Vec<TxPair>> {
        self.pairs("SELECT pair FROM pending ORDER BY received_ms, client_id, contract_id LIMIT ?1", [to_i64(limit)?])
    }

    /// Up to `limit` pending pairs received before `before_ms`, oldest first.
    pub fn pending_before(&self, before_ms: u64, limit: u64) -> Result<Vec<TxPair>> {
        self.pairs(
            "SELECT pair FROM pending WHERE received_ms < ?1 ORDER BY received_ms, client_id, contract_id LIMIT ?2",
            [to_i64(before_ms)?, to_i64(limit)?],
        )
    }

    /// Up to `limit` pairs submitted here in fallback, oldest first.
    pub fn fallback(&self, limit: u64) -> Result<Vec<TxPair>> {
        self.pairs(schema::FALLBACK_SQL, [to_i64(limit)?])
    }

    /// Up to `limit` of the client's pending pairs after receipt `after`, in
    /// receipt-id order (the same order on every node).
    pub fn pending_for_client(&self, client_id: &str, after: Option<&ReceiptId>, limit: u64) -> Result<Vec<TxPair>> {
        let after = after.map(ReceiptId::to_hex).unwrap_or_default();
        self.pairs(
            "SELECT pair FROM pending WHERE client_id = ?1 AND receipt_id > ?2 ORDER BY receipt_id LIMIT ?3",
            params![client_id, after, to_i64(limit)?],
        )
    }

    fn pairs<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<TxPair>> {
        let rows = self
            .conn
            .prepare_cached(sql)?
            .query_map(p, |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.iter().map(|p| decode(p)).collect()
    }

    pub fn len(&self) -> Result<u64> {
        Ok(self.conn.query_row("SELECT count(*) FROM pending", [], |r| r.get::<_, i64>(0))? as u64)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// When the oldest pending pair arrived, if any is pending.
    pub fn oldest_received_ms(&self) -> Result<Option<u64>> {
        let v: Option<i64> = self.conn.prepare_cached("SELECT min(received_ms) FROM pending")?.query_row([], |r| r.get(0))?;
        Ok(v.map(|v| v as u64))
    }

    /// Drops pairs (they landed in the chain, or sync named them as duplicates).
    pub fn remove(&mut self, ids: &[Identity]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let n = remove_ids(&tx, ids)?;
        tx.commit()?;
        Ok(n)
    }

    /// Applies a reconciliation in one transaction and, if given, remembers
    /// `tip` as the last tip the whole mempool was reconciled against.
    /// Applying the same one twice is harmless.
    /// `event_seq`, if given, is the chain-replaced event this came from,
    /// recorded in the same transaction ([`Self::last_event_seq`]).
    pub fn apply_reconciliation(
        &mut self,
        r: &Reconciliation,
        tip: Option<&TipInfo>,
        event_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        remove_ids(&tx, &r.remove)?;
        for p in &r.requeue {
            insert_pair(&tx, p, Origin::Requeued, now_ms)?;
        }
        for o in &r.orphaned {
            insert_orphan(&tx, &o.pair, o.block_index, &o.block_hash, now_ms)?;
        }
        for s in &r.superseded {
            insert_superseded(&tx, s, now_ms)?;
        }
        if let Some(tip) = tip {
            db::set_meta(&tx, "reconciled_tip", &encode(tip)?)?;
        }
        if let Some(seq) = event_seq {
            db::set_meta(&tx, "last_event_seq", &seq.to_string())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A consistent copy of the store at `path` (a new file), while it
    /// stays open: the online backup. Returns the copy's size in bytes.
    pub fn copy_to(&self, path: &Path) -> Result<u64> {
        db::copy_into(&self.conn, path)
    }

    /// For a node whose chain store is rebuilt from its peers, in one
    /// transaction: `pairs` go back to pending (as re-queued; identities
    /// already pending stay as they are), and the mempool forgets which
    /// chain-replaced events and tip it reconciled against (a new store
    /// numbers its events from 1 again; reconciling twice changes nothing).
    pub fn requeue_and_forget_chain(&mut self, pairs: &[TxPair], now_ms: u64) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        for p in pairs {
            added += usize::from(insert_pair(&tx, p, Origin::Requeued, now_ms)? == Insert::Added);
        }
        tx.execute("DELETE FROM meta WHERE key IN ('last_event_seq', 'reconciled_tip')", [])?;
        tx.commit()?;
        Ok(added)
    }

    /// The last chain-replaced event applied (0 if none).
    pub fn last_event_seq(&self) -> Result<u64> {
        Ok(db::get_meta(&self.conn, "last_event_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// `EXPLAIN QUERY PLAN` of the look-ups mining makes at every wake-up,
    /// so tests can hold them to indexes.
    pub fn query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        [schema::FALLBACK_SQL].into_iter().map(|sql| Ok((sql, db::query_plan(&self.conn, sql)?))).collect()
    }

    /// The tip the last reconciliation was made against.
    pub fn reconciled_tip(&self) -> Result<Option<TipInfo>> {
        db::get_meta(&self.conn, "reconciled_tip")?.map(|t| decode(&t)).transpose()
    }

}

fn held(conn: &Connection, p: &TxPair) -> Result<Option<Insert>> {
    let existing: Option<String> = conn
        .prepare_cached("SELECT receipt_id FROM pending WHERE client_id = ?1 AND contract_id = ?2")?
        .query_row([&p.reward_tx.client_id, &p.reward_tx.contract_id], |r| r.get(0))
        .optional()?;
    existing
        .map(|r| {
            let existing = db::hash_from_sql(r)?;
            Ok(if existing == p.receipt_id() { Insert::AlreadyPending } else { Insert::Conflict { existing } })
        })
        .transpose()
}

fn insert_pair(tx: &Transaction<'_>, p: &TxPair, origin: Origin, now_ms: u64) -> Result<Insert> {
    if let Some(known) = held(tx, p)? {
        return Ok(known);
    }
    tx.prepare_cached(
        "INSERT INTO pending (client_id, contract_id, receipt_id, pair, origin, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        p.reward_tx.client_id,
        p.reward_tx.contract_id,
        p.receipt_id().to_hex(),
        encode(p)?,
        origin.as_str(),
        to_i64(now_ms)?
    ])?;
    Ok(Insert::Added)
}

pub(crate) fn remove_ids(tx: &Transaction<'_>, ids: &[Identity]) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        n += tx
            .prepare_cached("DELETE FROM pending WHERE client_id = ?1 AND contract_id = ?2")?
            .execute([&id.client_id, &id.contract_id])?;
    }
    Ok(n)
}

