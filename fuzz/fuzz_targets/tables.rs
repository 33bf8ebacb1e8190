//! `cargo fuzz run tables`: see `rootemu_fuzz_harness::tables`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rootemu_fuzz_harness::tables(data));
