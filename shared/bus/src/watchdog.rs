//! Notices a NATS connection that stopped delivering and makes it again.

use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
pub(crate) struct Watchdog {
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
    /// Watches `client` until the returned watchdog is dropped.
    pub(crate) fn spawn(client: &async_nats::Client) -> Arc<Self> {
        let stop = CancellationToken::new();
        let stats = client.statistics();
        let dog = Arc::new(Self {
            heard_ms: AtomicU64::new(0),
            seen_bytes: AtomicU64::new(stats.in_bytes.load(Ordering::Relaxed)),
            stats,
            start: std::time::Instant::now(),
            stalls: AtomicU64::new(0),
            _stop: stop.clone().drop_guard(),
        });
        tokio::spawn(watch(client.clone(), Arc::downgrade(&dog), stop));
        dog
    }

    /// How often the connection was found stalled and made again.
    pub(crate) fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    fn since_heard(&self) -> Duration {
        let heard = Duration::from_millis(self.heard_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(heard)
    }

    fn heard_now(&self) {
        self.heard_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Heard within [`STALL_AFTER`], or bytes arrived since the watchdog last looked.
    pub(crate) fn live(&self) -> bool {
        self.since_heard() < STALL_AFTER || self.stats.in_bytes.load(Ordering::Relaxed) != self.seen_bytes.load(Ordering::Relaxed)
    }
}

/// The watchdog's loop: see [`Watchdog`].
async fn watch(client: async_nats::Client, dog: std::sync::Weak<Watchdog>, stop: CancellationToken) {
    // An inbox of this connection: under its own prefix, which only it reads.
    let probe = client.new_inbox();
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

