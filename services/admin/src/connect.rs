//! How the operators' tools that ask the running cluster reach it: a NATS
//! server of the cluster, as the `admin` user, and the genesis naming the
//! validators.

use anyhow::Context;
use secrecy::SecretString;
use std::path::PathBuf;
use std::time::Duration;
use uwl_bus::{Bus, Login, Role};
use uwl_ledger::Genesis;

#[derive(clap::Args, Debug, Clone)]
pub struct Connect {
    /// A NATS server of the cluster (in compose, the operators' network's: nats://nats-3:4222).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The password of the NATS user `admin` (deploy/.env: NATS_ADMIN_PASSWORD).
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true, value_parser = uwl_runtime::secret)]
    pub nats_password: Option<SecretString>,
    /// The genesis (its validators are the nodes asked).
    #[arg(long, default_value = "/config/genesis.json")]
    pub genesis_file: PathBuf,
    /// How long each service gets to answer.
    #[arg(long = "timeout-ms", default_value = "2000", value_parser = uwl_runtime::millis)]
    pub timeout: Duration,
}

impl Connect {
    pub fn genesis(&self) -> anyhow::Result<Genesis> {
        Genesis::load(&self.genesis_file).with_context(|| format!("reading {}", self.genesis_file.display()))
    }

    pub async fn bus(&self) -> anyhow::Result<Bus> {
        let login = match &self.nats_password {
            Some(p) => Login::with_password(Role::Admin, "ops", p.clone()),
            None => Login::open(Role::Admin, "ops"),
        };
        Ok(Bus::connect(&self.nats_url, &login).await?)
    }
}
