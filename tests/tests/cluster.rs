//! The docker-compose cluster and its NATS permissions, on the locally built
//! `uwl:dev` image (deploy/images/build.sh).
// Container tests hold a process-wide lock (`serial`) across awaits on purpose.
#![allow(clippy::await_holding_lock)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use uwl_bus::proto::{ReplicateRequest, SubmitBatch, SubmitOrigin, SubmitRequest};
use uwl_bus::{Login, RequestId, Role};
use uwl_tests::*;

fn require_uwl_image() -> anyhow::Result<()> {
    let ok = Command::new("docker").args(["image", "inspect", "uwl:dev"]).output()?.status.success();
    anyhow::ensure!(ok, "image uwl:dev is missing: build it with deploy/images/build.sh (deploy/test does)");
    Ok(())
}

/// A compose project of the cluster, torn down (with its volumes) on drop.
struct Cluster {
    project: String,
    env_file: PathBuf,
    port: u16,
    tls_port: u16,
    prometheus_port: u16,
    alertmanager_port: u16,
    /// Where Alertmanager sends alerts (none: kept, not sent).
    webhook: Option<String>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `program` with the cluster's settings in its environment (compose
    /// and deploy/cluster read the same ones).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("UWL_PORT", self.port.to_string())
            .env("UWL_TLS_PORT", self.tls_port.to_string())
            // the monitoring too (Prometheus, Alertmanager)
            .env("COMPOSE_PROFILES", "monitoring")
            .env("UWL_PROMETHEUS_PORT", self.prometheus_port.to_string())
            .env("UWL_ALERTMANAGER_PORT", self.alertmanager_port.to_string())
            .env("ALERT_WEBHOOK_URL", self.webhook.clone().unwrap_or_default())
            // Small per-client allowances, so a burst from this host is
            // limited however fast the machine sends it.
            .env("CLIENT_RATE_PER_S", "50")
            .env("CLIENT_BURST", "100");
        c
    }

    /// Where `deploy/cluster scale` keeps this cluster's scaled instances.
    fn scale_file(&self) -> PathBuf {
        self.dir.path().join("scale.yml")
    }

    fn compose(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut c = self.command("docker-compose");
        c.args(["-p", &self.project, "--env-file"])
            .arg(&self.env_file)
            .arg("-f")
            .arg(repo().join("deploy/docker-compose.yml"))
            .arg("-f")
            .arg(repo().join("tests/compose/cluster.override.yml"));
        if self.scale_file().exists() {
            c.arg("-f").arg(self.scale_file());
        }
        let out = c.args(args).output()?;
        anyhow::ensure!(out.status.success(), "docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `deploy/cluster ARGS` on this cluster (its project, files and image).
    fn deploy_cluster(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .command(repo().join("deploy/cluster"))
            .args(args)
            .env("UWL_PROJECT", &self.project)
            .env("UWL_ENV_FILE", &self.env_file)
            .env("UWL_COMPOSE_OVERRIDES", repo().join("tests/compose/cluster.override.yml"))
            .env("UWL_SCALE_FILE", self.scale_file())
            .env("UWL_IMAGE_TAG", "dev")
            .output()?;
        anyhow::ensure!(out.status.success(), "deploy/cluster {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn up() -> anyhow::Result<Self> {
        Self::up_with(None)
    }

    /// The cluster with its alerts sent to `webhook`.
    fn up_with(webhook: Option<String>) -> anyhow::Result<Self> {
        require_uwl_image()?;
        remove_stale_test_clusters();
        let dir = tempfile::tempdir()?;
        let env_file = dir.path().join(".env");
        let secrets: String = nats_secrets("test")?.into_iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        // compose takes one env file: the deployment's values, then the secrets
        std::fs::write(&env_file, format!("{}\n{secrets}UWL_SECRETS_FILE={}\n", uwl_tests::faults::cluster_env()?, env_file.display()))?;
        let free = || -> anyhow::Result<u16> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
        let (port, tls_port, prometheus_port, alertmanager_port) = (free()?, free()?, free()?, free()?);
        let project = format!("uwltest{}", std::process::id());
        let c = Self { project, env_file, port, tls_port, prometheus_port, alertmanager_port, webhook, dir };
        c.compose(&["up", "-d"])?;
        Ok(c)
    }
}

impl Cluster {
    fn exec(&self, svc: &str, cmd: &[&str]) -> anyhow::Result<String> {
        // found by compose's labels (compose v1 and v2 name containers differently)
        let id = self.compose(&["ps", "-q", svc])?;
        let out = Command::new("docker").args(["exec", id.trim()]).args(cmd).output()?;
        anyhow::ensure!(out.status.success(), "{cmd:?} in {svc}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn exists(&self, svc: &str, path: &str) -> anyhow::Result<bool> {
        Ok(self.exec(svc, &["sh", "-c", &format!("test -e {path} && echo yes || echo no")])?.trim() == "yes")
    }

    /// The ids of `svc`'s containers, running or not (compose labels: a
    /// service no longer in the files is still found).
    fn containers(&self, svc: &str) -> anyhow::Result<String> {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("label=com.docker.compose.project={}", self.project)])
            .args(["--filter", &format!("label=com.docker.compose.service={svc}")])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Waits until Prometheus scrapes `instance` and finds it up.
    async fn scraped(&self, instance: &str) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}/api/v1/targets", self.prometheus_port);
        wait_for(&format!("Prometheus scraping {instance}"), Duration::from_secs(60), || async {
            let Ok(r) = reqwest::get(&url).await else { return Ok(None) };
            let v: serde_json::Value = r.json().await?;
            let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
            Ok(active.iter().any(|t| t["labels"]["instance"] == instance && t["health"] == "up").then_some(()))
        })
        .await
    }

    /// nginx's address, once the cluster answers healthy through it.
    async fn ready(&self) -> anyhow::Result<Http> {
        let h = Http::new(&format!("http://127.0.0.1:{}", self.port));
        wait_for("the cluster through nginx", Duration::from_secs(120), || async {
            let (code, body, _) = h.get("/health", None).await?;
            Ok((code == 200 && body["status"] == "ok").then_some(()))
        })
        .await?;
        Ok(h)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_restarted_under_load_costs_no_5xx_and_gets_traffic_again() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    // the metrics are for the operators' network, not the public edge
    let (code, body, _) = h.get("/metrics", None).await?;
    assert_eq!((code, body["error"].as_str()), (404, Some("not_found")), "{body}");
    // Secrets only where used: the issuer key in the ingests only, a node's
    // key in its miner only (mode 0600), none in the volumes others mount.
    for (svc, path, present) in [
        ("ingest-1", "/issuer/issuer-1.key", true),
        ("ingest-1", "/issuer/issuer-2.key", true),
        ("ingest-1", "/config/issuer-1.key", false),
        ("sync-1", "/config/issuer-1.key", false),
        ("sync-1", "/issuer", false),
        ("sync-1", "/data/node.key", false),
        ("miner-1", "/key/node.key", true),
        ("miner-1", "/data/node.key", false),
        ("miner-1", "/issuer", false),
        ("metrics", "/config/issuer-1.key", false),
        ("verifier-1", "/config/issuer-1.key", false),
    ] {
        assert_eq!(cluster.exists(svc, path)?, present, "{path} in {svc}");
    }
    assert_eq!(cluster.exec("miner-1", &["stat", "-c", "%a", "/key/node.key"])?.trim(), "600");

    // TLS at the edge: HTTPS with the certificate nginx generated at its
    // first start (its key readable by nginx only); plain HTTP is published
    // on the host's loopback only; plain HTTP to the HTTPS port is a JSON 400.
    let pem = cluster.exec("nginx", &["cat", "/tls/cert.pem"])?;
    assert_eq!(cluster.exec("nginx", &["stat", "-c", "%a", "/tls/key.pem"])?.trim(), "600");
    let https = format!("https://127.0.0.1:{}", cluster.tls_port);
    let tls = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?).build()?;
    let livez = tls.get(format!("{https}/livez")).send().await?;
    assert_eq!(livez.status(), 200);
    let missing = tls.get(format!("{https}/nope")).send().await?;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await?["error"], "not_found");
    assert!(reqwest::Client::new().get(format!("{https}/livez")).send().await.is_err(), "a client that does not trust it refuses the certificate");
    let plain = reqwest::get(format!("http://127.0.0.1:{}/livez", cluster.tls_port)).await?;
    assert_eq!(plain.status(), 400);
    assert_eq!(plain.json::<serde_json::Value>().await?["error"], "bad_request");
    let published = cluster.compose(&["port", "nginx", &uwl_tests::faults::cluster_value("UWL_HTTP_PORT")?])?;
    assert!(published.trim().starts_with("127.0.0.1:"), "plain HTTP published on loopback only: {published}");
    // Both ingests answer through the one upstream.
    let nodes = wait_for("both ingests behind nginx", Duration::from_secs(60), || async {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let (_, body, _) = h.get("/health", None).await?;
            seen.insert(body["node_id"].as_str().unwrap_or_default().to_owned());
        }
        Ok((seen.len() == 2).then_some(seen))
    })
    .await?;
    println!("ingests behind nginx: {nodes:?}");

    let (client, key) = h.register().await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let (h, stop, key, client) = (h.clone(), stop.clone(), key.clone(), client.clone());
        tokio::spawn(async move {
            let mut codes = Vec::new();
            // at most 10 submissions (20 requests) a second: inside the
            // per-client allowance this cluster runs with (50/s), however
            // fast the machine solves tasks
            let mut pace = tokio::time::interval(Duration::from_millis(100));
            while !stop.is_cancelled() {
                pace.tick().await;
                let step = async {
                    let task = h.task(&key, "hash").await?;
                    let result = solve_task(&task)?;
                    let (code, body, _) = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or(""), &result).await?;
                    anyhow::Ok((code, body))
                };
                codes.push(match step.await {
                    Ok((code, body)) => (code, body.to_string()),
                    Err(e) => (0, format!("{e:#}")),
                });
            }
            codes
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    cluster.compose(&["stop", "ingest-1"])?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.compose(&["up", "-d", "--force-recreate", "--no-deps", "ingest-1"])?;
    println!("ingest-1 stopped and recreated in {:?}", t.elapsed());
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.cancel();
    let codes = load.await?;
    let bad: Vec<_> = codes.iter().filter(|(c, _)| *c == 0 || *c >= 500).collect();
    println!("submissions during the restart: {}, 5xx or failed: {}", codes.len(), bad.len());
    assert!(codes.len() >= 5, "the client kept submitting");
    assert!(bad.is_empty(), "no 5xx while an ingest restarted: {bad:?}");
    assert!(codes.iter().all(|(c, _)| *c == 200), "{codes:?}");

    wait_for("traffic on the restarted ingest", Duration::from_secs(60), || async {
        for _ in 0..20 {
            let (_, body, _) = h.get("/health", None).await?;
            if body["node_id"] == "node-1" {
                return Ok(Some(()));
            }
        }
        Ok(None)
    })
    .await?;

    // nginx's own answers are JSON: 413 for a large body, 429 per API key.
    let (code, body, _) = h.post_raw("/submit_work", Some(&key), vec![b' '; 2 << 20]).await?;
    assert_eq!((code, body["error"].as_str()), (413, Some("payload_too_large")), "{body}");
    let burst = futures::future::join_all((0..1_500).map(|_| h.get("/get_task?kind=hash", Some(&key)))).await;
    let limited = burst.iter().filter(|r| matches!(r, Ok((429, b, _)) if b["error"] == "rate_limited")).count();
    println!("a burst of 1500 requests with one API key: {limited} answered 429");
    assert!(limited > 0, "the per-client rate limit answers 429 with a JSON body");
    // Spelling the key differently does not buy a new allowance: a burst
    // of 1,500 in 30 spellings (50 each, each spelling well inside any
    // allowance on its own) is limited like one client.
    let (_, fresh_key) = h.register().await?;
    // (registered before the registration burst below spends this address's allowance)
    let (other_client, other_key) = h.register().await?;
    let respelled = futures::future::join_all((0..1_500).map(|i| {
        let auth = format!("Bearer{}{fresh_key}", " ".repeat(1 + i % 30));
        h.client.get(format!("{}/get_task?kind=hash", h.base)).header("authorization", auth).send()
    }))
    .await;
    let limited: Vec<_> = respelled.iter().filter_map(|r| r.as_ref().ok()).filter(|r| r.status().as_u16() == 429).collect();
    println!("a burst of 1500 requests with one API key in 30 spellings: {} answered 429", limited.len());
    assert!(!limited.is_empty(), "the same client, however the header is spelled");
    assert!(limited.iter().all(|r| r.headers().contains_key("retry-after")));
    // Registration is limited per address whatever headers come with it.
    let regs = futures::future::join_all((0..600).map(|_| {
        h.client.post(format!("{}/register", h.base)).header("authorization", "Bearer anything").header("content-type", "application/json").body("{}").send()
    }))
    .await;
    let refused = regs.iter().filter(|r| r.as_ref().is_ok_and(|r| r.status().as_u16() == 429)).count();
    println!("600 registrations at once with a made-up Authorization header: {refused} answered 429");
    assert!(refused > 0, "registration is limited per address, headers or not");
    let limited: Vec<_> = regs.into_iter().filter_map(Result::ok).filter(|r| r.status().as_u16() == 429).collect();
    assert!(limited.iter().all(|r| r.headers().contains_key("retry-after")), "nginx's 429 carries Retry-After");
    for r in limited.into_iter().take(5) {
        let body: serde_json::Value = r.json().await?;
        assert_eq!(body["error"], "rate_limited", "nginx's 429 is the API's JSON error: {body}");
    }
    // another key is not limited by the first one's burst
    assert_eq!(h.get("/get_task?kind=hash", Some(&other_key)).await?.0, 200);
    edge_errors_are_json_and_slow_clients_are_cut_off(&cluster, &h, &other_client, &other_key).await
}

