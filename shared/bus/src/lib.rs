//! `uwl-bus`: how the services talk.
//!
//! - [`subjects`]: every NATS subject of the system, in one place;
//!   [`permissions`]: who may use which, per (role, node), from which
//!   `nats/users.conf` is generated.
//! - [`proto`]: the messages sent on them; each request type names its
//!   subject and its reply type ([`Request`], [`Message`], [`Publication`]).
//! - [`Bus`]: a NATS connection with typed request/reply under an explicit
//!   timeout, [`BusError`] telling `NoResponders` from `TimedOut`, and a
//!   request id carried in the `X-Request-Id` header.
//! - [`serve`]: a subscription loop with bounded concurrency, a span per
//!   request carrying its id, and graceful shutdown.

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod bus;
mod error;
mod marks;
pub mod permissions;
pub mod proto;
mod request;
mod serve;
pub mod subjects;
mod watchdog;

pub use bus::{Bus, Login, RequestId, REQUEST_ID_HEADER};
pub use permissions::Role;
pub use error::{BusError, ErrorCode, RemoteError};
pub use marks::DownMarks;
pub use request::{Answer, Message, Publication, Request};
pub use serve::serve;
pub use watchdog::STALL_AFTER;
