//! The NATS connection, typed request/reply, and the serve loop.

use async_nats::client::RequestErrorKind;
use async_nats::HeaderMap;
use futures::StreamExt;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The header a request id travels in, across HTTP and NATS hops.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// Follows one submission across services (and shows in every span).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id a message carries, or a new one.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Self {
        headers
            .and_then(|h| h.get(REQUEST_ID_HEADER))
            .map(|v| Self(v.as_str().to_owned()))
            .filter(|r| !r.0.is_empty() && r.0.len() <= 128)
            .unwrap_or_default()
    }

    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, self.0.as_str());
        h
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An error a handler answered with; travels back to the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    pub code: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(code: &str, message: impl std::fmt::Display) -> Self {
        Self { code: code.to_owned(), message: message.to_string() }
    }
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::new("bad_request", message)
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new("internal", message)
    }
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Self::new("unavailable", message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// Nobody subscribes to the subject: the peer or service is down.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// A responder exists (or existed) but did not answer in time.
    #[error("request on {subject} timed out after {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    #[error("{0}")]
    Remote(RemoteError),
    #[error("bus: {0}")]
    Transport(String),
    #[error("undecodable message on {subject}: {error}")]
    Decode { subject: String, error: String },
}

impl BusError {
    /// A short label for metrics (`no_responders`, `timeout`, `remote`, `error`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoResponders(_) => "no_responders",
            Self::TimedOut { .. } => "timeout",
            Self::Remote(_) => "remote",
            Self::Transport(_) | Self::Decode { .. } => "error",
        }
    }
}

/// A service's connection to its site's NATS server.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    watchdog: Arc<Watchdog>,
}

/// A connection that delivered nothing for this long is stalled: dropped
/// and made again. A live server answers a probe in milliseconds, so
/// several probes (sent every 500 ms after 2 s of silence) go unanswered
/// before it is declared stalled; a server busy with a burst is not
/// mistaken for a dead one, and a reconnect still fits the 10 s a site is
/// given to come back after a heal.
pub const STALL_AFTER: Duration = Duration::from_secs(6);
/// Silence after which the watchdog sends a probe that the server echoes.
const PROBE_AFTER: Duration = Duration::from_secs(2);
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Watches what the connection receives (any byte: messages, replies,
/// PONGs, its own echoed probes). async-nats resets its ping timer on every
/// command the service sends, so a service that publishes more often than
/// every 2 s never pings, and a socket whose writes stall (the peer's
/// address gone, packets dropped) kept reading as "connected" for the
/// ~15 minutes the kernel holds it. Nothing heard for [`STALL_AFTER`]:
/// the connection is dropped and made again (subscriptions come back with
/// it) and health says so meanwhile.
#[derive(Debug)]
struct Watchdog {
    /// Milliseconds since `start` when the connection last delivered bytes.
    heard_ms: AtomicU64,
    /// The client's received-bytes count when `heard_ms` was last set.
    seen_bytes: AtomicU64,
    stats: Arc<async_nats::client::Statistics>,
    start: std::time::Instant,
    stalls: AtomicU64,
    _stop: tokio_util::sync::DropGuard,
}

impl Watchdog {
    fn since_heard(&self) -> Duration {
        let heard = Duration::from_millis(self.heard_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(heard)
    }

    fn heard_now(&self) {
        self.heard_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Heard within [`STALL_AFTER`], or bytes arrived since the watchdog last looked.
    fn live(&self) -> bool {
        self.since_heard() < STALL_AFTER || self.stats.in_bytes.load(Ordering::Relaxed) != self.seen_bytes.load(Ordering::Relaxed)
    }
}

/// The watchdog's loop: see [`Watchdog`].
async fn watch(client: async_nats::Client, dog: std::sync::Weak<Watchdog>, stop: CancellationToken) {
    let probe = crate::subjects::probe(&uuid::Uuid::new_v4().simple().to_string());
    // Our own probes come back on this subscription (NATS echoes a
    // client's publications to its own subscriptions); read and dropped,
    // their bytes are what counts.
    let mut probes = match client.subscribe(probe.clone()).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to the connection probe");
            None
        }
    };
    let stats = client.statistics();
    let (mut stalled, mut forced) = (false, None);
    let mut timer = tokio::time::interval(WATCH_EVERY);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            Some(_) = async { probes.as_mut()?.next().await } => continue,
            _ = timer.tick() => {}
        }
        let Some(dog) = dog.upgrade() else { return };
        let now = stats.in_bytes.load(Ordering::Relaxed);
        if now != dog.seen_bytes.swap(now, Ordering::Relaxed) {
            dog.heard_now();
            (stalled, forced) = (false, None);
            continue;
        }
        let quiet = dog.since_heard();
        if client.connection_state() != async_nats::connection::State::Connected {
            // The client is reconnecting by itself: the clock restarts when it is back.
            dog.heard_now();
            (stalled, forced) = (false, None);
            continue;
        }
        if quiet >= STALL_AFTER {
            // Health reads unhealthy from here until the new connection delivers.
            if !stalled {
                stalled = true;
                dog.stalls.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(quiet_ms = quiet.as_millis() as u64, "NATS connection delivered nothing: dropping and reconnecting it");
            }
            // Asked again every 2 s until it takes (a client whose write
            // buffer is full takes no command, and its own unanswered pings
            // then close the connection; a request can time out here), not
            // every tick: each queued request would reconnect once more.
            if forced.is_none_or(|at: std::time::Instant| at.elapsed() >= PROBE_AFTER) {
                forced = Some(std::time::Instant::now());
                let _ = tokio::time::timeout(WATCH_EVERY, client.force_reconnect()).await;
            }
        } else if quiet >= PROBE_AFTER {
            let _ = tokio::time::timeout(WATCH_EVERY, client.publish(probe.clone(), bytes::Bytes::new())).await;
        }
    }
}

