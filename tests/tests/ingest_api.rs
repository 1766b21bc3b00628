//! The HTTP API through real HTTP, against real NATS and real node services.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uwl_ledger::{current_leader, Block, NetworkParams};
use uwl_bus::proto::SubmitStatus as MinerStatus;
use uwl_ledger::{Contract, TaskSpec};
use uwl_tests::*;

const LONG: Duration = Duration::from_secs(30);

/// Node services of every node of `net`, a verifier each.
fn node_services(net: &TestNet, url: &str, miner_extra: &[&str]) -> anyhow::Result<Vec<Service>> {
    let mut v = Vec::new();
    for n in &net.nodes {
        v.push(net.verifier(n, url)?);
        v.push(net.sync(n, url, &[])?);
        v.push(net.miner(n, url, miner_extra)?);
    }
    Ok(v)
}

/// A nonce that does NOT solve a hash task.
fn wrong_nonce(task: &Value) -> Value {
    let prefix = hex::decode(task["params"]["prefix"].as_str().unwrap_or("")).unwrap_or_default();
    let bits = task["params"]["difficulty_bits"].as_u64().unwrap_or(0) as u32;
    let n = (0u64..).find(|n| !uwl_tasks::verify_hash(&prefix, bits, *n)).unwrap_or(0);
    json!({ "nonce": n })
}

