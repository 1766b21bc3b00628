//! The NATS connection and typed request/reply and publications.

use crate::permissions::Role;
use crate::watchdog::Watchdog;
use crate::{BusError, Message, Publication, RemoteError, Request};
use secrecy::{ExposeSecret, SecretString};
use async_nats::client::RequestErrorKind;
use async_nats::HeaderMap;
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Duration;

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
        headers.and_then(|h| h.get(REQUEST_ID_HEADER)).and_then(|v| Self::parse(v.as_str())).unwrap_or_default()
    }

    /// An id a client sent (HTTP header or NATS header): non-empty, at most 128 bytes.
    pub fn parse(value: &str) -> Option<Self> {
        (!value.is_empty() && value.len() <= 128).then(|| Self(value.to_owned()))
    }

    pub(crate) fn headers(&self) -> HeaderMap {
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

/// Who a connection is on the bus: a role on a node (which names its
/// inbox prefix, see [`Role::inbox`]) and, where the server asks for them,
/// that (role, node)'s credentials. The password never prints.
#[derive(Clone, Debug)]
pub struct Login {
    pub role: Role,
    pub node: String,
    /// The password of the user [`Role::user`] of (role, node).
    pub password: Option<SecretString>,
}

impl Login {
    /// No credentials (a server without users: tests of the services).
    pub fn open(role: Role, node: &str) -> Self {
        Self { role, node: node.to_owned(), password: None }
    }

    /// With this (role, node)'s user and `password`.
    pub fn with_password(role: Role, node: &str, password: SecretString) -> Self {
        Self { role, node: node.to_owned(), password: Some(password) }
    }
}

/// A service's connection to its site's NATS server.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    watchdog: Arc<Watchdog>,
}

impl Bus {
    /// Connects to `url` and only to it (retrying in the background if the
    /// server is not up yet) as `login`. Credentials never ride in the URL
    /// (it shows in errors and logs).
    pub async fn connect(url: &str, login: &Login) -> Result<Self, BusError> {
        let addr: async_nats::ServerAddr = url.parse().map_err(|e| BusError::transport(format!("NATS_URL {url:?}"), e))?;
        if addr.username().is_some() || addr.password().is_some() {
            return Err(BusError::Protocol("NATS_URL must not carry credentials: give the password as NATS_PASSWORD (the user is <role>-<node>)".into()));
        }
        let mut options = async_nats::ConnectOptions::new();
        if let Some(password) = &login.password {
            options = options.user_and_password(login.role.user(&login.node), password.expose_secret().to_owned());
        }
        let client = options
            .name(format!("uwl-{}/{}", login.role.name(), login.node))
            // Replies (and the watchdog's probes) arrive under this
            // connection's own prefix, which only its (role, node) may read.
            .custom_inbox_prefix(login.role.inbox(&login.node))
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
            .map_err(|e| BusError::transport(format!("connecting to {url}"), e))?;
        let watchdog = Watchdog::spawn(&client);
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
        self.watchdog.stalls()
    }

    /// Sends `req` to `node`'s handler of its message and decodes its reply, under `timeout`.
    pub async fn ask<Q: Request>(&self, node: &str, req: Q, timeout: Duration, rid: &RequestId) -> Result<Q::Reply, BusError> {
        let subject = Q::Message::subject(node);
        let payload = serde_json::to_vec(&req.into()).map_err(|e| BusError::codec(&subject, e))?;
        let request = async_nats::Request::new().payload(payload.into()).headers(rid.headers()).timeout(Some(timeout));
        let msg = self.client.send_request(subject.clone(), request).await.map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => BusError::NoResponders(subject.clone()),
            RequestErrorKind::TimedOut => BusError::TimedOut { subject: subject.clone(), timeout },
            RequestErrorKind::Other => BusError::transport(format!("request on {subject}"), e),
        })?;
        let reply: Result<Q::Reply, RemoteError> = serde_json::from_slice(&msg.payload).map_err(|e| BusError::codec(&subject, e))?;
        reply.map_err(BusError::Remote)
    }

    /// Publishes `msg` on its subject for `node` (NATS core, at most once).
    pub async fn publish<P: Publication>(&self, node: &str, msg: &P) -> Result<(), BusError> {
        let subject = P::subject(node);
        let payload = serde_json::to_vec(msg).map_err(|e| BusError::codec(&subject, e))?;
        self.client.publish(subject.clone(), payload.into()).await.map_err(|e| BusError::transport(format!("publishing on {subject}"), e))
    }

    /// The publications `P` for `node`, decoded; one that does not decode is
    /// logged and skipped (a peer of another version, not a reason to stop).
    pub async fn subscribe<P: Publication>(&self, node: &str) -> Result<impl Stream<Item = P> + Send + Unpin + 'static, BusError> {
        let subject = P::subject(node);
        let sub = self.client.subscribe(subject.clone()).await.map_err(|e| BusError::transport(format!("subscribing to {subject}"), e))?;
        Ok(sub.filter_map(move |m| {
            let decoded = serde_json::from_slice::<P>(&m.payload)
                .map_err(|e| tracing::warn!(subject = %m.subject, error = %e, "undecodable publication skipped"))
                .ok()
                .filter(|p| match p.sender() {
                    Some(from) if P::subject(from) != m.subject.as_str() => {
                        tracing::warn!(subject = %m.subject, from, "a publication speaking for another node skipped");
                        false
                    }
                    _ => true,
                });
            std::future::ready(decoded)
        }))
    }

    /// Flushes and closes: subscriptions stop, published messages go out.
    pub async fn drain(&self) {
        if let Err(e) = self.client.flush().await {
            tracing::debug!(error = %e, "flushing at shutdown");
        }
        if let Err(e) = self.client.drain().await {
            tracing::debug!(error = %e, "draining at shutdown");
        }
    }
}

