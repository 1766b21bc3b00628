//! `uwl-bus`: how the services talk.
//!
//! - [`subjects`]: every NATS subject of the system, in one place.
//! - [`proto`]: the messages sent on them.
//! - [`Bus`]: a NATS connection with typed request/reply under an explicit
//!   timeout, [`BusError`] telling `NoResponders` from `TimedOut`, and a
//!   request id carried in the `X-Request-Id` header.
//! - [`serve`]: a subscription loop with bounded concurrency, a span per
//!   request carrying its id, and graceful shutdown.

mod bus;
pub mod proto;
pub mod subjects;

pub use bus::{serve, Bus, BusError, RemoteError, RequestId, REQUEST_ID_HEADER, STALL_AFTER};
