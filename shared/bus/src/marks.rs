//! Peers found not answering, skipped for a while.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Nodes whose service timed out: skipped until their mark expires (a
/// timeout costs its whole bound; the next requests go elsewhere at once).
#[derive(Debug, Default)]
pub struct DownMarks {
    until: Mutex<HashMap<String, Instant>>,
}

impl DownMarks {
    pub fn mark_down(&self, node: &str, for_: Duration) {
        self.until.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_owned(), Instant::now() + for_);
    }

    pub fn is_down(&self, node: &str) -> bool {
        let until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        until.get(node).is_some_and(|t| Instant::now() < *t)
    }
}
