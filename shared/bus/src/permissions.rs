//! Who may publish and subscribe to what on the bus: one NATS user per
//! (role, node), allowed exactly the subjects that role uses on that node,
//! derived from [`crate::subjects`]. `nats/users.conf` is generated from
//! here ([`users_conf`]; a test keeps the committed file equal to it).
//!
//! Replies travel on per-connection inboxes under a prefix per (role,
//! node) ([`Role::inbox`]): a role subscribes to its own prefix only, so no
//! role reads another's replies, and a responder may publish on the
//! prefixes of the roles that ask it (not `allow_responses`, which costs
//! the server a scan of every tracked request on each delivery).

use crate::subjects;

/// A service's role on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Sync,
    Miner,
    Verifier,
    Ingest,
    Metrics,
    /// Operators and tests: every subject; replies under `_INBOX.admin.`.
    Admin,
}

const ANY: &str = subjects::ANY_NODE;

impl Role {
    /// The roles of a node's services.
    pub const NODE: [Role; 4] = [Role::Sync, Role::Miner, Role::Verifier, Role::Ingest];

    pub fn name(self) -> &'static str {
        match self {
            Role::Sync => "sync",
            Role::Miner => "miner",
            Role::Verifier => "verifier",
            Role::Ingest => "ingest",
            Role::Metrics => "metrics",
            Role::Admin => "admin",
        }
    }

    /// This role's NATS user on `node`.
    pub fn user(self, node: &str) -> String {
        match self {
            Role::Admin => "admin".to_owned(),
            _ => format!("{}-{node}", self.name()),
        }
    }

    /// The environment variable holding that user's password (`deploy/.env`).
    pub fn password_var(self, node: &str) -> String {
        let id = |s: &str| s.to_uppercase().replace(['-', '.'], "_");
        match self {
            Role::Admin => "NATS_ADMIN_PASSWORD".to_owned(),
            _ => format!("NATS_{}_{}_PASSWORD", id(self.name()), id(node)),
        }
    }

    /// The prefix of the inboxes this role's connections on `node` get
    /// their replies under.
    pub fn inbox(self, node: &str) -> String {
        match self {
            Role::Admin => "_INBOX.admin.ops".to_owned(),
            _ => format!("_INBOX.{}.{node}", self.name()),
        }
    }

    /// Subjects this role may publish and subscribe to on `node`.
    pub fn permissions(self, node: &str) -> Permissions {
        let own = format!("{}.>", self.inbox(node));
        // replies to the roles that ask this one, on any node unless said
        let replies = |askers: &[(Role, &str)]| -> Vec<String> {
            askers.iter().map(|(r, n)| format!("{}.>", r.inbox(n))).chain([format!("{}.>", Role::Admin.inbox(ANY))]).collect()
        };
        let (mut publish, mut subscribe) = match self {
            Role::Sync => (
                // pulls from peers; replaced hints, tips and new blocks' contents of its own node
                [vec![subjects::sync_read(ANY), subjects::sync_replaced(node), subjects::tips(node), subjects::landed(node)],
                    replies(&[(Role::Sync, ANY), (Role::Miner, node), (Role::Ingest, ANY), (Role::Metrics, ANY)])]
                .concat(),
                vec![subjects::sync_read(node), subjects::sync_append(node), subjects::sync_events(node), subjects::sync_admin(node), subjects::tips(ANY)],
            ),
            Role::Miner => (
                [vec![
                    subjects::sync_read(node),
                    subjects::sync_append(node),
                    subjects::sync_events(node),
                    subjects::sync_admin(node),
                    subjects::miner_replicate(ANY),
                ],
                    replies(&[(Role::Ingest, ANY), (Role::Miner, ANY), (Role::Metrics, ANY)])]
                .concat(),
                vec![
                    subjects::miner_submit(node),
                    subjects::miner_replicate(node),
                    subjects::miner_read(node),
                    subjects::miner_admin(node),
                    subjects::sync_replaced(node),
                    subjects::tips(ANY),
                ],
            ),
            Role::Verifier => (replies(&[(Role::Ingest, node)]), vec![subjects::verify(node)]),
            Role::Ingest => (
                vec![
                    subjects::sync_read(ANY),
                    subjects::miner_submit(ANY),
                    // a follower's reads merge every validator's pending state
                    subjects::miner_read(ANY),
                    subjects::verify(node),
                    subjects::INGEST_REPORTS.to_owned(),
                    subjects::METRICS_CLUSTER.to_owned(),
                ],
                vec![subjects::tips(ANY), subjects::landed(ANY)],
            ),
            Role::Metrics => (
                [vec![subjects::sync_read(ANY), subjects::miner_read(ANY)], replies(&[(Role::Ingest, ANY)])].concat(),
                vec![subjects::METRICS_CLUSTER.to_owned(), subjects::INGEST_REPORTS.to_owned()],
            ),
            Role::Admin => (vec![">".to_owned()], vec![">".to_owned()]),
        };
        if self != Role::Admin {
            // its own inbox: replies, and the connection's liveness probe
            publish.push(own.clone());
            subscribe.push(own);
        }
        Permissions { publish, subscribe }
    }
}

/// The subjects one user may publish and subscribe to (NATS patterns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// The NATS `authorization` block for `nodes` (every node's sync, miner,
/// verifier and ingest), the metrics service on `ops` when that server has
/// one, and the operators' `admin`: one user per (role, node), passwords
/// from the environment ([`Role::password_var`]). The compose cluster's
/// servers share one (`nats/users.conf`); a site of its own generates its
/// server's for its node alone (`uwl-admin nats-users`).
pub fn users_conf(nodes: &[&str], ops: Option<&str>) -> String {
    let list = |v: &[String]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    let mut out = String::from(
        "# Generated from shared/bus/src/permissions.rs (tests/tests/nats_users.rs keeps it\n\
         # equal; UPDATE_NATS_USERS=1 rewrites it): one user per (role, node), each\n\
         # allowed exactly the subjects it uses. Passwords come from the environment\n\
         # (deploy/.env).\n\
         authorization {\n  users: [\n",
    );
    let users = nodes.iter().flat_map(|n| Role::NODE.map(|r| (r, *n))).chain(ops.map(|o| (Role::Metrics, o)));
    for (role, node) in users {
        let p = role.permissions(node);
        out.push_str(&format!(
            "    {{\n      user: {:?}, password: ${}\n      permissions: {{\n        publish: {{ allow: [{}] }}\n        subscribe: {{ allow: [{}] }}\n      }}\n    }}\n",
            role.user(node),
            role.password_var(node),
            list(&p.publish),
            list(&p.subscribe),
        ));
    }
    out.push_str(&format!("    # Operators and tests: everything.\n    {{ user: admin, password: ${} }}\n  ]\n}}\n", Role::Admin.password_var("")));
    out
}