/// One raw HTTP exchange with nginx: what it answered (status, JSON body)
/// before closing or `within`.
async fn raw_exchange(port: u16, request: &[u8], within: Duration) -> anyhow::Result<(u16, serde_json::Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(request).await?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow::anyhow!("no status line in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let json = serde_json::from_str(body).map_err(|e| anyhow::anyhow!("{status}: body is not JSON ({e}): {body:?}"))?;
    Ok((status, json))
}

/// nginx's own errors are the API's JSON error shape; a client that sends
/// half a request is cut off by the header timeout (10 s); a legitimate 503
/// (the node's miner gone) reaches the client with `Retry-After` and ejects
/// no instance; with no instance left nginx answers a JSON 502.
async fn edge_errors_are_json_and_slow_clients_are_cut_off(cluster: &Cluster, h: &Http, client: &str, key: &str) -> anyhow::Result<()> {
    let within = Duration::from_secs(5);
    let (code, body) = raw_exchange(cluster.port, b"GET /livez HTTP/1.1\r\n\r\n", within).await?;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")), "an HTTP/1.1 request without Host: {body}");
    let long_uri = format!("GET /chain?pad={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9_000));
    let (code, body) = raw_exchange(cluster.port, long_uri.as_bytes(), within).await?;
    assert_eq!((code, body["error"].as_str()), (414, Some("uri_too_long")), "{body}");
    let big_header = format!("GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(9_000));
    let (code, body) = raw_exchange(cluster.port, big_header.as_bytes(), within).await?;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")), "headers too large (nginx's 494): {body}");
    // What nginx refuses by itself: a method it never forwards (405), a
    // transfer encoding it does not know (501) and an HTTP version it does
    // not speak (505), each as JSON.
    let (code, body) = raw_exchange(cluster.port, b"TRACE /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", within).await?;
    assert_eq!((code, body["error"].as_str()), (405, Some("method_not_allowed")), "TRACE: {body}");
    let odd_encoding = b"POST /submit_work HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked2\r\nConnection: close\r\n\r\n";
    let (code, body) = raw_exchange(cluster.port, odd_encoding, within).await?;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")), "unknown Transfer-Encoding (nginx's 501): {body}");
    let (code, body) = raw_exchange(cluster.port, b"GET /livez HTTP/3.0\r\nHost: x\r\nConnection: close\r\n\r\n", within).await?;
    assert_eq!((code, body["error"].as_str()), (400, Some("bad_request")), "HTTP/3.0 request line (nginx's 505): {body}");
    let (code, body) = raw_exchange(cluster.port, b"GET /_error/500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", within).await?;
    assert_eq!((code, body["error"].as_str()), (404, Some("not_found")), "the error pages are not reachable from outside: {body}");

    // half a request, then silence: cut off after the 10 s header timeout
    let t = Instant::now();
    let cut = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port)).await?;
        s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n").await?;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await
    };
    println!("a client that sent half its headers was cut off after {:?}", t.elapsed());
    assert!(cut.is_ok(), "nginx kept a silent half-request open for 20 s");
    assert!(t.elapsed() >= Duration::from_secs(9) && t.elapsed() <= Duration::from_secs(12), "cut off by the 10 s header timeout: {:?}", t.elapsed());

    // A legitimate 503: no miner answers, so this node cannot say what is pending.
    cluster.compose(&["stop", "miner-1", "miner-2"])?;
    let path = format!("/get_balance?client_id={client}");
    let mut answers = Vec::new();
    for _ in 0..10 {
        let r = h.client.get(format!("{}{path}", h.base)).bearer_auth(key).send().await?;
        let retry_after = r.headers().contains_key("retry-after");
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await?;
        answers.push((status, body["error"].as_str().map(str::to_owned), retry_after));
    }
    println!("get_balance with both miners stopped: {answers:?}");
    assert!(answers.iter().all(|(s, e, ra)| *s == 503 && e.as_deref() == Some("unavailable") && *ra), "{answers:?}");
    // ...and ejected no instance: both still answer behind nginx
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let (code, body, _) = h.get("/health", None).await?;
        assert!(code == 200 || code == 503, "{code} {body}");
        seen.insert(body["node_id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(seen.len(), 2, "both instances still in the upstream: {seen:?}");
    cluster.compose(&["start", "miner-1", "miner-2"])?;

    // No instance at all: nginx's own 502 (refused) or 504 (a stopped
    // container's address does not answer: the connect timeout), JSON with
    // Retry-After.
    cluster.compose(&["stop", "ingest-1", "ingest-2"])?;
    let r = h.client.get(format!("{}/livez", h.base)).send().await?;
    let (status, retry_after) = (r.status().as_u16(), r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await?;
    let answer = (status, body["error"].as_str(), retry_after);
    assert!([(502, Some("bad_gateway"), true), (504, Some("gateway_timeout"), true)].contains(&answer), "{body}");
    Ok(())
}

/// `deploy/cluster scale node-1 ingest=3` while requests flow through
/// nginx: two more node-1 instances start, nginx reloads with them, each of
/// the three serves requests, and no request fails; scaled back to one, the
/// extra instances are gone, still with no failure. No file is edited by
/// hand: the command writes the scaled instances' compose file itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_scales_with_one_command_and_no_request_fails() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let (client, key) = h.register().await?;
    let stop = tokio_util::sync::CancellationToken::new();
    // One connection per request: a reload closes the old workers' idle
    // keep-alive connections, and a request a client sends on one at that
    // moment meets a closed connection (HTTP clients send it again on a new
    // one; the worker CLI does). This test counts what nginx takes.
    let unpooled = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(30)).build()?;
    let h = Http { base: h.base.clone(), client: unpooled };
    // Liveness probes (no rate limit) and a client's balance reads (inside
    // its allowance), both through nginx, until told to stop.
    let load = |path: String, key: Option<String>, pause: Duration| {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers: Vec<Result<u16, String>> = Vec::new();
            while !stop.is_cancelled() {
                answers.push(h.get(&path, key.as_deref()).await.map(|(code, _, _)| code).map_err(|e| format!("{e:#}")));
                tokio::time::sleep(pause).await;
            }
            answers
        })
    };
    let probes = [load("/livez".into(), None, Duration::from_millis(5)), load(format!("/get_balance?client_id={client}"), Some(key), Duration::from_millis(40))];
    let served = |svc: &str| -> anyhow::Result<u64> {
        let text = cluster.exec(svc, &["curl", "-fsS", "http://127.0.0.1:9100/metrics"])?;
        Ok(text.lines().filter(|l| l.starts_with("uwl_ingest_requests_total{")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum::<f64>() as u64)
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    println!("{}", cluster.deploy_cluster(&["scale", "node-1", "ingest=3"])?.trim());
    println!("scaled node-1 to 3 ingest instances in {:?}", t.elapsed());
    let counts = wait_for("each of node-1's three instances serving", Duration::from_secs(30), || async {
        let counts = [served("ingest-1")?, served("ingest-1-2")?, served("ingest-1-3")?];
        Ok(counts.iter().all(|c| *c > 0).then_some(counts))
    })
    .await?;
    println!("requests served by ingest-1, ingest-1-2, ingest-1-3: {counts:?}");
    cluster.scraped("ingest-1-3:9100").await?;
    println!("{}", cluster.deploy_cluster(&["scale", "node-1", "ingest=1"])?.trim());
    assert_eq!((cluster.containers("ingest-1-2")?, cluster.containers("ingest-1-3")?), (String::new(), String::new()), "scaled back to one: the extra instances are removed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let mut answers = Vec::new();
    for p in probes {
        answers.extend(p.await?);
    }
    let failed: Vec<_> = answers.iter().filter(|c| **c != Ok(200)).collect();
    println!("{} requests through nginx while scaling up and down: {} not 200", answers.len(), failed.len());
    assert!(answers.len() > 500, "the load ran: {} requests", answers.len());
    assert!(failed.is_empty(), "no request fails while instances come and go: {failed:?}");
    Ok(())
}

/// A follower node from one command (`deploy/cluster followers 1`): a site
/// of its own (its NATS server joins by the route password; sync, verifier
/// and ingest with node id follower-1, no miner), its ingest behind nginx.
/// Asked directly, the follower registers a client, issues a task, forwards
/// the result to the leader, and serves the reward's receipt and balance
/// from its own chain; with no validator's miner answering, a submission is
/// a 503 with Retry-After. `followers 0` removes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_from_one_command_serves_reads_and_forwards_writes() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let t = Instant::now();
    println!("{}", cluster.deploy_cluster(&["followers", "1"])?.trim());
    println!("a follower added in {:?}", t.elapsed());
    let port = uwl_tests::faults::cluster_value("UWL_HTTP_PORT")?;
    // The follower's ingest, asked from inside its container: status, headers, body.
    let follower = |method: &str, path: &str, key: Option<&str>, body: Option<&str>| -> anyhow::Result<(u16, String, serde_json::Value)> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let auth = key.map(|k| format!("authorization: Bearer {k}")).unwrap_or_default();
        let mut cmd = vec!["curl", "-sS", "-i", "-X", method];
        if key.is_some() {
            cmd.extend(["-H", &auth]);
        }
        if let Some(b) = body {
            cmd.extend(["-H", "content-type: application/json", "--data-binary", b]);
        }
        cmd.push(&url);
        let out = cluster.exec("ingest-follower-1", &cmd)?;
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok((status, head.to_lowercase(), serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
    };
    let (code, _, health) = follower("GET", "/health", None, None)?;
    assert_eq!((code, health["node_id"].as_str()), (200, Some("follower-1")), "{health}");
    let (code, _, keys) = follower("POST", "/register", None, Some("{}"))?;
    assert_eq!(code, 200, "{keys}");
    let (client, key) = (keys["client_id"].as_str().unwrap_or_default().to_owned(), keys["api_key"].as_str().unwrap_or_default().to_owned());
    let submit_one = || -> anyhow::Result<(u16, String, serde_json::Value, u64)> {
        let (code, _, task) = follower("GET", "/get_task?kind=hash", Some(&key), None)?;
        anyhow::ensure!(code == 200, "get_task: {code} {task}");
        let body = serde_json::json!({"client_id": client, "contract_id": task["contract_id"], "result_data": solve_task(&task)?}).to_string();
        let (code, head, answer) = follower("POST", "/submit_work", Some(&key), Some(&body))?;
        Ok((code, head, answer, task["reward"].as_u64().unwrap_or(0)))
    };
    let (code, _, answer, reward) = submit_one()?;
    assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    assert!(["node-1", "node-2"].contains(&answer["served_by"].as_str().unwrap_or_default()), "taken by a validator's miner: {answer}");
    let receipt = answer["receipt_id"].as_str().unwrap_or_default().to_owned();
    let landed = wait_for("the follower's reward in a block, read from the follower", Duration::from_secs(30), || async {
        let (code, _, r) = follower("GET", &format!("/receipt/{receipt}?wait_ms=2000"), Some(&key), None)?;
        Ok((code == 200 && r["status"] == "in_block").then_some(r))
    })
    .await?;
    println!("receipt read from the follower: {landed}");
    let (code, _, balance) = follower("GET", &format!("/get_balance?client_id={client}"), Some(&key), None)?;
    assert_eq!((code, balance["balance"].as_u64()), (200, Some(reward)), "{balance}");
    // Prometheus scrapes the follower's services.
    cluster.scraped("sync-follower-1:9100").await?;
    // nginx sends the public's requests to the follower's ingest too.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (_, body, _) = h.get("/health", None).await?;
        seen.insert(body["node_id"].as_str().unwrap_or_default().to_owned());
    }
    assert!(seen.contains("follower-1") && seen.contains("node-1") && seen.contains("node-2"), "nginx's upstream: {seen:?}");
    // No validator's miner answers: the follower cannot place work.
    cluster.compose(&["stop", "miner-1", "miner-2"])?;
    let (code, head, answer, _) = submit_one()?;
    assert_eq!((code, answer["error"].as_str()), (503, Some("unavailable")), "{answer}");
    assert!(head.contains("retry-after:"), "a 503 says when to retry: {head}");
    cluster.compose(&["start", "miner-1", "miner-2"])?;
    println!("{}", cluster.deploy_cluster(&["followers", "0"])?.trim());
    assert_eq!(cluster.containers("ingest-follower-1")?, "", "followers 0 removes the follower's services");
    // its chain's volume is kept on purpose; this test's goes
    Command::new("docker").args(["volume", "rm", &format!("{}_follower-1-data", cluster.project)]).output()?;
    Ok(())
}

/// Inside the cluster, as an insider would try it: a NATS server without
/// the route password cannot join (a client of it sees nothing of the
/// bus), while one with it can (the control); the monitoring port does not
/// answer on the networks; and with each role's credentials, a forged pair
/// offered on every subject that role can reach is refused or never
/// delivered, never appears in a block, and blocks keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insiders_cannot_join_the_bus_or_mint() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let site1 = format!("{}_site1", cluster.project);
    let rogue = |name: &str, route: &str| -> anyhow::Result<()> {
        let out = Command::new("docker")
            .args(["run", "-d", "--rm", "--name", name, "--network", &site1, "uwl:dev", "nats-server", "-p", "4222", "-m", "8222"])
            .args(["--cluster_name", "uwl", "--cluster", "nats://0.0.0.0:6222", "--routes", route])
            .output()?;
        anyhow::ensure!(out.status.success(), "docker run {name}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(())
    };
    let routes = |name: &str| -> anyhow::Result<u64> {
        let out = Command::new("docker").args(["exec", name, "curl", "-fsS", "http://127.0.0.1:8222/routez"]).output()?;
        Ok(serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().and_then(|v| v["num_routes"].as_u64()).unwrap_or(0))
    };
    let (outsider, insider) = (format!("{}-rogue", cluster.project), format!("{}-route", cluster.project));
    struct Gone(Vec<String>);
    impl Drop for Gone {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("docker").args(["rm", "-f", n]).output();
            }
        }
    }
    let _gone = Gone(vec![outsider.clone(), insider.clone()]);
    rogue(&outsider, "nats-route://nats-1:6222")?;
    rogue(&insider, "nats-route://route:test-nats_route_password@nats-1:6222")?;
    let joined = wait_for("the server holding the route password joins", Duration::from_secs(30), || async {
        Ok((routes(&insider)? > 0).then_some(()))
    })
    .await;
    assert!(joined.is_ok(), "control: a server with the route password joins the cluster");
    assert_eq!(routes(&outsider)?, 0, "a server without the route password is not routed to");
    // A client of each, subscribed to everything for 4 s (the NATS protocol
    // spoken from bash): the bus's traffic (tips every second at least)
    // reaches the insider's client, nothing reaches the outsider's.
    let seen = |name: &str| -> anyhow::Result<usize> {
        let script = "exec 3<>/dev/tcp/127.0.0.1/4222; printf 'CONNECT {\"verbose\":false}\\r\\nSUB > 1\\r\\n' >&3; timeout 4 cat <&3 | grep -c '^MSG ' || true";
        let out = Command::new("docker").args(["exec", name, "bash", "-c", script]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0))
    };
    let (inside, outside) = (seen(&insider)?, seen(&outsider)?);
    println!("bus messages seen in 4 s by a client of a server with the route password: {inside}, without: {outside}");
    assert!(inside > 0, "control: the bus's traffic reaches a routed server's client");
    assert_eq!(outside, 0, "a client of the rogue server saw bus messages");
    // monitoring is not on the networks
    let monitor = cluster.exec("sync-1", &["sh", "-c", "curl -sS -m 2 http://nats-1:8222/varz >/dev/null && echo open || echo closed"])?;
    assert_eq!(monitor.trim(), "closed", "nats-1's monitoring port answered on the site network");

    // Each role's credentials, every subject it could offer a pair on.
    let h2 = uwl_ledger::result_hash(&serde_json::json!({"nonce": 1}));
    let forged = uwl_ledger::TxPair::new("mallory", "c-made-up", 1_000, h2);
    let nats1 = format!("nats://127.0.0.1:{}", cluster.compose(&["port", "nats-1", "4222"])?.trim().rsplit(':').next().unwrap_or_default());
    let mut refused = Vec::new();
    for role in [Role::Sync, Role::Miner, Role::Verifier, Role::Ingest] {
        let login = Login::with_password(role, "node-1", format!("test-{}", role.password_var("node-1").to_lowercase()).into());
        let c = Client::login(&nats1, &login).await?;
        for node in ["node-1", "node-2"] {
            let submit = SubmitBatch { items: vec![SubmitRequest { pair: forged.clone(), origin: SubmitOrigin::Local, wait_block_ms: 0, verified: true }] };
            // a batch's answer carries each item's own verdict
            let a = c.bus.ask(node, submit, Duration::from_secs(2), &RequestId::new()).await.and_then(|mut items| match items.pop() {
                Some(item) => item.map(|_| ()).map_err(uwl_bus::BusError::Remote),
                None => Err(uwl_bus::BusError::Protocol("an empty batch answer".into())),
            });
            let replicate = ReplicateRequest { from: "node-1".into(), pairs: vec![forged.clone()], orphaned: vec![], superseded: vec![] };
            let b = c.bus.ask(node, replicate, Duration::from_secs(2), &RequestId::new()).await.map(|_| ());
            for (what, r) in [("submit", a), ("replicate", b)] {
                // refused by the server (no delivery: no responders or a
                // timeout) or by the miner (bad_request): never accepted
                let outcome = match r {
                    Ok(()) => "accepted".to_owned(),
                    Err(e) => e.remote_code().map(|c| format!("{c:?}")).unwrap_or_else(|| e.label().to_owned()),
                };
                println!("{} of node-1 -> {what} on {node}: {outcome}", role.name());
                anyhow::ensure!(outcome != "accepted", "{} could {what} a forged pair on {node}", role.name());
                refused.push(outcome);
            }
        }
    }
    assert!(refused.iter().any(|o| o == "BadRequest"), "the miner's own check answered at least once: {refused:?}");

    // Blocks keep coming, and none pays the forged pair.
    let (client, key) = h.register().await?;
    let task = h.task(&key, "hash").await?;
    let a = h.submit(&key, &client, task["contract_id"].as_str().unwrap_or_default(), &solve_task(&task)?).await?;
    assert_eq!(a.0, 200, "{}", a.1);
    wait_for("the honest reward in a block", Duration::from_secs(30), || async {
        let (code, b, _) = h.get(&format!("/get_balance?client_id={client}"), Some(&key)).await?;
        Ok((code == 200 && b["balance"].as_u64() > Some(0)).then_some(()))
    })
    .await?;
    let (code, chain, _) = h.get("/chain?from=0&limit=500", None).await?;
    assert_eq!(code, 200);
    assert!(!chain.to_string().contains("c-made-up"), "no block pays the forged pair");
    Ok(())
}

