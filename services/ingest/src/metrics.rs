//! Ingest's own metrics (explicit registry).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub seconds: HistogramVec,
    /// Forwards to the leader by result: ok, timeout, no_responders, error, fallback_local.
    pub forwards: IntCounterVec,
    /// Time of a submission's phases: checks (duplicate look-ups and the
    /// verification, at once), place (the miner's durable, replicated
    /// accept), block (the wait for the block).
    pub phases: HistogramVec,
}

impl Metrics {
    pub(crate) fn new(node_id: &str) -> prometheus::Result<Self> {
        let registry = uwl_runtime::registry(node_id);
        let m = Self {
            requests: IntCounterVec::new(Opts::new("ingest_requests_total", "HTTP requests by route and status"), &["route", "status"])?,
            seconds: HistogramVec::new(
                HistogramOpts::new("ingest_request_seconds", "HTTP request latency by route")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
                &["route"],
            )?,
            forwards: IntCounterVec::new(Opts::new("ingest_forwards_total", "Forwards to the leader by result"), &["result"])?,
            phases: HistogramVec::new(
                HistogramOpts::new("ingest_submit_phase_seconds", "Time of submit_work's phases: checks, place, block")
                    .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
                &["phase"],
            )?,
            registry,
        };
        m.registry.register(Box::new(m.requests.clone()))?;
        m.registry.register(Box::new(m.seconds.clone()))?;
        m.registry.register(Box::new(m.forwards.clone()))?;
        m.registry.register(Box::new(m.phases.clone()))?;
        Ok(m)
    }
}
