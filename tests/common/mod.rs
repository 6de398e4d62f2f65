//! Helpers shared by the fault, load and security tests: temp dirs and the private endpoint of
//! each (a Unix socket in it; on Windows a named pipe named after it), raw peers that speak the
//! push protocol frame by frame (Unix sockets; named pipes on Windows), /proc measurements
//! (Unix).
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use rp::control::ClientHello;
use rp::push::proto::Registration;
use rp::push::{Worker, PushServer, ServerOptions, WorkerOptions, PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION};
use rp::transport::Endpoint;
use rp::wire::proto::{hello_reply, FrameKind, HelloReply};
use rp::wire::{registry, FrameReader, FrameView, WireError};

/// A raw peer's connection: a Unix stream socket; on Windows a named pipe (either end).
#[cfg(unix)]
pub use std::os::unix::net::UnixStream as RawStream;
#[cfg(windows)]
pub use rp::transport::PipeStream as RawStream;

/// Connects a raw peer to a local endpoint: a socket path (Unix) or a pipe name (Windows).
pub fn raw_connect(endpoint: &Endpoint) -> io::Result<RawStream> {
    match endpoint {
        #[cfg(unix)]
        Endpoint::Path(path) => RawStream::connect(path),
        #[cfg(windows)]
        Endpoint::Pipe(name) => RawStream::connect(name, Duration::from_secs(5)),
        other => panic!("{other}: not a local endpoint of this platform"),
    }
}

/// Whether this process runs under Wine, which does not do everything Windows does: Wine 8.0
/// lets a second server create a pipe name a live one holds (it ignores
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`), and a killed process's TCP connection can outlive it.
/// Always false on Unix.
pub fn under_wine() -> bool {
    #[cfg(unix)]
    return false;
    #[cfg(windows)]
    #[allow(unsafe_code)]
    {
        use std::ffi::c_void;
        #[link(name = "kernel32")]
        extern "system" {
            fn GetModuleHandleA(name: *const u8) -> *mut c_void;
            fn GetProcAddress(module: *mut c_void, name: *const u8) -> *mut c_void;
        }
        // SAFETY: NUL-terminated names; ntdll is loaded in every process; nothing is called
        // through the address, only its presence is looked at.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && !GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_null()
        }
    }
}

/// A raw listener on a local endpoint (a fake server, a backend): a Unix listener on a socket
/// path (its directory must exist); on Windows a named-pipe listener.
pub struct RawListener {
    #[cfg(unix)]
    inner: std::os::unix::net::UnixListener,
    #[cfg(windows)]
    inner: rp::transport::PipeListener,
}

impl RawListener {
    /// Listens on `endpoint` (a socket path on Unix, a pipe name on Windows).
    pub fn bind(endpoint: &Endpoint) -> io::Result<RawListener> {
        match endpoint {
            #[cfg(unix)]
            Endpoint::Path(path) => Ok(RawListener { inner: std::os::unix::net::UnixListener::bind(path)? }),
            #[cfg(windows)]
            Endpoint::Pipe(name) => Ok(RawListener { inner: rp::transport::PipeListener::bind(name)? }),
            other => panic!("{other}: not a local endpoint of this platform"),
        }
    }

    /// Waits for the next peer.
    pub fn accept(&self) -> io::Result<RawStream> {
        #[cfg(unix)]
        return self.inner.accept().map(|(s, _)| s);
        #[cfg(windows)]
        return self.inner.accept();
    }
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rp-rel-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
    /// This test's private endpoint: the socket `push.sock` in the directory; on Windows a
    /// named pipe as unique as the directory (named after it).
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint_named("push")
    }
    /// Another private endpoint of this test, told apart by `name`: the socket `<name>.sock`
    /// in the directory; on Windows a named pipe named after the directory and `name`.
    pub fn endpoint_named(&self, name: &str) -> Endpoint {
        #[cfg(unix)]
        return Endpoint::Path(self.0.join(format!("{name}.sock")));
        #[cfg(windows)]
        return Endpoint::Pipe(format!("{}-{name}", self.0.file_name().unwrap().to_string_lossy()));
    }
    /// The socket path of [`endpoint`](Self::endpoint) (Unix).
    pub fn sock(&self) -> PathBuf {
        self.0.join("push.sock")
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn registration(queue: &str) -> Registration {
    Registration {
        identity: format!("rel-worker-{queue}"),
        task_queue: queue.into(),
        namespaces: vec!["default".into()],
        activity_types: vec!["echo".into()],
        payload_protocols: vec![0x7001],
        ..Registration::default()
    }
}

pub fn server_with(dir: &TempDir, tune: impl FnOnce(&mut ServerOptions)) -> PushServer {
    let mut opts = ServerOptions::new(dir.endpoint());
    tune(&mut opts);
    PushServer::bind(opts).expect("bind")
}

pub fn worker(endpoint: &Endpoint, queue: &str) -> Worker {
    Worker::connect(WorkerOptions::new(endpoint.clone(), registration(queue))).expect("connect")
}

/// One encoded frame.
pub fn frame(kind: FrameKind, protocol: u32, request_id: u64, payload: &[u8]) -> Vec<u8> {
    FrameView { kind: kind as i32, payload_protocol: protocol, payload, request_id, ..FrameView::default() }
        .to_bytes()
        .unwrap()
}

/// The Hello a push worker sends (this process's pid as peer_pid).
pub fn hello_bytes() -> Vec<u8> {
    let hello = ClientHello {
        service_name: rp::push::DEFAULT_SERVICE.into(),
        wanted_version: PUSH_PROTOCOL_VERSION.into(),
        ..ClientHello::default()
    };
    frame(FrameKind::Request, registry::CONTROL, 1, &hello.to_message().encode_to_vec())
}

pub fn registration_bytes(queue: &str) -> Vec<u8> {
    frame(FrameKind::Request, PUSH_PROTOCOL, 1, &registration(queue).encode_to_vec())
}

/// Reads one HelloReply from a raw peer.
pub fn read_hello_reply(sock: &RawStream) -> Result<hello_reply::Result, WireError> {
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = FrameReader::new(sock);
    let frame = reader.read_frame()?;
    Ok(HelloReply::decode(frame.payload).expect("HelloReply").result.expect("a result"))
}

/// A raw connection that has said Hello and registered, with its two answers read.
pub fn raw_registered_worker(endpoint: &Endpoint, queue: &str) -> RawStream {
    let mut sock = raw_connect(endpoint).expect("connect");
    let mut both = hello_bytes();
    both.extend_from_slice(&registration_bytes(queue));
    sock.write_all(&both).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = FrameReader::new(&sock);
    let reply = reader.read_frame().expect("hello reply");
    assert_eq!(reply.payload_protocol, registry::CONTROL);
    let ack = reader.read_frame().expect("registration ack");
    assert_eq!(ack.payload_protocol, PUSH_PROTOCOL);
    assert!(reader.buffered().is_empty());
    drop(reader);
    sock
}

/// Waits until the server closed a raw connection (EOF or reset); returns how long it took.
pub fn wait_closed(sock: &mut RawStream, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match sock.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Open descriptors of this process.
#[cfg(unix)]
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resident set size of this process, in KiB.
#[cfg(unix)]
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Waits (up to `limit`) for the descriptor count to come back to `target` or below.
#[cfg(unix)]
pub fn settle_fds(target: usize, limit: Duration) -> usize {
    let start = std::time::Instant::now();
    loop {
        let n = open_fds();
        if n <= target || start.elapsed() > limit {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Raises the soft descriptor limit to the hard one.
#[cfg(unix)]
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
