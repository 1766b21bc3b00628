//! `uwl-verifier`: stateless result verification for its node's ingest, in
//! the `verifiers` NATS queue group, so any number of instances share the
//! node's load. The requester
//! (ingest) has already checked the contract's signature; the verifier
//! checks the result's shape and the work itself off the async runtime.

use clap::Parser;
use prometheus::{HistogramOpts, HistogramVec};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::info;
use uwl_bus::proto::{VerifyBatch, VerifyReply, VerifyRequest};
use uwl_bus::{serve, subjects, Bus, RemoteError};
use uwl_telemetry::{CommonSettings, Health};

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

pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(settings.concurrency >= 1, "VERIFY_CONCURRENCY must be at least 1");
    let id = settings.common.node_id.clone();
    let bus = Bus::connect(&settings.common.nats_url, &format!("uwl-verifier/{id}")).await?;
    let registry = uwl_telemetry::registry(&id);
    let seconds = HistogramVec::new(
        HistogramOpts::new("verifier_seconds", "Verification time by kind and verdict")
            .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1]),
        &["kind", "verdict"],
    )?;
    registry.register(Box::new(seconds.clone()))?;
    let health_bus = bus.clone();
    let health = Arc::new(move || {
        let connected = health_bus.is_connected();
        Health { ready: connected, detail: serde_json::json!({"service": "verifier", "nats": connected}) }
    });
    let admin = uwl_telemetry::serve_admin(settings.common.admin_addr, registry, health, shutdown.clone()).await?;
    info!(%admin, "verifier ready");
    serve(
        bus.clone(),
        subjects::verify(&id),
        Some(subjects::VERIFY_QUEUE),
        settings.concurrency,
        shutdown,
        move |batch: VerifyBatch, _| {
            let seconds = seconds.clone();
            async move {
                let replies = tokio::task::spawn_blocking(move || {
                    batch
                        .items
                        .iter()
                        .map(|req| {
                            let t = std::time::Instant::now();
                            let reply = verify(req);
                            let kind = format!("{:?}", req.contract.kind()).to_lowercase();
                            let verdict = if reply.valid { "valid" } else { "invalid" };
                            seconds.with_label_values(&[&kind, verdict]).observe(t.elapsed().as_secs_f64());
                            reply
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(RemoteError::internal)?;
                Ok(replies)
            }
        },
    )
    .await?;
    bus.drain().await;
    info!("verifier stopped");
    Ok(())
}
