//! Least privilege on the bus: `nats/users.conf` is the one generated from
//! the subject module (`uwl_bus::permissions`; `UPDATE_NATS_USERS=1 cargo
//! test -p uwl-tests --test nats_users` rewrites it), and a NATS server
//! running it refuses each role what it must not do: publish or subscribe
//! to another node's subjects, speak for another node, read another role's
//! replies.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::time::Duration;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use tokio::sync::mpsc;
use uwl_bus::permissions::users_conf;
use uwl_bus::subjects::*;
use uwl_bus::{Login, Role};
use uwl_tests::*;

#[test]
fn the_committed_users_file_is_the_generated_one() -> anyhow::Result<()> {
    let generated = users_conf(&COMPOSE_NODES, Some(COMPOSE_OPS));
    let path = repo().join("nats/users.conf");
    if std::env::var_os("UPDATE_NATS_USERS").is_some() {
        std::fs::write(&path, &generated)?;
    }
    let committed = std::fs::read_to_string(&path)?;
    assert!(committed == generated, "nats/users.conf is not the generated one: rerun with UPDATE_NATS_USERS=1");
    Ok(())
}

/// A connection that reports the server's permission violations.
struct Probe {
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
}

impl Probe {
    async fn connect(url: &str, role: Role, node: &str) -> anyhow::Result<Self> {
        let (tx, errors) = mpsc::unbounded_channel();
        let password = secret_for(role, node);
        let client = async_nats::ConnectOptions::with_user_and_password(role.user(node), password)
            .custom_inbox_prefix(role.inbox(node))
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = e {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(url)
            .await?;
        Ok(Self { client, errors })
    }

    /// Whether the server refused `op` on `subject` (a permissions
    /// violation naming it within a second of a flush), else false.
    async fn refused(&mut self, op: Op, subject: &str) -> anyhow::Result<bool> {
        while self.errors.try_recv().is_ok() {}
        let _sub;
        match op {
            Op::Publish => self.client.publish(subject.to_owned(), "{}".into()).await?,
            Op::Subscribe => _sub = self.client.subscribe(subject.to_owned()).await?,
        }
        self.client.flush().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.errors.recv()).await {
            if e.to_lowercase().contains("permissions violation") && e.contains(subject) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A subject `pattern` stands for, made concrete (`*` and `>` as `x`).
fn concrete(pattern: &str) -> String {
    pattern.split('.').map(|t| if t == "*" || t == ">" { "x" } else { t }).collect::<Vec<_>>().join(".")
}

/// Whether NATS pattern `pattern` covers the concrete `subject`.
fn covers(pattern: &str, subject: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), subject.split('.').collect());
    for (i, t) in p.iter().enumerate() {
        match *t {
            ">" => return s.len() > i,
            "*" if i < s.len() => {}
            t if s.get(i) == Some(&t) => {}
            _ => return false,
        }
    }
    p.len() == s.len()
}

#[test]
fn nats_patterns_cover_as_the_server_does() {
    assert!(covers("uwl.sync.*.read", "uwl.sync.node-1.read"));
    assert!(!covers("uwl.sync.*.read", "uwl.sync.node-1.append"));
    assert!(covers("_INBOX.ingest.node-1.>", "_INBOX.ingest.node-1.x"));
    assert!(!covers("_INBOX.ingest.node-1.>", "_INBOX.ingest.node-1"));
    assert!(!covers("uwl.tips.node-1", "uwl.tips.node-2"));
    assert_eq!(concrete("uwl.tips.*"), "uwl.tips.x");
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Publish,
    Subscribe,
}

/// The nodes and the ops site of the compose deployment (`nats/users.conf`):
/// the two validators and the followers `deploy/cluster followers` may add.
const COMPOSE_NODES: [&str; 4] = ["node-1", "node-2", "follower-1", "follower-2"];
const COMPOSE_OPS: &str = "ops";

/// The password `nats_secrets("pw")` gives (role, node)'s user.
fn secret_for(role: Role, node: &str) -> String {
    format!("pw-{}", role.password_var(node).to_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_what_it_must_not_do() -> anyhow::Result<()> {
    let _serial = serial();
    require_image(NATS_IMAGE.0, NATS_IMAGE.1)?;
    let mut image = GenericImage::new(NATS_IMAGE.0, NATS_IMAGE.1)
        .with_exposed_port(4222.tcp())
        .with_wait_for(WaitFor::message_on_stderr("Server is ready"))
        .with_copy_to("/etc/nats/test.conf", b"include standalone.conf\ninclude users.conf\n".to_vec())
        .with_cmd(["-c", "/etc/nats/test.conf"]);
    for (var, value) in nats_secrets("pw")? {
        image = image.with_env_var(var, value);
    }
    let container = image.start().await?;
    let url = format!("nats://127.0.0.1:{}", container.get_host_port_ipv4(4222.tcp()).await?);

    // What each role must not do, from the threat model; and, as controls,
    // what it must be able to do (a test that always saw refusals would
    // prove nothing).
    let (me, peer) = ("node-1", "node-2");
    let cases: Vec<(Role, Op, String, bool)> = vec![
        // sync: only its own node's requests and tips
        (Role::Sync, Op::Subscribe, sync_read(peer), true),
        (Role::Sync, Op::Subscribe, sync_append(peer), true),
        (Role::Sync, Op::Publish, tips(peer), true),
        (Role::Sync, Op::Publish, sync_replaced(peer), true),
        (Role::Sync, Op::Publish, sync_append(me), true),
        (Role::Sync, Op::Publish, miner_submit(me), true),
        (Role::Sync, Op::Subscribe, "_INBOX.>".into(), true),
        (Role::Sync, Op::Subscribe, format!("{}.>", Role::Ingest.inbox(me)), true),
        (Role::Sync, Op::Publish, tips(me), false),
        (Role::Sync, Op::Subscribe, sync_read(me), false),
        (Role::Sync, Op::Subscribe, tips(ANY_NODE), false),
        (Role::Sync, Op::Publish, sync_read(peer), false),
        // miner: not another node's events acknowledgements, requests or blocks
        (Role::Miner, Op::Publish, sync_events(peer), true),
        (Role::Miner, Op::Publish, sync_append(peer), true),
        (Role::Miner, Op::Subscribe, miner_submit(peer), true),
        (Role::Miner, Op::Subscribe, miner_replicate(peer), true),
        (Role::Miner, Op::Publish, tips(me), true),
        (Role::Miner, Op::Publish, miner_submit(peer), true),
        (Role::Miner, Op::Subscribe, "_INBOX.>".into(), true),
        (Role::Miner, Op::Publish, sync_events(me), false),
        (Role::Miner, Op::Publish, miner_replicate(peer), false),
        (Role::Miner, Op::Subscribe, miner_submit(me), false),
        // verifier: answers its node's ingest, nothing else
        (Role::Verifier, Op::Publish, sync_append(me), true),
        (Role::Verifier, Op::Publish, miner_submit(me), true),
        (Role::Verifier, Op::Subscribe, verify(peer), true),
        (Role::Verifier, Op::Publish, format!("{}.x", Role::Ingest.inbox(peer)), true),
        (Role::Verifier, Op::Publish, format!("{}.x", Role::Ingest.inbox(me)), false),
        (Role::Verifier, Op::Subscribe, verify(me), false),
        // ingest (faces the internet): asks, never answers or mines
        (Role::Ingest, Op::Publish, miner_replicate(me), true),
        (Role::Ingest, Op::Publish, sync_append(me), true),
        (Role::Ingest, Op::Publish, sync_events(me), true),
        (Role::Ingest, Op::Publish, tips(me), true),
        (Role::Ingest, Op::Publish, verify(peer), true),
        (Role::Ingest, Op::Subscribe, miner_submit(me), true),
        (Role::Ingest, Op::Subscribe, verify(me), true),
        (Role::Ingest, Op::Subscribe, format!("{}.>", Role::Ingest.inbox(peer)), true),
        (Role::Ingest, Op::Publish, miner_submit(peer), false),
        // a follower's ingest reads every validator's pending state
        (Role::Ingest, Op::Publish, miner_read(peer), false),
        (Role::Ingest, Op::Subscribe, tips(ANY_NODE), false),
        // metrics: reads, answers ingests
        (Role::Metrics, Op::Publish, miner_submit(me), true),
        (Role::Metrics, Op::Subscribe, sync_read(me), true),
        (Role::Metrics, Op::Publish, sync_read(me), false),
    ];
    let mut failures: Vec<String> = Vec::new();
    let mut probes = std::collections::HashMap::new();
    for (role, op, subject, forbidden) in &cases {
        let node = if *role == Role::Metrics { COMPOSE_OPS } else { me };
        if !probes.contains_key(role) {
            probes.insert(*role, Probe::connect(&url, *role, node).await?);
        }
        let probe = probes.get_mut(role).ok_or_else(|| anyhow::anyhow!("no probe"))?;
        let refused = probe.refused(*op, subject).await?;
        println!("{:<8} {:?} {subject}: {}", role.name(), op, if refused { "refused" } else { "allowed" });
        if refused != *forbidden {
            failures.push(format!("{} {op:?} {subject}: expected {}", role.name(), if *forbidden { "refused" } else { "allowed" }));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // The sweep: every subject any user of the deployment may use (its
    // patterns made concrete), offered to each role; whatever the role's
    // own permissions do not cover must be refused.
    let mut users: Vec<(Role, &str)> = COMPOSE_NODES.iter().flat_map(|n| Role::NODE.map(|r| (r, *n))).collect();
    users.push((Role::Metrics, COMPOSE_OPS));
    let mut everything = std::collections::BTreeSet::new();
    for (role, node) in &users {
        let p = role.permissions(node);
        for pattern in p.publish.iter().chain(&p.subscribe) {
            everything.insert(concrete(pattern));
        }
    }
    let mut swept = 0;
    for (role, node) in users.iter().filter(|(_, n)| [me, COMPOSE_OPS].contains(n)) {
        let own = role.permissions(node);
        let probe = match probes.get_mut(role) {
            Some(p) => p,
            None => probes.entry(*role).or_insert(Probe::connect(&url, *role, node).await?),
        };
        for subject in &everything {
            for (op, allowed) in [(Op::Publish, &own.publish), (Op::Subscribe, &own.subscribe)] {
                if allowed.iter().any(|pattern| covers(pattern, subject)) {
                    continue;
                }
                swept += 1;
                if !probe.refused(op, subject).await? {
                    failures.push(format!("{} {op:?} {subject}: not in its permissions, yet allowed", role.name()));
                }
            }
        }
    }
    figure(format!("NATS permissions sweep: {swept} forbidden (role, operation, subject) cases over {} subjects, each refused", everything.len()));
    assert!(swept >= 100, "the sweep found only {swept} forbidden cases");
    assert!(failures.is_empty(), "{failures:#?}");

    // A service's connection gets its replies (the typed bus, with its own
    // inbox prefix) where only its role may read them.
    let admin = Client::login(&url, &Login::with_password(Role::Admin, COMPOSE_OPS, secret_for(Role::Admin, COMPOSE_OPS).into())).await?;
    let _answer = {
        let responder = Probe::connect(&url, Role::Sync, me).await?;
        let mut sub = responder.client.subscribe(sync_read(me)).await?;
        responder.client.flush().await?;
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(m) = sub.next().await {
                if let Some(reply) = m.reply {
                    let _ = responder.client.publish(reply, "{\"node_id\":\"node-1\",\"tip\":null}".into()).await;
                }
            }
        })
    };
    let sent = admin.bus.client().request(sync_read(me), "{}".into()).await?;
    assert!(!sent.payload.is_empty(), "the admin's request was answered on its own inbox prefix");
    Ok(())
}
