//! Typed contracts: a [`Message`] names the subject it travels on and what
//! its handler answers; a [`Request`] names the message it travels as and
//! the reply its caller decodes, so neither side can pick the wrong one.
//! A [`Publication`] is a message nobody answers.

use crate::RemoteError;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::value::RawValue;

/// What travels on one subject, and what its handler answers with.
pub trait Message: Serialize + DeserializeOwned + Send + 'static {
    /// A single request's reply, or [`Answer`] when the message is a
    /// service's query enum (each variant then names its own reply).
    type Answer: Serialize + Send + 'static;
    /// The subject this message travels on, for `node`'s services.
    fn subject(node: &str) -> String;
}

/// One request a caller can make.
pub trait Request: Into<Self::Message> + Sized {
    type Message: Message;
    type Reply: Serialize + DeserializeOwned + Send + 'static;

    /// The handler's answer to this request (for query enums): it can only
    /// be this request's reply type.
    fn answer(&self, reply: &Self::Reply) -> Result<Answer, RemoteError> {
        Answer::encode(reply)
    }
}

/// An encoded reply to one variant of a query enum, made by [`Request::answer`].
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Answer(Box<RawValue>);

impl Answer {
    fn encode<T: Serialize>(reply: &T) -> Result<Self, RemoteError> {
        serde_json::value::to_raw_value(reply).map(Self).map_err(|e| RemoteError::internal(format!("reply does not serialize: {e}")))
    }
}

/// A message published to whoever listens, never answered.
pub trait Publication: Serialize + DeserializeOwned + Send + 'static {
    fn subject(node: &str) -> String;
    /// The node a publication speaks for, when it names one: it is taken
    /// only from that node's subject (whose publishers the bus restricts).
    fn sender(&self) -> Option<&str> {
        None
    }
}

/// A message that is its own request: `message!(Type => Reply, subject_fn)`.
#[macro_export]
macro_rules! message {
    ($req:ty => $reply:ty, $subject:expr) => {
        impl $crate::Message for $req {
            type Answer = $reply;
            fn subject(node: &str) -> String {
                ($subject)(node)
            }
        }
        impl $crate::Request for $req {
            type Message = $req;
            type Reply = $reply;
        }
    };
}

/// A query enum's variants as requests: `queries!(Enum { Variant(Type) => Reply, .. })`.
#[macro_export]
macro_rules! queries {
    ($enum:ident, $subject:expr, { $($variant:ident($req:ty) => $reply:ty,)+ }) => {
        impl $crate::Message for $enum {
            type Answer = $crate::Answer;
            fn subject(node: &str) -> String {
                ($subject)(node)
            }
        }
        $(
            impl From<$req> for $enum {
                fn from(q: $req) -> Self {
                    Self::$variant(q)
                }
            }
            impl $crate::Request for $req {
                type Message = $enum;
                type Reply = $reply;
            }
        )+
    };
}
