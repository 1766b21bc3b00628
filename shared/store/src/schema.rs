//! The stores' tables and their fixed queries (SQL text only).

/// The chain store (schema version `CHAIN_SCHEMA_VERSION`).
pub(crate) const CHAIN: &str = "
CREATE TABLE blocks (
    idx             INTEGER PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    prev_hash       TEXT NOT NULL,
    timestamp       INTEGER NOT NULL,
    creator_node_id TEXT NOT NULL,
    tx_count        INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE TABLE identities (
    client_id   TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    block_idx   INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    PRIMARY KEY (client_id, contract_id)
) WITHOUT ROWID;
CREATE INDEX identities_receipt ON identities (receipt_id);
CREATE INDEX identities_block ON identities (block_idx);
CREATE TABLE balances (
    client_id TEXT PRIMARY KEY,
    balance   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE orphaned_blocks (
    hash            TEXT PRIMARY KEY,
    idx             INTEGER NOT NULL,
    creator_node_id TEXT NOT NULL,
    body            TEXT NOT NULL,
    orphaned_at_ms  INTEGER NOT NULL,
    replaced_by     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE creators (
    creator_node_id TEXT PRIMARY KEY,
    blocks          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
";

pub(crate) const TIP_SQL: &str = "SELECT body FROM blocks WHERE idx = (SELECT max(idx) FROM blocks)";
pub(crate) const BLOCK_SQL: &str = "SELECT body FROM blocks WHERE idx = ?1";
pub(crate) const BALANCE_SQL: &str = "SELECT balance FROM balances WHERE client_id = ?1";
pub(crate) const LANDED_SQL: &str = "SELECT i.block_idx, i.receipt_id, b.hash FROM identities i JOIN blocks b ON b.idx = i.block_idx
     WHERE i.client_id = ?1 AND i.contract_id = ?2";
pub(crate) const RECEIPT_SQL: &str = "SELECT i.client_id, i.contract_id, i.block_idx, b.hash FROM identities i JOIN blocks b ON b.idx = i.block_idx
     WHERE i.receipt_id = ?1";

/// The mempool (schema version 1; later versions add the tables below).
pub(crate) const MEMPOOL: &str = "
CREATE TABLE pending (
    client_id   TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    receipt_id  TEXT NOT NULL,
    pair        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (client_id, contract_id)
) WITHOUT ROWID;
CREATE INDEX pending_receipt ON pending (receipt_id);
CREATE INDEX pending_received ON pending (received_ms);
CREATE TABLE orphaned (
    receipt_id   TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    pair         TEXT NOT NULL,
    block_index  INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    orphaned_ms  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX orphaned_client ON orphaned (client_id);
CREATE TABLE superseded (
    receipt_id TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    pair       TEXT NOT NULL,
    by_receipt TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX superseded_client ON superseded (client_id);
";

/// Version 2: pairs set aside (a block carrying them was invalid).
pub(crate) const SET_ASIDE: &str = "
CREATE TABLE set_aside (
    receipt_id TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    pair       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 3: the pairs submitted here in fallback, oldest first, without
/// a scan of every pending pair (a follower's mempool holds its peer's
/// replicated pairs, and it looks for fallback pairs at every wake-up).
/// Partial: the other pending pairs cost it nothing.
pub(crate) const FALLBACK_INDEX: &str = "
CREATE INDEX IF NOT EXISTS pending_fallback ON pending (received_ms) WHERE origin = 'fallback';
";

pub(crate) const FALLBACK_SQL: &str =
    "SELECT pair FROM pending WHERE origin = 'fallback' ORDER BY received_ms, client_id, contract_id LIMIT ?1";
