//! `uwl-runtime`: what every service runs on, the same way.
//!
//! - [`Runtime`]: the service skeleton: settings checked, the NATS
//!   connection, the admin server (`/metrics`, `/health` with the bus's
//!   liveness), named and supervised background tasks, and a two-phase
//!   shutdown (tasks stop taking work and finish it, then the bus drains).
//! - Logging ([`init_tracing`]), [`CommonSettings`], [`shutdown_on_signal`].
//!
//! It also sets the allocator of every binary that links it: mimalloc
//! (glibc malloc was ~10% of the cluster's CPU under load; bench/README.md).

#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod admin;
mod host;
mod logging;
mod runtime;
mod settings;
mod signal;

pub use admin::{registry, render, serve_admin, Health, HealthFn};
pub use logging::init_tracing;
pub use runtime::Runtime;
pub use settings::{millis, secret, CommonSettings};
pub use signal::shutdown_on_signal;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
