//! `uwl-admin`: the deployment's first step. It generates every validator's
//! key, the network's issuer keys (the one in use and its successors), and
//! then the genesis file listing the validators' and issuers' public keys
//! and the task bounds every node holds rewards to. Keys and genesis live in
//! the deployment's volumes, never in the repository. Idempotent: an
//! existing genesis is kept (one written by an earlier release that lists
//! no issuer keys is refused with what to do).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod audit;
mod backup;
mod connect;
mod offline;
mod status;
mod verify;
pub use audit::{audit, receipt_ids, Audit, AuditReport, Standing};
pub use backup::{backup, backup_report, Backup};
pub use connect::Connect;
pub use offline::{restore, resync, Restore, Resync};
pub use status::{status, ClusterStatus, NodeStatus, Status};
pub use verify::{report, verify, Verify};

use anyhow::Context;
use std::path::{Path, PathBuf};
use uwl_ledger::{Genesis, KindBounds, NetworkParams, NodeKey, TaskBounds, MAX_ISSUERS};

/// `uwl-admin` alone initialises the deployment (the compose `init`
/// service); its subcommands are operators' tools.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "uwl-admin", about = "Generates validator keys, the issuer keys and the genesis file; operators' tools as subcommands")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(flatten)]
    pub init: Init,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Checks a chain store offline, from block 0 (exit status 1 on any fault).
    Verify(Verify),
    /// Every node now: sync and miner answering, tip, pending, the leader
    /// (exit status 1 unless every service answers on one chain).
    Status(Status),
    /// An online backup of a node, written by its services into
    /// `backups/<label>/` of its data volume.
    Backup(Backup),
    /// Puts a backup into a stopped node (its data and key volumes).
    Restore(Restore),
    /// Rebuilds a stopped node's chain from its peers when it starts again.
    Resync(Resync),
    /// Receipts checked against every validator's chain (exit status 1
    /// unless each is in a block on every node).
    Audit(Audit),
    /// Prints the NATS users file of one site's server: its node's
    /// services (and the metrics service where it runs), each allowed
    /// exactly its subjects; passwords are read from the environment.
    NatsUsers(NatsUsers),
}

#[derive(clap::Args, Debug, Clone)]
pub struct NatsUsers {
    /// The nodes whose services connect to this server (a site: its own).
    #[arg(long, env = "NODE_ID", value_delimiter = ',', required = true)]
    pub nodes: Vec<String>,
    /// The metrics service's node id, when it connects to this server.
    #[arg(long)]
    pub ops: Option<String>,
}

