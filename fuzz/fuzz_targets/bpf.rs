//! `cargo fuzz run bpf`: see `rootemu_fuzz_harness::bpf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rootemu_fuzz_harness::bpf(data));
