//! A TCP relay standing for the wide-area path between two sites: it
//! forwards a route connection's bytes both ways, each chunk `delay ±
//! jitter` late (order kept: a chunk is never due before the one read
//! before it), and can cut its path (every connection closed, new ones
//! refused) and heal it. Packet loss is not the relay's: iptables drops a
//! share of the packets to and from its port (`statistic` match), so TCP
//! retransmits as it would over a lossy link.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

#[derive(Default)]
struct Path {
    delay_ms: AtomicU64,
    jitter_ms: AtomicU64,
    cut: AtomicBool,
}

/// One direction-pair of the wide-area path: listens on `addr`, forwards to `to`.
pub struct Relay {
    pub addr: SocketAddr,
    path: Arc<Path>,
    /// Bumped on a cut: every open connection closes.
    generation: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay on `listen` (port 0: any) to `to`, with no delay.
    pub async fn start(listen: SocketAddr, to: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let path = Arc::new(Path::default());
        let (generation, _) = watch::channel(0u64);
        let (p, g) = (path.clone(), generation.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if p.cut.load(Ordering::SeqCst) {
                    continue; // dropped: the path is down
                }
                let (p, closed) = (p.clone(), g.subscribe());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(to).await else { return };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    relay(inbound, outbound, p, closed).await;
                });
            }
        });
        Ok(Self { addr, path, generation, accept })
    }

    /// Every chunk from now on `delay ± jitter` late.
    pub fn set_delay(&self, delay: Duration, jitter: Duration) {
        self.path.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
        self.path.jitter_ms.store(jitter.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones until [`Relay::heal`].
    pub fn cut(&self) {
        self.path.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn heal(&self) {
        self.path.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn relay(a: TcpStream, b: TcpStream, path: Arc<Path>, mut closed: watch::Receiver<u64>) {
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    tokio::select! {
        _ = one_way(ar, bw, path.clone()) => {}
        _ = one_way(br, aw, path) => {}
        _ = closed.changed() => {}
    }
}

/// Reads chunks from `from` and writes each to `to` once due.
async fn one_way(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, path: Arc<Path>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    let reader = async move {
        let mut last_due = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (delay, jitter) = (path.delay_ms.load(Ordering::SeqCst), path.jitter_ms.load(Ordering::SeqCst));
            let late = if jitter == 0 { delay } else { rand::thread_rng().gen_range(delay.saturating_sub(jitter)..=delay + jitter) };
            last_due = last_due.max(Instant::now() + Duration::from_millis(late));
            if tx.send((last_due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::join!(writer, reader);
}
