//! Three validators, one cut off from the other two. node-1 and node-2 run
//! on one NATS server, node-3 on a second one routed to it; the partition
//! takes the second server off the network the two servers share (each
//! side keeps its own clients), work goes in on both sides, and the heal
//! puts it back. Nothing acknowledged is lost or paid twice, and the three
//! agree within 20 s of the heal.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};
use uwl_tests::*;

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output()?;
    anyhow::ensure!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Two NATS servers routed over a network of their own, each published on
/// the host's loopback through Docker's default network (so a server cut
/// off the route network still serves its own clients). Removed on drop.
struct TwoServers {
    routes: String,
    names: [String; 2],
    urls: [String; 2],
}

impl TwoServers {
    fn start() -> anyhow::Result<Self> {
        require_image(NATS_IMAGE.0, NATS_IMAGE.1)?;
        let tag = format!("uwlt-part-{}", std::process::id());
        let routes = format!("{tag}-routes");
        let names = [format!("{tag}-a"), format!("{tag}-b")];
        let _ = Command::new("docker").args(["rm", "-f", &names[0], &names[1]]).output();
        let _ = Command::new("docker").args(["network", "rm", &routes]).output();
        docker(&["network", "create", &routes])?;
        let image = format!("{}:{}", NATS_IMAGE.0, NATS_IMAGE.1);
        let mut urls = Vec::new();
        for (i, name) in names.iter().enumerate() {
            // A cut route is noticed by TCP after 4 retransmissions (~6 s),
            // as in the compose cluster; the second server dials the first.
            let mut args = vec!["run", "-d", "--rm", "--name", name, "--sysctl", "net.ipv4.tcp_retries2=4", "-p", "127.0.0.1::4222", &image];
            let peer = format!("nats://{}:6222", names[0]);
            args.extend(["-c", "/etc/nats/standalone.conf", "--cluster_name", "uwlt", "--cluster", "nats://0.0.0.0:6222"]);
            if i == 1 {
                args.extend(["--routes", &peer]);
            }
            docker(&args)?;
            docker(&["network", "connect", &routes, name])?;
            let port = docker(&["port", name, "4222/tcp"])?;
            let port = port.lines().next().and_then(|l| l.rsplit(':').next()).unwrap_or_default().to_owned();
            urls.push(format!("nats://127.0.0.1:{port}"));
        }
        let urls = [urls[0].clone(), urls[1].clone()];
        Ok(Self { routes, names, urls })
    }

    /// Whether the two servers are routed to each other (the first one's
    /// monitoring, read inside its container).
    fn routed(&self) -> bool {
        docker(&["exec", &self.names[0], "curl", "-fsS", "http://127.0.0.1:8222/routez"])
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["num_routes"].as_u64())
            .is_some_and(|n| n > 0)
    }

    fn cut(&self) -> anyhow::Result<()> {
        docker(&["network", "disconnect", &self.routes, &self.names[1]]).map(|_| ())
    }

    fn heal(&self) -> anyhow::Result<()> {
        docker(&["network", "connect", &self.routes, &self.names[1]]).map(|_| ())
    }
}

impl Drop for TwoServers {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.names[0], &self.names[1]]).output();
        let _ = Command::new("docker").args(["network", "rm", &self.routes]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_validator_cut_off_from_two_loses_nothing_and_converges() -> anyhow::Result<()> {
    let _serial = serial();
    let servers = TwoServers::start()?;
    wait_for("the two NATS servers routed", Duration::from_secs(30), || async { Ok(servers.routed().then_some(())) }).await?;
    let net = TestNet::new(3, fast_params())?;
    let url_of = |node: &str| if node == "node-3" { &servers.urls[1] } else { &servers.urls[0] };
    let mut services = Vec::new();
    for n in &net.nodes {
        services.push(net.sync(n, url_of(n), &[])?);
        services.push(net.miner(n, url_of(n), &[])?);
        services.push(net.verifier(n, url_of(n))?);
    }
    let (ingest_1, h1) = net.ingest("node-1", url_of("node-1"), &[]).await?;
    let (ingest_3, h3) = net.ingest("node-3", url_of("node-3"), &[]).await?;
    let c = Client::connect(&servers.urls[0]).await?;
    for n in &net.nodes {
        c.ready(n, true).await?;
    }
    let (client, key) = h1.register().await?;
    // `n` submissions through `h`, one at a time: every answer, 200 or not.
    let submit = |h: Http, n: usize| {
        let (key, client) = (key.clone(), client.clone());
        async move {
            let mut answers = Vec::new();
            for _ in 0..n {
                let task = h.task(&key, "hash").await?;
                answers.push(h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?);
            }
            anyhow::Ok(answers)
        }
    };
    let mut acked: Vec<String> = Vec::new();
    let mut keep = |answers: Vec<(u16, Value, reqwest::header::HeaderMap)>| {
        for (code, body, _) in answers {
            if code == 200 {
                acked.push(body["receipt_id"].as_str().unwrap_or_default().to_owned());
            }
        }
    };
    keep(submit(h1.clone(), 10).await?);
    keep(submit(h3.clone(), 10).await?);

    servers.cut()?;
    let cut_at = Instant::now();
    // Both sides take work while cut off: node-3 mines its own (fallback
    // when another validator leads), node-1 and node-2 go on without it.
    let (one, three) = tokio::join!(submit(h1.clone(), 25), submit(h3.clone(), 25));
    let (one, three) = (one?, three?);
    let answered = |a: &[(u16, Value, reqwest::header::HeaderMap)]| a.iter().filter(|(c, _, _)| *c == 200).count();
    println!("while cut off ({:?}): node-1's ingest took {} of 25, node-3's {} of 25", cut_at.elapsed(), answered(&one), answered(&three));
    assert!(answered(&three) > 0, "node-3 alone still takes work (it mines its own fork)");
    keep(one);
    keep(three);
    assert!(c.sync_stats("node-3").await.is_err(), "node-3's sync is not reachable from node-1's server while cut off");

    servers.heal()?;
    let healed = Instant::now();
    let want: HashSet<String> = acked.iter().cloned().collect();
    let chain = wait_for("the three agreeing on a chain that pays every acknowledged receipt once", Duration::from_secs(20), || async {
        let mut chains = Vec::new();
        for n in &net.nodes {
            chains.push(c.chain(n).await?);
        }
        let tips: HashSet<_> = chains.iter().map(|ch| ch.last().map(|b| b.hash)).collect();
        let paid: Vec<String> = chains[0].iter().flat_map(|b| &b.transactions).map(|p| p.receipt_id().to_hex()).collect();
        let distinct: HashSet<&String> = paid.iter().collect();
        anyhow::ensure!(distinct.len() == paid.len(), "a receipt paid twice");
        Ok((tips.len() == 1 && want.iter().all(|r| distinct.contains(r))).then(|| chains.swap_remove(0)))
    })
    .await?;
    let converged = healed.elapsed();
    let replaced = c.sync_stats("node-3").await?.replacements_total + c.sync_stats("node-1").await?.replacements_total;
    figure(format!(
        "three validators, node-3 cut off from two for {:?}: {} acknowledged, all paid once in {} blocks, converged {:?} after the heal, {replaced} chain replacements",
        healed - cut_at,
        want.len(),
        chain.len(),
        converged
    ));
    assert!(replaced > 0, "one side's fork was replaced: the partition was real");
    ingest_1.stop().await?;
    ingest_3.stop().await?;
    stop_all(services).await
}
