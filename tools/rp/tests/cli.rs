//! The `rp` binary against real peers and the golden vectors. Bad input must give a one-line
//! error and a non-zero exit code, never a panic.
// The push server and worker, the TLS and decode tests run on every platform (on Windows over
// named pipes); the probe, broker and liminal tests run on Unix only: their peers are Unix-socket
// listeners, a broker server (Unix sockets only) or a POSIX shell script.

#[path = "../../../tests/common/certs.rs"]
mod certs;

use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use certs::Ca;
#[cfg(unix)]
use rp::mux::{DaemonIdentity, LegacyHash, Mux, MuxEvent};

fn rp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rp"))
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rp-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A private local endpoint for a push server: a Unix socket in `dir`, or on Windows a named
/// pipe named after it.
fn local_endpoint(dir: &Path, name: &str) -> String {
    if cfg!(windows) {
        format!("{}-{name}", dir.file_name().unwrap().to_str().unwrap())
    } else {
        dir.join(name).to_str().unwrap().to_owned()
    }
}

/// A command that answers a push with the lines of its payload that contain an "o": `grep` on
/// Unix, `find` on Windows (which ends its lines with CRLF). Every line these tests push has one.
const FILTER_O: &[&str] = if cfg!(windows) { &["find", "o"] } else { &["grep", "o"] };

/// The reply of a `push-server --json` line, without the line end the command printed.
fn reply_text(line: &serde_json::Value) -> &str {
    line["reply"].as_str().expect("a reply").trim_end()
}

/// A failed run: non-zero `code`, exactly one stderr line starting with "rp: ", no panic.
fn assert_clean_failure(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one-line error expected: {stderr}");
    assert!(lines[0].starts_with("rp: "), "{stderr}");
    stderr
}

#[test]
fn decode_names_every_golden_vector() {
    let expect = [
        ("hello_request.hex", "Hello {"),
        ("hello_reply_negotiated.hex", "HelloReply"),
        ("hello_reply_refused_rate_limited.hex", "retry_after_ms: 1500"),
        ("probe_request.hex", "probe nonce 000102"),
        ("probe_response_legacy.hex", "probe answer"),
        ("handoff_offer.hex", "HandoffOffer"),
        ("handoff_ack_rejected.hex", "handoff token mismatch"),
        ("consumer_request_traceparent.hex", "traceparent       00-4bf92f"),
        ("consumer_request_deadline.hex", "deadline_unix_ms  1700000000123"),
    ];
    for (file, needle) in expect {
        let hex = std::fs::read_to_string(vectors().join(file)).unwrap();
        let out = rp().args(["decode", hex.trim()]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(needle), "{file}: {text}");
    }
    // Several frames on stdin as raw bytes, as JSON lines.
    let mut raw = Vec::new();
    for file in ["hello_request.hex", "hello_reply_negotiated.hex", "consumer_event.hex"] {
        let hex = std::fs::read_to_string(vectors().join(file)).unwrap();
        raw.extend((0..hex.trim().len()).step_by(2).map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap()));
    }
    let mut child = rp().args(["decode", "--json"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["kind"], "REQUEST");
    assert_eq!(lines[1]["kind"], "RESPONSE");
    assert_eq!(lines[2]["kind"], "EVENT");
    assert_eq!(lines[2]["payload_protocol"], 0x7001);
}

#[test]
fn decode_rejects_bad_bytes_in_one_line() {
    let err = assert_clean_failure(&rp().args(["decode", "01ffffffff"]).output().unwrap(), 1);
    assert!(err.contains("byte 0: frame body too large"), "{err}");
    let err = assert_clean_failure(&rp().args(["decode", "0xyz"]).output().unwrap(), 1);
    assert!(err.contains("not hex") || err.contains("odd number"), "{err}");
    let hex = std::fs::read_to_string(vectors().join("hello_request.hex")).unwrap();
    let truncated = &hex.trim()[..hex.trim().len() - 6];
    let err = assert_clean_failure(&rp().args(["decode", truncated]).output().unwrap(), 1);
    assert!(err.contains("incomplete frame"), "{err}");
    // A valid frame, then garbage: the error names the byte where the garbage starts.
    let err = assert_clean_failure(&rp().args(["decode", &format!("{}47", hex.trim())]).output().unwrap(), 1);
    assert!(err.contains("byte 69: unsupported framing version 0x47"), "{err}");
}

