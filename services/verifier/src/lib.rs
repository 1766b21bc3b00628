//! `uwl-verifier`: stateless result verification for its node's ingest, in
//! the `verifiers` NATS queue group, so any number of instances share the
//! node's load. The requester
//! (ingest) has already checked the contract's signature; the verifier
//! checks the result's shape and the work itself off the async runtime.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use clap::Parser;
use prometheus::{HistogramOpts, HistogramVec};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use uwl_bus::proto::{VerifyBatch, VerifyReply, VerifyRequest};
use uwl_bus::{serve, subjects, RemoteError};
use uwl_runtime::{CommonSettings, Runtime};

#[derive(Parser, Debug, Clone)]
#[command(name = "uwl-verifier", about = "Checks work results against their tasks")]
pub struct Settings {
    #[command(flatten)]
    pub common: CommonSettings,
    /// Verifications run at once by this instance.
    #[arg(long, env = "VERIFY_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
}

/// Verifies one result (blocking: call off the async runtime).
pub fn verify(req: &VerifyRequest) -> VerifyReply {
    match uwl_tasks::parse_result(&req.contract, &req.result_data) {
        Err(e) => VerifyReply { valid: false, shape_error: Some(e.to_string()) },
        Ok(result) => VerifyReply { valid: uwl_tasks::verify(&req.contract, &result), shape_error: None },
    }
}

/// The verifier, built (bus connected, admin address bound), ready to run.
#[derive(Debug)]
pub struct App {
    rt: Runtime,
    settings: Settings,
}

pub async fn build(settings: Settings) -> anyhow::Result<App> {
    anyhow::ensure!(settings.concurrency >= 1, "VERIFY_CONCURRENCY must be at least 1");
    Ok(App { rt: Runtime::start(uwl_bus::Role::Verifier, &settings.common).await?, settings })
}

impl App {
    pub fn admin_addr(&self) -> SocketAddr {
        self.rt.admin_addr()
    }

    /// Verifies this node's batches until `shutdown`, finishing those in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { mut rt, settings } = self;
        let registry = uwl_runtime::registry(rt.node_id());
        let seconds = HistogramVec::new(
            HistogramOpts::new("verifier_seconds", "Verification time by kind and verdict")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1]),
            &["kind", "verdict"],
        )?;
        registry.register(Box::new(seconds.clone()))?;
        let (bus, node, stop) = (rt.bus().clone(), rt.node_id().to_owned(), rt.stopping());
        rt.spawn(
            "serve verifications",
            serve(bus, &node, Some(subjects::VERIFY_QUEUE), settings.concurrency, stop, move |batch: VerifyBatch, _| {
                let seconds = seconds.clone();
                async move { tokio::task::spawn_blocking(move || verify_batch(&batch, &seconds)).await.map_err(RemoteError::internal) }
            }),
        );
        rt.run(registry, || (true, serde_json::json!({})), shutdown).await
    }
}

fn verify_batch(batch: &VerifyBatch, seconds: &HistogramVec) -> Vec<VerifyReply> {
    batch
        .items
        .iter()
        .map(|req| {
            let t = std::time::Instant::now();
            let reply = verify(req);
            let kind = uwl_tasks::Kind::from(&req.contract.spec).as_str();
            let verdict = if reply.valid { "valid" } else { "invalid" };
            seconds.with_label_values(&[kind, verdict]).observe(t.elapsed().as_secs_f64());
            reply
        })
        .collect()
}

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    build(settings).await?.run(shutdown).await
}