/// Hostile and careless requests of every kind the edge once mishandled
/// (out-of-range values, undecodable paths, wrong methods, odd headers,
/// long-polls past the old read timeout), 200 a second for 60 s, while
/// `/livez` through nginx is probed every 100 ms: not one probe fails, and
/// every hostile request gets a JSON 4xx, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_never_eject_an_instance_and_long_polls_pass_the_edge() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let (_, key) = h.register().await?;
    let unknown = "0".repeat(64);

    // A long-poll for the documented maximum answers 200 through nginx.
    let poll = {
        let (h, key, path) = (Http::new(&h.base), key.clone(), format!("/receipt/{unknown}?wait_ms={}", uwl_ingest::MAX_RECEIPT_WAIT_MS));
        tokio::spawn(async move {
            let mut h = h;
            h.client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
            let t = Instant::now();
            let a = h.get(&path, Some(&key)).await?;
            anyhow::Ok((a, t.elapsed()))
        })
    };

    let stop = tokio_util::sync::CancellationToken::new();
    let probes = {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            let mut every = tokio::time::interval(Duration::from_millis(100));
            while !stop.is_cancelled() {
                every.tick().await;
                match h.get("/livez", None).await {
                    Ok((200, _, _)) => ok += 1,
                    Ok((code, body, _)) => failed.push(format!("{code} {body}")),
                    Err(e) => failed.push(format!("{e:#}")),
                }
            }
            (ok, failed)
        })
    };
    let hostile: Vec<(reqwest::Method, String, Option<String>)> = vec![
        (reqwest::Method::GET, "/chain?from=9223372036854775808".into(), None),
        (reqwest::Method::GET, "/chain?from=0&limit=99999999999999999999".into(), None),
        (reqwest::Method::GET, "/receipt/%FF".into(), Some(format!("Bearer {key}"))),
        (reqwest::Method::GET, format!("/receipt/{unknown}?wait_ms=18446744073709551616"), Some(format!("Bearer {key}"))),
        (reqwest::Method::GET, "/submit_work".into(), None),
        (reqwest::Method::DELETE, "/chain".into(), None),
        (reqwest::Method::GET, "/get_task?kind=hash".into(), Some("Bearer    ak1.not-a-key".into())),
        (reqwest::Method::GET, "/get_task?kind=hash".into(), Some(format!("Basic {key}"))),
        (reqwest::Method::GET, "/get_balance?client_id=x".into(), Some("Bearer ak1.%%%.%%%".into())),
        (reqwest::Method::POST, "/submit_work".into(), Some(format!("Bearer {key}"))),
    ];
    let mut sent = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(Duration::from_millis(5));
    let t = Instant::now();
    let mut i = 0usize;
    while t.elapsed() < Duration::from_secs(60) {
        every.tick().await;
        let (method, path, auth) = hostile[i % hostile.len()].clone();
        i += 1;
        let h = h.clone();
        sent.spawn(async move {
            let mut r = h.client.request(method.clone(), format!("{}{path}", h.base));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            if method == reqwest::Method::POST {
                r = r.header("content-type", "application/json").body("{\"client_id\": 1}");
            }
            match r.send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    let json = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["error"].is_string());
                    (code, json, format!("{method} {path}: {text}"))
                }
                Err(e) => (0, false, format!("{method} {path}: {e:#}")),
            }
        });
    }
    stop.cancel();
    let (ok, failed) = probes.await?;
    let mut answers = Vec::new();
    while let Some(a) = sent.join_next().await {
        answers.push(a?);
    }
    let bad: Vec<_> = answers.iter().filter(|(code, json, _)| !(400..500).contains(code) || !json).collect();
    figure(format!("hostile requests through nginx in 60 s: {} sent, {} not a JSON 4xx; /livez probes every 100 ms: {ok} ok, {} failed", answers.len(), bad.len(), failed.len()));
    assert!(answers.len() >= 11_000, "about 200 hostile requests a second for 60 s: {}", answers.len());
    assert!(ok >= 500, "the probes ran: {ok}");
    assert!(failed.is_empty(), "/livez failed during hostile load: {failed:?}");
    assert!(bad.is_empty(), "every hostile request gets a JSON 4xx: {:?}", &bad[..bad.len().min(10)]);

    let ((code, body, _), took) = poll.await??;
    println!("a {} ms long-poll through nginx answered {code} after {took:?}", uwl_ingest::MAX_RECEIPT_WAIT_MS);
    assert_eq!(code, 200, "{body}");
    assert!(took >= Duration::from_millis(uwl_ingest::MAX_RECEIPT_WAIT_MS), "it waited the whole time: {took:?}");
    Ok(())
}