impl Bus {
    /// Connects to `url` and only to it (retrying in the background if the
    /// server is not up yet). Credentials may ride in the URL:
    /// `nats://user:password@host:4222`.
    pub async fn connect(url: &str, name: &str) -> Result<Self, BusError> {
        let addr: async_nats::ServerAddr = url.parse().map_err(|e| BusError::Transport(format!("NATS_URL {url:?}: {e}")))?;
        let mut options = async_nats::ConnectOptions::new();
        if let (Some(user), Some(pass)) = (addr.username(), addr.password()) {
            options = options.user_and_password(user.to_owned(), pass.to_owned());
        }
        let client = options
            .name(name)
            // A client that sends nothing pings every second; one that
            // sends commands never does (each resets the timer) unless its
            // write buffer is full: then three unanswered pings (~3 s) drop
            // the connection, and the watchdog below covers the rest.
            .ping_interval(Duration::from_secs(1))
            .connection_timeout(Duration::from_secs(2))
            // At most 1 s between attempts (the client's default grows to
            // 4 s): a node is back within a second of its NATS server.
            .reconnect_delay_callback(|attempts| Duration::from_millis(250 * attempts.saturating_sub(1).min(4) as u64))
            .retry_on_initial_connect()
            // Only ever this site's server: the cluster advertises its other
            // servers' addresses, which a site cannot reach (each sits on its
            // own site's network); trying them cost seconds of 2 s connect
            // timeouts after the site's server restarted.
            .ignore_discovered_servers()
            .connect(url)
            .await
            .map_err(|e| BusError::Transport(e.to_string()))?;
        let stop = CancellationToken::new();
        let stats = client.statistics();
        let watchdog = Arc::new(Watchdog {
            heard_ms: AtomicU64::new(0),
            seen_bytes: AtomicU64::new(stats.in_bytes.load(Ordering::Relaxed)),
            stats,
            start: std::time::Instant::now(),
            stalls: AtomicU64::new(0),
            _stop: stop.clone().drop_guard(),
        });
        tokio::spawn(watch(client.clone(), Arc::downgrade(&watchdog), stop));
        Ok(Self { client, watchdog })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Connected, and the server was heard within [`STALL_AFTER`] (a
    /// stalled socket still reads "connected" to the client).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected && self.watchdog.live()
    }

    /// The most bytes one reply should carry: a quarter of the server's
    /// `max_payload` (JSON framing and the rest of a reply fit in the rest).
    pub fn reply_budget(&self) -> usize {
        (self.client.server_info().max_payload / 4).max(4 * 1024)
    }

    /// How often this connection was found stalled and made again.
    pub fn stalls(&self) -> u64 {
        self.watchdog.stalls.load(Ordering::Relaxed)
    }

    /// Sends `req` and decodes the reply, under `timeout`.
    pub async fn request<Q: Serialize, R: DeserializeOwned>(
        &self,
        subject: String,
        req: &Q,
        timeout: Duration,
        rid: &RequestId,
    ) -> Result<R, BusError> {
        let payload = serde_json::to_vec(req).map_err(|e| BusError::Transport(e.to_string()))?;
        let request = async_nats::Request::new().payload(payload.into()).headers(rid.headers()).timeout(Some(timeout));
        let msg = self.client.send_request(subject.clone(), request).await.map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => BusError::NoResponders(subject.clone()),
            RequestErrorKind::TimedOut => BusError::TimedOut { subject: subject.clone(), timeout },
            RequestErrorKind::Other => BusError::Transport(e.to_string()),
        })?;
        let reply: Result<R, RemoteError> = serde_json::from_slice(&msg.payload)
            .map_err(|e| BusError::Decode { subject: subject.clone(), error: e.to_string() })?;
        reply.map_err(BusError::Remote)
    }

    /// Fire-and-forget (NATS core, at most once).
    pub async fn publish<T: Serialize>(&self, subject: String, msg: &T) -> Result<(), BusError> {
        let payload = serde_json::to_vec(msg).map_err(|e| BusError::Transport(e.to_string()))?;
        self.client.publish(subject, payload.into()).await.map_err(|e| BusError::Transport(e.to_string()))
    }

    pub async fn subscribe(&self, subject: String) -> Result<async_nats::Subscriber, BusError> {
        self.client.subscribe(subject).await.map_err(|e| BusError::Transport(e.to_string()))
    }

    /// Flushes and closes: subscriptions stop, published messages go out.
    pub async fn drain(&self) {
        let _ = self.client.flush().await;
        let _ = self.client.drain().await;
    }
}

