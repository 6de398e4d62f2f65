//! Load: a million pushes through a hundred workers. Every push is answered exactly once with
//! its own payload, none is lost or delivered twice, and memory stays flat once warm.
//!
//! Heavy: `scripts/test.sh` runs it in release with `--ignored`.
// Unix only: memory is measured in /proc (what it asserts: flat once warm).
#![cfg(unix)]

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rp::push::{PushResult, PushSpec, Target};
use rp::ErrorKind;

const PUSHES: usize = 1_000_000;
const WORKERS: usize = 100;
/// Pushes in flight at once.
const WINDOW: usize = 2_000;
const QUEUE: &str = "load";

#[test]
#[ignore = "heavy: run by scripts/test.sh in release with --ignored"]
fn a_million_pushes_through_a_hundred_workers_are_each_answered_once() {
    let dir = TempDir::new("load");
    let server = server_with(&dir, |_| {});
    // How many times a worker received each push (by push number).
    let received: Arc<Vec<AtomicU8>> = Arc::new((0..PUSHES).map(|_| AtomicU8::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (endpoint, received, stop, registered) =
                (server.endpoint().clone(), Arc::clone(&received), Arc::clone(&stop), Arc::clone(&registered));
            thread::spawn(move || {
                let w = worker(&endpoint, QUEUE);
                registered.fetch_add(1, Ordering::AcqRel);
                let mut answered = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let job = match w.recv(Some(Duration::from_millis(100))) {
                        Ok(job) => job,
                        Err(e) if e.kind() == ErrorKind::Timeout => continue,
                        Err(e) => panic!("worker recv failed: {e}"),
                    };
                    let n = u32::from_le_bytes(job.payload[..4].try_into().expect("a 4-byte push number")) as usize;
                    received[n].fetch_add(1, Ordering::AcqRel);
                    w.reply(job.correlation_id, &job.payload).expect("reply");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let start = Instant::now();
    while registered.load(Ordering::Acquire) < WORKERS || server.workers().len() < WORKERS {
        assert!(start.elapsed() < Duration::from_secs(30), "the workers did not all register");
        thread::sleep(Duration::from_millis(10));
    }

    let start = Instant::now();
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let mut answered = 0usize;
    let mut warm_rss = 0;
    let mut half_rss = 0;
    let mut peak_rss = 0;
    let mut settle = |in_flight: &mut VecDeque<(usize, rp::push::Ticket)>| {
        let (n, ticket): (usize, rp::push::Ticket) = in_flight.pop_front().expect("a push in flight");
        match ticket.wait(Some(Duration::from_secs(30))) {
            Ok(PushResult::Reply(payload)) => {
                assert_eq!(payload, (n as u32).to_le_bytes(), "push {n} got another push's reply")
            }
            other => panic!("push {n} was not answered: {other:?}"),
        }
        answered += 1;
    };
    for n in 0..PUSHES {
        if in_flight.len() == WINDOW {
            settle(&mut in_flight);
        }
        let spec = PushSpec { payload_protocol: 0x7001, payload: (n as u32).to_le_bytes().to_vec(), ..PushSpec::default() };
        in_flight.push_back((n, server.push(Target::TaskQueue(QUEUE.into()), spec).expect("push")));
        if n == PUSHES / 10 {
            warm_rss = rss_kib();
        }
        if n == PUSHES / 2 {
            half_rss = rss_kib();
        }
        if n % 50_000 == 0 {
            peak_rss = peak_rss.max(rss_kib());
        }
    }
    while !in_flight.is_empty() {
        settle(&mut in_flight);
    }
    let took = start.elapsed();
    let end_rss = rss_kib();
    peak_rss = peak_rss.max(end_rss);
    stop.store(true, Ordering::Release);
    let per_worker: Vec<u64> = workers.into_iter().map(|w| w.join().expect("worker thread")).collect();

    assert_eq!(answered, PUSHES);
    let lost = received.iter().filter(|r| r.load(Ordering::Acquire) == 0).count();
    let twice = received.iter().filter(|r| r.load(Ordering::Acquire) > 1).count();
    assert_eq!((lost, twice), (0, 0), "pushes never delivered, pushes delivered more than once");
    assert_eq!(per_worker.iter().sum::<u64>(), PUSHES as u64);
    let busiest = per_worker.iter().max().unwrap();
    let idlest = per_worker.iter().min().unwrap();
    // Memory flat: after the first 10 % the process (server, 100 workers, the test's own
    // bookkeeping) grows by less than 10 % + 4 MiB.
    assert!(
        end_rss <= warm_rss + warm_rss / 10 + 4096,
        "memory grew under load: {warm_rss} KiB after 10 %, {end_rss} KiB at the end"
    );
    println!(
        "{PUSHES} pushes through {WORKERS} workers in {took:?} ({:.0} pushes/s), each answered once; per worker \
         {idlest}..{busiest}; RSS {warm_rss} KiB after 10 %, {half_rss} KiB at 50 %, {end_rss} KiB at the end, peak {peak_rss} KiB",
        PUSHES as f64 / took.as_secs_f64()
    );
}
