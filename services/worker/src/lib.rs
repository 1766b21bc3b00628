//! `uwl-worker`: the worker CLI (README: HTTP API, Tests and benchmarks).
//!
//! Loop: get a task, compute it, submit it. On 429, 5xx, timeouts or
//! connection errors it retries: after what `Retry-After` says when the
//! server says it, else with backoff 2, 4, 8 s (three retries);
//! `in_block: false` is success ("reward queued"). Every accepted receipt
//! goes to a journal (JSON lines) and is followed until it is in a block;
//! a receipt that reads `unknown` is resubmitted with the same body. A
//! progress bar shows in block / queued / failed on a terminal; plain logs
//! otherwise.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod credentials;
mod retry;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use credentials::Credentials;
use retry::{retrying, Outcome};
use secrecy::SecretString;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use uwl_api::{KeyIssued, Receipt, ReceiptStatus, SubmitAnswer, SubmitWork, Task};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "uwl-worker", about = "Earns rewards by computing tasks")]
pub struct Settings {
    /// Base URL of the network (nginx), https:// for the public edge.
    #[arg(long, env = "ORCHESTRATOR_URL")]
    pub orchestrator_url: String,
    /// A PEM certificate to trust besides the usual roots (the edge's
    /// self-signed one: `deploy/cluster tls-cert`).
    #[arg(long, env = "CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Credentials; when absent the worker registers and keeps them in CREDENTIALS_FILE.
    #[arg(long, env = "CLIENT_ID")]
    pub client_id: Option<String>,
    /// Never printed (hidden from --help and Debug output).
    #[arg(long, env = "API_KEY", hide_env_values = true, value_parser = uwl_runtime::secret)]
    pub api_key: Option<SecretString>,
    #[arg(long, env = "CREDENTIALS_FILE", default_value = "worker-credentials.json")]
    pub credentials_file: PathBuf,
    /// Journal of receipts (JSON lines).
    #[arg(long, env = "JOURNAL_FILE", default_value = "worker-journal.jsonl")]
    pub journal_file: PathBuf,
    /// hash, matmul, or mixed.
    #[arg(long, env = "KIND", default_value = "hash")]
    pub kind: String,
    /// Tasks to do (0: until stopped).
    #[arg(long, env = "COUNT", default_value_t = 0)]
    pub count: u64,
    /// First retry delay; doubles (2, 4, 8 s by default).
    #[arg(long = "backoff-base-ms", env = "BACKOFF_BASE_MS", default_value = "2000", value_parser = uwl_runtime::millis)]
    pub backoff_base: Duration,
    #[arg(long, env = "RETRIES", default_value_t = 3)]
    pub retries: u32,
    #[arg(long = "request-timeout-ms", env = "REQUEST_TIMEOUT_MS", default_value = "15000", value_parser = uwl_runtime::millis)]
    pub request_timeout: Duration,
    /// Pause between tasks.
    #[arg(long = "pause-ms", env = "PAUSE_MS", default_value = "0", value_parser = uwl_runtime::millis)]
    pub pause: Duration,
}

/// One journal line: a submission and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub receipt_id: String,
    pub body: SubmitWork,
    pub status: String,
    pub block_index: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub in_block: u64,
    pub queued: u64,
    pub failed: u64,
    pub resubmitted: u64,
    /// Requests sent again (after a 429, 5xx, timeout or connection error).
    pub retried: u64,
}

struct Worker {
    s: Settings,
    http: reqwest::Client,
    creds: Credentials,
    journal: Vec<Entry>,
    tally: Tally,
    /// Retries of `call` (it takes `&self`), folded into the tally.
    retried: std::sync::atomic::AtomicU64,
    bar: Option<ProgressBar>,
}

