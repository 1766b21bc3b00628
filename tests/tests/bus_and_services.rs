//! The bus contract (timeouts, no-responders, request ids), the verifier
//! queue group, the metrics service's cluster view, and every service's
//! admin endpoints, against a real NATS server.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::*;
use uwl_bus::{serve, subjects, Bus, BusError, RemoteError, RequestId};
use uwl_ledger::testkit::pair;
use uwl_tasks::{solve, Contract, TaskSpec};
use uwl_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_tell_no_responders_from_timeouts_and_carry_request_ids() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let bus = Bus::connect(&nats.url, "t").await?;
    let stop = CancellationToken::new();
    // an echo of the request id it saw, and a handler that never answers in time
    let echo = tokio::spawn(serve(bus.clone(), "t.echo".into(), None, 4, stop.clone(), |_: serde_json::Value, rid: RequestId| async move {
        Ok::<_, RemoteError>(rid.0)
    }));
    let hang = tokio::spawn(serve(bus.clone(), "t.hang".into(), None, 4, stop.clone(), |_: serde_json::Value, _| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, RemoteError>(0)
    }));
    let fail = tokio::spawn(serve(bus.clone(), "t.fail".into(), None, 4, stop.clone(), |_: serde_json::Value, _| async move {
        Err::<u8, _>(RemoteError::bad_request("nope"))
    }));
    let client = Client::connect(&nats.url).await?;
    wait_for("handlers subscribed", Duration::from_secs(10), || async {
        Ok(client.bus.request::<_, String>("t.echo".into(), &1, Duration::from_secs(1), &RequestId::new()).await.ok())
    })
    .await?;

    let rid = RequestId::new();
    let seen: String = client.bus.request("t.echo".into(), &1, Duration::from_secs(1), &rid).await?;
    assert_eq!(seen, rid.0, "the request id travels in the headers");

    let t = Instant::now();
    let e = client.bus.request::<_, u8>("t.nobody".into(), &1, Duration::from_secs(3), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::NoResponders(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(1), "no responders is known at once, not after the timeout");

    let t = Instant::now();
    let e = client.bus.request::<_, u8>("t.hang".into(), &1, Duration::from_millis(300), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::TimedOut { .. }), "{e}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(e.label(), "timeout");

    let e = client.bus.request::<_, u8>("t.fail".into(), &1, Duration::from_secs(1), &rid).await.unwrap_err();
    assert!(matches!(&e, BusError::Remote(r) if r.code == "bad_request"), "{e}");
    let e = client.bus.request::<_, u8>("t.echo".into(), &1, Duration::from_secs(1), &rid).await.unwrap_err();
    assert!(matches!(e, BusError::Decode { .. }), "a reply of the wrong type is a decode error: {e}");

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
    let good = solve(&contract);
    let mut bad = good.clone();
    bad["c"][0][0] = serde_json::json!(bad["c"][0][0].as_u64().unwrap_or(0) + 1);
    let ask_all = |results: Vec<serde_json::Value>| {
        let items = results.into_iter().map(|result_data| VerifyRequest { contract: contract.clone(), result_data }).collect();
        let bus = c.bus.clone();
        async move {
            bus.request::<_, Vec<VerifyReply>>(subjects::verify("node-1"), &VerifyBatch { items }, Duration::from_secs(2), &RequestId::new()).await
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
    let (p_sync, p_miner, p_metrics) = (free_port()?, free_port()?, free_port()?);
    let sync_admin = format!("127.0.0.1:{p_sync}");
    let miner_admin = format!("127.0.0.1:{p_miner}");
    let services = vec![
        net.sync("node-1", &nats.url, &["--admin-addr", &sync_admin])?,
        net.miner("node-1", &nats.url, &["--admin-addr", &miner_admin])?,
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
        &format!("127.0.0.1:{p_metrics}"),
        "--genesis-file",
        &net.genesis_file.display().to_string(),
        "--scrape-interval-ms",
        "200",
    ])?;
    let metrics = Service::spawn("metrics".into(), move |t| uwl_metrics::run(metrics_settings, t));
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    // one block by each node (both in fallback)
    c.submit("node-1", &pair("a", "one", 0), SubmitOrigin::Fallback, 3_000).await?;
    c.submit("node-2", &pair("b", "two", 0), SubmitOrigin::Fallback, 3_000).await?;

    let text = wait_for("cluster view with both creators", Duration::from_secs(20), || async {
        let text: String = c.bus.request(subjects::METRICS_CLUSTER.into(), &(), Duration::from_secs(1), &RequestId::new()).await?;
        let both = text.contains(r#"creator_node_id="node-1",node="node-1""#) && text.contains(r#"creator_node_id="node-2",node="node-1""#);
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
        "uwl_cluster_service_up{node=\"node-2\",service=\"miner\"} 1",
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
    for s in services {
        s.stop().await?;
    }
    Ok(())
}
