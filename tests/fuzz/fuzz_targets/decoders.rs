//! libFuzzer over one decoder of outside input, named by UWL_FUZZ_TARGET
//! (see `uwl_decoders::TARGETS`).
#![no_main]

use std::sync::LazyLock;

static TARGET: LazyLock<&'static uwl_decoders::Target> = LazyLock::new(|| {
    let name = std::env::var("UWL_FUZZ_TARGET").unwrap_or_default();
    match uwl_decoders::target(&name) {
        Some(t) => t,
        None => panic!("UWL_FUZZ_TARGET={name:?} names no target"),
    }
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = (TARGET.run)(data);
});