/// nginx's read timeout on the receipt route is derived from the setting
/// ingest takes its longest long-poll from (deploy/cluster.env's
/// MAX_RECEIPT_WAIT_MS, passed to both), and the deployment's value is the
/// default the API document states.
#[test]
fn the_receipt_routes_read_timeout_is_derived_from_the_longest_long_poll() -> anyhow::Result<()> {
    let conf = std::fs::read_to_string(repo().join("nginx/nginx.conf.template"))?;
    let route = conf.split("location /receipt/ {").nth(1).and_then(|r| r.split('}').next());
    let route = route.ok_or_else(|| anyhow::anyhow!("nginx.conf.template has no receipt location"))?;
    assert!(route.contains("proxy_read_timeout @RECEIPT_READ_TIMEOUT_S@s;"), "the receipt route's read timeout is rendered at start: {route}");
    let start = std::fs::read_to_string(repo().join("deploy/images/nginx-start"))?;
    assert!(
        start.contains("receipt_read_timeout_s=$(( (MAX_RECEIPT_WAIT_MS + 999) / 1000 + 5 ))") && start.contains("@RECEIPT_READ_TIMEOUT_S@|${receipt_read_timeout_s}"),
        "nginx-start derives the receipt route's read timeout from MAX_RECEIPT_WAIT_MS"
    );
    let compose = std::fs::read_to_string(repo().join("deploy/docker-compose.yml"))?;
    let templates = std::fs::read_to_string(repo().join("deploy/services.yml"))?;
    let wait = "MAX_RECEIPT_WAIT_MS: \"${MAX_RECEIPT_WAIT_MS:?";
    assert!(compose.matches(wait).count() == 1 && templates.matches(wait).count() == 1, "nginx and every ingest (their template) take MAX_RECEIPT_WAIT_MS");
    let site = std::fs::read_to_string(repo().join("deploy/site.yml"))?;
    let ingest = "extends: { file: services.yml, service: ingest-template }";
    assert!(compose.matches(ingest).count() == 2 && site.contains(ingest), "every ingest takes the template's settings");
    let deployed: u64 = uwl_tests::faults::cluster_value("MAX_RECEIPT_WAIT_MS")?.parse()?;
    assert_eq!(deployed, uwl_ingest::MAX_RECEIPT_WAIT_MS, "the deployment's longest long-poll is the documented default");
    Ok(())
}

