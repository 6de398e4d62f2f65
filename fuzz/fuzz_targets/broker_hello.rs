#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rp_fuzz::broker_hello(data));