/// Two different nonces that both solve a hash task.
fn two_nonces(task: &Value) -> (Value, Value) {
    let prefix = hex::decode(task["params"]["prefix"].as_str().unwrap_or("")).unwrap_or_default();
    let bits = task["params"]["difficulty_bits"].as_u64().unwrap_or(0) as u32;
    let mut it = (0u64..).filter(|n| uwl_tasks::verify_hash(&prefix, bits, *n));
    (json!({"nonce": it.next()}), json!({"nonce": it.next()}))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn expect(a: &Answer, code: u16, error: &str) {
    assert_eq!(a.0, code, "{}", a.1);
    assert_eq!(a.1["error"], error, "{}", a.1);
    assert!(a.1["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", a.1);
}

async fn snapshot(h: &Http, key: &str, client: &str) -> anyhow::Result<Value> {
    let (code, mut b, _) = h.get(&format!("/get_balance?client_id={client}"), Some(key)).await?;
    anyhow::ensure!(code == 200, "{b}");
    b["last_sync_time"] = Value::Null;
    Ok(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_with_its_error_body_and_no_state_change_on_rejection() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &["--max-body-bytes", "4096"]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;

    expect(&h.get("/nope", None).await?, 404, "not_found");
    let page = h.client.get(format!("{}/", h.base)).send().await?;
    let csp = page.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h.get("/livez", None).await?.0, 200);
    let (client, key) = h.register().await?;
    let (other, other_key) = h.register().await?;
    expect(&h.get("/get_task?kind=hash", None).await?, 401, "unauthorized");
    expect(&h.get("/get_task?kind=hash", Some("ak1.bad.key")).await?, 401, "unauthorized");
    expect(&h.get("/get_task?kind=sort", Some(&key)).await?, 400, "bad_request");
    expect(&h.get("/get_task", Some(&key)).await?, 400, "bad_request");
    let task = h.task(&key, "hash").await?;
    let cid = task["contract_id"].as_str().unwrap_or_default().to_owned();
    let good = solve_task(&task)?;
    let before = snapshot(&h, &key, &client).await?;
    let tip_before = c.chain("node-1").await?.len();

    // Every rejection, in check order.
    let body = json!({"client_id": client, "contract_id": cid, "result_data": good});
    expect(&h.post("/submit_work", None, &body).await?, 401, "unauthorized");
    expect(&h.post_raw("/submit_work", Some(&key), vec![b' '; 5_000]).await?, 413, "payload_too_large");
    expect(&h.post_raw("/submit_work", Some(&key), b"{not json".to_vec()).await?, 400, "bad_request");
    expect(&h.submit(&key, &other, &cid, &good).await?, 403, "forbidden");
    expect(&h.submit(&key, &client, "ct1.AAAA.BBBB", &good).await?, 403, "forbidden");
    let others_task = h.task(&other_key, "hash").await?;
    expect(&h.submit(&key, &client, others_task["contract_id"].as_str().unwrap_or(""), &good).await?, 403, "forbidden");
    expect(&h.submit(&key, &client, &cid, &json!({"nonce": "seven"})).await?, 400, "bad_request");
    expect(&h.submit(&key, &client, &cid, &json!({"c": [[1]]})).await?, 400, "bad_request");
    expect(&h.submit(&key, &client, &cid, &wrong_nonce(&task)).await?, 422, "invalid_result");
    let expired = Contract { spec: TaskSpec::Hash { difficulty_bits: 1 }, seed: 1, client_id: client.clone(), reward: 5, expires_at: 1 };
    expect(&h.submit(&key, &client, &expired.seal(&net.issuer()), &json!({"nonce": 0})).await?, 410, "expired");
    expect(&h.get(&format!("/get_balance?client_id={other}"), Some(&key)).await?, 403, "forbidden");
    expect(&h.get("/get_balance", Some(&key)).await?, 400, "bad_request");
    expect(&h.get(&format!("/get_balance?client_id={client}&limit=0"), Some(&key)).await?, 400, "bad_request");
    expect(&h.get(&format!("/get_balance?client_id={client}&limit=1001"), Some(&key)).await?, 400, "bad_request");
    expect(&h.get(&format!("/get_balance?client_id={client}&pending_cursor=zz"), Some(&key)).await?, 400, "bad_request");
    expect(&h.get(&format!("/orphaned_tx?client_id={client}&cursor=12"), Some(&key)).await?, 400, "bad_request");
    let (code, page, _) = h.get(&format!("/orphaned_tx?client_id={client}&limit=1000"), Some(&key)).await?;
    assert_eq!((code, &page["orphaned"], &page["next_cursor"]), (200, &json!([]), &Value::Null), "{page}");
    expect(&h.get("/receipt/xyz", Some(&key)).await?, 400, "bad_request");
    expect(&h.get("/chain?from=abc", None).await?, 400, "bad_request");
    // Out of range is a 400 naming the range, never a 5xx (the store holds
    // 63-bit integers); framework rejections are JSON like the rest.
    let (code, body, _) = h.get("/chain?from=9223372036854775808", None).await?;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("9223372036854775807")), "{body}");
    expect(&h.get("/chain?from=0&limit=0", None).await?, 400, "bad_request");
    expect(&h.get("/chain?from=0&limit=501", None).await?, 400, "bad_request");
    expect(&h.get(&format!("/receipt/{}?wait_ms=30001", "0".repeat(64)), Some(&key)).await?, 400, "bad_request");
    expect(&h.get(&format!("/receipt/{}?wait_ms=-1", "0".repeat(64)), Some(&key)).await?, 400, "bad_request");
    expect(&h.get("/receipt/%FF", Some(&key)).await?, 400, "bad_request");
    expect(&h.get("/submit_work", Some(&key)).await?, 405, "method_not_allowed");
    expect(&h.post("/chain", None, &json!({})).await?, 405, "method_not_allowed");
    assert_eq!(snapshot(&h, &key, &client).await?, before, "rejections changed nothing");
    assert_eq!(c.chain("node-1").await?.len(), tip_before);

    // 200, 200 already_processed (same receipt), 409 with the existing receipt.
    let (nonce_a, nonce_b) = two_nonces(&task);
    let ok = h.submit(&key, &client, &cid, &nonce_a).await?;
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(ok.1["status"], "accepted");
    for field in ["in_block", "receipt_id", "message", "served_by", "leader", "fallback", "replicated"] {
        assert!(ok.1.get(field).is_some(), "submit answer lacks {field}: {}", ok.1);
    }
    let again = h.submit(&key, &client, &cid, &nonce_a).await?;
    assert_eq!((again.0, &again.1["status"], &again.1["receipt_id"]), (200, &json!("already_processed"), &ok.1["receipt_id"]));
    let conflict = h.submit(&key, &client, &cid, &nonce_b).await?;
    expect(&conflict, 409, "conflict");
    assert_eq!(conflict.1["receipt_id"], ok.1["receipt_id"], "409 names the paid receipt");
    let receipt = h.get(&format!("/receipt/{}", ok.1["receipt_id"].as_str().unwrap_or("")), Some(&other_key)).await?;
    expect(&receipt, 403, "forbidden");
    // The pair's status comes before the verdict: a wrong result for an
    // identity already taken is a 409, not a 422.
    expect(&h.submit(&key, &client, &cid, &wrong_nonce(&task)).await?, 409, "conflict");

    // An expired task already processed: 200 for the same result, 409 for
    // another (right or wrong), never 410. The contract expires 3 s after
    // its first, accepted, submission.
    let expires_at = now_ms() + 3_000;
    let short = Contract { spec: TaskSpec::Hash { difficulty_bits: 2 }, seed: 9, client_id: client.clone(), reward: 5, expires_at };
    let short_id = short.seal(&net.issuer());
    let mut solving = (0u64..).map(|n| json!({"nonce": n})).filter(|r| uwl_tasks::parse_result(&short, r).is_ok_and(|w| uwl_tasks::verify(&short, &w)));
    let (first, second) = (solving.next().unwrap_or_default(), solving.next().unwrap_or_default());
    let wrong = (0u64..).map(|n| json!({"nonce": n})).find(|r| uwl_tasks::parse_result(&short, r).is_ok_and(|w| !uwl_tasks::verify(&short, &w))).unwrap_or_default();
    assert_eq!(h.submit(&key, &client, &short_id, &first).await?.0, 200);
    tokio::time::sleep(Duration::from_millis(expires_at.saturating_sub(now_ms()) + 50)).await;
    let late = h.submit(&key, &client, &short_id, &first).await?;
    assert_eq!((late.0, &late.1["status"]), (200, &json!("already_processed")), "{}", late.1);
    expect(&h.submit(&key, &client, &short_id, &second).await?, 409, "conflict");
    expect(&h.submit(&key, &client, &short_id, &wrong).await?, 409, "conflict");

    // The miner stores only verified pairs: offered unverified on the bus,
    // a new pair is refused and nothing is stored; one it holds is answered.
    let fresh = h.task(&key, "hash").await?;
    let unverified = uwl_ledger::TxPair::new(&client, fresh["contract_id"].as_str().unwrap_or(""), 5, uwl_ledger::result_hash(&wrong_nonce(&fresh)));
    assert_eq!(c.submit_unverified("node-1", &unverified).await?.status, MinerStatus::Refused);
    for node in ["node-1", "node-2"] {
        assert_eq!(c.miner_receipt(node, unverified.receipt_id()).await?.pending, None, "an unverified pair was stored on {node}");
    }
    let held = uwl_ledger::TxPair::new(&client, &short_id, 5, uwl_ledger::result_hash(&first));
    let status = c.submit_unverified("node-1", &held).await?.status;
    assert!(matches!(status, MinerStatus::AlreadyPending | MinerStatus::AlreadyInChain), "{status:?}");

    // 503 with Retry-After: no verifier answers.
    let mut services = services;
    services.remove(0).stop().await?;
    let t2 = h.task(&key, "hash").await?;
    let unavailable = h.submit(&key, &client, t2["contract_id"].as_str().unwrap_or(""), &solve_task(&t2)?).await?;
    expect(&unavailable, 503, "unavailable");
    assert!(unavailable.2.get("retry-after").is_some());
    // ...while a pair already taken is still answered without a verifier.
    let again = h.submit(&key, &client, &cid, &nonce_a).await?;
    assert_eq!((again.0, &again.1["status"]), (200, &json!("already_processed")), "{}", again.1);

    let (code, health, _) = h.get("/health", None).await?;
    assert_eq!(code, 200, "{health}");
    ingest.stop().await?;
    stop_all(services).await
}

