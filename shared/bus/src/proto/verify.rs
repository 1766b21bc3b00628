//! Verification requests and the ingest instances' reports.

use crate::{message, subjects, Publication};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Published on [`subjects::INGEST_REPORTS`] by every ingest instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub instance: String,
    pub node_id: String,
    /// Forwards to the leader since the instance started, by result.
    pub forwards: BTreeMap<String, u64>,
}

impl Publication for IngestReport {
    fn subject(_node: &str) -> String {
        subjects::INGEST_REPORTS.to_owned()
    }
}

/// On [`subjects::verify`]: the verifications an ingest had in flight, in
/// one message, answered one [`VerifyReply`] per item, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyBatch {
    pub items: Vec<VerifyRequest>,
}

message!(VerifyBatch => Vec<VerifyReply>, subjects::verify);

/// One verification of a [`VerifyBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub contract: uwl_ledger::Contract,
    pub result_data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReply {
    pub valid: bool,
    /// Why the result is malformed, if it is (a 400 rather than a 422).
    pub shape_error: Option<String>,
}

/// The metrics service's cluster view (Prometheus text), on [`subjects::METRICS_CLUSTER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {}

message!(ClusterView => String, |_: &str| subjects::METRICS_CLUSTER.to_owned());