/// The schemathesis version the API is tested with (installed by the test
/// into `target/schemathesis` from the Python package index the machine is
/// configured with).
const SCHEMATHESIS: &str = "4.32.5";

/// The `st` command of a virtualenv holding schemathesis, made if missing.
fn schemathesis() -> anyhow::Result<PathBuf> {
    let venv = repo().join("target/schemathesis");
    let st = venv.join("bin/st");
    let version = Command::new(&st).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if version.as_deref().is_some_and(|v| v.contains(SCHEMATHESIS)) {
        return Ok(st);
    }
    let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status()?.success();
    anyhow::ensure!(ok, "python3 -m venv failed (Debian: apt-get install python3-venv)");
    let ok = Command::new(venv.join("bin/pip")).args(["install", "-q", &format!("schemathesis=={SCHEMATHESIS}")]).status()?.success();
    anyhow::ensure!(ok, "pip could not install schemathesis {SCHEMATHESIS}");
    Ok(st)
}

/// Property-based API testing through nginx: schemathesis generates
/// requests for every operation of the served OpenAPI document (valid and
/// invalid ones, and the get_task -> submit_work link) with a valid key,
/// and checks every answer: no server error, a documented status, a body
/// of the documented schema and content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_through_the_edge() -> anyhow::Result<()> {
    let _serial = serial();
    let st = schemathesis()?;
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let (code, creds, _) = h.post("/register", None, &serde_json::json!({})).await?;
    anyhow::ensure!(code == 200, "register: {code} {creds}");
    let key = creds["api_key"].as_str().unwrap_or_default().to_owned();
    let dir = tempfile::tempdir()?;
    let har = dir.path().join("st.har");
    let out = Command::new(&st)
        .args(["run", &format!("{}/openapi.json", h.base), "--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"])
        .args(["--max-examples", "25", "--seed", "20261130", "--workers", "1", "--request-timeout", "15", "--wait-for-schema", "30"])
        // inside the per-client allowance the cluster tests set (50/s)
        .args(["--rate-limit", "40/s", "--no-color", "--report", "har", "--report-har-path"])
        .arg(&har)
        .env("SCHEMATHESIS_HOOKS", "")
        // its cache (.schemathesis/) goes to the temporary directory, not the checkout
        .current_dir(dir.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "schemathesis found failures (above)");

    // Every operation was exercised, and every authenticated one got past
    // authentication at least once (the key worked).
    let har: serde_json::Value = serde_json::from_slice(&std::fs::read(&har)?)?;
    let doc = uwl_ingest::openapi::document()?;
    let mut seen: std::collections::BTreeMap<(String, String), Vec<u64>> = Default::default();
    for e in har["log"]["entries"].as_array().into_iter().flatten() {
        let method = e["request"]["method"].as_str().unwrap_or_default().to_lowercase();
        let url = e["request"]["url"].as_str().unwrap_or_default();
        let path = url.split_once("://").and_then(|(_, r)| r.split_once('/')).map(|(_, p)| format!("/{}", p.split('?').next().unwrap_or(""))).unwrap_or_default();
        let op = if path.starts_with("/receipt/") { "/receipt/{receipt_id}".to_owned() } else { path };
        seen.entry((method, op)).or_default().push(e["response"]["status"].as_u64().unwrap_or(0));
    }
    let (mut cases, mut operations) = (0, 0);
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let statuses = seen.get(&(method.clone(), path.clone())).cloned().unwrap_or_default();
            cases += statuses.len();
            operations += 1;
            assert!(!statuses.is_empty(), "{method} {path} was never requested");
            if op.get("security").is_some() {
                assert!(statuses.iter().any(|s| *s != 401), "{method} {path}: every answer was 401 ({} requests)", statuses.len());
            }
            figure(format!("schemathesis: {} {path}: {} requests, statuses {:?}", method.to_uppercase(), statuses.len(), statuses.iter().collect::<std::collections::BTreeSet<_>>()));
        }
    }
    // a 422 (a wrong result for a real contract) is reached only through
    // the get_task -> submit_work link: schemathesis followed it
    let submits = seen.get(&("post".to_owned(), "/submit_work".to_owned())).cloned().unwrap_or_default();
    assert!(submits.contains(&422), "submit_work was never sent a contract from get_task: {submits:?}");
    figure(format!("schemathesis: {operations} operations, {cases} requests to them, 0 failures"));
    Ok(())
}

