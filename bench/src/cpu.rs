//! CPU time of the cluster's containers, from docker's own accounting (each
//! container's cgroup), read before and after a measurement: what serving
//! the load cost, per service, whoever ran where.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Nanoseconds of CPU by service.
pub(crate) type CpuNs = BTreeMap<String, u64>;

/// Where each service's CPU counter is read.
#[derive(Debug)]
pub(crate) struct Containers {
    files: Vec<(String, Counter)>,
}

#[derive(Debug)]
enum Counter {
    /// cgroup v1 `cpuacct.usage`, nanoseconds.
    V1(PathBuf),
    /// cgroup v2 `cpu.stat`, its `usage_usec` line.
    V2(PathBuf),
}

impl Counter {
    fn find(root: &Path, id: &str) -> Option<Self> {
        let v1 = ["cpuacct", "cpu,cpuacct"].iter().map(|c| root.join(c).join("docker").join(id).join("cpuacct.usage")).find(|p| p.exists());
        let v2 = [format!("system.slice/docker-{id}.scope"), format!("docker/{id}")].iter().map(|d| root.join(d).join("cpu.stat")).find(|p| p.exists());
        v1.map(Counter::V1).or(v2.map(Counter::V2))
    }

    /// None once the container is gone (killed during the run).
    fn read(&self) -> Option<u64> {
        match self {
            Counter::V1(p) => std::fs::read_to_string(p).ok()?.trim().parse().ok(),
            Counter::V2(p) => {
                let text = std::fs::read_to_string(p).ok()?;
                let usec: u64 = text.lines().find_map(|l| l.strip_prefix("usage_usec "))?.trim().parse().ok()?;
                Some(usec * 1_000)
            }
        }
    }
}

impl Containers {
    /// `spec`: `service=full-container-id,...` (`bench/run` lists the
    /// bench project's containers); `root`: the host's cgroup tree.
    pub(crate) fn new(root: &Path, spec: &str) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (service, id) = item.split_once('=').with_context(|| format!("{item:?} is not service=container-id"))?;
            let counter = Counter::find(root, id).with_context(|| format!("no CPU counter for {service} ({id}) under {}", root.display()))?;
            files.push((service.to_owned(), counter));
        }
        if files.is_empty() {
            bail!("no containers to account");
        }
        Ok(Self { files })
    }

    /// Every service's CPU so far; a container gone is left out.
    pub(crate) fn read(&self) -> CpuNs {
        self.files.iter().filter_map(|(s, c)| Some((s.clone(), c.read()?))).collect()
    }
}

/// CPU used between two readings, by service (services read both times).
pub(crate) fn used(before: &CpuNs, after: &CpuNs) -> CpuNs {
    after.iter().filter_map(|(s, a)| Some((s.clone(), a.saturating_sub(*before.get(s)?)))).collect()
}
