#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let threads = rp_fuzz::thread_count();
    rp_fuzz::broker_loop(data);
    rp_fuzz::wait_for_threads(threads);
});