fn no_rounds() -> NetworkParams {
    NetworkParams { t_round_ms: 0, ..fast_params() }
}

async fn leader_now(h: &Http, net: &TestNet) -> anyhow::Result<String> {
    let (_, chain, _) = h.get("/chain?from=0&limit=500", None).await?;
    let tip: uwl_ledger::TipInfo = serde_json::from_value(chain["tip"].clone())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    Ok(current_leader(&net.genesis, &tip, now).node_id.clone())
}

async fn timed_submit(h: &Http, key: &str, client: &str) -> anyhow::Result<(Answer, Duration)> {
    let task = h.task(key, "hash").await?;
    let result = solve_task(&task)?;
    let t = Instant::now();
    let a = h.submit(key, client, task["contract_id"].as_str().unwrap_or(""), &result).await?;
    Ok((a, t.elapsed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_to_the_leader_and_falling_back_when_it_is_gone_or_hung() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, no_rounds())?;
    let c = Client::connect(&nats.url).await?;
    let mut services = Vec::new();
    for n in &net.nodes {
        services.push(net.verifier(n, &nats.url)?);
        services.push(net.sync(n, &nats.url, &[])?);
    }
    let mut miners = vec![net.miner("node-1", &nats.url, &[])?, net.miner("node-2", &nats.url, &[])?];
    let flags = ["--wait-block-ms", "0", "--forward-timeout-ms", "500"];
    let (i1, h1) = net.ingest("node-1", &nats.url, &flags).await?;
    let (i2, h2) = net.ingest("node-2", &nats.url, &flags).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let (client, key) = h1.register().await?;

    // Rounds are off: the leader is fixed by the tip. Submit to the other node.
    let leader = leader_now(&h1, &net).await?;
    let (follower_http, follower) = if leader == "node-1" { (&h2, "node-2") } else { (&h1, "node-1") };
    let (a, normal) = timed_submit(follower_http, &key, &client).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!((a.1["leader"].as_str(), a.1["fallback"].as_bool(), a.1["served_by"].as_str()), (Some(leader.as_str()), Some(false), Some(leader.as_str())));
    assert_eq!(a.1["replicated"], true);
    let r = follower_http.get(&format!("/receipt/{}?wait_ms=10000", a.1["receipt_id"].as_str().unwrap_or("")), Some(&key)).await?;
    assert_eq!(r.1["status"], "in_block", "{}", r.1);
    let index = r.1["block_index"].as_u64().unwrap_or(0);
    let chain = c.chain(follower).await?;
    let block: &Block = chain.iter().find(|b| b.index == index).ok_or_else(|| anyhow::anyhow!("block {index}"))?;
    assert_eq!(block.creator_node_id, leader, "the block is the leader's the answer named");

    // The leader's miner stopped: NoResponders, fallback at once.
    let leader = leader_now(&h1, &net).await?;
    let (follower_http, follower) = if leader == "node-1" { (&h2, "node-2") } else { (&h1, "node-1") };
    let li = usize::from(leader == "node-2");
    let stopped = miners.remove(li);
    stopped.stop().await?;
    let (a, fallback) = timed_submit(follower_http, &key, &client).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!((a.1["fallback"].as_bool(), a.1["served_by"].as_str()), (Some(true), Some(follower)));
    println!("fallback on a dead leader (no responders): {fallback:?} vs {normal:?} for a normal forward: added {:?}", fallback.saturating_sub(normal));
    assert!(fallback < Duration::from_millis(500), "did not wait for the forward timeout: {fallback:?}");

    // The dead node's miner hung instead: a stand-in that never answers.
    // Fallback blocks moved the tip, so first wait for a tip it leads.
    let dead = leader.clone();
    let bus = uwl_bus::Bus::connect(&nats.url, &uwl_bus::Login::open(uwl_bus::Role::Admin, "hung")).await?;
    let _hung_submit = bus.client().subscribe(uwl_bus::subjects::miner_submit(&dead)).await?;
    let _hung_replicate = bus.client().subscribe(uwl_bus::subjects::miner_replicate(&dead)).await?;
    // Subscribing does not wait for the server: until it has the interest a
    // forward meets NoResponders and falls back at once (failed once so).
    for subject in [uwl_bus::subjects::miner_submit(&dead), uwl_bus::subjects::miner_replicate(&dead)] {
        wait_for("the hung stand-in's interest at the server", LONG, || async {
            let ask = bus.client().send_request(subject.clone(), async_nats::Request::new().timeout(Some(Duration::from_millis(50))));
            Ok(matches!(ask.await, Err(e) if e.kind() == async_nats::client::RequestErrorKind::TimedOut).then_some(()))
        })
        .await?;
    }
    let (a, first) = wait_for("a submission routed to the hung node", LONG, || async {
        let (a, t) = timed_submit(follower_http, &key, &client).await?;
        if a.1["leader"] == dead.as_str() {
            return Ok(Some((a, t)));
        }
        let r = follower_http.get(&format!("/receipt/{}?wait_ms=5000", a.1["receipt_id"].as_str().unwrap_or("")), Some(&key)).await?;
        anyhow::ensure!(r.1["status"] == "in_block", "{}", r.1);
        Ok(None)
    })
    .await?;
    assert_eq!((a.0, a.1["fallback"].as_bool()), (200, Some(true)), "{}", a.1);
    assert!(first >= Duration::from_millis(500), "fell back after the forward timeout: {first:?}");
    let (a, second) = timed_submit(follower_http, &key, &client).await?;
    assert_eq!((a.0, a.1["replicated"].as_bool()), (200, Some(false)), "{}", a.1);
    println!("hung leader: first submission {first:?}, the next {second:?}");
    assert!(second < Duration::from_millis(250), "neither forward nor replication waited on the hung peer: {second:?}");

    for s in [i1, i2] {
        s.stop().await?;
    }
    stop_all(miners).await?;
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_proof_sent_100_times_to_two_nodes_is_rewarded_once() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let (i1, h1) = net.ingest("node-1", &nats.url, &[]).await?;
    let (i2, h2) = net.ingest("node-2", &nats.url, &[]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let (client, key) = h1.register().await?;

    let task = h1.task(&key, "hash").await?;
    let cid = task["contract_id"].as_str().unwrap_or_default().to_owned();
    let result = solve_task(&task)?;
    let sends = (0..100).map(|i| {
        let h = if i % 2 == 0 { &h1 } else { &h2 };
        h.submit(&key, &client, &cid, &result)
    });
    let answers = futures::future::join_all(sends).await;
    let mut receipts = std::collections::HashSet::new();
    for a in answers {
        let a = a?;
        assert_eq!(a.0, 200, "{}", a.1);
        receipts.insert(a.1["receipt_id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(receipts.len(), 1, "one receipt id for one proof");

    // Two different valid results for one contract, to two nodes at once.
    let t2 = h1.task(&key, "hash").await?;
    let cid2 = t2["contract_id"].as_str().unwrap_or_default().to_owned();
    let (r1, r2) = two_nonces(&t2);
    let (a1, a2) = tokio::join!(h1.submit(&key, &client, &cid2, &r1), h2.submit(&key, &client, &cid2, &r2));
    let (a1, a2) = (a1?, a2?);
    println!("two results at once: {} and {}", a1.0, a2.0);
    assert!(a1.0 == 200 || a2.0 == 200, "one of them is accepted");

    let reward = task["reward"].as_u64().unwrap_or(0) + t2["reward"].as_u64().unwrap_or(0);
    wait_for("both contracts rewarded once on both nodes", LONG, || async {
        for n in ["node-1", "node-2"] {
            if c.miner_stats(n).await?.pending > 0 {
                return Ok(None);
            }
        }
        let (c1, c2) = (c.chain("node-1").await?, c.chain("node-2").await?);
        if c1.last().map(|b| b.hash) != c2.last().map(|b| b.hash) {
            return Ok(None);
        }
        let counts = identity_counts(&c1);
        let mine: Vec<usize> = counts.iter().filter(|(id, _)| id.client_id == client).map(|(_, n)| *n).collect();
        anyhow::ensure!(mine.iter().all(|n| *n == 1), "a contract was rewarded twice");
        Ok((mine.len() == 2).then_some(()))
    })
    .await?;
    let (_, bal, _) = h1.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    assert_eq!(bal["balance"].as_u64(), Some(reward), "{bal}");
    // The accepted result that lost reads superseded (or it was refused with 409).
    let chain = c.chain("node-1").await?;
    let paid = chain.iter().flat_map(|b| &b.transactions).find(|p| p.reward_tx.contract_id == cid2).map(|p| p.receipt_id().to_hex());
    for (a, h) in [(&a1, &h1), (&a2, &h2)] {
        match a.0 {
            200 if a.1["receipt_id"].as_str() != paid.as_deref() => {
                let r = h.get(&format!("/receipt/{}", a.1["receipt_id"].as_str().unwrap_or("")), Some(&key)).await?;
                assert_eq!(r.1["status"], "superseded", "{}", r.1);
            }
            200 => {}
            409 => assert_eq!(a.1["receipt_id"].as_str(), paid.as_deref()),
            other => panic!("unexpected {other}: {}", a.1),
        }
    }
    for s in [i1, i2] {
        s.stop().await?;
    }
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_b_mines_where_the_work_arrived() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let (i1, h1) = net.ingest("node-1", &nats.url, &["--strategy", "any"]).await?;
    let (i2, h2) = net.ingest("node-2", &nats.url, &["--strategy", "any"]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let (client, key) = h1.register().await?;
    for (h, node) in [(&h1, "node-1"), (&h2, "node-2"), (&h1, "node-1"), (&h2, "node-2")] {
        let (a, _) = timed_submit(h, &key, &client).await?;
        assert_eq!((a.0, a.1["served_by"].as_str(), a.1["fallback"].as_bool()), (200, Some(node), Some(false)), "{}", a.1);
        // Placed at the receiving node's miner, which mines it whoever leads
        // (the leader may mine its replica too: one of the two blocks wins).
        let r = h.get(&format!("/receipt/{}?wait_ms=10000", a.1["receipt_id"].as_str().unwrap_or("")), Some(&key)).await?;
        assert_eq!(r.1["status"], "in_block", "{}", r.1);
    }
    for s in [i1, i2] {
        s.stop().await?;
    }
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_a_with_its_leader_dead_recovers_within_a_round() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let c = Client::connect(&nats.url).await?;
    let services = vec![net.verifier("node-1", &nats.url)?, net.sync("node-1", &nats.url, &[])?, net.miner("node-1", &nats.url, &[])?];
    let (i1, h1) = net.ingest("node-1", &nats.url, &["--strategy", "leader", "--wait-block-ms", "0"]).await?;
    c.ready("node-1", true).await?;
    let (client, key) = h1.register().await?;
    // node-2 is dead. Wait for a round in which it leads, then submit.
    leads_for_a_while(&h1, &net, "node-2").await?;
    let (a, _) = timed_submit(&h1, &key, &client).await?;
    expect(&a, 503, "unavailable");
    assert!(a.2.get("retry-after").is_some());
    let first_503 = Instant::now();
    let ok = wait_for("a 200 once the round passes", LONG, || async {
        let (a, _) = timed_submit(&h1, &key, &client).await?;
        Ok((a.0 == 200).then_some(a))
    })
    .await?;
    let recovered = first_503.elapsed();
    println!("option A recovered {recovered:?} after its first 503");
    assert!(recovered <= Duration::from_millis(net.genesis.params.t_round_ms + 500), "{recovered:?}");
    assert_eq!(ok.1["served_by"], "node-1");
    // In node-2's rounds a pair node-1 already holds is still answered (from
    // its own chain and mempool); new work is not.
    let task = h1.task(&key, "hash").await?;
    let (cid, result) = (task["contract_id"].as_str().unwrap_or_default().to_owned(), solve_task(&task)?);
    leads_for_a_while(&h1, &net, "node-1").await?;
    assert_eq!(h1.submit(&key, &client, &cid, &result).await?.0, 200);
    leads_for_a_while(&h1, &net, "node-2").await?;
    let again = h1.submit(&key, &client, &cid, &result).await?;
    assert_eq!((again.0, &again.1["status"]), (200, &json!("already_processed")), "{}", again.1);
    expect(&timed_submit(&h1, &key, &client).await?.0, 503, "unavailable");
    i1.stop().await?;
    stop_all(services).await?;
    Ok(())
}

/// Waits until `node` leads the current round with at least half of the
/// round left (what follows runs inside that round).
async fn leads_for_a_while(h: &Http, net: &TestNet, node: &str) -> anyhow::Result<()> {
    let t = net.genesis.params.t_round_ms;
    wait_for(&format!("{node} to lead this round"), LONG, || async {
        let (_, chain, _) = h.get("/chain?from=0&limit=1", None).await?;
        let tip: uwl_ledger::TipInfo = serde_json::from_value(chain["tip"].clone())?;
        let now = now_ms();
        let left = t - now.saturating_sub(tip.timestamp) % t;
        Ok((current_leader(&net.genesis, &tip, now).node_id == node && left >= t / 2).then_some(()))
    })
    .await
}

/// The answer to a submission carries the block that took the pair when
/// one comes within `WAIT_BLOCK_MS`: sync announces what each block carries
/// and the waiting submission is woken by it (the wait's limit alone would
/// answer `in_block: false`). On either node's ingest, whichever node mines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_is_answered_with_the_block_that_carries_it() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let (i1, h1) = net.ingest("node-1", &nats.url, &["--wait-block-ms", "10000"]).await?;
    let (i2, h2) = net.ingest("node-2", &nats.url, &["--wait-block-ms", "10000"]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    for h in [&h1, &h2, &h1, &h2] {
        let (client, key) = h.register().await?;
        let task = h.task(&key, "hash").await?;
        let a = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
        assert_eq!((a.0, &a.1["status"], &a.1["in_block"]), (200, &json!("accepted"), &json!(true)), "{}", a.1);
        let index = a.1["block_index"].as_u64().unwrap_or_default();
        assert!(a.1["confirmations"].as_u64() >= Some(1), "{}", a.1);
        // the block named is the one that holds the pair
        let chain = wait_for("the named block on node-1", Duration::from_secs(10), || async {
            let chain = c.chain("node-1").await?;
            Ok(chain.iter().any(|b| b.index == index && b.hash.to_hex() == a.1["block_hash"].as_str().unwrap_or_default()).then_some(chain))
        })
        .await?;
        let receipt = a.1["receipt_id"].as_str().unwrap_or_default();
        let block = chain.iter().find(|b| b.index == index).map(|b| b.transactions.iter().any(|p| p.receipt_id().to_hex() == receipt));
        assert_eq!(block, Some(true), "block {index} carries receipt {receipt}");
    }
    for i in [i1, i2] {
        i.stop().await?;
    }
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_sees_pending_then_in_block() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    // Mining waits until a pair is 2 s old, so "pending" is observable.
    let services = node_services(&net, &nats.url, &["--min-pending-age-ms", "2000"])?;
    let (i1, h) = net.ingest("node-1", &nats.url, &[]).await?;
    let (i2, h2) = net.ingest("node-2", &nats.url, &[]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let (client, key) = h.register().await?;
    let task = h.task(&key, "matmul").await?;
    let a = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    assert_eq!(a.1["in_block"], false);
    assert_eq!(a.1["message"], "Reward will be applied when included in a block");
    let rid = a.1["receipt_id"].as_str().unwrap_or_default().to_owned();
    let (_, bal, _) = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    assert_eq!(bal["balance"], 0);
    assert_eq!(bal["pending_reward"][0]["receipt_id"], rid.as_str(), "{bal}");
    assert_eq!(bal["pending_reward"][0]["message"], "Reward pending inclusion in block");
    for field in ["chain_tip_index", "chain_tip_hash", "last_sync_time", "node_id", "orphaned"] {
        assert!(bal.get(field).is_some(), "balance lacks {field}");
    }
    let (_, r, _) = h.get(&format!("/receipt/{rid}"), Some(&key)).await?;
    assert_eq!(r["status"], "pending", "{r}");
    // Acknowledged with replicated: true, so the other node knows it too.
    assert_eq!(a.1["replicated"], true);
    let (_, r2, _) = h2.get(&format!("/receipt/{rid}"), Some(&key)).await?;
    assert_ne!(r2["status"], "unknown", "{r2}");
    let (_, r, _) = h.get(&format!("/receipt/{rid}?wait_ms=10000"), Some(&key)).await?;
    assert_eq!(r["status"], "in_block", "{r}");
    assert!(r["confirmations"].as_u64() >= Some(1));
    let (_, bal, _) = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    assert_eq!(bal["balance"], task["reward"], "{bal}");
    assert_eq!(bal["pending_reward"], json!([]));
    let (_, ch, _) = h.get("/chain?from=0&limit=10", None).await?;
    assert!(ch["blocks"].as_array().is_some_and(|b| b.iter().any(|b| b["creator_node_id"].is_string())));
    i1.stop().await?;
    i2.stop().await?;
    stop_all(services).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_cli_retries_503_and_follows_its_receipts_into_blocks() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let mut services = Vec::new();
    for n in &net.nodes {
        services.push(net.sync(n, &nats.url, &[])?);
        services.push(net.miner(n, &nats.url, &[])?);
    }
    let (i1, h) = net.ingest("node-1", &nats.url, &[]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    let work = tempfile::tempdir()?;
    let args = |count: &str| {
        vec![
            "uwl-worker".to_owned(), "--orchestrator-url".into(), h.base.clone(), "--kind".into(), "mixed".into(),
            "--count".into(), count.into(), "--backoff-base-ms".into(), "200".into(),
            "--credentials-file".into(), work.path().join("creds.json").display().to_string(),
            "--journal-file".into(), work.path().join("journal.jsonl").display().to_string(),
        ]
    };
    // No verifier yet: submissions answer 503 until one starts; the worker
    // retries (200, 400, 800 ms). The verifier starts once a submission has
    // met its absence.
    let settings = <uwl_worker::Settings as clap::Parser>::try_parse_from(args("4"))?;
    let run = tokio::spawn(uwl_worker::run(settings, tokio_util::sync::CancellationToken::new()));
    let metrics = format!("http://{}/metrics", i1.admin_addr().await?);
    wait_for("a submission answered 503", LONG, || async {
        let text = reqwest::get(&metrics).await?.text().await?;
        Ok(text.lines().any(|l| l.starts_with("uwl_ingest_requests_total{") && l.contains("submit_work") && l.contains("\"503\"")).then_some(()))
    })
    .await?;
    services.push(net.verifier("node-1", &nats.url)?);
    let tally = run.await??;
    assert_eq!((tally.in_block, tally.queued, tally.failed), (4, 0, 0), "{tally:?}");
    assert!(tally.retried >= 1, "the first submission met no verifier and was retried: {tally:?}");
    let journal = std::fs::read_to_string(work.path().join("journal.jsonl"))?;
    let entries: Vec<uwl_worker::Entry> = journal.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e.status == "in_block" && e.block_index.is_some()), "{journal}");
    // The same credentials again: the balance holds all four rewards.
    let creds: Value = serde_json::from_str(&std::fs::read_to_string(work.path().join("creds.json"))?)?;
    let (client, key) = (creds["client_id"].as_str().unwrap_or(""), creds["api_key"].as_str().unwrap_or(""));
    let (_, bal, _) = h.get(&format!("/get_balance?client_id={client}"), Some(key)).await?;
    assert_eq!(bal["balance"], 30, "2 matmul (10) + 2 hash (5): {bal}");
    i1.stop().await?;
    stop_all(services).await
}

/// Past its rate a worker gets 429 with `Retry-After`: the CLI waits what it
/// says (its own backoff here is 10 ms, far shorter), retries, and finishes
/// its work. The retries are counted and the time they took is at least
/// one Retry-After (1 s at one request a second) each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_cli_waits_what_retry_after_says_on_429() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(1, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &["--client-rate-per-s", "1", "--client-burst", "1"]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    let work = tempfile::tempdir()?;
    let args = [
        "uwl-worker", "--orchestrator-url", &h.base, "--kind", "hash", "--count", "2", "--backoff-base-ms", "10", "--retries", "20",
        "--credentials-file", &work.path().join("creds.json").display().to_string(),
        "--journal-file", &work.path().join("journal.jsonl").display().to_string(),
    ]
    .map(str::to_owned);
    let settings = <uwl_worker::Settings as clap::Parser>::try_parse_from(args)?;
    let t = Instant::now();
    let tally = uwl_worker::run(settings, tokio_util::sync::CancellationToken::new()).await?;
    let took = t.elapsed();
    println!("worker at 1 request/s: {tally:?} in {took:?}");
    assert_eq!((tally.in_block, tally.failed), (2, 0), "{tally:?}");
    assert!(tally.retried >= 1, "the worker met its rate and retried: {tally:?}");
    assert!(
        took >= Duration::from_millis(900 * tally.retried),
        "{} retries in {took:?}: each waited the 1 s Retry-After, not the 10 ms backoff",
        tally.retried
    );
    ingest.stop().await?;
    stop_all(services).await
}

/// Each authenticated client has a rate, keyed on its id: past its burst it
/// gets 429 with Retry-After and a JSON body, however it spells the header;
/// another client is not limited by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_rate_gets_429_however_it_spells_its_key() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &["--client-rate-per-s", "1", "--client-burst", "3"]).await?;
    let (_, key) = h.register().await?;
    for _ in 0..3 {
        assert_eq!(h.get("/get_task?kind=hash", Some(&key)).await?.0, 200);
    }
    let (code, body, headers) = h.get("/get_task?kind=hash", Some(&key)).await?;
    assert_eq!((code, body["error"].as_str()), (429, Some("rate_limited")), "{body}");
    let retry: u64 = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // The same key spelled with more spaces is the same client.
    let respelled = h.client.get(format!("{}/get_task?kind=hash", h.base)).header("authorization", format!("Bearer     {key}")).send().await?;
    assert_eq!(respelled.status().as_u16(), 429);
    let (_, other) = h.register().await?;
    assert_eq!(h.get("/get_task?kind=hash", Some(&other)).await?.0, 200, "another client has its own allowance");
    // The allowance comes back at the rate.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(h.get("/get_task?kind=hash", Some(&key)).await?.0, 200);
    ingest.stop().await?;
    Ok(())
}

/// API keys expire KEY_TTL_MS after issue; a valid key is renewed for the
/// same client with POST /renew_key; an expired key is refused (401 saying
/// so) and cannot be renewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_expire_and_are_renewed_before_they_do() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &["--key-ttl-ms", "3000"]).await?;
    let (code, reg, _) = h.post("/register", None, &json!({})).await?;
    assert_eq!(code, 200);
    let (client, key) = (reg["client_id"].as_str().unwrap_or_default().to_owned(), reg["api_key"].as_str().unwrap_or_default().to_owned());
    assert_eq!(reg["expires_at"].as_u64(), reg["issued_at"].as_u64().map(|i| i + 3_000), "{reg}");
    assert_eq!(h.get("/get_task?kind=hash", Some(&key)).await?.0, 200);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (code, renewed, _) = h.post("/renew_key", Some(&key), &json!({})).await?;
    assert_eq!(code, 200, "{renewed}");
    assert_eq!(renewed["client_id"], client.as_str(), "the same client");
    let new_key = renewed["api_key"].as_str().unwrap_or_default().to_owned();
    assert!(renewed["expires_at"].as_u64() > reg["expires_at"].as_u64());
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let (code, body, _) = h.get("/get_task?kind=hash", Some(&key)).await?;
    assert_eq!((code, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("expired")), "{body}");
    expect(&h.post("/renew_key", Some(&key), &json!({})).await?, 401, "unauthorized");
    assert_eq!(h.get("/get_task?kind=hash", Some(&new_key)).await?.0, 200, "the renewed key works");
    ingest.stop().await?;
    Ok(())
}

/// The issuer key rotates: an ingest issuing with the listed successor
/// accepts the keys and tasks the first key issued (and the other way
/// round), and an ingest holding a key the genesis does not list refuses
/// to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_key_rotates_to_a_listed_successor_and_old_issues_stay_valid() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    let (old, h_old) = net.ingest("node-1", &nats.url, &[]).await?;
    let (client, key) = h_old.register().await?;
    let task = h_old.task(&key, "hash").await?;

    let successor = TestNet::issuer_file(&net.dir, 2).display().to_string();
    let (new, h_new) = net.ingest("node-2", &nats.url, &["--issuer-key-file", &successor]).await?;
    let (client2, key2) = h_new.register().await?;
    assert_ne!(key2.split('.').nth(2), key.split('.').nth(2), "the successor signs");
    // what the retired key issued is still valid where the successor issues
    let contract = task["contract_id"].as_str().unwrap_or_default();
    let a = h_new.submit(&key, &client, contract, &solve_task(&task)?).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    // and the successor's issues are valid everywhere
    let task2 = h_new.task(&key2, "hash").await?;
    let a = h_old.submit(&key2, &client2, task2["contract_id"].as_str().unwrap_or_default(), &solve_task(&task2)?).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    // both rewards reach a block on every node
    for (h, k, who) in [(&h_old, &key, &client), (&h_new, &key2, &client2)] {
        wait_for("the reward in a block", LONG, || async {
            let (code, b, _) = h.get(&format!("/get_balance?client_id={who}"), Some(k)).await?;
            Ok((code == 200 && b["balance"].as_u64() == Some(5)).then_some(()))
        })
        .await?;
    }

    // an ingest with a key the genesis does not list refuses to start
    let stray = net.dir.path().join("stray.key");
    uwl_ledger::NodeKey::from_secret("stray", [3; 32]).save(&stray)?;
    let Err(err) = net.ingest("node-1", &nats.url, &["--issuer-key-file", &stray.display().to_string()]).await else {
        anyhow::bail!("an ingest with an unlisted issuer key started");
    };
    assert!(err.to_string().contains("does not list"), "{err:#}");
    old.stop().await?;
    new.stop().await?;
    stop_all(services).await
}

/// The worker CLI renews its key past three quarters of its life and keeps
/// working past the first key's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_cli_renews_its_key_before_it_expires() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let services = node_services(&net, &nats.url, &[])?;
    let verifier = net.verifier("node-1", &nats.url)?;
    let (ingest, h) = net.ingest("node-1", &nats.url, &["--key-ttl-ms", "3000"]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    let work = tempfile::tempdir()?;
    let creds = work.path().join("creds.json");
    let args: Vec<String> = vec![
        "uwl-worker".into(), "--orchestrator-url".into(), h.base.clone(), "--kind".into(), "hash".into(), "--count".into(), "10".into(),
        "--pause-ms".into(), "600".into(), "--credentials-file".into(), creds.display().to_string(),
        "--journal-file".into(), work.path().join("journal.jsonl").display().to_string(),
    ];
    let settings = <uwl_worker::Settings as clap::Parser>::try_parse_from(args)?;
    let t = Instant::now();
    let first = tokio::spawn(async move { uwl_worker::run(settings, tokio_util::sync::CancellationToken::new()).await });
    let initial = wait_for("the worker's credentials", Duration::from_secs(10), || async {
        Ok(std::fs::read_to_string(&creds).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()))
    })
    .await?;
    let tally = first.await??;
    println!("10 tasks in {:?} with a 3 s key: {tally:?}", t.elapsed());
    assert!(t.elapsed() > Duration::from_secs(4), "the run outlived the first key");
    assert_eq!((tally.in_block + tally.queued, tally.failed), (10, 0), "{tally:?}");
    let now: Value = serde_json::from_str(&std::fs::read_to_string(&creds)?)?;
    assert_eq!(now["client_id"], initial["client_id"]);
    assert_ne!(now["api_key"], initial["api_key"], "a renewed key was kept");
    assert!(now["expires_at"].as_u64() > initial["expires_at"].as_u64());
    ingest.stop().await?;
    verifier.stop().await?;
    stop_all(services).await?;
    Ok(())
}

/// A follower (sync, verifier and ingest; no miner) takes work through the
/// leader and reads pending state from every validator, merged: each
/// pending pair once, still there with one validator's miner gone, 503
/// with none. Both miners hold their pairs (they never mine here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_work_and_reads_every_validators_pending_state() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let mut services = node_services(&net, &nats.url, &["--min-pending-age-ms", "600000"])?;
    std::fs::create_dir_all(net.data_dir("node-3"))?;
    services.push(net.sync("node-3", &nats.url, &[])?);
    services.push(net.verifier("node-3", &nats.url)?);
    let (ingest, h) = net.ingest("node-3", &nats.url, &["--wait-block-ms", "0"]).await?;
    let c = Client::connect(&nats.url).await?;
    for n in ["node-1", "node-2"] {
        c.ready(n, true).await?;
    }
    c.ready("node-3", false).await?;
    let (client, key) = h.register().await?;
    let mut receipts = Vec::new();
    for _ in 0..3 {
        let task = h.task(&key, "hash").await?;
        let a = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
        assert_eq!((a.0, &a.1["status"]), (200, &json!("accepted")), "{}", a.1);
        assert_ne!(a.1["served_by"], "node-3", "a follower has no miner: {}", a.1);
        receipts.push(a.1["receipt_id"].as_str().unwrap_or_default().to_owned());
    }
    receipts.sort();
    // Both validators hold the three pairs (replicated): the follower lists each once.
    let listed = |b: &Value| -> Vec<String> { b["pending_reward"].as_array().into_iter().flatten().filter_map(|p| p["receipt_id"].as_str().map(str::to_owned)).collect() };
    let (code, b, _) = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    assert_eq!((code, listed(&b)), (200, receipts.clone()), "{b}");
    // Pages merge in receipt-id order.
    let (_, p1, _) = h.get(&format!("/get_balance?client_id={client}&limit=2"), Some(&key)).await?;
    assert_eq!(listed(&p1), receipts[..2].to_vec(), "{p1}");
    let cursor = p1["next_pending_cursor"].as_str().unwrap_or_default().to_owned();
    let (_, p2, _) = h.get(&format!("/get_balance?client_id={client}&limit=2&pending_cursor={cursor}"), Some(&key)).await?;
    assert_eq!((listed(&p2), &p2["next_pending_cursor"]), (receipts[2..].to_vec(), &Value::Null), "{p2}");
    let (code, r, _) = h.get(&format!("/receipt/{}", receipts[0]), Some(&key)).await?;
    assert_eq!((code, &r["status"], &r["node_id"]), (200, &json!("pending"), &json!("node-3")), "{r}");

    // One validator's miner gone: the other still answers for both.
    let miner_2 = services.remove(5);
    miner_2.stop().await?;
    let (code, b, _) = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    assert_eq!((code, listed(&b)), (200, receipts.clone()), "{b}");
    // None: 503 with Retry-After.
    let miner_1 = services.remove(2);
    miner_1.stop().await?;
    let gone = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
    expect(&gone, 503, "unavailable");
    assert!(gone.2.get("retry-after").is_some());
    ingest.stop().await?;
    stop_all(services).await
}

