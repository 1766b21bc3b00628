//! What every request of an instance shares: keys, the genesis, the bus
//! and its coalesced requests, the tip view, the metrics.

use crate::auth::Authenticator;
use crate::batch::Coalescer;
use crate::blocks::Confirmations;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::placement::TipView;
use crate::Settings;
use anyhow::Context;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use uwl_bus::proto::*;
use uwl_bus::{Bus, DownMarks, RemoteError, Request, RequestId};
use uwl_ledger::{Genesis, NodeKey};

/// Most items in one coalesced request.
const BATCH_MAX: usize = 512;

/// Shared by every request of this instance.
pub(crate) struct Ingest {
    pub(crate) settings: Settings,
    pub(crate) genesis: Genesis,
    /// The issuer key in use (the genesis lists it).
    pub(crate) issuer: NodeKey,
    pub(crate) auth: Authenticator,
    pub(crate) bus: Bus,
    /// Validators and followers whose tips count, sorted.
    pub(crate) nodes: Vec<String>,
    pub(crate) validator: bool,
    pub(crate) tips: TipView,
    /// Leaders whose miner timed out, skipped for a while.
    pub(crate) leaders_down: DownMarks,
    pub(crate) tip_changed: Notify,
    /// Submissions waiting for the block that carries their pair.
    pub(crate) confirmations: Confirmations,
    pub(crate) permits: Semaphore,
    pub(crate) metrics: Metrics,
    /// Submissions to each node's miner (the one authority on a pair's
    /// status), coalesced.
    pub(crate) submits: HashMap<String, Coalescer<SubmitRequest, Result<SubmitReply, RemoteError>>>,
    /// Verifications (any verifier of the node's queue group), coalesced.
    pub(crate) verify: Coalescer<VerifyRequest, VerifyReply>,
}

pub(crate) type Shared = Arc<Ingest>;

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("node", &self.me()).field("nodes", &self.nodes).field("validator", &self.validator).finish_non_exhaustive()
    }
}

impl Ingest {
    /// Builds the shared state: the coalescers of every node's services.
    pub(crate) fn new(settings: Settings, genesis: Genesis, issuer: NodeKey, bus: Bus, metrics: Metrics) -> anyhow::Result<Self> {
        let id = settings.common.node_id.clone();
        let mut nodes: Vec<String> = genesis.validators.iter().map(|v| v.node_id.clone()).collect();
        nodes.extend(settings.nodes.iter().cloned());
        nodes.sort();
        nodes.dedup();
        let validator = genesis.validator(&id).is_some();
        let forward = settings.forward_timeout;
        let mut all: Vec<&String> = nodes.iter().collect();
        if !nodes.contains(&id) {
            all.push(&id);
        }
        let submits = all.iter().map(|n| ((*n).clone(), batch_requests(&bus, n, forward, |items| SubmitBatch { items }))).collect();
        let verify = batch_requests(&bus, &id, settings.verify_timeout, |items| VerifyBatch { items });
        anyhow::ensure!(
            genesis.issuers.contains(&issuer.public_key()),
            "ISSUER_KEY_FILE holds a key the genesis does not list among its issuers ({:?}): issue only with a listed key",
            issuer.public_key()
        );
        settings.check_tasks(&genesis.params.tasks)?;
        let auth = Authenticator::new(
            genesis.issuers.clone(),
            settings.key_ttl.as_millis() as u64,
            NonZeroU32::new(settings.client_rate_per_s).context("CLIENT_RATE_PER_S")?,
            NonZeroU32::new(settings.client_burst).context("CLIENT_BURST")?,
        );
        Ok(Self {
            permits: Semaphore::new(settings.max_concurrent),
            settings,
            genesis,
            issuer,
            auth,
            bus,
            nodes,
            validator,
            tips: TipView::default(),
            leaders_down: DownMarks::default(),
            tip_changed: Notify::new(),
            confirmations: Confirmations::default(),
            metrics,
            submits,
            verify,
        })
    }

    pub(crate) fn me(&self) -> &str {
        &self.settings.common.node_id
    }

    /// Asks this node's sync or miner (under the read timeout); `what` names it in errors.
    pub(crate) async fn ask<Q: Request>(&self, what: &str, q: Q, rid: &RequestId) -> Result<Q::Reply, ApiError> {
        self.bus.ask(self.me(), q, self.settings.read_timeout, rid).await.map_err(|e| ApiError::unavailable(format!("{what}: {e}")))
    }
}

/// Sends each batch as one request `wrap(items)` to `node`, answered with
/// one value per item, in order.
fn batch_requests<K, V, Q>(bus: &Bus, node: &str, timeout: Duration, wrap: fn(Vec<K>) -> Q) -> Coalescer<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
    Q: Request<Reply = Vec<V>> + Send + 'static,
{
    let (bus, node) = (bus.clone(), node.to_owned());
    Coalescer::spawn(BATCH_MAX, move |items, rid| {
        let (bus, node) = (bus.clone(), node.clone());
        async move { bus.ask(&node, wrap(items), timeout, &rid).await }
    })
}
