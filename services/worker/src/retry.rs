//! The worker's retries: 429, 5xx, timeouts and connection errors are
//! tried again, after what `Retry-After` says, else with doubling backoff.

use anyhow::bail;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tracing::warn;

pub(crate) enum Outcome {
    Done(u16, Value),
    /// Worth another try, after `after` when the server said (Retry-After).
    Retry { why: String, after: Option<Duration> },
}

/// Up to `retries` more tries after the first: each after what the
/// server's `Retry-After` said when it said it, else after the backoff,
/// doubling from `base` (the default schedule: 2, 4 and 8 s). Counts the
/// retries in `retried`.
pub(crate) async fn retrying<F: std::future::Future<Output = Outcome>>(
    what: &str,
    retries: u32,
    base: Duration,
    retried: &AtomicU64,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<(u16, Value)> {
    let mut delay = base;
    for n in 0..=retries {
        match attempt().await {
            Outcome::Done(code, body) => return Ok((code, body)),
            Outcome::Retry { why, after } if n < retries => {
                let wait = after.unwrap_or(delay);
                warn!(what, attempt = n + 1, %why, "retrying in {wait:?}");
                retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                delay *= 2;
            }
            Outcome::Retry { why, .. } => bail!("{what} failed after {} tries: {why}", retries + 1),
        }
    }
    bail!("{what}: no attempt made")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use clap::Parser;
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// Runs `retrying` with the CLI's default settings against answers
    /// given in turn (the last one repeated); when each try was made, in
    /// ms after the first, and the result. The clock is tokio's paused
    /// one: the times are exactly the waits the code asked for.
    async fn tries(answers: Vec<fn() -> Outcome>) -> (Vec<u64>, anyhow::Result<(u16, Value)>, u64) {
        let s = Settings::try_parse_from(["uwl-worker", "--orchestrator-url", "http://edge"]).expect("defaults parse");
        let start = Instant::now();
        let at = Mutex::new(Vec::new());
        let retried = AtomicU64::new(0);
        let r = retrying("test", s.retries, s.backoff_base, &retried, || {
            let mut at = at.lock().expect("not poisoned");
            at.push(start.elapsed().as_millis() as u64);
            let answer = answers[(at.len() - 1).min(answers.len() - 1)]();
            async move { answer }
        })
        .await;
        (at.into_inner().expect("not poisoned"), r, retried.load(Ordering::Relaxed))
    }

    fn unavailable() -> Outcome {
        Outcome::Retry { why: "503".into(), after: None }
    }

    fn limited() -> Outcome {
        Outcome::Retry { why: "429".into(), after: Some(Duration::from_secs(5)) }
    }

    fn ok() -> Outcome {
        Outcome::Done(200, Value::Null)
    }

    #[tokio::test(start_paused = true)]
    async fn four_tries_at_most_after_2_4_and_8_seconds() {
        let (at, r, retried) = tries(vec![unavailable]).await;
        assert_eq!(at, [0, 2_000, 6_000, 14_000]);
        assert_eq!(retried, 3);
        assert!(r.is_err_and(|e| e.to_string().contains("failed after 4 tries")));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_ends_the_retries() {
        let (at, r, retried) = tries(vec![unavailable, unavailable, ok]).await;
        assert_eq!(at, [0, 2_000, 6_000]);
        assert_eq!(retried, 2);
        assert_eq!(r.ok().map(|(c, _)| c), Some(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_waits_what_retry_after_says_and_the_backoff_goes_on_doubling() {
        let (at, r, retried) = tries(vec![limited, unavailable, ok]).await;
        // 5 s as the server said, then the backoff's second step (4 s).
        assert_eq!(at, [0, 5_000, 9_000]);
        assert_eq!(retried, 2);
        assert!(r.is_ok());
    }
}