/// A webhook receiver on the host (Alertmanager reaches it through the
/// container's host gateway): the JSON bodies it was sent.
struct Webhook {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    async fn start() -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
        let port = listener.local_addr()?.port();
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    // one request per connection: headers, then Content-Length bytes
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                        let len = head
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()))
                            .unwrap_or(0);
                        if body.len() < len {
                            continue;
                        }
                        if let Ok(v) = serde_json::from_str(body) {
                            kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(v);
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                });
            }
        });
        Ok(Self { port, bodies, _task: task })
    }

    fn received(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The monitoring of the compose cluster: Prometheus scrapes every service
/// (each `/metrics` passes `promtool check metrics`, and every series the
/// alert rules name is exported by some service); a miner stopped fires
/// ServiceDown, shown on Prometheus's alerts page (screenshot in
/// target/screenshots/) and delivered by Alertmanager to a webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_miner_fires_an_alert_that_reaches_the_webhook() -> anyhow::Result<()> {
    let _serial = serial();
    let hook = Webhook::start().await?;
    let cluster = Cluster::up_with(Some(format!("http://host.docker.internal:{}/alerts", hook.port)))?;
    cluster.ready().await?;
    let prom = format!("http://127.0.0.1:{}", cluster.prometheus_port);
    let http = reqwest::Client::new();
    let targets = wait_for("Prometheus scraping every service", Duration::from_secs(90), || async {
        let Ok(r) = http.get(format!("{prom}/api/v1/targets")).send().await else { return Ok(None) };
        let v: serde_json::Value = r.json().await?;
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let up: Vec<String> = active.iter().filter(|t| t["health"] == "up").filter_map(|t| t["labels"]["instance"].as_str().map(str::to_owned)).collect();
        Ok((active.len() == 9 && up.len() == 9).then_some(up))
    })
    .await?;
    println!("Prometheus scrapes {targets:?}");

    // every service's metrics pass promtool, and every series a rule names exists
    let mut exported = String::new();
    for t in &targets {
        let text = cluster.exec("prometheus", &["sh", "-c", &format!("curl -fsS http://{t}/metrics | tee /tmp/m.txt | promtool check metrics && cat /tmp/m.txt")])
            .map_err(|e| anyhow::anyhow!("promtool check metrics on {t}: {e:#}"))?;
        exported.push_str(&text);
    }
    let rules = std::fs::read_to_string(repo().join("deploy/monitoring/rules.yml"))?;
    let named: std::collections::BTreeSet<&str> =
        rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("uwl_")).collect();
    for name in &named {
        let base = name.trim_end_matches("_bucket").trim_end_matches("_count");
        assert!(exported.contains(&format!("# TYPE {base} ")), "the rules name {name}, which no service exports");
    }
    figure(format!("monitoring: {} targets scraped, promtool check metrics clean on each; {} series named by the rules, each exported", targets.len(), named.len()));

    cluster.compose(&["stop", "miner-2"])?;
    let t = Instant::now();
    let firing = wait_for("ServiceDown firing for miner-2", Duration::from_secs(120), || async {
        let v: serde_json::Value = http.get(format!("{prom}/api/v1/alerts")).send().await?.json().await?;
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        Ok(alerts.into_iter().find(|a| a["labels"]["alertname"] == "ServiceDown" && a["labels"]["instance"] == "miner-2:9100" && a["state"] == "firing"))
    })
    .await?;
    let fired_after = t.elapsed();
    println!("ServiceDown fired {fired_after:?} after miner-2 stopped: {firing}");

    let driver = uwl_tests::browser::chromedriver()?;
    let b = uwl_tests::browser::browser(&driver).await?;
    // Debian's build serves Prometheus's classic pages
    let page = wait_for("the alerts page showing ServiceDown firing", Duration::from_secs(30), || async {
        b.goto(&format!("{prom}/classic/alerts")).await?;
        let text = b.find(fantoccini::Locator::Css("body")).await?.text().await?;
        Ok((text.contains("ServiceDown (1 active)") && !text.contains("Firing (0)")).then_some(text))
    })
    .await?;
    println!("the alerts page:\n{page}");
    let shots = uwl_tests::browser::screenshots();
    std::fs::create_dir_all(&shots)?;
    std::fs::write(shots.join("alert-firing.png"), b.screenshot().await?)?;
    b.close().await?;

    let delivered = wait_for("the alert at the webhook", Duration::from_secs(90), || async {
        Ok(hook.received().into_iter().find(|body| {
            body["alerts"].as_array().into_iter().flatten().any(|a| a["labels"]["alertname"] == "ServiceDown" && a["labels"]["instance"] == "miner-2:9100" && a["status"] == "firing")
        }))
    })
    .await?;
    figure(format!(
        "monitoring: miner-2 stopped -> ServiceDown firing after {fired_after:.1?}, at the webhook after {:.1?} (receiver {}), screenshot target/screenshots/alert-firing.png",
        t.elapsed(),
        delivered["receiver"]
    ));
    cluster.compose(&["start", "miner-2"])?;
    Ok(())
}

