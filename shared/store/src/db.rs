//! Connection set-up shared by both stores.

use crate::{Result, StoreError};
use rusqlite::{Connection, OptionalExtension};
use std::path::Path;

/// Opens `path` with the durability settings every store uses and creates
/// or checks its schema. `migrations[i]` upgrades an existing store from
/// version `i + 1` to `i + 2`, each in one transaction, so a volume of an
/// earlier release is brought to `version` on open.
pub(crate) fn open(path: &Path, schema: &str, version: i64, migrations: &[&str]) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // One owner process per store: its connection holds the lock for its
    // lifetime (a second opener gets "database is locked"), so transactions
    // take no file locks (fcntl(2) per statement showed in strace) and the
    // WAL index lives in heap memory.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Reads of the main file through a memory map and a 32 MiB page cache:
    // look-ups under load cost no read(2) per page (perf showed them).
    conn.pragma_update(None, "mmap_size", 256i64 << 20)?;
    conn.pragma_update(None, "cache_size", -32_768i64)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;")?;
    match get_meta(&conn, "schema_version")? {
        None => {
            conn.execute_batch(&format!("BEGIN; {schema} COMMIT;"))?;
            set_meta(&conn, "schema_version", &version.to_string())?;
        }
        Some(v) => {
            let mut found: i64 = v.parse().map_err(|_| StoreError::Corrupt(format!("schema_version {v:?}")))?;
            while found < version {
                let Some(step) = usize::try_from(found - 1).ok().and_then(|i| migrations.get(i)) else { break };
                conn.execute_batch(&format!("BEGIN; {step} UPDATE meta SET value = '{}' WHERE key = 'schema_version'; COMMIT;", found + 1))?;
                found += 1;
            }
            if found != version {
                return Err(StoreError::SchemaVersion { found, supported: version });
            }
        }
    }
    Ok(conn)
}

/// Writes a consistent copy of the database to `path`, a new file (SQLite's
/// `VACUUM INTO`, on the owner's connection: the store stays open and
/// usable by its owner, and the copy holds every committed transaction up
/// to the moment of the copy). Returns the copy's size in bytes.
pub(crate) fn copy_into(conn: &Connection, path: &std::path::Path) -> Result<u64> {
    let fail = |reason: String| StoreError::Copy { path: path.display().to_string(), reason };
    if path.exists() {
        return Err(fail("the file exists".into()));
    }
    let text = path.to_str().ok_or_else(|| fail("the path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [text])?;
    // VACUUM INTO does not sync what it wrote: a backup must survive a crash
    let synced = std::fs::File::open(path).and_then(|f| {
        f.sync_all()?;
        f.metadata()
    });
    let bytes = synced.map_err(|e| fail(e.to_string()))?.len();
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fail(format!("syncing its directory: {e}")))?;
    }
    Ok(bytes)
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

pub(crate) fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Overflow(v))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(StoreError::Encode)
}

pub(crate) fn hash_from_sql(text: String) -> Result<uwl_ledger::Hash32> {
    uwl_ledger::Hash32::from_hex(&text).map_err(|e| StoreError::Corrupt(format!("hash {text:?}: {e}")))
}

/// `EXPLAIN QUERY PLAN` details of `sql` (for tests that keep look-ups indexed).
pub(crate) fn query_plan(conn: &Connection, sql: &str) -> Result<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let n = stmt.parameter_count();
    let params: Vec<&dyn rusqlite::ToSql> = (0..n).map(|_| &"" as &dyn rusqlite::ToSql).collect();
    let rows = stmt.query_map(params.as_slice(), |r| r.get::<_, String>(3))?;
    Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?.join("; "))
}
