#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rp_fuzz::liminal_worker(data));