#[cfg(unix)]
/// Serves `count` identity probes on a Unix socket with the given identity.
fn serve_probes(listener: UnixListener, identity: DaemonIdentity, count: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mux = Mux::new(&identity, &[0x7001], None).unwrap();
        for _ in 0..count {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = conn.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                match mux.poll(&buf).unwrap() {
                    MuxEvent::NeedMoreBytes => continue,
                    MuxEvent::ProbeAnswered { reply, .. } => {
                        conn.write_all(&reply).unwrap();
                        break;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    })
}

#[cfg(unix)]
#[test]
fn probe_prints_and_verifies_who_answered() {
    let dir = temp_dir("probe");
    let sock = dir.join("d.sock");
    let path = sock.to_str().unwrap().to_owned();
    let truthful = DaemonIdentity::current_process("cli-ns", &path, Some(60), LegacyHash::Zeros).unwrap();
    let server = serve_probes(UnixListener::bind(&sock).unwrap(), truthful.clone(), 3);

    let out = rp().args(["probe", &path]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("pid:        {}", std::process::id())), "{text}");
    assert!(text.contains(&format!("endpoint:   cli-ns:{path}")), "{text}");
    assert!(text.contains("idle limit: 60 s"), "{text}");

    let out = rp().args(["probe", "--verify", "--json", &path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["pid"], std::process::id());

    // Probing a different path than the one the daemon reports fails verification (exit 5).
    let alias = dir.join("alias.sock");
    std::os::unix::fs::symlink(&sock, &alias).unwrap();
    let out = rp().args(["probe", "--verify", alias.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISMATCH:   reported endpoint"));
    server.join().unwrap();

    let err = assert_clean_failure(&rp().args(["probe", dir.join("none.sock").to_str().unwrap()]).output().unwrap(), 1);
    assert!(err.contains("No such file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn push_server_and_worker_answer_lines_with_a_command() {
    let dir = temp_dir("push");
    let ep = &local_endpoint(&dir, "p.sock");
    let worker = rp().args(["worker", "-q", ep, "--identity", "filter", "--"]).args(FILTER_O).spawn().unwrap();
    let mut server = rp()
        .args(["push-server", "-q", ep, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.stdin.take().unwrap().write_all(b"hello\nworld\n").unwrap();
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(replies.len(), 2);
    assert_eq!(reply_text(&replies[0]), "hello");
    assert_eq!(reply_text(&replies[1]), "world");
    let status = wait_with_timeout(worker, Duration::from_secs(10));
    assert_eq!(status, Some(0), "the worker ends cleanly when the server goes away");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reconnecting_worker_outlives_its_server_and_prints_each_transition() {
    let dir = temp_dir("reconnect");
    let ep = &local_endpoint(&dir, "p.sock");
    let worker = rp()
        .args(["worker", ep, "--identity", "filter", "--reconnect", "--reconnect-min-ms", "20"])
        .args(["--reconnect-max-ms", "500", "--reconnect-attempts", "10", "--"])
        .args(FILTER_O)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two servers in turn on the same path: the worker serves both.
    for word in ["hello", "world"] {
        let mut server = rp()
            .args(["push-server", "-q", ep, "--json", "--wait-ms", "10000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        server.stdin.take().unwrap().write_all(format!("{word}\n").as_bytes()).unwrap();
        let out = server.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reply: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(reply_text(&reply), word);
    }
    // No third server: the worker gives up after 10 attempts and ends cleanly (about 3 s of
    // backoff: time enough for a slow platform to start the second server).
    let (status, stderr) = wait_with_timeout_output(worker, Duration::from_secs(20));
    assert_eq!(status, Some(0), "{stderr}");
    for needle in ["connected", "connection lost", "reconnecting: attempt 1 in", "connected again", "gave up reconnecting after 10 attempts"] {
        assert!(stderr.contains(needle), "{needle:?} missing: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn push_server_stats_and_log() {
    let dir = temp_dir("stats");
    let ep = &local_endpoint(&dir, "p.sock");
    let worker = rp()
        .args(["worker", "-q", "--stats", ep, "--identity", "filter", "--"])
        .args(FILTER_O)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = rp()
        .args(["push-server", "-q", ep, "--json", "--stats", "--log", "info"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.stdin.take().unwrap().write_all(b"one\ntwo\nfour\n").unwrap();
    let out = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4, "three replies, then the statistics");
    let stats = &lines[3];
    assert_eq!(stats["stats"], "push-server");
    for (k, v) in [("pushes_sent", 3), ("pushes_answered", 3), ("registrations_accepted", 1), ("workers_registered", 1)] {
        assert_eq!(stats["values"][k], v, "{k} in {stats}");
    }
    assert!(stats["values"]["bytes_out"].as_u64().unwrap() > 0);
    assert!(
        stderr.lines().any(|l| l.starts_with("rp: [info] push-server: worker ") && l.contains("identity \"filter\"")),
        "--log info shows the registration: {stderr}"
    );
    let worker_out = worker.wait_with_output().unwrap();
    let worker_err = String::from_utf8_lossy(&worker_out.stderr);
    assert_eq!(worker_out.status.code(), Some(0), "{worker_err}");
    assert!(worker_err.contains("rp: worker statistics:") && worker_err.contains("  replies_sent 3"), "{worker_err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_worker_exits_3_with_the_reason() {
    let dir = temp_dir("refused");
    let ep = &local_endpoint(&dir, "p.sock");
    let server = rp::push::PushServer::bind(rp::push::ServerOptions::new(rp::transport::Endpoint::parse(ep).unwrap())).unwrap();
    let out = rp()
        .args(["worker", "-q", ep, "--service", "other-service", "--", "cat"])
        .output()
        .unwrap();
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("SERVICE_UNKNOWN") && err.contains("service is not registered"), "{err}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
/// One liminal frame: type, flags, stream id, payload length (big-endian), payload.
fn liminal_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[cfg(unix)]
/// A length-prefixed string of the liminal wire.
fn lstr(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

#[cfg(unix)]
fn read_liminal_frame(r: &mut impl Read) -> Vec<u8> {
    let mut f = vec![0u8; 10];
    r.read_exact(&mut f).expect("a frame header from the worker");
    let len = u32::from_be_bytes([f[6], f[7], f[8], f[9]]) as usize;
    f.resize(10 + len, 0);
    r.read_exact(&mut f[10..]).expect("a frame payload from the worker");
    f
}

#[cfg(unix)]
#[test]
fn worker_joins_a_liminal_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("liminal+tcp://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let connect = read_liminal_frame(&mut c);
        assert_eq!(connect, liminal_frame(0x01, 0, 0, &[0, 1, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0]), "Connect");
        c.write_all(&liminal_frame(0x02, 0, 0, &[0, 1, 0, 2, 0, 0, 0, 0])).unwrap();
        let mut reg = 0u32.to_be_bytes().to_vec(); // no namespaces
        reg.extend(lstr("upper.queue"));
        reg.push(0); // no node
        reg.extend(1u32.to_be_bytes());
        reg.extend(lstr("sh")); // the command is the activity type
        reg.extend(lstr("cli-liminal"));
        reg.extend(1u32.to_be_bytes());
        reg.extend(lstr("upper"));
        reg.extend(lstr(r#"{"type":"string"}"#));
        reg.extend(lstr(r#"{"type":"string"}"#));
        assert_eq!(read_liminal_frame(&mut c), liminal_frame(0x17, 0, 0, &reg), "WorkerRegister");
        c.write_all(&liminal_frame(0x18, 0, 0, &[0])).unwrap();
        let push = |id: u64, payload: &str| {
            let mut p = id.to_be_bytes().to_vec();
            p.extend(lstr(payload));
            liminal_frame(0x15, 0, 1, &p)
        };
        c.write_all(&push(1, "abc")).unwrap();
        let mut reply = 1u64.to_be_bytes().to_vec();
        reply.extend(lstr("ABC"));
        assert_eq!(read_liminal_frame(&mut c), liminal_frame(0x16, 0, 1, &reply), "PushReply");
        c.write_all(&push(2, "fail")).unwrap();
        let refusal = read_liminal_frame(&mut c);
        assert_eq!(&refusal[..2], &[0x16, 0x01], "a refusal record");
        let record: serde_json::Value = serde_json::from_slice(&refusal[22..]).unwrap();
        assert_eq!(record["code"], "internal");
        assert!(record["words"].as_str().unwrap().ends_with("cannot"), "{record}");
        c.write_all(&liminal_frame(0x04, 0, 0, &[])).unwrap(); // Disconnect
    });
    let script = r#"x=$(cat); if [ "$x" = fail ]; then echo cannot >&2; exit 3; fi; printf %s "$x" | tr a-z A-Z"#;
    let worker = rp()
        .args(["worker", &ep, "--identity", "cli-liminal", "--task-queue", "upper.queue"])
        .args(["--activity-descriptor", "upper", r#"{"type":"string"}"#, r#"{"type":"string"}"#])
        .args(["--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let served = server.join();
    let status = wait_with_timeout_output(worker, Duration::from_secs(10));
    served.expect("the fake liminal server saw the expected bytes");
    let (code, stderr) = status;
    assert_eq!(code, Some(0), "the worker ends cleanly on the Disconnect: {stderr}");
    assert!(stderr.contains("registered with the liminal server (version 1.2)"), "{stderr}");
}

#[test]
fn worker_refuses_options_a_liminal_endpoint_has_no_room_for() {
    for flags in [&["--service", "other-service"][..], &["--protocol", "0x7001"][..]] {
        let out = rp().args(["worker", "liminal+tcp://127.0.0.1:1"]).args(flags).args(["--", "cat"]).output().unwrap();
        let err = assert_clean_failure(&out, 2);
        assert!(err.contains(flags[0]) && err.contains("a liminal endpoint"), "{err}");
    }
    let out = rp()
        .args(["worker", "tcp://127.0.0.1:1", "--activity-descriptor", "a", "{}", "{}", "--", "cat"])
        .output()
        .unwrap();
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("liminal endpoints only"), "{err}");
}

/// Waits for a child whose stderr is piped: its exit code (None if killed at the limit) and
/// its stderr.
fn wait_with_timeout_output(mut child: std::process::Child, limit: Duration) -> (Option<i32>, String) {
    let mut stderr = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let code = wait_with_timeout(child, limit);
    (code, reader.join().unwrap())
}

fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> Option<i32> {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[cfg(unix)]
#[test]
fn broker_and_hello_negotiate_refuse_and_log() {
    let dir = temp_dir("broker");
    let sock = dir.join("b.sock");
    let config = dir.join("broker.conf");
    std::fs::write(&config, "# test broker\nservice demo /tmp/backend.sock 1.2.3\nmin demo 1.0.0\n").unwrap();
    let mut broker = rp()
        .args(["broker", sock.to_str().unwrap(), "--config", config.to_str().unwrap(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let ep = sock.to_str().unwrap();

    let out = rp().args(["hello", ep, "demo", "1.2.3", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["negotiated"], true);
    assert_eq!(v["backend_pipe"], "/tmp/backend.sock");
    assert_eq!(v["keepalive_interval_secs"], 1800);

    let out = rp().args(["hello", ep, "demo", "0.9.0"]).output().unwrap();
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("VERSION_BLOCKED") && err.contains("retry after 30000 ms"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("retry after:   30000 ms"));

    let err = assert_clean_failure(&rp().args(["hello", ep, "nope", "1.0.0"]).output().unwrap(), 3);
    assert!(err.contains("SERVICE_UNKNOWN"), "{err}");
    let err = assert_clean_failure(&rp().args(["hello", ep, "Bad_Name", "1.0.0"]).output().unwrap(), 1);
    assert!(err.contains("service_name"), "{err}");

    // The broker logged each connection, with the peer's kernel-reported pid.
    broker.kill().unwrap();
    let out = broker.wait_with_output().unwrap();
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["event"], "negotiated");
    assert_eq!(events[1]["event"], "refused");
    assert_eq!(events[1]["code"], 8);
    assert_eq!(events[2]["service"], "nope");
    assert!(events[0]["peer"]["pid"].as_u64().unwrap() > 0);

    let err = assert_clean_failure(&rp().args(["broker", dir.join("x.sock").to_str().unwrap()]).output().unwrap(), 2);
    assert!(err.contains("no services"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
/// Serves one connection: reads one frame, answers with the bytes of a golden vector.
fn answer_with_vector(listener: UnixListener, vector: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut reader = rp::wire::FrameReader::new(conn.try_clone().unwrap());
        let _request = reader.read_frame().unwrap().to_frame();
        let hex = std::fs::read_to_string(vectors().join(vector)).unwrap();
        let hex = hex.trim();
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        conn.write_all(&bytes).unwrap();
    })
}

#[cfg(unix)]
#[test]
fn hello_and_probe_read_the_reference_answers() {
    let dir = temp_dir("golden");
    // A broker answering with the reference's recorded replies (request id 1, as rp sends).
    let sock = dir.join("broker.sock");
    let server = answer_with_vector(UnixListener::bind(&sock).unwrap(), "hello_reply_negotiated.hex");
    let out = rp().args(["hello", sock.to_str().unwrap(), "rp-demo", "1.2.3"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("keepalive:     1800 s") && text.contains("connection id: 1"), "{text}");
    server.join().unwrap();
    std::fs::remove_file(&sock).unwrap();

    let server = answer_with_vector(UnixListener::bind(&sock).unwrap(), "hello_reply_refused_rate_limited.hex");
    let out = rp().args(["hello", "--json", sock.to_str().unwrap(), "rp-demo", "1.2.3"]).output().unwrap();
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("RATE_LIMITED") && err.contains("retry after 1500 ms") && err.contains("[scope=peer]"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["retry_after_ms"], 1500);
    assert_eq!(v["details"]["scope"], "peer");
    server.join().unwrap();

    // A daemon answering with the reference's recorded probe answer: with the recorded nonce
    // it is read field by field; with a fresh random nonce it is refused (a replay).
    let sock = dir.join("daemon.sock");
    let nonce: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    let server = answer_with_vector(UnixListener::bind(&sock).unwrap(), "probe_response_legacy.hex");
    let out = rp().args(["probe", "--json", "--nonce", &nonce, sock.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pid"], 4242);
    assert_eq!(v["exe_path"], "/opt/rp-demo/bin/rp-demo-backend");
    assert_eq!(v["endpoint"]["path"], "/tmp/rp-demo/backend.sock");
    assert_eq!(v["idle_timeout_secs"], 600);
    assert_eq!(v["legacy_exe_sha256"], "5a".repeat(32));
    server.join().unwrap();
    std::fs::remove_file(&sock).unwrap();
    let server = answer_with_vector(UnixListener::bind(&sock).unwrap(), "probe_response_legacy.hex");
    let err = assert_clean_failure(&rp().args(["probe", sock.to_str().unwrap()]).output().unwrap(), 1);
    assert!(err.contains("protocol violation") && err.contains("request id"), "{err}");
    server.join().unwrap();

    // A push server cannot listen where no socket can be made.
    let err = assert_clean_failure(&rp().args(["push-server", "/proc/version/push.sock"]).output().unwrap(), 1);
    assert!(err.contains("socket directory") || err.contains("Not a directory") || err.contains("bind"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
/// Starts `rp broker` with `args` and waits for its socket.
fn start_rp_broker(sock: &Path, args: &[&str]) -> std::process::Child {
    let child = rp()
        .arg("broker")
        .arg(sock)
        .args(args)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[cfg(unix)]
#[test]
fn hello_skips_to_a_cached_endpoint_only_for_its_own_version() {
    let dir = temp_dir("cached");
    let backend = dir.join("backend.sock");
    let _listener = UnixListener::bind(&backend).unwrap();
    let sock = dir.join("b.sock");
    let mut broker = start_rp_broker(&sock, &["--service", &format!("demo={}@1.2.3", backend.display())]);
    let (ep, cached) = (sock.to_str().unwrap(), backend.to_str().unwrap());

    // The cached endpoint answers: no Hello is sent.
    let out = rp().args(["hello", ep, "demo", "1.2.3", "--cached", cached, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["route"].as_str(), v["endpoint"].as_str()), (Some("hello-skip"), Some(cached)), "{v}");
    // Another own version: the cache is not used, the broker negotiates.
    let out = rp().args(["hello", ep, "demo", "1.2.3", "--cached", cached, "--own-version", "1.2.4"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("route:         negotiated"), "{text}");
    // A dead cached endpoint: Hello as usual.
    let dead = dir.join("dead.sock");
    let out = rp().args(["hello", ep, "demo", "1.2.3", "--cached", dead.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("route:         negotiated"));
    broker.kill().unwrap();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
/// A backend on `path` that takes each offer rp broker makes (it trusts its owner-only socket,
/// since rp broker cannot tell it the tokens in advance) and echoes frames on the adopted
/// connection.
fn spawn_trusting_handoff_backend(path: &Path) {
    use prost::Message;
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut first = vec![0u8; 512];
            let Ok((n, Some(fd))) = rp::handoff::recv_with_fd(&s, &mut first) else { continue };
            let Ok(rp::Decoded::Frame { frame, .. }) = rp::wire::decode_frame(&first[..n], 512) else { continue };
            let offer = rp::wire::proto::HandoffOffer::decode(frame.payload).unwrap();
            let store = rp::handoff::HandoffStore::default();
            store.insert(&rp::handoff::Token(offer.token.as_slice().try_into().unwrap())).unwrap();
            let (ack, outcome) = rp::handoff::answer_offer(&frame, &store).unwrap();
            s.write_all(&ack).unwrap();
            assert!(outcome.accepted);
            std::thread::spawn(move || {
                let conn = std::os::unix::net::UnixStream::from(fd);
                let mut reader = rp::wire::FrameReader::new(conn.try_clone().unwrap());
                let mut out = conn;
                while let Ok(f) = reader.read_frame() {
                    let reply = rp::FrameView { kind: rp::wire::proto::FrameKind::Response as i32, ..f }.to_bytes().unwrap();
                    if out.write_all(&reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[cfg(unix)]
#[test]
fn broker_hands_connections_off_to_a_backend() {
    let dir = temp_dir("handoff");
    let handoff = dir.join("handoff.sock");
    spawn_trusting_handoff_backend(&handoff);
    let sock = dir.join("b.sock");
    let service = format!("demo={}@1.2.3", dir.join("no-backend.sock").display());
    let mut broker = start_rp_broker(&sock, &["--service", &service, "--handoff", &format!("demo={}", handoff.display())]);

    let mut opts = rp::broker::BrokerOptions::new(rp::transport::Endpoint::Path(sock.clone()), "demo", "1.2.3", "1.2.3");
    opts.adopt_handoff = true;
    let connected = rp::broker::connect(&opts).expect("connect through rp broker");
    assert_eq!(connected.route, rp::broker::Route::HandedOff);
    let payload = b"handed off by rp broker";
    connected.conn.send(&rp::FrameView { payload_protocol: 0x7001, payload, request_id: 4, ..rp::FrameView::default() }).unwrap();
    let reply = connected.conn.recv(Some(Duration::from_secs(5))).unwrap();
    assert_eq!((reply.request_id, reply.payload.as_slice()), (4, &payload[..]));

    // `rp hello --handoff` sees the offer in the Negotiated.
    let out = rp().args(["hello", sock.to_str().unwrap(), "demo", "1.2.3", "--handoff", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["server_capabilities"].as_u64(), v["handoff_token_len"].as_u64()), (Some(1), Some(16)), "{v}");

    let err = assert_clean_failure(&rp().args(["broker", "x.sock", "--service", &service, "--handoff", "other=/tmp/h.sock"]).output().unwrap(), 2);
    assert!(err.contains("handoff for unknown service"), "{err}");
    broker.kill().unwrap();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
/// With `--json`, a failure prints one JSON object with the error on stdout, and keeps its
/// exit code and its one stderr line.
#[test]
fn json_failures_print_an_error_object() {
    let dir = temp_dir("json-fail");
    let missing = dir.join("nobody.sock");
    let missing = missing.to_str().unwrap();
    let error_object = |args: &[&str], code: i32| -> serde_json::Value {
        let out = rp().args(args).output().unwrap();
        if code == 2 {
            assert_eq!(out.status.code(), Some(2), "{args:?}"); // clap's own usage text on stderr
        } else {
            assert_clean_failure(&out, code);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{args:?}: one JSON line expected: {stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["ok"], false, "{args:?}: {v}");
        assert_eq!(v["exit_code"], code, "{args:?}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{args:?}: {v}");
        v
    };
    let v = error_object(&["probe", "--json", missing], 1);
    assert!(v["error"].as_str().unwrap().contains("nobody.sock"), "{v}");
    error_object(&["hello", missing, "demo", "1.2.3", "--json"], 1);
    error_object(&["decode", "--json", "zz"], 1);
    error_object(&["push-server", "--json", "/proc/version/push.sock"], 1);
    // A usage error: the exit code stays 2.
    error_object(&["hello", "--json", missing], 2);
    // A refusal: the one object carries the refusal and the error.
    let sock = dir.join("broker.sock");
    let server = answer_with_vector(UnixListener::bind(&sock).unwrap(), "hello_reply_refused_rate_limited.hex");
    let v = error_object(&["hello", "--json", sock.to_str().unwrap(), "rp-demo", "1.2.3"], 3);
    assert_eq!(v["retry_after_ms"], 1500);
    assert!(v["error"].as_str().unwrap().contains("RATE_LIMITED"), "{v}");
    server.join().unwrap();
    // Without --json, stdout stays empty.
    let out = rp().args(["probe", missing]).output().unwrap();
    assert_clean_failure(&out, 1);
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes a throwaway CA (`ca.pem`), a certificate for 127.0.0.1 (`server.pem`, `server.key`)
/// and a client certificate with CN=cli-worker (`client.pem`, `client.key`) into `dir`.
fn write_certificates(dir: &Path) {
    let ca = Ca::new("cli test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    ca.leaf("push server", &["127.0.0.1"]).write(dir, "server");
    ca.leaf("cli-worker", &["cli-worker.example"]).write(dir, "client");
}

#[test]
fn push_server_and_worker_over_mutual_tls() {
    let dir = temp_dir("tls");
    write_certificates(&dir);
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("tls://127.0.0.1:{port}");
    let mut server = rp()
        .args(["push-server", &ep, "--json", "--cert", &file("server.pem"), "--key", &file("server.key")])
        .args(["--client-ca", &file("ca.pem")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without a client certificate: one line saying why, exit 1.
    let out = rp()
        .args(["worker", "-q", &ep, "--ca", &file("ca.pem"), "--connect-timeout-ms", "5000", "--", "cat"])
        .output()
        .unwrap();
    let err = assert_clean_failure(&out, 1);
    assert!(err.contains("client certificate"), "{err}");
    // With one: registered, identity shown, lines answered.
    let worker = rp()
        .args(["worker", "-q", &ep, "--ca", &file("ca.pem"), "--cert", &file("client.pem"), "--key", &file("client.key")])
        .arg("--")
        .args(FILTER_O)
        .spawn()
        .unwrap();
    server.stdin.take().unwrap().write_all(b"over tls\n").unwrap();
    let out = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let reply: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(reply_text(&reply), "over tls");
    assert!(stderr.contains("certificate CN=cli-worker,O=librp tests"), "{stderr}");
    assert_eq!(wait_with_timeout(worker, Duration::from_secs(10)), Some(0));
    // A tls:// server without --cert, --ca on a plain endpoint: usage errors.
    let out = rp().args(["push-server", &ep]).stdin(Stdio::null()).output().unwrap();
    assert!(assert_clean_failure(&out, 2).contains("--cert"));
    let out = rp().args(["worker", "tcp://127.0.0.1:1", "--ca", &file("ca.pem"), "--", "cat"]).output().unwrap();
    assert!(assert_clean_failure(&out, 2).contains("tls://"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_remote_push_server_needs_required_client_certificates() {
    let dir = temp_dir("tls-remote");
    write_certificates(&dir);
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let cert = ["--cert", &file("server.pem"), "--key", &file("server.key")].map(str::to_owned);
    let out = rp().args(["push-server", "tls://0.0.0.0:0", "--allow-remote"]).args(&cert).stdin(Stdio::null()).output().unwrap();
    let err = assert_clean_failure(&out, 1);
    assert!(err.contains("client certificates"), "{err}");
    let out = rp()
        .args(["push-server", "-q", "tls://0.0.0.0:0", "--allow-remote", "--client-ca", &file("ca.pem"), "--workers", "0"])
        .args(&cert)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hello_over_tls_verifies_the_endpoint() {
    let dir = temp_dir("tls-hello");
    write_certificates(&dir);
    std::fs::write(dir.join("other_ca.pem"), Ca::new("other CA").pem()).unwrap();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("tls://127.0.0.1:{port}");
    // A push server answers a Hello (refusing it, naming its role): reached over TLS.
    let mut server = rp()
        .args(["push-server", &ep, "--cert", &file("server.pem"), "--key", &file("server.key")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let out = loop {
        let out = rp().args(["hello", &ep, "svc", "1.0.0", "--ca", &file("ca.pem")]).output().unwrap();
        if out.status.code() != Some(1) || started.elapsed() > Duration::from_secs(10) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50)); // the server is still starting
    };
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("librp.role=push-server"), "{err}");
    // A certificate from an unknown CA; TLS flags on a plain endpoint; a handoff over TLS.
    let out = rp().args(["hello", &ep, "svc", "1.0.0", "--ca", &file("other_ca.pem")]).output().unwrap();
    assert!(assert_clean_failure(&out, 1).contains("unknown CA"));
    let out = rp().args(["hello", "tcp://127.0.0.1:1", "svc", "1.0.0", "--ca", &file("ca.pem")]).output().unwrap();
    assert!(assert_clean_failure(&out, 2).contains("tls://"));
    let out = rp().args(["hello", &ep, "svc", "1.0.0", "--ca", &file("ca.pem"), "--handoff"]).output().unwrap();
    assert!(assert_clean_failure(&out, 2).contains("handed off"));
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
