//! Where a node keeps its stores, and its backups, in its data directory:
//! one source for the names sync, the miner and `uwl-admin` use.

use std::path::{Path, PathBuf};

/// Sync's chain store.
pub const CHAIN_FILE: &str = "chain.sqlite";
/// The miner's mempool store.
pub const MEMPOOL_FILE: &str = "mempool.sqlite";
/// The node's signing key, in a backup (the miner's own is `KEY_FILE`).
pub const KEY_FILE: &str = "node.key";
/// Backups go to `<data dir>/backups/<label>/`.
pub const BACKUPS_DIR: &str = "backups";

/// The directory of backup `label` under `data_dir`; a label is a
/// directory name: 1 to 64 letters, digits, `-` or `_`.
pub fn backup_dir(data_dir: &Path, label: &str) -> Result<PathBuf, String> {
    let ok = (1..=64).contains(&label.len()) && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(format!("backup label {label:?}: 1 to 64 letters, digits, '-' or '_'"));
    }
    Ok(data_dir.join(BACKUPS_DIR).join(label))
}

/// Whether `path` is a file directly inside one of `data_dir`'s backup
/// directories (where sync may be asked to write a copy of its chain).
pub fn is_backup_file(data_dir: &Path, path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return false };
    let label = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == CHAIN_FILE && backup_dir(data_dir, label).is_ok_and(|d| d == dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_plain_names_and_copies_stay_in_the_backups() {
        let data = Path::new("/data");
        assert_eq!(backup_dir(data, "2026-12-06_a").ok(), Some(PathBuf::from("/data/backups/2026-12-06_a")));
        for bad in ["", "..", "a/b", "a b", &"x".repeat(65)] {
            assert!(backup_dir(data, bad).is_err(), "{bad:?}");
        }
        assert!(is_backup_file(data, Path::new("/data/backups/t1/chain.sqlite")));
        assert!(!is_backup_file(data, Path::new("/data/chain.sqlite")));
        assert!(!is_backup_file(data, Path::new("/data/backups/../chain.sqlite")));
        assert!(!is_backup_file(data, Path::new("/data/backups/t1/other.sqlite")));
        assert!(!is_backup_file(data, Path::new("/etc/backups/t1/chain.sqlite")));
    }
}
