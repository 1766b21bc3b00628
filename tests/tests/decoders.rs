//! Every decoder of outside input (the targets of `uwl-decoders`), fed
//! arbitrary bytes and byte-level mutations of valid inputs by proptest on
//! the stable toolchain. None may panic; a refusal is an error value. The
//! same targets run under cargo-fuzz (`tests/fuzz/run`, nightly).
//!
//! `UWL_FUZZ_CASES` sets the executions per target (default 2,000 in the
//! test suite), `UWL_FUZZ_TARGET` picks one; the long run is
//! `UWL_FUZZ_CASES=5000000 cargo test -p uwl-tests --test decoders -- --nocapture --test-threads 1`
//! (figures in the README).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};

fn cases() -> u32 {
    std::env::var("UWL_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

/// Arbitrary bytes, a valid sample as it is, or a valid sample with a few
/// bytes replaced, inserted or removed (structure-aware enough to get past
/// the JSON parser; a signed token rarely survives a mutation).
fn input(samples: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let n = samples.len();
    let originals = samples.clone();
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8);
    let mutated = (0..n, edits).prop_map(move |(i, edits)| {
        let mut b = samples[i].clone();
        for (pos, byte, op) in edits {
            let at = if b.is_empty() { 0 } else { pos % b.len() };
            match op {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        b
    });
    let valid = (0..n).prop_map(move |i| originals[i].clone());
    prop_oneof![1 => proptest::collection::vec(any::<u8>(), 0..512), 1 => valid, 4 => mutated].boxed()
}

/// Runs `check` on `cases()` inputs (it says whether the input decoded);
/// prints the executions; fails (with the smallest input found) if any
/// panics, or if no input got past the decoder (the target would test
/// nothing behind it).
fn fuzz(name: &str, samples: Vec<Vec<u8>>, check: fn(&[u8]) -> bool) {
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let (executions, decoded) = (AtomicU64::new(0), AtomicU64::new(0));
    let result = runner.run(&input(samples), |bytes| {
        executions.fetch_add(1, Ordering::Relaxed);
        if check(&bytes) {
            decoded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (n, d) = (executions.load(Ordering::Relaxed), decoded.load(Ordering::Relaxed));
    println!("{name}: {n} executions ({d} decoded), {} crashes", u8::from(result.is_err()));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(d > 0, "{name}: no input decoded");
}

#[test]
fn every_decoder_survives_arbitrary_and_mutated_input() {
    let only = std::env::var("UWL_FUZZ_TARGET").ok();
    let targets: Vec<_> = uwl_decoders::TARGETS.iter().filter(|t| only.is_none() || only.as_deref() == Some(t.name)).collect();
    assert!(!targets.is_empty(), "no target called {only:?}");
    for t in targets {
        fuzz(t.name, (t.seeds)(), t.run);
    }
}