impl Cluster {
    /// `uwl-admin args` in a one-off container of the project's image on
    /// the operators' network, as the admin user, with the genesis and
    /// `mounts` (`-v` specs; a name without `/` is this project's volume).
    fn admin(&self, mounts: &[(&str, &str)], args: &[&str]) -> anyhow::Result<(bool, String)> {
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", "--network", &format!("{}_ops", self.project), "-v", &format!("{}_config:/config:ro", self.project)]);
        for (from, to) in mounts {
            let from = if from.contains('/') { (*from).to_owned() } else { format!("{}_{from}", self.project) };
            cmd.args(["-v", &format!("{from}:{to}")]);
        }
        let out = cmd.args(["-e", "NATS_URL=nats://nats-3:4222", "-e", "NATS_PASSWORD=test-nats_admin_password", "uwl:dev", "uwl-admin"]).args(args).output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), text))
    }

    /// Like [`Self::admin`], failing unless it succeeds.
    fn admin_ok(&self, mounts: &[(&str, &str)], args: &[&str]) -> anyhow::Result<String> {
        let (ok, text) = self.admin(mounts, args)?;
        anyhow::ensure!(ok, "uwl-admin {args:?} failed:\n{text}");
        println!("uwl-admin {}:\n{text}", args.join(" "));
        Ok(text)
    }
}

