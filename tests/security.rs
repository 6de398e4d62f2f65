//! Security properties, each a pass/fail test (threat model and protections: docs/SECURITY.md).
//!
//! Cross-uid tests run the peer as uid/gid 65534 (this test binary re-executed with
//! `Command::uid`), which needs root; without root they print why they are skipped.
//!
//! Over Unix sockets; on Windows over named pipes, but for the tests of socket files, modes,
//! groups and uids, which Windows pipes do not have (their owner-only DACL is checked by the
//! unit tests): those are Unix only.

mod common;

use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::os::unix::process::CommandExt;
#[cfg(unix)]
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use prost::Message;
use rp::control::ClientHello;
use rp::push::{PushServer, ServerOptions, WorkerOptions, PUSH_PROTOCOL_VERSION};
use rp::transport::Endpoint;
use rp::wire::proto::{hello_reply, ErrorCode, FrameKind};
use rp::wire::registry;
use rp::ErrorKind;

#[cfg(unix)]
const OTHER_UID: u32 = 65534;
#[cfg(unix)]
const ENV: &str = "RP_SECURITY_ENDPOINT";

#[cfg(unix)]
#[test]
fn a_socket_can_be_opened_to_one_group() {
    use rp::transport::SocketAccess;
    let group_access = SocketAccess { mode: 0o660, group: Some(OTHER_UID) };
    // Modes with bits for others, or without owner read-write, are refused before binding.
    let dir = TempDir::new("groupmodes");
    for mode in [0o666, 0o644, 0o400, 0o700, 0o1660] {
        let mut opts = ServerOptions::new(dir.endpoint());
        opts.socket_access = SocketAccess { mode, group: None };
        let err = PushServer::bind(opts).map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{mode:o}: {err}");
    }
    assert!(!dir.0.exists(), "nothing was created for a refused mode");
    if !is_root() {
        println!("SKIPPED: needs root to give the socket to group {OTHER_UID} and run a peer as uid {OTHER_UID}");
        return;
    }
    let mut opts = ServerOptions::new(dir.endpoint());
    opts.socket_access = group_access;
    opts.allow_other_uids = true;
    let server = PushServer::bind(opts).unwrap();
    let sock = std::fs::metadata(dir.sock()).unwrap();
    assert_eq!((sock.mode() & 0o777, sock.gid()), (0o660, OTHER_UID));
    let d = std::fs::metadata(&dir.0).unwrap();
    assert_eq!((d.mode() & 0o777, d.gid()), (0o710, OTHER_UID), "the directory the group passes through");
    let ep = dir.sock().to_string_lossy().into_owned();
    assert_eq!(connect_as(&ep, OTHER_UID), 0, "a member of the group was kept out");
    assert_eq!(connect_as(&ep, OTHER_UID - 1), 4, "uid {OTHER_UID} outside the group got in");
    drop(server);

    // An existing directory the group cannot pass through is refused with a clear reason.
    let closed = TempDir::new("groupdir");
    std::fs::create_dir(&closed.0).unwrap();
    std::fs::set_permissions(&closed.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut opts = ServerOptions::new(closed.endpoint());
    opts.socket_access = group_access;
    let err = PushServer::bind(opts).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("does not let group"), "{err}");

    // The broker takes the same access; the group's member reaches it (and is refused the push
    // service there, exit 5, instead of being kept out by the file, exit 4).
    let bdir = TempDir::new("groupbroker");
    let mut opts = rp::broker::BrokerServerOptions::new(bdir.endpoint(), Vec::new());
    opts.socket_access = group_access;
    opts.allow_other_uids = true;
    let broker = rp::broker::BrokerServer::bind(opts).unwrap();
    assert_eq!(std::fs::metadata(bdir.sock()).unwrap().gid(), OTHER_UID);
    assert_eq!(connect_as(&bdir.sock().to_string_lossy(), OTHER_UID), 5);
    assert_eq!(connect_as(&bdir.sock().to_string_lossy(), OTHER_UID - 1), 4);
    drop(broker);
}

#[cfg(unix)]
fn is_root() -> bool {
    rp::transport::effective_uid() == 0
}

