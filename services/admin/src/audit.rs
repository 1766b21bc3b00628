//! `uwl-admin audit`: receipts an operator or a worker holds (a worker's
//! journal, or one receipt id per line) checked against the chain of every
//! validator while the cluster runs: each must be in a block on every node.
//! A receipt is paid at most once by construction (a chain holds each
//! identity once, and its receipt names the one result paid); one that is
//! not in a node's chain is reported with what that node's miner knows of
//! it (pending, superseded by another result, or nothing).

use crate::Connect;
use anyhow::Context;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use uwl_bus::proto::{MinerReceiptQuery, ReceiptQuery};
use uwl_bus::RequestId;
use uwl_ledger::ReceiptId;

#[derive(clap::Args, Debug, Clone)]
pub struct Audit {
    #[command(flatten)]
    pub connect: Connect,
    /// The receipts: a worker's journal (JSON lines with `receipt_id`) or
    /// one 64-hex receipt id per line.
    #[arg(long)]
    pub receipts: PathBuf,
}

/// Where one receipt stands on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    InBlock(u64),
    Pending,
    Superseded,
    Unknown,
    /// The node did not answer (its text).
    NoAnswer(String),
}

/// Every receipt on every node.
#[derive(Debug)]
pub struct AuditReport {
    pub receipts: Vec<ReceiptId>,
    pub by_node: BTreeMap<String, Vec<Standing>>,
}

impl AuditReport {
    /// Every receipt in a block on every node.
    pub fn all_paid(&self) -> bool {
        self.by_node.values().all(|v| v.iter().all(|s| matches!(s, Standing::InBlock(_))))
    }

    pub fn text(&self) -> String {
        let mut out = format!("{} receipts\n", self.receipts.len());
        for (node, standings) in &self.by_node {
            let paid = standings.iter().filter(|s| matches!(s, Standing::InBlock(_))).count();
            out.push_str(&format!("{node}: {paid} in a block\n"));
            for (r, s) in self.receipts.iter().zip(standings).filter(|(_, s)| !matches!(s, Standing::InBlock(_))) {
                out.push_str(&format!("  NOT PAID on {node}: {} ({s:?})\n", r.to_hex()));
            }
        }
        out.push_str(if self.all_paid() { "every receipt paid once on every node\n" } else { "audit: receipts NOT paid (above)\n" });
        out
    }
}

/// The receipt ids of `text`: JSON lines with `receipt_id`, or bare ids.
pub fn receipt_ids(text: &str) -> anyhow::Result<Vec<ReceiptId>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line = line.trim();
        let hex = if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("line {}: not JSON", n + 1))?;
            v["receipt_id"].as_str().map(str::to_owned).with_context(|| format!("line {}: no receipt_id", n + 1))?
        } else {
            line.to_owned()
        };
        out.push(ReceiptId::from_hex(&hex).map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub async fn audit(cfg: &Audit) -> anyhow::Result<AuditReport> {
    let text = std::fs::read_to_string(&cfg.receipts).with_context(|| format!("reading {}", cfg.receipts.display()))?;
    let receipts = receipt_ids(&text)?;
    let genesis = cfg.connect.genesis()?;
    let bus = cfg.connect.bus().await?;
    let (rid, timeout) = (RequestId::new(), cfg.connect.timeout);
    let mut by_node = BTreeMap::new();
    for v in &genesis.validators {
        let node = v.node_id.as_str();
        let standings = futures::stream::iter(receipts.iter().map(|r| {
            let (bus, rid) = (&bus, &rid);
            async move {
                match bus.ask(node, ReceiptQuery { receipt_id: *r }, timeout, rid).await {
                    Ok(reply) => match reply.landed {
                        Some((_, landed)) => Standing::InBlock(landed.block_index),
                        None => match bus.ask(node, MinerReceiptQuery { receipt_id: *r }, timeout, rid).await {
                            Ok(m) if m.pending.is_some() => Standing::Pending,
                            Ok(m) if m.superseded_by.is_some() => Standing::Superseded,
                            Ok(_) => Standing::Unknown,
                            Err(e) => Standing::NoAnswer(format!("miner: {e}")),
                        },
                    },
                    Err(e) => Standing::NoAnswer(format!("sync: {e}")),
                }
            }
        }))
        .buffered(32)
        .collect::<Vec<_>>()
        .await;
        by_node.insert(node.to_owned(), standings);
    }
    Ok(AuditReport { receipts, by_node })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_come_from_a_journal_or_bare_ids() {
        let a = "ab".repeat(32);
        let b = "cd".repeat(32);
        let text = format!("{{\"receipt_id\":\"{a}\",\"status\":\"in_block\"}}\n\n{b}\n{b}\n");
        let ids = receipt_ids(&text).expect("parses");
        assert_eq!(ids.iter().map(|r| r.to_hex()).collect::<Vec<_>>(), vec![a, b]);
        assert!(receipt_ids("not hex\n").is_err());
        assert!(receipt_ids("{\"status\":1}\n").is_err());
    }
}
