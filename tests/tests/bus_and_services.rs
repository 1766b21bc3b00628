//! The bus contract (timeouts, no-responders, request ids), the verifier
//! queue group, the metrics service's cluster view, and every service's
//! admin endpoints, against a real NATS server.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::*;
use uwl_bus::{message, serve, Bus, BusError, ErrorCode, RemoteError, RequestId};
use uwl_ledger::testkit::pair;
use uwl_ledger::{Contract, TaskSpec};
use uwl_tasks::solve;
use uwl_tests::*;

/// Test contracts on subjects of their own.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Echo(u8);
message!(Echo => String, |_: &str| "t.echo".to_owned());
/// Asks the echo handler but expects a number: the wrong reply type.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct EchoAsNumber(u8);
message!(EchoAsNumber => u8, |_: &str| "t.echo".to_owned());
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Hang(u8);
message!(Hang => u8, |_: &str| "t.hang".to_owned());
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Fail(u8);
message!(Fail => u8, |_: &str| "t.fail".to_owned());
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Nobody(u8);
message!(Nobody => u8, |_: &str| "t.nobody".to_owned());

/// Test publications.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Stall(u8);
impl uwl_bus::Publication for Stall {
    fn subject(_: &str) -> String {
        "t.stall".into()
    }
}
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Noise(u8);
impl uwl_bus::Publication for Noise {
    fn subject(_: &str) -> String {
        "t.noise".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_tell_no_responders_from_timeouts_and_carry_request_ids() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let bus = Bus::connect(&nats.url, &uwl_bus::Login::open(uwl_bus::Role::Admin, "t")).await?;
    let stop = CancellationToken::new();
    // an echo of the request id it saw, and a handler that never answers in time
    let echo = tokio::spawn(serve(bus.clone(), "", None, 4, stop.clone(), |_: Echo, rid: RequestId| async move { Ok::<_, RemoteError>(rid.0) }));
    let hang = tokio::spawn(serve(bus.clone(), "", None, 4, stop.clone(), |_: Hang, _| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, RemoteError>(0)
    }));
    let fail = tokio::spawn(serve(bus.clone(), "", None, 4, stop.clone(), |_: Fail, _| async move { Err::<u8, _>(RemoteError::bad_request("nope")) }));
    let client = Client::connect(&nats.url).await?;
    wait_for("handlers subscribed", Duration::from_secs(10), || async {
        Ok(client.bus.ask("", Echo(1), Duration::from_secs(1), &RequestId::new()).await.ok())
    })
    .await?;

    let rid = RequestId::new();
    let seen = client.bus.ask("", Echo(1), Duration::from_secs(1), &rid).await?;
    assert_eq!(seen, rid.0, "the request id travels in the headers");

    let t = Instant::now();
    let e = client.bus.ask("", Nobody(1), Duration::from_secs(3), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::NoResponders(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "no responders is known at once, not after the timeout");

    let t = Instant::now();
    let e = client.bus.ask("", Hang(1), Duration::from_millis(300), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::TimedOut { .. }), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.label(), "timeout");

    let e = client.bus.ask("", Fail(1), Duration::from_secs(1), &rid).await.unwrap_err();
    assert_eq!(e.remote_code(), Some(ErrorCode::BadRequest), "{e}");
    let e = client.bus.ask("", EchoAsNumber(1), Duration::from_secs(1), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::Codec { .. }), "a reply of the wrong type is a decode error: {e}");
    assert!(std::error::Error::source(&e).is_some(), "the decoder's error is kept as the source");

    stop.cancel();
    for t in [echo, hang, fail] {
        t.await??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_verifiers_share_its_queue_group_and_judge_results() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    // Two verifiers of node-1 share its queue group; node-2's serves only node-2.
    let v1 = net.verifier("node-1", &nats.url)?;
    let v2 = net.verifier("node-1", &nats.url)?;
    let other = net.verifier("node-2", &nats.url)?;
    let c = Client::connect(&nats.url).await?;
    let contract = Contract { spec: TaskSpec::Matmul { n: 8 }, seed: 3, client_id: "alice".into(), reward: 1, expires_at: u64::MAX };
    let good = solve(&uwl_tasks::params(&contract));
    let mut bad = good.clone();
    bad["c"][0][0] = serde_json::json!(bad["c"][0][0].as_u64().unwrap_or(0) + 1);
    let ask_all = |results: Vec<serde_json::Value>| {
        let items = results.into_iter().map(|result_data| VerifyRequest { contract: contract.clone(), result_data }).collect();
        let bus = c.bus.clone();
        async move {
            bus.ask("node-1", VerifyBatch { items }, Duration::from_secs(2), &RequestId::new()).await
        }
    };
    let ask = |result_data: serde_json::Value| {
        let one = ask_all(vec![result_data]);
        async move { Ok::<_, BusError>(one.await?.pop().expect("one reply per item")) }
    };
    wait_for("verifiers up", Duration::from_secs(10), || async { Ok(ask(good.clone()).await.ok()) }).await?;
    // One batch, answered item by item in order.
    let replies = ask_all(vec![good.clone(), bad, serde_json::json!({"c": [[1]]})]).await?;
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0], VerifyReply { valid: true, shape_error: None });
    assert_eq!(replies[1], VerifyReply { valid: false, shape_error: None });
    assert!(!replies[2].valid && replies[2].shape_error.is_some());
    // Both instances take requests: stop one, the other still answers (once
    // the server has processed the stopped one's unsubscription).
    v1.stop().await?;
    let reply = wait_for("the other verifier answering", Duration::from_secs(10), || async { Ok(ask(good.clone()).await.ok()) }).await?;
    assert!(reply.valid);
    v2.stop().await?;
    wait_for("no verifier of node-1 left (node-2's does not answer for it)", Duration::from_secs(10), || async {
        Ok(matches!(ask(good.clone()).await, Err(BusError::NoResponders(_))).then_some(()))
    })
    .await?;
    other.stop().await?;
    Ok(())
}