/// Child process body: connect as a worker and exit with a code that names the outcome.
#[cfg(unix)]
#[test]
#[ignore = "run by the cross-uid tests as a child process under another uid"]
fn other_uid_child() {
    let Ok(ep) = std::env::var(ENV) else { return };
    let opts = WorkerOptions::new(Endpoint::parse(&ep).unwrap(), registration("other"));
    let outcome = rp::push::Worker::connect(opts);
    if let Err(e) = &outcome {
        eprintln!("child outcome: {e:?}");
    }
    let code = match outcome {
        Ok(_) => 0,
        Err(e) if e.refusal().is_some_and(|r| r.code == ErrorCode::PeerRejected as i32) => 3,
        Err(e) if e.kind() == ErrorKind::Io || e.kind() == ErrorKind::PermissionDenied => 4,
        Err(_) => 5,
    };
    std::process::exit(code);
}

/// A copy of this test binary that uid 65534 can execute (the build tree may sit under a
/// directory only root can enter, such as /root), in a directory of its own that the caller
/// removes: tests running in parallel never share one.
#[cfg(unix)]
fn executable_copy() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rp-sec-bin-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("security-child");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Runs `other_uid_child` as uid/gid 65534 against `endpoint`; returns its exit code.
#[cfg(unix)]
fn connect_as_other_uid(endpoint: &str) -> i32 {
    connect_as(endpoint, OTHER_UID)
}

