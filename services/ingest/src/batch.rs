//! Coalescing of concurrent bus requests: the look-ups and forwards that
//! requests in flight need from one service at one moment travel as one
//! message (the way the miner's accept loop commits a group). One batch is
//! in flight per coalescer; what arrives meanwhile forms the next one, so
//! a lone request goes out at once and a crowd shares a round trip. A
//! batch carries the request id of its first caller.

use std::future::Future;
use tokio::sync::{mpsc, oneshot};
use uwl_bus::{BusError, RequestId};

type Waiter<K, V> = (K, RequestId, oneshot::Sender<Result<V, BusError>>);

/// Sends keys in batches through `call` and hands each caller its value.
#[derive(Debug)]
pub(crate) struct Coalescer<K, V> {
    tx: mpsc::Sender<Waiter<K, V>>,
}

impl<K: Send + 'static, V: Send + 'static> Coalescer<K, V> {
    /// `call` gets at most `max` keys and must answer one value per key, in order.
    pub(crate) fn spawn<F, Fut>(max: usize, call: F) -> Self
    where
        F: Fn(Vec<K>, RequestId) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<V>, BusError>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<Waiter<K, V>>(4 * max);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let rid = first.1.clone();
                let mut batch = vec![first];
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                let (keys, waiters): (Vec<K>, Vec<_>) = batch.into_iter().map(|(k, _, w)| (k, w)).unzip();
                let n = keys.len();
                let answers = call(keys, rid).await.and_then(|values| match values.len() {
                    len if len == n => Ok(values),
                    len => Err(BusError::Protocol(format!("{len} answers to a batch of {n}"))),
                });
                match answers {
                    Ok(values) => {
                        for (w, v) in waiters.into_iter().zip(values) {
                            // a caller that gave up (its request ended) needs no answer
                            w.send(Ok(v)).ok();
                        }
                    }
                    Err(e) => {
                        for w in waiters {
                            w.send(Err(e.clone())).ok();
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    pub(crate) async fn call(&self, key: K, rid: &RequestId) -> Result<V, BusError> {
        let (done, answer) = oneshot::channel();
        let closed = || BusError::Protocol("the batching task stopped".into());
        self.tx.send((key, rid.clone(), done)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_get_their_own_answers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let co = Arc::new(Coalescer::spawn(64, move |keys: Vec<u32>, _| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(keys.iter().map(|k| k * 10).collect())
            }
        }));
        let all = (0..200u32).map(|k| {
            let co = co.clone();
            tokio::spawn(async move { (k, co.call(k, &RequestId::new()).await) })
        });
        for r in futures::future::join_all(all).await {
            let (k, v) = r.expect("join");
            assert_eq!(v.expect("answer"), k * 10);
        }
        let n = calls.load(Ordering::SeqCst);
        assert!(n < 200, "200 concurrent calls took {n} batches");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_caller_and_a_short_answer_is_an_error() {
        let co = Coalescer::spawn(8, |keys: Vec<u32>, _| async move {
            match keys[0] {
                0 => Err(BusError::NoResponders("x".into())),
                _ => Ok(Vec::<u32>::new()),
            }
        });
        assert!(matches!(co.call(0, &RequestId::new()).await, Err(BusError::NoResponders(_))));
        assert!(matches!(co.call(1, &RequestId::new()).await, Err(BusError::Protocol(_))));
    }
}
