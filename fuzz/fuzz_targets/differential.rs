//! `cargo fuzz run differential`: see `rootemu_fuzz_harness::differential`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rootemu_fuzz_harness::differential(data));
