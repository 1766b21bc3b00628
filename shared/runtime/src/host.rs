//! What every service reports about its own footing, read at scrape time:
//! whether its NATS connection is up, and for a service that keeps a store,
//! the space left on the file system of its data directory (the disk-space
//! alert of `deploy/monitoring/rules.yml` reads these).

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::IntGauge;
use std::path::PathBuf;
use uwl_bus::Bus;

#[derive(Debug)]
pub(crate) struct HostMetrics {
    bus: Bus,
    data_dir: Option<PathBuf>,
    connected: IntGauge,
    available: IntGauge,
    size: IntGauge,
}

impl HostMetrics {
    pub(crate) fn new(bus: Bus, data_dir: Option<PathBuf>) -> prometheus::Result<Self> {
        Ok(Self {
            bus,
            data_dir,
            connected: IntGauge::new("nats_connected", "1 while this service's NATS connection is up")?,
            available: IntGauge::new("data_dir_available_bytes", "Bytes an unprivileged writer may still use on the data directory's file system")?,
            size: IntGauge::new("data_dir_size_bytes", "Size of the data directory's file system in bytes")?,
        })
    }

    fn gauges(&self) -> Vec<&IntGauge> {
        let mut g = vec![&self.connected];
        if self.data_dir.is_some() {
            g.extend([&self.available, &self.size]);
        }
        g
    }
}

impl Collector for HostMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.gauges().into_iter().flat_map(|g| g.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.connected.set(i64::from(self.bus.is_connected()));
        if let Some(dir) = &self.data_dir {
            match rustix::fs::statvfs(dir) {
                Ok(s) => {
                    let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(s.f_frsize)).unwrap_or(i64::MAX);
                    self.available.set(bytes(s.f_bavail));
                    self.size.set(bytes(s.f_blocks));
                }
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot read the data directory's file system"),
            }
        }
        self.gauges().into_iter().flat_map(|g| g.collect()).collect()
    }
}
