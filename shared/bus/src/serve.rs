//! The serving side: a subscription loop with bounded concurrency.

use crate::bus::{Bus, RequestId};
use crate::{BusError, Message, RemoteError};
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Serves message `M` on its subject for `node` (in queue group `queue`,
/// if given) with `handler`, at most `concurrency` requests at once, each
/// in a span carrying its request id. On `shutdown` it stops taking
/// requests and finishes those in flight.
pub fn serve<M, F, Fut>(
    bus: Bus,
    node: &str,
    queue: Option<&'static str>,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: F,
) -> impl Future<Output = Result<(), BusError>> + Send + 'static
where
    M: Message,
    F: Fn(M, RequestId) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<M::Answer, RemoteError>> + Send + 'static,
{
    serve_on(bus, M::subject(node), queue, concurrency, shutdown, handler)
}

async fn serve_on<M, F, Fut>(
    bus: Bus,
    subject: String,
    queue: Option<&'static str>,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: F,
) -> Result<(), BusError>
where
    M: Message,
    F: Fn(M, RequestId) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<M::Answer, RemoteError>> + Send + 'static,
{
    let client = bus.client().clone();
    let mut sub = match queue {
        Some(q) => client.queue_subscribe(subject.clone(), q.to_owned()).await,
        None => client.subscribe(subject.clone()).await,
    }
    .map_err(|e| BusError::transport(format!("subscribing to {subject}"), e))?;
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = sub.next() => match m { Some(m) => m, None => break },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        while tasks.try_join_next().is_some() {}
        let rid = RequestId::from_headers(msg.headers.as_ref());
        let span = tracing::info_span!("rpc", subject = %subject, request_id = %rid);
        let (handler, client) = (handler.clone(), client.clone());
        tasks.spawn(
            async move {
                let _permit = permit;
                let result = match serde_json::from_slice::<M>(&msg.payload) {
                    Ok(q) => handler(q, rid.clone()).await,
                    Err(e) => Err(RemoteError::bad_request(format!("undecodable request: {e}"))),
                };
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "request failed");
                }
                let Some(reply) = msg.reply else { return };
                let body = serde_json::to_vec(&result).or_else(|e| {
                    tracing::error!(error = %e, "reply does not serialize: answering an internal error");
                    serde_json::to_vec(&Err::<(), _>(RemoteError::internal(format!("reply does not serialize: {e}"))))
                });
                match body {
                    Ok(body) => {
                        if let Err(e) = client.publish_with_headers(reply, rid.headers(), body.into()).await {
                            tracing::warn!(error = %e, "reply not sent");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "no reply sent: even the error does not serialize"),
                }
            }
            .instrument(span),
        );
    }
    if let Err(e) = sub.unsubscribe().await {
        tracing::debug!(error = %e, "unsubscribing at shutdown");
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
