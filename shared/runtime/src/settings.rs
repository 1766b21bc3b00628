//! Settings every node service takes.

use secrecy::SecretString;
use std::net::SocketAddr;
use uwl_bus::{Login, Role};

/// Settings every node service takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonSettings {
    /// This node's id: a validator's `node_id` in the genesis file, or a follower's name.
    #[arg(long, env = "NODE_ID")]
    pub node_id: String,
    /// This site's NATS server (a node's services talk to their own site
    /// only); no credentials in it.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The password of this service's NATS user (`<role>-<node>`, see
    /// `nats/users.conf`); none for a server without users. Never printed.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub nats_password: Option<SecretString>,
    /// Admin HTTP address serving this service's /metrics and /health.
    #[arg(long, env = "ADMIN_ADDR", default_value = "0.0.0.0:9100")]
    pub admin_addr: SocketAddr,
}


impl CommonSettings {
    /// How `role` logs in to the bus with these settings.
    pub fn login(&self, role: Role) -> Login {
        match &self.nats_password {
            Some(p) => Login::with_password(role, &self.node_id, p.clone()),
            None => Login::open(role, &self.node_id),
        }
    }
}

/// Parses a secret setting (a password): kept in a type that never prints.
pub fn secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

/// Parses a duration given in milliseconds (the `*_MS` settings), so a
/// setting is a `Duration` from the start and never converted at use.
pub fn millis(value: &str) -> Result<std::time::Duration, String> {
    value.trim().parse::<u64>().map(std::time::Duration::from_millis).map_err(|e| format!("{value:?} is not a whole number of milliseconds: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Probe {
        #[command(flatten)]
        common: CommonSettings,
    }

    #[test]
    fn the_nats_password_never_prints() {
        let password = "correct-horse-battery-staple";
        let p = Probe::try_parse_from(["probe", "--node-id", "node-1", "--nats-password", password]).expect("parses");
        assert!(!format!("{p:?}").contains(password), "{p:?}");
        let login = p.common.login(Role::Sync);
        assert!(!format!("{login:?}").contains(password), "{login:?}");
        let cmd = Probe::command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == "nats_password").expect("NATS_PASSWORD is a setting");
        assert!(arg.is_hide_env_values_set(), "NATS_PASSWORD's value is hidden from --help");
    }
}