impl Worker {
    async fn send(&self, req: reqwest::RequestBuilder) -> Outcome {
        match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // an answer that is not JSON (a proxy's page) keeps its status and reads as null
                let body = resp.json::<Value>().await.unwrap_or_else(|e| {
                    tracing::debug!(error = %e, code, "answer is not JSON");
                    Value::Null
                });
                if code == 429 || code >= 500 {
                    Outcome::Retry { why: format!("{code} {body}"), after }
                } else {
                    Outcome::Done(code, body)
                }
            }
            Err(e) => Outcome::Retry { why: e.to_string(), after: None },
        }
    }

    /// `make` builds the request; retried on 429, 5xx, timeouts and
    /// connection errors ([`retrying`]).
    async fn call(&self, what: &str, make: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        retrying(what, self.s.retries, self.s.backoff_base, &self.retried, || self.send(make())).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.s.orchestrator_url.trim_end_matches('/'))
    }

    fn show(&self) {
        let t = self.tally;
        let msg = format!("in block {} | queued {} | failed {} | resubmitted {}", t.in_block, t.queued, t.failed, t.resubmitted);
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => info!("{msg}"),
        }
    }

    fn save_journal(&self) -> anyhow::Result<()> {
        let tmp = self.s.journal_file.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        for e in &self.journal {
            writeln!(f, "{}", serde_json::to_string(e)?)?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, &self.s.journal_file)?;
        Ok(())
    }

    async fn submit(&self, body: &SubmitWork) -> anyhow::Result<(u16, Value)> {
        self.call("submit_work", || self.http.post(self.url("/submit_work")).bearer_auth(self.creds.api_key()).json(body)).await
    }

    /// Renews the API key once it is past three quarters of its life
    /// (POST /renew_key) and keeps the new one in the credentials file.
    async fn renew_if_due(&mut self) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        if !self.creds.due_for_renewal(now) {
            return Ok(());
        }
        let (code, body) = self.call("renew_key", || self.http.post(self.url("/renew_key")).bearer_auth(self.creds.api_key())).await?;
        if code != 200 {
            bail!("renew_key: {code} {body}");
        }
        self.creds = decode::<KeyIssued>("renew_key", body)?.into();
        self.creds.save(&self.s.credentials_file)?;
        info!(client_id = self.creds.client_id, expires_at = self.creds.expires_at, "API key renewed");
        Ok(())
    }

    async fn one_task(&mut self, kind: &str) -> anyhow::Result<()> {
        if let Err(e) = self.renew_if_due().await {
            warn!(error = %format!("{e:#}"), "could not renew the API key");
        }
        let (code, task) = self.call("get_task", || self.http.get(self.url(&format!("/get_task?kind={kind}"))).bearer_auth(self.creds.api_key())).await?;
        if code != 200 {
            bail!("get_task: {code} {task}");
        }
        let task: Task = decode("get_task", task)?;
        let params = task.params.clone();
        let result_data = tokio::task::spawn_blocking(move || uwl_tasks::solve(&params)).await?;
        let body = SubmitWork { client_id: self.creds.client_id.clone(), contract_id: task.contract_id, result_data };
        let (code, answer) = self.submit(&body).await?;
        match code {
            200 => {
                let answer: SubmitAnswer = decode("submit_work", answer)?;
                let receipt_id = answer.receipt_id.to_string();
                let block_index = answer.block_index;
                if answer.in_block {
                    self.tally.in_block += 1;
                    info!(receipt_id, block = block_index, "reward in block");
                } else {
                    self.tally.queued += 1;
                    info!(receipt_id, "reward queued");
                }
                self.journal.push(Entry { receipt_id, body, status: if answer.in_block { "in_block" } else { "queued" }.into(), block_index });
            }
            _ => {
                self.tally.failed += 1;
                warn!(code, %answer, "submission refused");
            }
        }
        self.save_journal()?;
        self.show();
        Ok(())
    }

    /// Follows every receipt not yet in a block; resubmits unknown ones.
    async fn follow(&mut self) -> anyhow::Result<()> {
        for i in 0..self.journal.len() {
            if self.journal[i].status == "in_block" {
                continue;
            }
            let rid = self.journal[i].receipt_id.clone();
            let (code, r) = self.call("receipt", || self.http.get(self.url(&format!("/receipt/{rid}"))).bearer_auth(self.creds.api_key())).await?;
            if code != 200 {
                continue;
            }
            let r: Receipt = decode("receipt", r)?;
            match r.status {
                ReceiptStatus::InBlock => {
                    self.journal[i].status = "in_block".into();
                    self.journal[i].block_index = r.block_index;
                    self.tally.in_block += 1;
                    self.tally.queued = self.tally.queued.saturating_sub(1);
                }
                ReceiptStatus::Unknown => {
                    let body = self.journal[i].body.clone();
                    let (code, answer) = self.submit(&body).await?;
                    self.tally.resubmitted += 1;
                    info!(receipt_id = rid, code, status = %answer["status"], "receipt unknown: resubmitted");
                }
                other => self.journal[i].status = other.as_str().to_owned(),
            }
        }
        self.save_journal()?;
        self.show();
        Ok(())
    }
}

/// A 200 answer's body as the API type it must be.
fn decode<T: DeserializeOwned>(what: &str, body: Value) -> anyhow::Result<T> {
    serde_json::from_value(body).map_err(|e| anyhow::anyhow!("{what}: the answer is not what the API documents: {e}"))
}

/// Works until `count` tasks are done (or forever) and every receipt is in
/// a block, or until `shutdown`. Returns the tally.
pub async fn run(s: Settings, shutdown: CancellationToken) -> anyhow::Result<Tally> {
    let mut http = reqwest::Client::builder().timeout(s.request_timeout);
    if let Some(ca) = &s.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("CA_FILE {}", ca.display()))?;
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).with_context(|| format!("CA_FILE {}", ca.display()))?);
    }
    let http = http.build()?;
    let creds = credentials::load_or_register(&s, &http).await?;
    let journal = match std::fs::File::open(&s.journal_file) {
        Ok(f) => std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect(),
        Err(_) => Vec::new(),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(s.count);
        bar.set_style(ProgressStyle::with_template("{spinner} {pos} tasks {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut w = Worker { s: s.clone(), http, creds, journal, tally: Tally::default(), retried: Default::default(), bar };
    info!(client_id = w.creds.client_id, url = s.orchestrator_url, "worker started");
    let mut done = 0u64;
    while !shutdown.is_cancelled() && (s.count == 0 || done < s.count) {
        let kind = match s.kind.as_str() {
            "mixed" if done.is_multiple_of(2) => "matmul",
            "mixed" => "hash",
            k => k,
        };
        if let Err(e) = w.one_task(kind).await {
            w.tally.failed += 1;
            warn!(error = %format!("{e:#}"), "task failed");
        }
        done += 1;
        if let Some(bar) = &w.bar {
            bar.inc(1);
        }
        if done.is_multiple_of(10) {
            w.follow().await.ok();
        }
        if !s.pause.is_zero() {
            tokio::time::sleep(s.pause).await;
        }
    }
    // Follow the queued receipts until they are in a block (bounded).
    for _ in 0..60 {
        if shutdown.is_cancelled() || w.journal.iter().all(|e| e.status == "in_block") {
            break;
        }
        w.follow().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(bar) = &w.bar {
        bar.finish();
    }
    w.show();
    w.tally.retried = w.retried.load(std::sync::atomic::Ordering::Relaxed);
    Ok(w.tally)
}