impl NatsUsers {
    pub fn conf(&self) -> String {
        let nodes: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        uwl_bus::permissions::users_conf(&nodes, self.ops.as_deref())
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct Init {
    /// Validators, e.g. node-1,node-2.
    #[arg(long, env = "VALIDATORS", value_delimiter = ',', required = true)]
    pub validators: Vec<String>,
    /// Where each validator's key goes: `<KEY_ROOT>/<node>/node.key` (a
    /// volume only that node's miner mounts).
    #[arg(long, env = "KEY_ROOT", default_value = "/keys")]
    pub key_root: PathBuf,
    /// Directory of genesis.json (read by every service).
    #[arg(long, env = "CONFIG_DIR", default_value = "/config")]
    pub config_dir: PathBuf,
    /// Directory of the issuer secrets `issuer-1.key` .. `issuer-N.key`
    /// (mounted by the ingests only).
    #[arg(long, env = "ISSUER_DIR", default_value = "/issuer")]
    pub issuer_dir: PathBuf,
    /// Issuer keys the genesis lists: the first is used from the start, the
    /// others are its successors for rotation (at most 8).
    #[arg(long, env = "ISSUER_KEYS", default_value_t = 2)]
    pub issuer_keys: usize,
    #[arg(long, env = "CHAIN_ID", default_value = "uwl")]
    pub chain_id: String,
    #[arg(long, env = "T_ROUND_MS", default_value_t = 2_000)]
    pub t_round_ms: u64,
    #[arg(long, env = "MAX_FUTURE_MS", default_value_t = 5_000)]
    pub max_future_ms: u64,
    #[arg(long, env = "MAX_PAIRS_PER_BLOCK", default_value_t = 1_000)]
    pub max_pairs_per_block: u32,
    /// The largest reward of one task, of either kind.
    #[arg(long, env = "MAX_REWARD", default_value_t = 1_000)]
    pub max_reward: u64,
    /// The matrix sizes a matmul task may have (every node refuses others' rewards).
    #[arg(long, env = "MATMUL_N_MIN", default_value_t = TaskBounds::default().matmul.min)]
    pub matmul_n_min: u32,
    #[arg(long, env = "MATMUL_N_MAX", default_value_t = TaskBounds::default().matmul.max)]
    pub matmul_n_max: u32,
    /// The difficulties (leading zero bits) a hash task may have.
    #[arg(long, env = "HASH_BITS_MIN", default_value_t = TaskBounds::default().hash.min)]
    pub hash_bits_min: u32,
    #[arg(long, env = "HASH_BITS_MAX", default_value_t = TaskBounds::default().hash.max)]
    pub hash_bits_max: u32,
}

/// Writes what is missing; returns the genesis in force.
pub fn init(cfg: &Init) -> anyhow::Result<Genesis> {
    anyhow::ensure!((1..=MAX_ISSUERS).contains(&cfg.issuer_keys), "ISSUER_KEYS must be in 1..={MAX_ISSUERS}");
    let genesis_file = cfg.config_dir.join("genesis.json");
    if genesis_file.exists() {
        return Ok(Genesis::load(&genesis_file)?);
    }
    for dir in [&cfg.config_dir, &cfg.issuer_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut issuers = Vec::new();
    for i in 1..=cfg.issuer_keys {
        issuers.push(NodeKey::load_or_generate(&issuer_key_path(&cfg.issuer_dir, i), &format!("issuer-{i}"))?.public_key());
    }
    let mut validators = Vec::new();
    for node in &cfg.validators {
        let dir = cfg.key_root.join(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        validators.push(NodeKey::load_or_generate(&key_path(&dir), node)?.validator());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let tasks = TaskBounds {
        matmul: KindBounds { min: cfg.matmul_n_min, max: cfg.matmul_n_max, max_reward: cfg.max_reward },
        hash: KindBounds { min: cfg.hash_bits_min, max: cfg.hash_bits_max, max_reward: cfg.max_reward },
    };
    let params = NetworkParams {
        t_round_ms: cfg.t_round_ms,
        max_future_ms: cfg.max_future_ms,
        max_pairs_per_block: cfg.max_pairs_per_block,
        tasks,
    };
    let genesis = Genesis::new(&cfg.chain_id, now, validators, issuers, params)?;
    // Written last and atomically: its presence means the deployment is initialised.
    let tmp = cfg.config_dir.join("genesis.json.tmp");
    genesis.save(&tmp)?;
    std::fs::rename(&tmp, &genesis_file)?;
    Ok(genesis)
}

pub fn key_path(node_dir: &Path) -> PathBuf {
    node_dir.join("node.key")
}

/// The `i`-th issuer key (1-based, the order of the genesis's list).
pub fn issuer_key_path(issuer_dir: &Path, i: usize) -> PathBuf {
    issuer_dir.join(format!("issuer-{i}.key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(root: &Path) -> Init {
        Init {
            validators: vec!["node-1".into(), "node-2".into()],
            key_root: root.join("keys"),
            config_dir: root.join("config"),
            issuer_dir: root.join("issuer"),
            issuer_keys: 2,
            chain_id: "t".into(),
            t_round_ms: 2_000,
            max_future_ms: 5_000,
            max_pairs_per_block: 100,
            max_reward: 50,
            matmul_n_min: 2,
            matmul_n_max: 64,
            hash_bits_min: 4,
            hash_bits_max: 32,
        }
    }

    /// The genesis lists the keys of the files written beside it, and a
    /// second run keeps all of them.
    #[test]
    fn genesis_lists_the_generated_keys_and_a_second_run_keeps_them() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let first = init(&cfg(root.path()))?;
        assert_eq!(init(&cfg(root.path()))?, first, "the same genesis");
        for (i, issuer) in first.issuers.iter().enumerate() {
            let key = NodeKey::load_or_generate(&issuer_key_path(&root.path().join("issuer"), i + 1), "issuer")?;
            assert_eq!(&key.public_key(), issuer, "issuer key {} listed", i + 1);
        }
        assert_eq!(first.issuers.len(), 2);
        assert_eq!(first.params.tasks.hash.max_reward, 50);
        for v in &first.validators {
            let key = NodeKey::load_or_generate(&key_path(&root.path().join("keys").join(&v.node_id)), &v.node_id)?;
            assert_eq!(key.public_key(), v.public_key, "{}'s key listed", v.node_id);
        }
        Ok(())
    }

    /// `uwl-admin` alone is the deployment step (its settings required);
    /// `uwl-admin verify` needs none of them and never creates a store.
    #[test]
    fn init_alone_and_verify_as_a_subcommand() -> anyhow::Result<()> {
        use clap::Parser;
        assert!(Cli::try_parse_from(["uwl-admin", "--validators", "node-1"])?.cmd.is_none());
        let root = tempfile::tempdir()?;
        init(&cfg(root.path()))?;
        let store = root.path().join("chain.sqlite");
        let cli = Cli::try_parse_from(["uwl-admin", "verify", "--store", store.to_str().unwrap_or_default(), "--genesis-file", root.path().join("config/genesis.json").to_str().unwrap_or_default()])?;
        let Some(Cmd::Verify(v)) = cli.cmd else { anyhow::bail!("verify parsed as {:?}", cli.cmd) };
        let err = verify(&v).expect_err("no store there").to_string();
        assert!(err.contains("not a file") && !store.exists(), "{err}");
        Ok(())
    }

    /// A genesis of an earlier release (no issuer keys) is refused with what to do.
    #[test]
    fn a_genesis_of_an_earlier_release_is_refused_with_what_to_do() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let g = init(&cfg(root.path()))?;
        let mut old = serde_json::to_value(&g)?;
        old.as_object_mut().map(|o| o.remove("issuers"));
        std::fs::write(root.path().join("config/genesis.json"), serde_json::to_vec(&old)?)?;
        let err = init(&cfg(root.path())).expect_err("an outdated genesis is refused").to_string();
        assert!(err.contains("earlier release") && err.contains("down -v"), "{err}");
        Ok(())
    }

    /// A site's server gets its own node's four users and the operators'
    /// admin, and no metrics user unless asked for.
    #[test]
    fn a_sites_nats_users_are_its_nodes_alone() -> anyhow::Result<()> {
        use clap::Parser;
        let Some(Cmd::NatsUsers(u)) = Cli::try_parse_from(["uwl-admin", "nats-users", "--nodes", "node-3"])?.cmd else { anyhow::bail!("not parsed") };
        let conf = u.conf();
        let users: Vec<&str> = conf.lines().filter_map(|l| l.trim().strip_prefix("user: ")).map(|l| l.split(',').next().unwrap_or_default()).collect();
        assert_eq!(users, ["\"sync-node-3\"", "\"miner-node-3\"", "\"verifier-node-3\"", "\"ingest-node-3\""], "{conf}");
        assert!(conf.contains("{ user: admin, password: $NATS_ADMIN_PASSWORD }") && !conf.contains("user: \"metrics-"), "{conf}");
        Ok(())
    }
}
