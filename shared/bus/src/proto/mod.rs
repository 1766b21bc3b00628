//! Messages on the bus (JSON), by the service that answers them. Each
//! request type names its subject and reply type (see [`crate::Request`]).

mod miner;
mod sync;
mod verify;

pub use miner::*;
pub use sync::*;
pub use verify::*;

/// How many of `items`, from the first, fit in `budget` bytes of JSON; at
/// least one (a single item is bounded elsewhere: a block by its cap).
pub fn fitting<T: serde::Serialize>(items: &[T], budget: usize) -> Result<usize, serde_json::Error> {
    let mut bytes = 0;
    let mut n = 0;
    for item in items {
        bytes += serde_json::to_vec(item)?.len() + 1;
        if bytes > budget {
            break;
        }
        n += 1;
    }
    Ok(n.max(1).min(items.len()))
}