/// Serves `subject` (in queue group `queue`, if given) with `handler`, at
/// most `concurrency` requests at once, each in a span carrying its request
/// id. On `shutdown` it stops taking requests and finishes those in flight.
pub async fn serve<Q, R, F, Fut>(
    bus: Bus,
    subject: String,
    queue: Option<&'static str>,
    concurrency: usize,
    shutdown: CancellationToken,
    handler: F,
) -> Result<(), BusError>
where
    Q: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(Q, RequestId) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<R, RemoteError>> + Send + 'static,
{
    let client = bus.client.clone();
    let mut sub = match queue {
        Some(q) => client.queue_subscribe(subject.clone(), q.to_owned()).await,
        None => client.subscribe(subject.clone()).await,
    }
    .map_err(|e| BusError::Transport(e.to_string()))?;
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
                let result = match serde_json::from_slice::<Q>(&msg.payload) {
                    Ok(q) => handler(q, rid.clone()).await,
                    Err(e) => Err(RemoteError::bad_request(format!("undecodable request: {e}"))),
                };
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "request failed");
                }
                if let Some(reply) = msg.reply {
                    let body = serde_json::to_vec(&result).unwrap_or_default();
                    if let Err(e) = client.publish_with_headers(reply, rid.headers(), body.into()).await {
                        tracing::warn!(error = %e, "reply not sent");
                    }
                }
            }
            .instrument(span),
        );
    }
    let _ = sub.unsubscribe().await;
    while tasks.join_next().await.is_some() {}
    Ok(())
}