/// Runs `other_uid_child` as uid 65534 with group `gid` (and no other groups).
#[cfg(unix)]
fn connect_as(endpoint: &str, gid: u32) -> i32 {
    // Copy and spawn one at a time: a copy still open for writing while another thread forks
    // would be inherited by that child and make exec fail with "text file busy". `spawn`
    // returns once the child has exec'd.
    static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let (exe, child) = {
        let _one_at_a_time = SPAWN.lock().unwrap_or_else(|p| p.into_inner());
        let exe = executable_copy();
        let child = Command::new(&exe)
            .current_dir("/")
            .args(["--exact", "other_uid_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(ENV, endpoint)
            .uid(OTHER_UID)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (exe, child)
    };
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(exe.parent().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(line) = stderr.lines().find(|l| l.starts_with("child outcome")) {
        println!("uid {OTHER_UID} -> {endpoint}: {line}");
    }
    output.status.code().unwrap_or(-1)
}

#[cfg(unix)]
#[test]
fn created_socket_is_0600_in_a_0700_directory() {
    let dir = TempDir::new("modes");
    std::fs::create_dir(&dir.0).unwrap();
    // Only the socket's own directory is created: under a missing parent, binding fails.
    let nested = dir.0.join("a/b");
    let err = PushServer::bind(ServerOptions::new(Endpoint::Path(nested.join("s.sock")))).unwrap_err();
    assert!(err.to_string().contains("parent directory does not exist"), "{err}");
    assert!(!dir.0.join("a").exists());
    let own = dir.0.join("a");
    let server = PushServer::bind(ServerOptions::new(Endpoint::Path(own.join("s.sock")))).unwrap();
    assert_eq!(std::fs::metadata(own.join("s.sock")).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&own).unwrap().mode() & 0o777, 0o700);
    drop(server);
}

#[cfg(unix)]
#[test]
fn a_peer_of_another_uid_is_refused_by_default_and_allowed_when_opted_in() {
    if !is_root() {
        println!("SKIPPED: needs root to run a peer as uid {OTHER_UID}");
        return;
    }
    // An abstract socket has no file permissions, so the server's own uid check decides.
    let name = format!("@rp-sec-{}-refuse", std::process::id());
    let server = PushServer::bind(ServerOptions::new(Endpoint::parse(&name).unwrap())).unwrap();
    assert_eq!(connect_as_other_uid(&name), 3, "uid {OTHER_UID} was not refused with PEER_REJECTED");
    assert!(server.workers().is_empty());
    drop(server);

    let name = format!("@rp-sec-{}-allow", std::process::id());
    let mut opts = ServerOptions::new(Endpoint::parse(&name).unwrap());
    opts.allow_other_uids = true;
    let server = PushServer::bind(opts).unwrap();
    assert_eq!(connect_as_other_uid(&name), 0, "uid {OTHER_UID} was refused although allowed");
    drop(server);

    // A path socket: the 0700 directory already keeps the other user out.
    let dir = TempDir::new("uidpath");
    let mut opts = ServerOptions::new(dir.endpoint());
    opts.allow_other_uids = true;
    let _server = PushServer::bind(opts).unwrap();
    assert_eq!(connect_as_other_uid(&dir.sock().to_string_lossy()), 4, "the 0700 directory let uid {OTHER_UID} in");

    // One user at its connection limit does not lock another user out.
    let name = format!("@rp-sec-{}-peruid", std::process::id());
    let mut opts = ServerOptions::new(Endpoint::parse(&name).unwrap());
    opts.allow_other_uids = true;
    opts.max_connections_per_uid = 2;
    let server = PushServer::bind(opts).unwrap();
    let _mine = [worker(server.endpoint(), "q"), worker(server.endpoint(), "q")];
    let refused = rp::push::Worker::connect(WorkerOptions::new(server.endpoint().clone(), registration("q")));
    assert_eq!(refused.unwrap_err().refusal().map(|r| r.code), Some(ErrorCode::RateLimited as i32));
    assert_eq!(connect_as_other_uid(&name), 0, "uid {OTHER_UID} was locked out by another user's connections");
}

/// `max_connections_per_uid`: one user's connections beyond its share are refused
/// RATE_LIMITED (scope "peer-uid", with a retry hint), by the push server and by the broker;
/// a slot that frees up is usable again.
#[test]
fn one_user_is_limited_to_its_share_of_connections() {
    let dir = TempDir::new("peruid");
    let server = server_with(&dir, |o| o.max_connections_per_uid = 2);
    let first = worker(server.endpoint(), "q");
    let _second = worker(server.endpoint(), "q");
    let e = rp::push::Worker::connect(WorkerOptions::new(dir.endpoint(), registration("q"))).unwrap_err();
    let r = e.refusal().expect("a refusal");
    assert_eq!((r.code, r.retry_after_ms), (ErrorCode::RateLimited as i32, 1000), "{e}");
    assert_eq!(r.details.get("scope").map(String::as_str), Some("peer-uid"));
    drop(first);
    let start = std::time::Instant::now();
    loop {
        match rp::push::Worker::connect(WorkerOptions::new(dir.endpoint(), registration("q"))) {
            Ok(_) => break,
            Err(e) if start.elapsed() < Duration::from_secs(5) && e.refusal().is_some() => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("a freed slot was not usable again: {e}"),
        }
    }

    let bdir = TempDir::new("peruid-broker");
    let mut opts = rp::broker::BrokerServerOptions::new(bdir.endpoint(), Vec::new());
    opts.max_connections_per_uid = 1;
    let _broker = rp::broker::BrokerServer::bind(opts).unwrap();
    let _silent = raw_connect(&bdir.endpoint()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut s = raw_connect(&bdir.endpoint()).unwrap();
    s.write_all(&hello_bytes()).unwrap();
    match read_hello_reply(&s).unwrap() {
        hello_reply::Result::Refused(r) => {
            assert_eq!(r.code, ErrorCode::RateLimited as i32, "{r:?}");
            assert_eq!(r.details.get("scope").map(String::as_str), Some("peer-uid"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_server_reports_kernel_credentials_not_claims() {
    let dir = TempDir::new("creds");
    let server = server_with(&dir, |_| {});
    let _client = worker(server.endpoint(), "q");
    let peer = server.workers()[0].peer.expect("kernel credentials");
    assert_eq!(peer.pid, std::process::id());
    assert_eq!(peer.uid, rp::transport::effective_uid());
}

fn hello_with_pid(pid: u32) -> Vec<u8> {
    let mut hello = ClientHello {
        service_name: rp::push::DEFAULT_SERVICE.into(),
        wanted_version: PUSH_PROTOCOL_VERSION.into(),
        ..ClientHello::default()
    }
    .to_message();
    hello.peer_pid = pid;
    frame(FrameKind::Request, registry::CONTROL, 1, &hello.encode_to_vec())
}

#[test]
fn hello_peer_pid_is_checked_against_so_peercred() {
    let dir = TempDir::new("peerpid");
    let _server = server_with(&dir, |_| {});
    let me = std::process::id();
    for (pid, ok) in [(me, true), (0, true), (me + 1, false), (1, false), (u32::MAX, false)] {
        let mut s = raw_connect(&dir.endpoint()).unwrap();
        s.write_all(&hello_with_pid(pid)).unwrap();
        match read_hello_reply(&s).unwrap() {
            hello_reply::Result::Negotiated(_) => assert!(ok, "peer_pid {pid} accepted"),
            hello_reply::Result::Refused(r) => {
                assert!(!ok, "peer_pid {pid} refused: {r:?}");
                assert_eq!(r.code, ErrorCode::PeerRejected as i32);
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn symlinked_foreign_or_shared_socket_directories_are_refused() {
    let dir = TempDir::new("dirs");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let real = dir.0.join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.0.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let bind = |p: std::path::PathBuf| PushServer::bind(ServerOptions::new(Endpoint::Path(p)));
    let e = bind(link.join("s.sock")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "symlinked directory: {e}");

    let shared = dir.0.join("shared");
    std::fs::create_dir(&shared).unwrap();
    for mode in [0o770, 0o707, 0o777] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = bind(shared.join("s.sock")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "mode {mode:o}: {e}");
    }

    if is_root() {
        let foreign = dir.0.join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&foreign, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
        let e = bind(foreign.join("s.sock")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "foreign-owned directory: {e}");
    } else {
        println!("SKIPPED (foreign-owned directory): needs root to chown a directory to uid {OTHER_UID}");
    }
    // A regular file where the socket goes is left alone.
    let file = real.join("s.sock");
    std::fs::write(&file, b"keep me").unwrap();
    let e = bind(file.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn a_live_socket_is_not_taken_over_and_a_stale_one_is_replaced() {
    let dir = TempDir::new("squat");
    if under_wine() {
        println!("SKIPPED (a live endpoint): Wine 8.0 does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE, Windows does");
    } else {
        let first = server_with(&dir, |_| {});
        let e = PushServer::bind(ServerOptions::new(dir.endpoint())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
        assert!(e.to_string().contains("in use"), "{e}");
        // The first server still owns its socket and serves.
        let _w = worker(first.endpoint(), "q");
        assert_eq!(first.workers().len(), 1);
        drop(_w);
        drop(first);
    }

    // A stale socket file (no listener behind it) is replaced (Unix: a pipe leaves no file).
    #[cfg(unix)]
    {
        std::fs::create_dir_all(&dir.0).unwrap();
        drop(UnixListener::bind(dir.sock()).unwrap());
        assert!(dir.sock().exists());
    }
    let second = server_with(&dir, |_| {});
    let _w = worker(second.endpoint(), "q");
}

#[test]
fn a_tcp_server_reachable_from_elsewhere_must_be_enabled_explicitly() {
    let e = PushServer::bind(ServerOptions::new(Endpoint::parse("tcp://0.0.0.0:0").unwrap())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn a_wrong_auth_token_is_refused() {
    let mut opts = ServerOptions::new(Endpoint::parse("tcp://127.0.0.1:0").unwrap());
    opts.auth_token = b"correct horse".to_vec();
    let server = PushServer::bind(opts).unwrap();
    for token in [&b"correct hors"[..], b"correct horsf", b"", b"correct horse!"] {
        let mut o = WorkerOptions::new(server.endpoint().clone(), registration("q"));
        o.auth_token = token.to_vec();
        o.connect_timeout = Duration::from_secs(5);
        let e = rp::push::Worker::connect(o).unwrap_err();
        assert_eq!(e.refusal().map(|r| r.code), Some(ErrorCode::PeerRejected as i32), "{e}");
    }
    let mut o = WorkerOptions::new(server.endpoint().clone(), registration("q"));
    o.auth_token = b"correct horse".to_vec();
    rp::push::Worker::connect(o).unwrap();
}