/// `n` rewards acknowledged through the edge (answers other than 200 are
/// retried: a node may be restarting); their receipt ids.
async fn acknowledged(h: &Http, key: &str, client: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < n {
        anyhow::ensure!(Instant::now() < deadline, "only {} of {n} rewards acknowledged in 120 s", out.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(task) = h.task(key, "hash").await else { continue };
        let result = solve_task(&task)?;
        let Ok((code, body, _)) = h.submit(key, client, task["contract_id"].as_str().unwrap_or(""), &result).await else { continue };
        if code == 200 {
            let receipt = body["receipt_id"].as_str().unwrap_or_default().to_owned();
            anyhow::ensure!(receipt.len() == 64, "an acknowledgement without a receipt id: {body}");
            out.push(receipt);
        }
    }
    Ok(out)
}

/// The operators' tools on a running compose cluster: an online backup of
/// node-2; node-2 lost (its data and key volumes deleted: a miner on empty
/// volumes refuses to start), restored from the backup into fresh volumes,
/// and converging; node-1's chain rebuilt from its peer (resync); the
/// backup's chain verified offline; and every acknowledged reward, before
/// and after the backup, while node-2 was gone and after the resync, in a
/// block on both nodes (audit), with the cluster healthy (status).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_back_up_restore_resync_and_audit_a_running_cluster() -> anyhow::Result<()> {
    let _serial = serial();
    let cluster = Cluster::up()?;
    let h = cluster.ready().await?;
    let (client, key) = h.register().await?;
    let out = tempfile::tempdir()?;
    let out_dir = out.path().display().to_string();
    let mut receipts = acknowledged(&h, &key, &client, 15).await?;

    let text = cluster.admin_ok(&[], &["backup", "--node", "node-2", "--label", "t1"])?;
    assert!(text.contains("backup of node-2 in /data/backups/t1") && text.contains("the key is not in it"), "{text}");
    receipts.extend(acknowledged(&h, &key, &client, 10).await?);
    // the backup leaves the node's volume like any file (docker cp, a mount)
    let copied = Command::new("docker")
        .args(["run", "--rm", "-v", &format!("{}_node-2-data:/data:ro", cluster.project), "-v", &format!("{out_dir}:/out"), "uwl:dev", "cp", "-r", "/data/backups/t1", "/out/"])
        .status()?;
    anyhow::ensure!(copied.success(), "copying the backup out of node-2's volume");
    let text = cluster.admin_ok(&[(&format!("{out_dir}/t1"), "/backup")], &["verify", "--store", "/backup/chain.sqlite"])?;
    assert!(text.contains("store sound"), "{text}");

    // the operator's own copy of node-2's key (backed up once, offline;
    // `backup --with-key` would have put it in the backup)
    let key_copy = Command::new("docker")
        .args(["run", "--rm", "-v", &format!("{}_node-2-key:/key:ro", cluster.project), "-v", &format!("{out_dir}:/out"), "uwl:dev", "cp", "/key/node.key", "/out/t1/"])
        .status()?;
    anyhow::ensure!(key_copy.success(), "copying node-2's key");
    // node-2 lost: its containers and both its volumes gone (the finished
    // init container mounted every key volume)
    cluster.compose(&["stop", "sync-2", "miner-2"])?;
    cluster.compose(&["rm", "-f", "sync-2", "miner-2", "init"])?;
    for v in ["node-2-data", "node-2-key"] {
        let rm = Command::new("docker").args(["volume", "rm", &format!("{}_{v}", cluster.project)]).output()?;
        anyhow::ensure!(rm.status.success(), "docker volume rm {v}: {}", String::from_utf8_lossy(&rm.stderr));
    }
    receipts.extend(acknowledged(&h, &key, &client, 5).await?);
    // a miner started on the empty volumes has no key the genesis lists: it refuses to start
    let miner = Command::new("docker")
        .args(["run", "--rm", "--network", &format!("{}_site2", cluster.project), "-v", &format!("{}_config:/config:ro", cluster.project)])
        .args(["-v", &format!("{}_node-2-data:/data", cluster.project), "-v", &format!("{}_node-2-key:/key:ro", cluster.project)])
        .args(["-e", "NODE_ID=node-2", "-e", "NATS_URL=nats://nats-2:4222", "-e", "NATS_PASSWORD=test-nats_miner_node_2_password", "-e", "KEY_FILE=/key/node.key"])
        .args(["uwl:dev", "timeout", "20", "uwl-miner"])
        .output()?;
    let said = String::from_utf8_lossy(&miner.stderr).into_owned() + &String::from_utf8_lossy(&miner.stdout);
    assert!(!miner.status.success() && said.contains("node.key"), "a miner without its key refuses to start: {said}");

    let text = cluster.admin_ok(
        &[(&format!("{out_dir}/t1"), "/backup"), ("node-2-data", "/data"), ("node-2-key", "/key")],
        &["restore", "--from", "/backup", "--node", "node-2"],
    )?;
    assert!(text.contains("restored node-2"), "{text}");
    cluster.compose(&["up", "-d", "--no-deps", "sync-2", "miner-2"])?;
    receipts.extend(acknowledged(&h, &key, &client, 5).await?);

    // node-1's chain rebuilt from node-2
    cluster.compose(&["stop", "sync-1", "miner-1"])?;
    let text = cluster.admin_ok(&[("node-1-data", "/data")], &["resync", "--node", "node-1"])?;
    assert!(text.contains("the chain store moved to /data/resync-") && text.contains("pairs of its own blocks"), "{text}");
    cluster.compose(&["start", "sync-1", "miner-1"])?;
    receipts.extend(acknowledged(&h, &key, &client, 5).await?);

    // every acknowledged reward in a block on both nodes, the cluster healthy
    std::fs::write(out.path().join("receipts.txt"), receipts.join("\n"))?;
    let t = Instant::now();
    let audit = wait_for("every acknowledged reward in a block on both nodes", Duration::from_secs(120), || async {
        let (ok, text) = cluster.admin(&[(&out_dir, "/r")], &["audit", "--receipts", "/r/receipts.txt"])?;
        Ok(ok.then_some(text))
    })
    .await?;
    println!("{audit}");
    let status = wait_for("status: one chain, every service up", Duration::from_secs(60), || async {
        let (ok, text) = cluster.admin(&[], &["status"])?;
        Ok(ok.then_some(text))
    })
    .await?;
    println!("{status}");
    figure(format!(
        "operators' tools: backup of node-2, node-2 restored into fresh volumes, node-1 resynced; audit of {} acknowledged rewards: every one in a block on both nodes ({:.1?} after the last step)",
        receipts.len(),
        t.elapsed()
    ));
    Ok(())
}