/// Three validators behind two ingests. While all are up, every block is
/// made by the leader its parent and its time name (forwarding works) and
/// the rounds rotate over all three. With node-3's services killed, work
/// in its rounds falls back to the node that took it; nothing is lost or
/// paid twice, and the two survivors agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_validators_rotate_and_survive_the_loss_of_one() -> anyhow::Result<()> {
    let _serial = serial();
    let nats = nats().await?;
    let net = TestNet::new(3, fast_params())?;
    let mut services = node_services(&net, &nats.url, &[])?;
    let (ingest_1, h1) = net.ingest("node-1", &nats.url, &[]).await?;
    let (ingest_2, h2) = net.ingest("node-2", &nats.url, &[]).await?;
    let c = Client::connect(&nats.url).await?;
    for n in &net.nodes {
        c.ready(n, true).await?;
    }
    let (client, key) = h1.register().await?;
    // One submission at a time, alternating ingests: most blocks carry one
    // pair, so the leaders of many tips are exercised.
    let submit_all = |n: usize| {
        let (h1, h2, key, client) = (&h1, &h2, &key, &client);
        async move {
            let mut answers = Vec::new();
            for i in 0..n {
                let h = if i % 2 == 0 { h1 } else { h2 };
                let task = h.task(key, "hash").await?;
                let a = h.submit(key, client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
                anyhow::ensure!(a.0 == 200, "submission {i}: {}", a.1);
                answers.push(a.1);
            }
            anyhow::Ok(answers)
        }
    };
    let receipts = |answers: &[Value]| -> Vec<String> { answers.iter().filter_map(|a| a["receipt_id"].as_str().map(str::to_owned)).collect() };
    let all_paid_once = |nodes: &'static [&'static str], want: Vec<String>| {
        let c = &c;
        async move {
            wait_for("the survivors to agree on a chain paying every receipt once", LONG, || {
                let want = want.clone();
                async move {
                    let mut chains = Vec::new();
                    for n in nodes {
                        chains.push(c.chain(n).await?);
                    }
                    let tips: std::collections::HashSet<_> = chains.iter().map(|ch| ch.last().map(|b| b.hash)).collect();
                    let paid: Vec<String> = chains[0].iter().flat_map(|b| &b.transactions).map(|p| p.receipt_id().to_hex()).collect();
                    let once = want.iter().all(|r| paid.iter().filter(|p| *p == r).count() == 1);
                    anyhow::ensure!(paid.len() == paid.iter().collect::<std::collections::HashSet<_>>().len(), "a receipt paid twice");
                    Ok((tips.len() == 1 && once).then(|| chains.swap_remove(0)))
                }
            })
            .await
        }
    };

    let before = submit_all(40).await?;
    assert!(before.iter().all(|a| a["fallback"] == false), "a fallback with every leader up");
    let chain = all_paid_once(&["node-1", "node-2", "node-3"], receipts(&before)).await?;
    for pair in chain.windows(2) {
        let (parent, block) = (&pair[0], &pair[1]);
        let leader = &current_leader(&net.genesis, &parent.tip_info(), block.timestamp).node_id;
        assert_eq!(&block.creator_node_id, leader, "block {} made by a node that did not lead its round", block.index);
    }
    let creators: std::collections::BTreeSet<&str> = chain.iter().map(|b| b.creator_node_id.as_str()).collect();
    assert_eq!(creators.len(), 3, "the rounds rotate over all three validators: {creators:?} in {} blocks", chain.len());

    // node-3 killed (its verifier, sync and miner).
    for s in services.drain(6..) {
        s.stop().await?;
    }
    let after = submit_all(40).await?;
    let fell_back = after.iter().filter(|a| a["fallback"] == true).count();
    assert!(fell_back > 0, "no submission fell back in node-3's rounds");
    let mut want = receipts(&before);
    want.extend(receipts(&after));
    let chain = all_paid_once(&["node-1", "node-2"], want).await?;
    println!("three validators: {} blocks, {fell_back} of 40 submissions fell back with node-3 gone", chain.len());
    ingest_1.stop().await?;
    ingest_2.stop().await?;
    stop_all(services).await
}