/// The value of the sample named exactly `series` in Prometheus text.
fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
}

async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    let code = buf.split_whitespace().nth(1).unwrap_or("0").parse()?;
    Ok((code, buf))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_expose_metrics_and_health_and_the_cluster_view_sees_both_nodes() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let services = vec![
        net.sync("node-1", &nats.url, &[])?,
        net.miner("node-1", &nats.url, &[])?,
        net.sync("node-2", &nats.url, &[])?,
        net.miner("node-2", &nats.url, &[])?,
    ];
    let metrics_settings = <uwl_metrics::Settings as clap::Parser>::try_parse_from([
        "uwl-metrics",
        "--node-id",
        "metrics-1",
        "--nats-url",
        &nats.url,
        "--admin-addr",
        "127.0.0.1:0",
        "--genesis-file",
        &net.genesis_file.display().to_string(),
        "--scrape-interval-ms",
        "200",
    ])?;
    let metrics = Service::start("metrics".into(), uwl_metrics::build(metrics_settings));
    // every service bound port 0: each reports the port it got
    let (p_sync, p_miner, p_metrics) =
        (services[0].admin_addr().await?.port(), services[1].admin_addr().await?.port(), metrics.admin_addr().await?.port());
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    // one block by each node (both in fallback); node-2 builds on node-1's
    // block (mined on the same parent, the two would fork and one creator
    // could drop out of the chain)
    c.submit("node-1", &pair("a", "one", 0), SubmitOrigin::Fallback, 3_000).await?;
    wait_for("node-1's block at node-2", Duration::from_secs(20), || async {
        Ok(c.sync_stats("node-2").await?.tip.is_some_and(|t| t.index >= 1).then_some(()))
    })
    .await?;
    // node-1 may mine node-2's pair too (replicated, while it leads) and
    // win the fork; while node-2 is missing it gets a fresh pair a second
    let looks = std::sync::atomic::AtomicU64::new(0);
    let text = wait_for("cluster view with both creators", Duration::from_secs(30), || async {
        let text = c.cluster_view().await?;
        let both = text.contains(r#"creator_node_id="node-1",node="node-1""#) && text.contains(r#"creator_node_id="node-2",node="node-1""#);
        let n = looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !both && n.is_multiple_of(10) {
            c.submit("node-2", &pair("b", &format!("two-{n}"), 0), SubmitOrigin::Fallback, 3_000).await?;
        }
        Ok(both.then_some(text))
    })
    .await?;
    for needle in [
        "uwl_cluster_tip_index{node=\"node-2\"}",
        "uwl_cluster_pending_pairs{node=\"node-1\"}",
        "uwl_cluster_chain_replacements_total{node=\"node-1\"}",
        "uwl_cluster_orphaned_blocks_total",
        "uwl_cluster_requeued_total",
        "uwl_cluster_oldest_pending_age_seconds",
        "uwl_cluster_tip_divergence_blocks",
        "uwl_cluster_tip_hashes",
        "uwl_cluster_service_up{node=\"node-2\",service=\"miner\"} 1",
        // other processes' counters stay counters (Prometheus handles their resets)
        "# TYPE uwl_cluster_chain_replacements_total counter",
        "# TYPE uwl_cluster_blocks_mined_total counter",
        "# TYPE uwl_cluster_tip_index gauge",
    ] {
        assert!(text.contains(needle), "cluster view lacks {needle}:\n{text}");
    }
    let (code, body) = http_get(p_metrics, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(body.contains("uwl_cluster_tip_index"));
    let (code, body) = http_get(p_sync, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(body.contains("uwl_sync_tip_index{node=\"node-1\"}"), "{body}");
    let (code, body) = http_get(p_miner, "/metrics").await?;
    assert_eq!(code, 200);
    let mined = metric_value(&body, "uwl_miner_blocks_mined_total{node=\"node-1\"}");
    assert!(mined >= Some(1.0), "{body}");
    let (code, body) = http_get(p_sync, "/health").await?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"nats\":true"));
    let (code, _) = http_get(p_miner, "/health").await?;
    assert_eq!(code, 200);

    metrics.stop().await?;
    stop_all(services).await
}

