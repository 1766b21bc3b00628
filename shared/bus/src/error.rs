//! What can go wrong on the bus: a handler's answer ([`RemoteError`], with
//! an [`ErrorCode`] both sides read the same) and a request's failure
//! ([`BusError`], the cause kept as its source).

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Why a handler refused a request; callers match on it, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is wrong and would be refused again.
    BadRequest,
    /// The handler could not do it now (a dependency down, a store busy).
    Unavailable,
    /// The handler failed (a bug or a broken store).
    Internal,
    /// A code from a newer peer this build does not know.
    #[serde(other)]
    Unknown,
}

/// An error a handler answered with; travels back to the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct RemoteError {
    pub code: ErrorCode,
    pub message: String,
}

impl RemoteError {
    pub fn new(code: ErrorCode, message: impl std::fmt::Display) -> Self {
        Self { code, message: message.to_string() }
    }
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
}

/// A source error shared by clones of a [`BusError`].
pub(crate) type Source = Arc<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// Nobody subscribes to the subject: the peer or service is down.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// A responder exists (or existed) but did not answer in time.
    #[error("request on {subject} timed out after {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    /// The handler answered with an error.
    #[error("{0}")]
    Remote(RemoteError),
    /// The connection failed (connecting, sending, subscribing).
    #[error("bus: {context}")]
    Transport {
        context: String,
        #[source]
        source: Source,
    },
    /// An exchange broke its contract (a batch answered with the wrong
    /// number of replies, a batching task gone).
    #[error("bus: {0}")]
    Protocol(String),
    /// A message could not be encoded, or a reply decoded.
    #[error("message on {subject} does not (de)serialize")]
    Codec {
        subject: String,
        #[source]
        source: Arc<serde_json::Error>,
    },
}

impl BusError {
    pub(crate) fn transport(context: impl std::fmt::Display, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Transport { context: context.to_string(), source: Arc::new(source) }
    }

    pub(crate) fn codec(subject: &str, source: serde_json::Error) -> Self {
        Self::Codec { subject: subject.to_owned(), source: Arc::new(source) }
    }

    /// A short label for metrics (`no_responders`, `timeout`, `remote`, `error`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::NoResponders(_) => "no_responders",
            Self::TimedOut { .. } => "timeout",
            Self::Remote(_) => "remote",
            Self::Transport { .. } | Self::Protocol(_) | Self::Codec { .. } => "error",
        }
    }

    /// The handler's error code, when the handler answered with one.
    pub fn remote_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Remote(r) => Some(r.code),
            _ => None,
        }
    }
}
