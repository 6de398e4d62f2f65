//! The C example `push_worker` (built by cmake; `RP_EXAMPLES_DIR` names its build directory)
//! joins a real liminal server on a `liminal+tcp://` endpoint and answers a request routed by
//! liminal-sdk's caller with the payload upper-cased.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::*;
use serde_json::json;

#[test]
fn c_push_worker_answers_through_the_liminal_server() {
    let Some(dir) = std::env::var_os("RP_EXAMPLES_DIR") else {
        // Written past the test harness's capture, so the skip shows in every run.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"c_example: SKIPPED: RP_EXAMPLES_DIR is not set (the cmake build directory holding push_worker)\n",
        );
        return;
    };
    let program = std::path::Path::new(&dir).join("push_worker");
    assert!(program.exists(), "{} is missing: build the C examples first", program.display());

    let mut server = Server::start();
    let mut child = Command::new(&program)
        .args([server.endpoint().as_str(), "c-liminal-worker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("push_worker starts");
    let pid = child.id();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let first = lines.recv_timeout(WAIT).expect("push_worker reports its registration");
        assert!(first.contains("registered"), "push_worker said {first:?}");
        // The sdk caller sends the JSON string "hello, liminal"; upper-cased it is still JSON.
        let answer = ask(server.addr(), "uppercase", json!("hello, liminal")).expect("the C worker answers");
        assert_eq!(answer, json!("HELLO, LIMINAL"));
        let seen = lines.recv_timeout(WAIT).unwrap();
        assert!(seen.contains("hello, liminal"), "{seen}");
    }));
    // The server goes away: the example ends on CLOSED with status 0; stopped by its pid if not.
    server.shutdown();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill(); // SIGKILL to this child's pid only
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stderr = stderr.join().unwrap();
    if let Err(panic) = outcome {
        eprintln!("push_worker stderr:\n{stderr}");
        std::panic::resume_unwind(panic);
    }
    let status = status.unwrap_or_else(|| panic!("push_worker (pid {pid}) did not exit after the server shut down"));
    assert!(status.success(), "push_worker exited {status}; stderr:\n{stderr}");
}
