#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rp_fuzz::session_router(data));
