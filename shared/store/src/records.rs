//! The mempool's records kept for owners and operators: pairs from
//! orphaned blocks, pairs superseded by another result, pairs set aside.

use crate::db::{self, decode, encode, to_i64};
use crate::mempool::remove_ids;
use crate::mempool::Mempool;
use crate::Result;
use rusqlite::{params, OptionalExtension, Transaction};
use uwl_ledger::{Identity, OrphanRecord, ReceiptId, Superseded, TxPair};

impl Mempool {
    /// Takes `ids` out of pending into the set-aside records with `reason`
    /// (a block carrying them was refused): kept for operators, never mined.
    pub fn set_aside(&mut self, ids: &[Identity], reason: &str, now_ms: u64) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        for id in ids {
            n += tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO set_aside (receipt_id, client_id, pair, reason, at_ms)
                     SELECT receipt_id, client_id, pair, ?3, ?4 FROM pending WHERE client_id = ?1 AND contract_id = ?2",
                )?
                .execute(params![id.client_id, id.contract_id, reason, to_i64(now_ms)?])?;
        }
        remove_ids(&tx, ids)?;
        tx.commit()?;
        Ok(n)
    }

    /// Pairs set aside so far (receipt id and reason), newest first.
    pub fn set_aside_records(&self, limit: u64) -> Result<Vec<(ReceiptId, String)>> {
        let rows = self
            .conn
            .prepare_cached("SELECT receipt_id, reason FROM set_aside ORDER BY at_ms DESC LIMIT ?1")?
            .query_map([to_i64(limit)?], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(r, why)| Ok((db::hash_from_sql(r)?, why))).collect()
    }

    /// Up to `limit` of the client's pairs that were in orphaned blocks
    /// (of this node, or of a peer that replicated its records), after
    /// receipt `after`, in receipt-id order.
    pub fn orphaned_for_client(&self, client_id: &str, after: Option<&ReceiptId>, limit: u64) -> Result<Vec<OrphanRecord>> {
        let after = after.map(ReceiptId::to_hex).unwrap_or_default();
        self.orphan_records(
            "SELECT pair, block_index, block_hash, orphaned_ms FROM orphaned
             WHERE client_id = ?1 AND receipt_id > ?2 ORDER BY receipt_id LIMIT ?3",
            params![client_id, after, to_i64(limit)?],
        )
    }

    /// Up to `limit` orphan records after receipt `after`, in receipt-id
    /// order (anti-entropy walks the table with it).
    pub fn orphaned_page(&self, after: Option<&ReceiptId>, limit: u64) -> Result<Vec<OrphanRecord>> {
        let after = after.map(ReceiptId::to_hex).unwrap_or_default();
        self.orphan_records(
            "SELECT pair, block_index, block_hash, orphaned_ms FROM orphaned WHERE receipt_id > ?1 ORDER BY receipt_id LIMIT ?2",
            params![after, to_i64(limit)?],
        )
    }

    /// Up to `limit` superseded records after receipt `after`, in receipt-id order.
    pub fn superseded_page(&self, after: Option<&ReceiptId>, limit: u64) -> Result<Vec<Superseded>> {
        let after = after.map(ReceiptId::to_hex).unwrap_or_default();
        let rows = self
            .conn
            .prepare_cached("SELECT pair, by_receipt FROM superseded WHERE receipt_id > ?1 ORDER BY receipt_id LIMIT ?2")?
            .query_map(params![after, to_i64(limit)?], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter().map(|(pair, by)| Ok(Superseded { pair: decode(&pair)?, by: db::hash_from_sql(by)? })).collect()
    }

    /// Stores a peer's owners' records; ones already held are kept as they
    /// are (idempotent). Returns how many were new.
    pub fn insert_records(&mut self, orphaned: &[OrphanRecord], superseded: &[Superseded], now_ms: u64) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        for o in orphaned {
            n += insert_orphan(&tx, &o.pair, o.block_index, &o.block_hash, o.orphaned_ms)?;
        }
        for s in superseded {
            n += insert_superseded(&tx, s, now_ms)?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn orphan_records<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<OrphanRecord>> {
        let rows = self
            .conn
            .prepare_cached(sql)?
            .query_map(p, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        rows.into_iter().map(orphan_record).collect()
    }

    /// The orphan record of `receipt_id`, if its pair was in one of our orphaned blocks.
    pub fn orphaned_by_receipt(&self, receipt_id: &ReceiptId) -> Result<Option<OrphanRecord>> {
        let row: Option<(String, i64, String, i64)> = self
            .conn
            .prepare_cached("SELECT pair, block_index, block_hash, orphaned_ms FROM orphaned WHERE receipt_id = ?1")?
            .query_row([receipt_id.to_hex()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(orphan_record).transpose()
    }

    /// The receipt that superseded `receipt_id`, if it lost to another result.
    pub fn superseded_by(&self, receipt_id: &ReceiptId) -> Result<Option<ReceiptId>> {
        let by: Option<String> = self
            .conn
            .prepare_cached("SELECT by_receipt FROM superseded WHERE receipt_id = ?1")?
            .query_row([receipt_id.to_hex()], |r| r.get(0))
            .optional()?;
        by.map(db::hash_from_sql).transpose()
    }
}

pub(crate) fn insert_orphan(tx: &Transaction<'_>, pair: &TxPair, block_index: u64, block_hash: &uwl_ledger::Hash32, at_ms: u64) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "INSERT OR IGNORE INTO orphaned (receipt_id, client_id, pair, block_index, block_hash, orphaned_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![pair.receipt_id().to_hex(), pair.client_id(), encode(pair)?, to_i64(block_index)?, block_hash.to_hex(), to_i64(at_ms)?])?)
}

pub(crate) fn insert_superseded(tx: &Transaction<'_>, s: &Superseded, at_ms: u64) -> Result<usize> {
    Ok(tx
        .prepare_cached("INSERT OR IGNORE INTO superseded (receipt_id, client_id, pair, by_receipt, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![s.pair.receipt_id().to_hex(), s.pair.client_id(), encode(&s.pair)?, s.by.to_hex(), to_i64(at_ms)?])?)
}

/// An `orphaned` row (pair, block index, block hash, time) as its record.
fn orphan_record((pair, idx, hash, ms): (String, i64, String, i64)) -> Result<OrphanRecord> {
    Ok(OrphanRecord { pair: decode(&pair)?, block_index: idx as u64, block_hash: db::hash_from_sql(hash)?, orphaned_ms: ms as u64 })
}