/// A TCP relay to NATS whose connections can be frozen: from then on they
/// forward nothing either way and stay open (a black-holed or stalled
/// socket, as after a peer's address went away). New connections pass.
struct Relay {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicU64>,
    frozen_below: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (accepted, frozen_below) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (acc, frozen) = (accepted.clone(), frozen_below.clone());
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let conn = acc.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                for (mut from, mut to) in [
                    (Box::new(dr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>, Box::new(uw) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>),
                    (Box::new(ur), Box::new(dw)),
                ] {
                    let frozen = frozen.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if conn <= frozen.load(Ordering::SeqCst) {
                                // Hold both sockets open, forward nothing.
                                let _keep = (from, to);
                                std::future::pending::<()>().await;
                                return;
                            }
                            if to.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Ok(Self { port, accepted, frozen_below })
    }

    fn freeze_existing(&self) {
        use std::sync::atomic::Ordering;
        self.frozen_below.store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// A connection that stops delivering anything while the service keeps
/// publishing (async-nats then never pings: every command resets its ping
/// timer) is noticed by the bus's watchdog: health goes false, the
/// connection is made again and its subscriptions come back, within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_nats_connection_is_noticed_dropped_and_made_again() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let upstream = nats.url.trim_start_matches("nats://").to_owned();
    let relay = Relay::start(upstream).await?;
    let bus = Bus::connect(&format!("nats://127.0.0.1:{}", relay.port), &uwl_bus::Login::open(uwl_bus::Role::Admin, "stalled")).await?;
    let mut sub = bus.subscribe::<Stall>("").await?;
    bus.client().flush().await?;
    let other = Client::connect(&nats.url).await?;
    other.bus.publish("", &Stall(1)).await?;
    let first = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut sub)).await;
    assert!(matches!(first, Ok(Some(_))), "the subscription works through the relay");
    assert!(bus.is_connected());

    // Keep publishing, as a busy service does, through the freeze.
    let stop = CancellationToken::new();
    let noise = {
        let (bus, stop) = (bus.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let _ = tokio::time::timeout(Duration::from_millis(200), bus.publish("", &Noise(0))).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    // Health, sampled often: the unhealthy spell lasts until the new
    // connection delivers, which through this relay is at once.
    let health = {
        let (bus, stop) = (bus.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if !bus.is_connected() {
                    return Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        })
    };
    relay.freeze_existing();
    let frozen_at = Instant::now();

    // Back on a new connection, with the subscription restored.
    let back = loop {
        anyhow::ensure!(frozen_at.elapsed() < Duration::from_secs(15), "no message on the restored subscription");
        other.bus.publish("", &Stall(2)).await?;
        let got = tokio::time::timeout(Duration::from_millis(300), futures::StreamExt::next(&mut sub)).await;
        if matches!(got, Ok(Some(_))) {
            break Instant::now();
        }
    };
    stop.cancel();
    noise.await?;
    let unhealthy = health.await?.ok_or_else(|| anyhow::anyhow!("health never read unhealthy during the stall"))?;
    println!("stall noticed after {:?} (bound {:?})", unhealthy - frozen_at, uwl_bus::STALL_AFTER);
    assert!(unhealthy - frozen_at >= uwl_bus::STALL_AFTER - Duration::from_secs(1), "not before the bound: {:?}", unhealthy - frozen_at);
    println!("reconnected and resubscribed {:?} after the freeze; stalls counted {}", back - frozen_at, bus.stalls());
    assert!(back - frozen_at <= Duration::from_secs(10), "{:?}", back - frozen_at);
    assert!(bus.stalls() >= 1);
    assert!(relay.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2, "a new connection was made");
    assert!(bus.is_connected());
    Ok(())
}
