//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`) against a running two-node
//! network. Screenshots (wide and narrow) go to `target/screenshots/`.
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use fantoccini::{Client as Browser, Locator};
use serde_json::json;
use std::time::Duration;
use uwl_tests::browser::{browser, chromedriver, screenshots};
use uwl_bus::proto::SubmitOrigin;
use uwl_ledger::testkit::pair;
use uwl_tests::*;

const LONG: Duration = Duration::from_secs(60);

async fn text(b: &Browser, id: &str) -> anyhow::Result<String> {
    Ok(b.find(Locator::Id(id)).await?.text().await?)
}

/// Clicks *Submit work* and waits for the page's answer (in a block, or pending).
async fn submit_work(b: &Browser) -> anyhow::Result<String> {
    b.find(Locator::Id("work")).await?.click().await?;
    wait_for("the submission's answer", LONG, || async {
        let t = text(b, "work-status").await?;
        Ok((t.starts_with("In block #") || t == "Reward pending inclusion in block").then_some(t))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_uses_the_dashboard_in_a_real_browser() -> anyhow::Result<()> {
    let _serial = serial();
    let driver = chromedriver()?;
    let nats = nats().await?;
    let net = TestNet::new(2, fast_params())?;
    let mut services = vec![net.verifier("node-1", &nats.url)?];
    for n in &net.nodes {
        services.push(net.sync(n, &nats.url, &[])?);
        services.push(net.miner(n, &nats.url, &[])?);
    }
    let (ingest, h) = net.ingest("node-1", &nats.url, &[]).await?;
    let c = Client::connect(&nats.url).await?;
    c.ready("node-1", true).await?;
    c.ready("node-2", true).await?;
    // A block by each node, so the page can show both creators.
    c.submit("node-1", &pair("seed", "one", 0), SubmitOrigin::Fallback, 3_000).await?;
    // node-2 builds on node-1's block (mined on the same parent, the two
    // would fork and one creator could drop out of the chain).
    wait_for("node-1's block at node-2", LONG, || async { Ok(c.sync_stats("node-2").await?.tip.is_some_and(|t| t.index >= 1).then_some(())) }).await?;
    // node-2 mines its fallback pair, but the pair is also replicated to
    // node-1, which mines it too when it leads that round: the two blocks
    // fork and node-1's may win. So: another pair until node-2 has a block
    // in the chain both nodes agree on.
    for attempt in 0.. {
        anyhow::ensure!(attempt < 5, "no block by node-2 in the agreed chain after {attempt} fallback pairs");
        c.submit("node-2", &pair("seed", &format!("two-{attempt}"), 0), SubmitOrigin::Fallback, 3_000).await?;
        let agreed = wait_for("both nodes on one tip", LONG, || async {
            let (one, two) = (c.sync_stats("node-1").await?, c.sync_stats("node-2").await?);
            Ok((one.tip.is_some() && one.tip == two.tip && one.tip.is_some_and(|t| t.index >= 2)).then_some(one))
        })
        .await?;
        if agreed.blocks_by_creator.contains_key("node-2") {
            break;
        }
    }

    let b = browser(&driver).await?;
    b.goto(&h.base).await?;
    // Register.
    b.find(Locator::Id("register")).await?.click().await?;
    wait_for("signed in", LONG, || async { Ok(text(&b, "who").await?.starts_with("Signed in as").then_some(())) }).await?;
    // Submit work computed in the page's Web Worker.
    let status = submit_work(&b).await?;
    println!("dashboard after Submit work: {status}");
    // The balance changes once the pair is in a block, without a reload.
    let balance = wait_for("the balance to rise", LONG, || async {
        let bal: u64 = text(&b, "balance").await?.parse().unwrap_or(0);
        Ok((bal > 0).then_some(bal))
    })
    .await?;
    assert_eq!(balance, 5, "one hash task's reward");
    assert_eq!(text(&b, "total").await?, "5");
    // A block from each node, in the table and the chart's legend.
    wait_for("both creators on the page", LONG, || async {
        let legend = text(&b, "legend").await?;
        Ok((legend.contains("node-1") && legend.contains("node-2")).then_some(()))
    })
    .await?;

    // Retry: a stored submission the network never saw (a lost reply).
    let key: String = serde_json::from_value(b.execute("return localStorage.getItem('uwl.api_key')", vec![]).await?)?;
    let client: String = serde_json::from_value(b.execute("return document.getElementById('who').textContent.replace('Signed in as ', '')", vec![]).await?)?;
    let task = h.task(&key, "hash").await?;
    let result = solve_task(&task)?;
    let contract_id = task["contract_id"].as_str().unwrap_or_default().to_owned();
    let receipt = uwl_ledger::receipt_id(&client, &contract_id, &uwl_ledger::result_hash(&result)).to_hex();
    let entry = json!({"body": {"client_id": client, "contract_id": contract_id, "result_data": result}, "status": "unknown", "at": 1});
    b.execute(
        "const all = JSON.parse(localStorage.getItem('uwl.submissions') || '{}'); all[arguments[0]] = arguments[1]; localStorage.setItem('uwl.submissions', JSON.stringify(all));",
        vec![json!(receipt), entry],
    )
    .await?;
    // The list re-renders as the page refreshes: a button found a moment
    // ago may be gone (a stale element), so each attempt finds it anew.
    wait_for("the Retry button clicked", LONG, || async {
        let Ok(retry) = b.find(Locator::Css(&format!("button[aria-label='Retry submission {}']", &receipt[..10]))).await else {
            return Ok(None);
        };
        Ok(retry.click().await.ok())
    })
    .await?;
    wait_for("the retried reward in a block", LONG, || async {
        let bal: u64 = text(&b, "balance").await?.parse().unwrap_or(0);
        Ok((bal == 10).then_some(()))
    })
    .await?;
    let mine = wait_for("both submissions shown in their blocks", LONG, || async {
        let mine = text(&b, "mine").await?;
        Ok((mine.matches("in block #").count() == 2).then_some(mine))
    })
    .await?;
    assert!(!mine.contains("undefined"), "{mine}");

    // A key past three quarters of its life is renewed by the page (the same
    // client), and the new key works.
    b.execute(
        "localStorage.setItem('uwl.api_key_life', JSON.stringify({issued_at: Date.now() - 80000, expires_at: Date.now() + 20000}))",
        vec![],
    )
    .await?;
    let renewed = wait_for("the page to renew its key", LONG, || async {
        let now: Option<String> = serde_json::from_value(b.execute("return localStorage.getItem('uwl.api_key')", vec![]).await?)?;
        Ok(now.filter(|k| *k != key))
    })
    .await?;
    assert_eq!(h.get(&format!("/get_balance?client_id={client}"), Some(&renewed)).await?.0, 200, "the renewed key is the same client's");

    // A pasted key's life is unknown to the page: it renews it at once,
    // which tells it.
    b.find(Locator::Id("signout")).await?.click().await?;
    b.find(Locator::Id("apikey")).await?.send_keys(&renewed).await?;
    b.find(Locator::Css("#keyform button[type='submit']")).await?.click().await?;
    let pasted_renewed = wait_for("the page to renew a pasted key", LONG, || async {
        let now: Option<String> = serde_json::from_value(b.execute("return localStorage.getItem('uwl.api_key')", vec![]).await?)?;
        let life: Option<String> = serde_json::from_value(b.execute("return localStorage.getItem('uwl.api_key_life')", vec![]).await?)?;
        Ok(now.filter(|k| *k != renewed && life.is_some()))
    })
    .await?;
    assert_eq!(h.get(&format!("/get_balance?client_id={client}"), Some(&pasted_renewed)).await?.0, 200);
    assert_eq!(text(&b, "who").await?, format!("Signed in as {client}"));

    std::fs::create_dir_all(screenshots())?;
    std::fs::write(screenshots().join("dashboard-wide.png"), b.screenshot().await?)?;
    b.set_window_size(390, 900).await?;
    std::fs::write(screenshots().join("dashboard-narrow.png"), b.screenshot().await?)?;
    println!("screenshots in {}", screenshots().display());
    b.close().await?;
    ingest.stop().await?;
    stop_all(services).await
}

/// Through nginx on the compose cluster: a reward of the browser's client is
/// mined on node-1 while site 2 is cut off and mines a longer chain; after
/// the heal node-1's block is orphaned, and the page shows the reward as
/// orphaned, re-queued and in a block again, the same whichever node
/// answers. Before that, empty lists say they are empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_through_nginx_shows_a_reward_orphaned_by_a_real_fork() -> anyhow::Result<()> {
    let _serial = serial();
    let driver = chromedriver()?;
    let cluster = uwl_tests::faults::FaultCluster::up("dash").await?;
    let b = browser(&driver).await?;
    b.goto(&cluster.nginx.base).await?;
    b.find(Locator::Id("register")).await?.click().await?;
    wait_for("signed in", LONG, || async { Ok(text(&b, "who").await?.starts_with("Signed in as").then_some(())) }).await?;
    wait_for("empty lists saying so", LONG, || async {
        let (o, p) = (text(&b, "orphaned").await?, text(&b, "pending").await?);
        Ok((o.contains("No reward of yours was in an orphaned block") && p.contains("Nothing pending")).then_some(()))
    })
    .await?;
    // The page's own work through the edge: a task, the submission, and
    // the receipt followed by the page's long-poll until it is in a block.
    let status = submit_work(&b).await?;
    println!("dashboard through nginx after Submit work: {status}");
    wait_for("the page's submission shown in its block", LONG, || async { Ok(text(&b, "mine").await?.contains("in block #").then_some(())) }).await?;
    let key: String = serde_json::from_value(b.execute("return localStorage.getItem('uwl.api_key')", vec![]).await?)?;
    let client = text(&b, "who").await?.replace("Signed in as ", "");

    let (h1, h2) = (cluster.ingest["node-1"].clone(), cluster.ingest["node-2"].clone());
    let tip = |h: Http| async move {
        let (_, health, _) = h.get("/health", None).await?;
        anyhow::Ok(health["tip_index"].as_u64().unwrap_or(0))
    };
    let mined = |h: Http, key: String, client: String| async move {
        let task = h.task(&key, "hash").await?;
        let a = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &solve_task(&task)?).await?;
        anyhow::ensure!(a.0 == 200, "{a:?}");
        let rid = a.1["receipt_id"].as_str().unwrap_or_default().to_owned();
        wait_for("the reward in a block on its side", LONG, || async {
            let (_, r, _) = h.get(&format!("/receipt/{rid}?wait_ms=2000"), Some(&key)).await?;
            Ok((r["status"] == "in_block").then_some(()))
        })
        .await?;
        anyhow::Ok(rid)
    };
    cluster.partition("nats-2")?;
    // node-1's side mines the browser client's reward ...
    let orphan = mined(h1.clone(), key.clone(), client.clone()).await?;
    // ... node-2's side a longer chain of another client's.
    let (other, other_key) = h2.register().await?;
    while tip(h2.clone()).await? <= tip(h1.clone()).await? + 1 {
        mined(h2.clone(), other_key.clone(), other.clone()).await?;
    }
    println!("during the partition: node-1 at block {}, node-2 at block {}", tip(h1.clone()).await?, tip(h2.clone()).await?);
    cluster.heal("nats-2")?;

    let shown = wait_for("the orphaned reward in a block again on the page", Duration::from_secs(90), || async {
        let o = text(&b, "orphaned").await?;
        Ok((o.contains(&orphan[..10]) && o.contains("orphaned from block #") && o.contains("re-queued") && o.contains("again")).then_some(o))
    })
    .await?;
    println!("dashboard, rewards from orphaned blocks: {shown}");
    std::fs::create_dir_all(screenshots())?;
    std::fs::write(screenshots().join("dashboard-orphaned.png"), b.screenshot().await?)?;
    // The same record from each node (records are replicated to every validator).
    for h in [&h1, &h2] {
        let r = wait_for("the orphan record on each node", LONG, || async {
            let (_, r, _) = h.get(&format!("/orphaned_tx?client_id={client}"), Some(&key)).await?;
            Ok((r["orphaned"][0]["status"] == "in_block").then_some(r))
        })
        .await?;
        assert_eq!(r["orphaned"][0]["receipt_id"], orphan.as_str(), "{r}");
    }
    b.close().await?;
    Ok(())
}
