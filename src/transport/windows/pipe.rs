//! Named pipes: [`PipeStream`] (either end of a connection) and [`PipeListener`], on
//! overlapped handles so that one thread can wait in a read while another writes.
//!
//! Every I/O operation runs with an `OVERLAPPED` whose event belongs to the calling thread and
//! waits for its own completion, so a pipe behaves like a blocking socket: a read returns what
//! is there (at least one byte), 0 at the end of the stream; a timeout or a shutdown cancels
//! the operation (`CancelIoEx`).

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::Security as sec;
use windows_sys::Win32::Security::Authorization as authz;
use windows_sys::Win32::Storage::FileSystem as fs;
use windows_sys::Win32::System::Pipes as pipes;
use windows_sys::Win32::System::Threading as th;
use windows_sys::Win32::System::IO as wio;

use super::RawDescriptor;
use crate::error::{Error, Result};

/// The prefix of every pipe name in the kernel's namespace.
const PIPE_PREFIX: &str = r"\\.\pipe\";
/// Longest pipe name Windows accepts, prefix included (characters).
const MAX_PIPE_NAME: usize = 256;
/// Buffer sizes asked of the pipe system per instance (a hint; writes wait for the reader
/// once this much is unread).
const PIPE_BUFFER: u32 = 64 * 1024;

/// `\\.\pipe\name` or bare `name` → the bare name (the same pipe either way).
pub(crate) fn parse_pipe_name(s: &str) -> Result<String> {
    let name = s.strip_prefix(PIPE_PREFIX).unwrap_or(s);
    if name.is_empty() {
        return Err(Error::invalid_argument("pipe name is empty"));
    }
    if PIPE_PREFIX.len() + name.chars().count() > MAX_PIPE_NAME {
        return Err(Error::invalid_argument(format!("pipe name is longer than {MAX_PIPE_NAME} characters: {s}")));
    }
    Ok(name.to_owned())
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn pipe_path(name: &str) -> Vec<u16> {
    wide(&format!("{PIPE_PREFIX}{name}"))
}

fn handle(raw: RawDescriptor) -> f::HANDLE {
    raw as f::HANDLE
}

/// The pipe handles of the [`PipeStream`]s, by the descriptor each stream is known by (an
/// event of its own, so the value stays taken until the stream goes, even once the pipe
/// closed): `None` once the pipe was closed by a shutdown.
type Pipes = std::collections::HashMap<RawDescriptor, Option<Arc<OwnedHandle>>>;
static PIPES: Mutex<Option<Pipes>> = Mutex::new(None);

/// The pipe behind a descriptor.
enum PipeRef {
    /// A stream's pipe, kept open while this is held.
    Open(Arc<OwnedHandle>),
    /// A stream's pipe, closed by a shutdown.
    Closed,
    /// A pipe handle librp did not make (a caller's).
    Foreign(f::HANDLE),
}

impl PipeRef {
    fn get(&self) -> Option<f::HANDLE> {
        match self {
            PipeRef::Open(h) => Some(h.as_raw_handle()),
            PipeRef::Closed => None,
            PipeRef::Foreign(h) => Some(*h),
        }
    }
}

fn lookup(raw: RawDescriptor) -> Option<PipeRef> {
    if let Some(entry) = PIPES.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(&raw)) {
        return Some(entry.as_ref().map_or(PipeRef::Closed, |h| PipeRef::Open(Arc::clone(h))));
    }
    let mut flags = 0;
    // SAFETY: all out-pointers but `flags` are NULL (allowed); an invalid handle only fails.
    let ok = unsafe {
        pipes::GetNamedPipeInfo(handle(raw), &mut flags, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut())
    };
    (ok != 0).then(|| PipeRef::Foreign(handle(raw)))
}

fn not_a_pipe() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a named pipe")
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Whether `raw` is a named pipe (a stream's, or a pipe handle).
pub(crate) fn is_pipe(raw: RawDescriptor) -> bool {
    lookup(raw).is_some()
}

/// Whether `h` is the server end of its pipe.
fn is_server_end(h: f::HANDLE) -> bool {
    let mut flags = 0;
    // SAFETY: all out-pointers but `flags` are NULL (allowed); an invalid handle only fails.
    let ok = unsafe { pipes::GetNamedPipeInfo(h, &mut flags, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    ok != 0 && flags & pipes::PIPE_SERVER_END != 0
}

/// The process at the other end: the client's id on a server end, the server's on a client end.
pub(crate) fn peer_pid(raw: RawDescriptor) -> io::Result<u32> {
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let h = pipe.get().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
    let mut pid = 0u32;
    // SAFETY: `pid` is valid for a write; `h` is held open by `pipe`.
    let ok = unsafe {
        if is_server_end(h) {
            pipes::GetNamedPipeClientProcessId(h, &mut pid)
        } else {
            pipes::GetNamedPipeServerProcessId(h, &mut pid)
        }
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(pid)
}

// ---------------------------------------------------------------------------------------------
// Shutdown marks (shared by every handle value that names one pipe end)
// ---------------------------------------------------------------------------------------------

/// Pipe handles shut for reading (their reads end) and for writing (their writes fail).
static SHUT_READ: Mutex<Option<HashSet<RawDescriptor>>> = Mutex::new(None);
static SHUT_WRITE: Mutex<Option<HashSet<RawDescriptor>>> = Mutex::new(None);

fn marked(set: &Mutex<Option<HashSet<RawDescriptor>>>, raw: RawDescriptor) -> bool {
    set.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|s| s.contains(&raw))
}

fn mark(set: &Mutex<Option<HashSet<RawDescriptor>>>, raw: RawDescriptor, on: bool) {
    let mut g = set.lock().unwrap_or_else(|e| e.into_inner());
    let s = g.get_or_insert_with(HashSet::new);
    if on {
        s.insert(raw);
    } else {
        s.remove(&raw);
    }
}

/// Marks a pipe shut; a read waiting on it in another thread returns the end of stream. A
/// pipe has no half-close, so the peer is told the way each end can: shutting a server end for
/// writing ends the stream for the client once it has read what was written (see
/// [`disconnect_when_read`]); shutting a stream's client end both ways closes its pipe (once
/// no operation holds it), which the server reads as the end.
pub(crate) fn shutdown_handle(raw: RawDescriptor, how: std::net::Shutdown) {
    let Some(pipe) = lookup(raw) else { return };
    let Some(h) = pipe.get() else { return };
    let reads = matches!(how, std::net::Shutdown::Read | std::net::Shutdown::Both);
    if reads {
        mark(&SHUT_READ, raw, true);
        // SAFETY: cancels every operation on the handle (NULL: all of them); a handle with none
        // only fails.
        unsafe { wio::CancelIoEx(h, std::ptr::null()) };
    }
    if matches!(how, std::net::Shutdown::Write | std::net::Shutdown::Both) && !marked(&SHUT_WRITE, raw) {
        mark(&SHUT_WRITE, raw, true);
        if is_server_end(h) {
            disconnect_when_read(h);
        } else if reads && matches!(pipe, PipeRef::Open(_)) {
            forget_writes(raw, h);
            if let Some(entry) = PIPES.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.get_mut(&raw)) {
                *entry = None;
            }
        }
    }
}

/// A pipe has no half-close, and closing the server's handle must wait for its last owner; so
/// a thread of its own waits until the client has read everything written
/// (`FlushFileBuffers`) and then disconnects it (`DisconnectNamedPipe`), on a duplicate of the
/// handle: the client reads the end of the stream as after a Unix `shutdown`.
fn disconnect_when_read(h: f::HANDLE) {
    let mut dup: f::HANDLE = std::ptr::null_mut();
    // SAFETY: duplicates an open handle of this process into this process; `dup` is valid for
    // a write.
    let ok = unsafe {
        f::DuplicateHandle(th::GetCurrentProcess(), h, th::GetCurrentProcess(), &mut dup, 0, 0, f::DUPLICATE_SAME_ACCESS)
    };
    if ok == 0 {
        return;
    }
    // SAFETY: a fresh handle owned from here on.
    let dup = unsafe { OwnedHandle::from_raw_handle(dup) };
    let _ = std::thread::Builder::new().name("rp-pipe-close".into()).spawn(move || {
        // SAFETY: the thread's own duplicate, open until it drops here.
        unsafe {
            fs::FlushFileBuffers(dup.as_raw_handle());
            pipes::DisconnectNamedPipe(dup.as_raw_handle());
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Overlapped operations
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// The calling thread's event for its overlapped operations (one at a time per thread).
    static IO_EVENT: Option<OwnedHandle> = new_event(true).ok();
}

/// A new unsignalled event (manual reset or not).
pub(crate) fn new_event(manual_reset: bool) -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes, no name.
    let h = unsafe { th::CreateEventW(std::ptr::null(), i32::from(manual_reset), 0, std::ptr::null()) };
    if h.is_null() {
        return Err(last_error());
    }
    // SAFETY: a fresh handle this function owns from here on.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Milliseconds for a Win32 wait: `None` waits forever; a limit is rounded up and kept below
/// `INFINITE`.
pub(crate) fn wait_ms(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => th::INFINITE,
        Some(t) => t.as_micros().div_ceil(1000).min(u128::from(th::INFINITE - 1)) as u32,
    }
}

/// How an overlapped operation ended early.
enum Early {
    /// Cancelled: its time ran out, or `stop` said so.
    Cancelled,
    /// Failed with this error.
    Failed(io::Error),
}

/// Starts one overlapped operation with `start` and waits up to `timeout` for it; a wait that
/// runs out, or `stop()` true right after the start, cancels it. Returns the bytes moved.
fn overlapped(
    h: f::HANDLE,
    timeout: Option<Duration>,
    stop: impl Fn() -> bool,
    start: impl FnOnce(*mut wio::OVERLAPPED) -> i32,
) -> std::result::Result<u32, Early> {
    IO_EVENT.with(|event| {
        let event = event.as_ref().ok_or_else(|| Early::Failed(io::Error::other("no event for overlapped I/O")))?;
        // SAFETY: an all-zero OVERLAPPED is a valid start value.
        let mut ov: wio::OVERLAPPED = unsafe { std::mem::zeroed() };
        ov.hEvent = event.as_raw_handle();
        // SAFETY: the thread's own event, not in use by another operation.
        unsafe { th::ResetEvent(ov.hEvent) };
        if start(&mut ov) == 0 {
            // SAFETY: GetLastError has no preconditions.
            let err = unsafe { f::GetLastError() };
            if err != f::ERROR_IO_PENDING {
                return Err(Early::Failed(io::Error::from_raw_os_error(err as i32)));
            }
            // Pending: `ov` must stay in place until the operation is complete, which the
            // waiting GetOverlappedResult below guarantees on every path.
            if stop() {
                // SAFETY: cancels this operation; a completed one is left as it is.
                unsafe { wio::CancelIoEx(h, &ov) };
            } else {
                // SAFETY: waits on the thread's own event.
                let w = unsafe { th::WaitForSingleObject(ov.hEvent, wait_ms(timeout)) };
                if w != f::WAIT_OBJECT_0 {
                    // SAFETY: as above.
                    unsafe { wio::CancelIoEx(h, &ov) };
                }
            }
        }
        let mut n = 0u32;
        // SAFETY: `ov` describes an operation on `h` started above; bWait TRUE returns only
        // once it is complete (done or cancelled), after which the kernel no longer uses `ov`.
        if unsafe { wio::GetOverlappedResult(h, &ov, &mut n, 1) } == 0 {
            // SAFETY: GetLastError has no preconditions.
            let err = unsafe { f::GetLastError() };
            if err == f::ERROR_OPERATION_ABORTED {
                return Err(Early::Cancelled);
            }
            return Err(Early::Failed(io::Error::from_raw_os_error(err as i32)));
        }
        Ok(n)
    })
}

/// Errors that mean the peer is gone: a read sees the end of the stream.
fn is_end(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(f::ERROR_BROKEN_PIPE | f::ERROR_PIPE_NOT_CONNECTED | f::ERROR_NO_DATA)
    )
}

/// Bytes waiting in the pipe; the end of the stream is `Ok(None)`.
fn available(raw: RawDescriptor) -> io::Result<Option<u32>> {
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let Some(h) = pipe.get() else { return Ok(None) };
    let mut avail = 0u32;
    // SAFETY: no buffer is read into; `avail` is valid for a write; `h` is held open by `pipe`.
    let ok = unsafe { pipes::PeekNamedPipe(h, std::ptr::null_mut(), 0, std::ptr::null_mut(), &mut avail, std::ptr::null_mut()) };
    if ok == 0 {
        let e = last_error();
        return if is_end(&e) { Ok(None) } else { Err(e) };
    }
    Ok(Some(avail))
}

/// Whether the peer closed with nothing left to read.
pub(crate) fn peer_gone(raw: RawDescriptor) -> bool {
    matches!(available(raw), Ok(None))
}

/// Whether a read would return at once: data, the end of the stream, an error, or a shutdown.
pub(crate) fn readable_now(raw: RawDescriptor) -> bool {
    marked(&SHUT_READ, raw) || !matches!(available(raw), Ok(Some(0)))
}

/// Reads with a wait of up to `timeout` (`None` = until data or the end).
fn read_handle(raw: RawDescriptor, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
    if buf.is_empty() || marked(&SHUT_READ, raw) {
        return Ok(0);
    }
    let len = buf.len().min(u32::MAX as usize) as u32;
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let Some(h) = pipe.get() else { return Ok(0) };
    let r = overlapped(h, timeout, || marked(&SHUT_READ, raw), |ov| {
        // SAFETY: `buf` is writable for `len` bytes and outlives the operation (the helper
        // waits for its completion before returning).
        unsafe { fs::ReadFile(h, buf.as_mut_ptr(), len, std::ptr::null_mut(), ov) }
    });
    match r {
        Ok(n) => Ok(n as usize),
        Err(Early::Failed(e)) if is_end(&e) => Ok(0),
        Err(Early::Failed(e)) => Err(e),
        Err(Early::Cancelled) if marked(&SHUT_READ, raw) => Ok(0),
        // As a Unix socket's receive timeout reports it.
        Err(Early::Cancelled) => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Reads what is there without waiting: `WouldBlock` when nothing is, 0 at the end.
pub(crate) fn read_now(raw: RawDescriptor, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() || marked(&SHUT_READ, raw) {
        return Ok(0);
    }
    match available(raw)? {
        None => Ok(0),
        Some(0) => Err(io::ErrorKind::WouldBlock.into()),
        Some(n) => {
            let take = buf.len().min(n as usize);
            read_handle(raw, &mut buf[..take], Some(Duration::ZERO))
        }
    }
}

/// Writes, waiting up to `timeout` while the pipe's buffer is full; a vanished peer is
/// `BrokenPipe`.
pub(crate) fn write_handle(raw: RawDescriptor, buf: &[u8], timeout: Option<Duration>) -> io::Result<usize> {
    if marked(&SHUT_WRITE, raw) {
        return Err(io::ErrorKind::BrokenPipe.into());
    }
    if buf.is_empty() {
        return Ok(0);
    }
    let len = buf.len().min(u32::MAX as usize) as u32;
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let Some(h) = pipe.get() else { return Err(io::ErrorKind::BrokenPipe.into()) };
    let r = overlapped(h, timeout, || false, |ov| {
        // SAFETY: `buf` is readable for `len` bytes and outlives the operation.
        unsafe { fs::WriteFile(h, buf.as_ptr(), len, std::ptr::null_mut(), ov) }
    });
    match r {
        Ok(n) => Ok(n as usize),
        Err(Early::Failed(e)) if is_end(&e) => Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
        Err(Early::Failed(e)) => Err(e),
        Err(Early::Cancelled) => Err(io::ErrorKind::WouldBlock.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Writes that never wait
// ---------------------------------------------------------------------------------------------

/// Most bytes one write that never waits takes over.
const WRITE_CHUNK: usize = 64 * 1024;
/// Most bytes in flight on one pipe end before writes that never wait return `WouldBlock`
/// (what a socket's send buffer would hold).
const IN_FLIGHT_LIMIT: usize = 256 * 1024;

/// One write in flight for [`write_now`]: its bytes, owned here until the kernel is done with
/// them.
struct WriteSlot {
    ov: Box<wio::OVERLAPPED>,
    buf: Vec<u8>,
    event: OwnedHandle,
}

// SAFETY: the OVERLAPPED only holds the slot's own event and kernel status; slots are used
// under the WRITES lock.
unsafe impl Send for WriteSlot {}

impl WriteSlot {
    /// Whether the kernel is done with this write: `Ok(true)` written, `Ok(false)` in flight.
    fn done(&self, h: f::HANDLE) -> io::Result<bool> {
        let mut n = 0u32;
        // SAFETY: the slot's own operation on `h`; bWait FALSE only reads its status.
        if unsafe { wio::GetOverlappedResult(h, &*self.ov, &mut n, 0) } != 0 {
            return Ok(true);
        }
        // SAFETY: GetLastError has no preconditions.
        let err = unsafe { f::GetLastError() };
        if err == f::ERROR_IO_INCOMPLETE {
            return Ok(false);
        }
        let e = io::Error::from_raw_os_error(err as i32);
        Err(if is_end(&e) { io::Error::new(io::ErrorKind::BrokenPipe, e) } else { e })
    }
}

/// The writes in flight per pipe end, oldest first (the kernel completes them in order).
static WRITES: Mutex<Option<std::collections::HashMap<RawDescriptor, std::collections::VecDeque<WriteSlot>>>> = Mutex::new(None);

/// Writes without waiting, as a non-blocking socket does: bytes are taken over (copied and
/// handed to the kernel, which delivers them in order) and counted as written while less than
/// 256 KiB is in flight; beyond that, `WouldBlock` until the reader takes some.
pub(crate) fn write_now(raw: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    if marked(&SHUT_WRITE, raw) {
        return Err(io::ErrorKind::BrokenPipe.into());
    }
    if buf.is_empty() {
        return Ok(0);
    }
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let Some(h) = pipe.get() else { return Err(io::ErrorKind::BrokenPipe.into()) };
    let mut writes = WRITES.lock().unwrap_or_else(|e| e.into_inner());
    let slots = writes.get_or_insert_with(std::collections::HashMap::new).entry(raw).or_default();
    let mut spare = None;
    while let Some(first) = slots.front() {
        if !first.done(h)? {
            break;
        }
        spare = slots.pop_front();
    }
    let in_flight: usize = slots.iter().map(|s| s.buf.len()).sum();
    if in_flight >= IN_FLIGHT_LIMIT {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    let mut slot = match spare {
        Some(s) => s,
        None => WriteSlot {
            // SAFETY: an all-zero OVERLAPPED is a valid start value.
            ov: Box::new(unsafe { std::mem::zeroed() }),
            buf: Vec::new(),
            event: new_event(true)?,
        },
    };
    let take = buf.len().min(WRITE_CHUNK).min(IN_FLIGHT_LIMIT - in_flight);
    slot.buf.clear();
    slot.buf.extend_from_slice(&buf[..take]);
    // SAFETY: an all-zero OVERLAPPED is a valid start value; no operation uses this one now.
    *slot.ov = unsafe { std::mem::zeroed() };
    slot.ov.hEvent = slot.event.as_raw_handle();
    // SAFETY: the slot's buffer and OVERLAPPED are heap-allocated and stay in place, untouched,
    // until the write is complete; the slot is kept until then (see `forget_writes`).
    if unsafe { fs::WriteFile(h, slot.buf.as_ptr(), take as u32, std::ptr::null_mut(), &mut *slot.ov) } == 0 {
        // SAFETY: GetLastError has no preconditions.
        let err = unsafe { f::GetLastError() };
        if err != f::ERROR_IO_PENDING {
            let e = io::Error::from_raw_os_error(err as i32);
            return Err(if is_end(&e) { io::Error::new(io::ErrorKind::BrokenPipe, e) } else { e });
        }
    }
    slots.push_back(slot);
    Ok(take)
}

/// Whether writes that never wait would return `WouldBlock` on `raw` now.
pub(crate) fn write_in_flight(raw: RawDescriptor) -> bool {
    let writes = WRITES.lock().unwrap_or_else(|e| e.into_inner());
    let Some(slots) = writes.as_ref().and_then(|m| m.get(&raw)) else { return false };
    let in_flight: usize = slots.iter().map(|s| s.buf.len()).sum();
    // SAFETY: a zero wait on the oldest slot's own event.
    in_flight >= IN_FLIGHT_LIMIT
        && slots.front().is_some_and(|s| unsafe { th::WaitForSingleObject(s.event.as_raw_handle(), 0) } != f::WAIT_OBJECT_0)
}

/// `raw` is closing: writes still in flight get a moment to finish, then are cancelled; their
/// slots go once the kernel is done with them.
fn forget_writes(raw: RawDescriptor, h: f::HANDLE) {
    let slots = WRITES.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.remove(&raw));
    let deadline = Instant::now() + Duration::from_millis(100);
    for slot in slots.into_iter().flatten() {
        let mut n = 0u32;
        let left = wait_ms(Some(deadline.saturating_duration_since(Instant::now())));
        // SAFETY: the slot's own operation on `h`, which is still open; after the waiting
        // GetOverlappedResult the kernel no longer uses the slot.
        unsafe {
            if th::WaitForSingleObject(slot.event.as_raw_handle(), left) != f::WAIT_OBJECT_0 {
                wio::CancelIoEx(h, &*slot.ov);
            }
            wio::GetOverlappedResult(h, &*slot.ov, &mut n, 1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PipeStream
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct PipeInner {
    /// What the stream is known by: an event of its own (see [`PIPES`]), or the pipe handle
    /// itself when no event could be made.
    id: OwnedHandle,
    /// Whether `id` is the pipe handle itself (then the pipe stays open until the stream goes).
    id_is_pipe: bool,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    nonblocking: AtomicBool,
}

impl Drop for PipeInner {
    fn drop(&mut self) {
        let raw = self.id.as_raw_handle() as RawDescriptor;
        if let Some(h) = lookup(raw).and_then(|p| p.get()) {
            forget_writes(raw, h);
        }
        if let Some(m) = PIPES.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            m.remove(&raw);
        }
        mark(&SHUT_READ, raw, false);
        mark(&SHUT_WRITE, raw, false);
        super::ready::forget(raw);
    }
}

/// One end of a connected named pipe. Clones ([`try_clone`](Self::try_clone)) share the
/// handle, its timeouts and its mode, as duplicated socket descriptors share theirs; the handle
/// closes with the last of them.
#[derive(Debug, Clone)]
pub struct PipeStream {
    inner: Arc<PipeInner>,
}

impl PipeStream {
    /// Adopts a connected pipe handle opened for overlapped I/O (a handle librp made, or one
    /// handed over by `DuplicateHandle`).
    pub fn from_handle(handle: OwnedHandle) -> PipeStream {
        let (id, id_is_pipe) = match new_event(true) {
            Ok(event) => {
                let raw = event.as_raw_handle() as RawDescriptor;
                PIPES.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Default::default).insert(raw, Some(Arc::new(handle)));
                (event, false)
            }
            Err(_) => (handle, true),
        };
        PipeStream {
            inner: Arc::new(PipeInner {
                id,
                id_is_pipe,
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                nonblocking: AtomicBool::new(false),
            }),
        }
    }

    /// Connects to the pipe `\\.\pipe\<name>`, waiting up to `timeout` while every instance is
    /// busy. A pipe nobody serves is `NotFound`.
    pub fn connect(name: &str, timeout: Duration) -> io::Result<PipeStream> {
        let path = pipe_path(name);
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: `path` is a NUL-terminated wide string; no security attributes, no template.
            let h = unsafe {
                fs::CreateFileW(
                    path.as_ptr(),
                    f::GENERIC_READ | f::GENERIC_WRITE,
                    0,
                    std::ptr::null(),
                    fs::OPEN_EXISTING,
                    fs::FILE_FLAG_OVERLAPPED,
                    std::ptr::null_mut(),
                )
            };
            if h != f::INVALID_HANDLE_VALUE {
                // SAFETY: a fresh handle this function owns from here on.
                return Ok(PipeStream::from_handle(unsafe { OwnedHandle::from_raw_handle(h) }));
            }
            let e = last_error();
            if e.raw_os_error() != Some(f::ERROR_PIPE_BUSY as i32) {
                return Err(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "every instance of the pipe is busy"));
            }
            // Every instance has a client: the server makes the next one when it accepts.
            // Looks again shortly (WaitNamedPipeW is not used: under Wine a client waiting in
            // it can keep a new instance from ever taking a client).
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
    }

    /// Two connected ends of a new pipe with a unique name (as `UnixStream::pair` makes a
    /// socket pair): the client end first.
    pub fn pair() -> io::Result<(PipeStream, PipeStream)> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut nonce = [0u8; 8];
        super::fill_random(&mut nonce)?;
        let name = format!(
            "rp-pair-{}-{}-{:016x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            u64::from_le_bytes(nonce)
        );
        let listener = PipeListener::bind(&name)?;
        let client = PipeStream::connect(&name, Duration::from_secs(5))?;
        let server = listener.accept()?;
        Ok((client, server))
    }

    /// What the stream is known by as a [`RawDescriptor`] (owned by the stream): an event of
    /// its own that stands for the pipe in librp's calls (not the pipe handle; see
    /// [`pipe_handle`](Self::pipe_handle)).
    pub fn raw(&self) -> RawDescriptor {
        self.inner.id.as_raw_handle() as RawDescriptor
    }

    /// The pipe handle itself while the pipe is open (for `DuplicateHandle`, say); valid while
    /// the stream lives and is not shut down both ways.
    pub fn pipe_handle(&self) -> Option<RawDescriptor> {
        if self.inner.id_is_pipe {
            return Some(self.raw());
        }
        lookup(self.raw()).and_then(|p| p.get()).map(|h| h as RawDescriptor)
    }

    /// Sets how long a read waits (`None` = until data or the end); a read that runs out
    /// returns `WouldBlock`, as a Unix socket's receive timeout does.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        *self.inner.read_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    /// Sets how long a write waits for room (`None` = until it is written).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        *self.inner.write_timeout.lock().unwrap_or_else(|e| e.into_inner()) = t;
        Ok(())
    }

    /// Non-blocking mode: a read with nothing there returns `WouldBlock` (the end of the stream
    /// still reads 0). Writes wait for room either way.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Shuts one or both directions (see [`shutdown`](super::shutdown)).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        shutdown_handle(self.raw(), how);
        Ok(())
    }

    /// A second handle to the same pipe end.
    pub fn try_clone(&self) -> io::Result<PipeStream> {
        Ok(self.clone())
    }

    /// The process id at the other end.
    pub fn peer_pid(&self) -> io::Result<u32> {
        peer_pid(self.raw())
    }

    fn read_bytes(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.nonblocking.load(Ordering::Relaxed) {
            return read_now(self.raw(), buf);
        }
        let timeout = *self.inner.read_timeout.lock().unwrap_or_else(|e| e.into_inner());
        read_handle(self.raw(), buf, timeout)
    }

    pub(crate) fn write_bytes(&self, buf: &[u8]) -> io::Result<usize> {
        let timeout = *self.inner.write_timeout.lock().unwrap_or_else(|e| e.into_inner());
        write_handle(self.raw(), buf, timeout)
    }
}

impl Read for PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_bytes(buf)
    }
}

impl Read for &PipeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_bytes(buf)
    }
}

impl Write for PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &PipeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_bytes(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Owner-only security
// ---------------------------------------------------------------------------------------------

/// A security descriptor made from SDDL, freed with `LocalFree`.
#[derive(Debug)]
struct SecurityDescriptor(sec::PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is immutable after creation and only read by CreateNamedPipeW.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above.
unsafe impl Sync for SecurityDescriptor {}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { f::LocalFree(self.0) };
    }
}

/// The current process user's SID in string form (`S-1-5-...`).
fn current_user_sid() -> io::Result<String> {
    let mut token: f::HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process; `token` is valid for a write.
    if unsafe { th::OpenProcessToken(th::GetCurrentProcess(), sec::TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_error());
    }
    // SAFETY: a fresh handle owned from here on.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut buf = vec![0u64; 64];
    let mut len = 0u32;
    // SAFETY: `buf` is writable for its size in bytes; `len` receives the size used.
    let ok = unsafe {
        sec::GetTokenInformation(
            token.as_raw_handle(),
            sec::TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    // SAFETY: GetTokenInformation(TokenUser) wrote a TOKEN_USER at the start of the (8-byte
    // aligned) buffer, whose SID points inside it.
    let sid = unsafe { (*(buf.as_ptr() as *const sec::TOKEN_USER)).User.Sid };
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is valid (above); `text` receives a LocalAlloc'd string.
    if unsafe { authz::ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(last_error());
    }
    // SAFETY: `text` is a NUL-terminated wide string allocated by the call above.
    let s = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
    };
    // SAFETY: allocated by ConvertSidToStringSidW, freed once.
    unsafe { f::LocalFree(text.cast()) };
    Ok(s)
}

/// `D:P(A;;GA;;;<SID>)`: a protected DACL with one entry, all access for this user.
fn owner_only() -> io::Result<SecurityDescriptor> {
    let sddl = wide(&format!("D:P(A;;GA;;;{})", current_user_sid()?));
    let mut sd: sec::PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `sddl` is a NUL-terminated wide string; `sd` receives a LocalAlloc'd descriptor.
    let ok = unsafe {
        authz::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.as_ptr(), authz::SDDL_REVISION_1, &mut sd, std::ptr::null_mut())
    };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(SecurityDescriptor(sd))
}

// ---------------------------------------------------------------------------------------------
// PipeListener
// ---------------------------------------------------------------------------------------------

/// A pipe instance waiting for its client.
struct Pending {
    /// The instance; taken out once its client is accepted.
    handle: Option<OwnedHandle>,
    /// Boxed: the kernel writes it until the connect completes or is cancelled.
    ov: Box<wio::OVERLAPPED>,
    /// The client was there before the wait started (`ERROR_PIPE_CONNECTED`): the connect
    /// never went to the kernel, so `ov` says nothing (under Wine it stays "pending").
    connected: bool,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("handle", &self.handle).finish_non_exhaustive()
    }
}

// SAFETY: the OVERLAPPED only holds the listener's event handle and kernel status; it is used
// under the listener's lock.
unsafe impl Send for Pending {}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.connected {
            return;
        }
        let Some(h) = self.handle.as_ref().map(|h| h.as_raw_handle()) else { return };
        let mut n = 0u32;
        // SAFETY: cancels this instance's connect and waits until the kernel is done with `ov`.
        unsafe {
            wio::CancelIoEx(h, &*self.ov);
            wio::GetOverlappedResult(h, &*self.ov, &mut n, 1);
        }
    }
}

#[derive(Debug)]
struct ListenerInner {
    name: String,
    security: SecurityDescriptor,
    /// Set (manual reset) when the pending instance has a client, or to wake waiters.
    event: OwnedHandle,
    pending: Mutex<Option<Pending>>,
    nonblocking: AtomicBool,
}

impl Drop for ListenerInner {
    fn drop(&mut self) {
        super::ready::forget(self.event.as_raw_handle() as RawDescriptor);
    }
}

/// A named-pipe server: one instance always waits for the next client. The first instance is
/// created with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so binding a name that a live server holds
/// fails; every instance rejects remote clients and carries an owner-only DACL.
#[derive(Debug, Clone)]
pub struct PipeListener {
    inner: Arc<ListenerInner>,
}

impl PipeListener {
    /// Serves `\\.\pipe\<name>`: this user alone may connect.
    pub fn bind(name: &str) -> io::Result<PipeListener> {
        let security = owner_only()?;
        let event = new_event(true)?;
        let l = PipeListener {
            inner: Arc::new(ListenerInner {
                name: name.to_owned(),
                security,
                event,
                pending: Mutex::new(None),
                nonblocking: AtomicBool::new(false),
            }),
        };
        let first = l.instance(true).map_err(|e| {
            if e.raw_os_error() == Some(f::ERROR_ACCESS_DENIED as i32) {
                io::Error::new(io::ErrorKind::AddrInUse, format!("{PIPE_PREFIX}{name} is in use by a live server (or not this user's)"))
            } else {
                e
            }
        })?;
        *l.inner.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(first);
        Ok(l)
    }

    /// Creates an instance and starts waiting for its client.
    fn instance(&self, first: bool) -> io::Result<Pending> {
        let path = pipe_path(&self.inner.name);
        let sa = sec::SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<sec::SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.inner.security.0,
            bInheritHandle: 0,
        };
        let mut open = fs::PIPE_ACCESS_DUPLEX | fs::FILE_FLAG_OVERLAPPED;
        if first {
            open |= fs::FILE_FLAG_FIRST_PIPE_INSTANCE;
        }
        // SAFETY: `path` is a NUL-terminated wide string; `sa` and its descriptor outlive the call.
        let h = unsafe {
            pipes::CreateNamedPipeW(
                path.as_ptr(),
                open,
                pipes::PIPE_TYPE_BYTE | pipes::PIPE_READMODE_BYTE | pipes::PIPE_WAIT | pipes::PIPE_REJECT_REMOTE_CLIENTS,
                pipes::PIPE_UNLIMITED_INSTANCES,
                PIPE_BUFFER,
                PIPE_BUFFER,
                0,
                &sa,
            )
        };
        if h == f::INVALID_HANDLE_VALUE {
            return Err(last_error());
        }
        // SAFETY: a fresh handle owned from here on.
        let handle = unsafe { OwnedHandle::from_raw_handle(h) };
        // SAFETY: an all-zero OVERLAPPED is a valid start value.
        let mut ov: Box<wio::OVERLAPPED> = Box::new(unsafe { std::mem::zeroed() });
        ov.hEvent = self.inner.event.as_raw_handle();
        // SAFETY: resets the listener's own event before the new wait starts.
        unsafe { th::ResetEvent(ov.hEvent) };
        let mut connected = false;
        // SAFETY: `ov` is boxed and kept with the handle until the connect is complete or
        // cancelled (Pending's drop).
        if unsafe { pipes::ConnectNamedPipe(h, &mut *ov) } != 0 {
            // Completed at once: a client is there.
            // SAFETY: the listener's own event.
            unsafe { th::SetEvent(ov.hEvent) };
        } else {
            // SAFETY: GetLastError has no preconditions.
            match unsafe { f::GetLastError() } {
                f::ERROR_IO_PENDING => {}
                // A client came between create and connect: ready now.
                // SAFETY: the listener's own event.
                f::ERROR_PIPE_CONNECTED => {
                    connected = true;
                    // SAFETY: the listener's own event.
                    unsafe { th::SetEvent(ov.hEvent) };
                }
                err => return Err(io::Error::from_raw_os_error(err as i32)),
            }
        }
        Ok(Pending { handle: Some(handle), ov, connected })
    }

    /// The bare pipe name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The event set while a client waits to be accepted (or a shutdown woke waiters).
    pub(crate) fn event(&self) -> RawDescriptor {
        self.inner.event.as_raw_handle() as RawDescriptor
    }

    /// Non-blocking mode: [`accept`](Self::accept) returns `WouldBlock` when no client waits.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// A second handle to the same listener.
    pub fn try_clone(&self) -> io::Result<PipeListener> {
        Ok(self.clone())
    }

    /// Accepts the next client (waiting for one unless non-blocking).
    pub fn accept(&self) -> io::Result<PipeStream> {
        loop {
            if !self.inner.nonblocking.load(Ordering::Relaxed) {
                // SAFETY: the listener's own event.
                unsafe { th::WaitForSingleObject(self.inner.event.as_raw_handle(), th::INFINITE) };
            }
            match self.accept_nonblocking() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.inner.nonblocking.load(Ordering::Relaxed) => {
                    // Woken without a client (a shutdown): look again shortly.
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => return r,
            }
        }
    }

    /// Accepts a client that already waits: `WouldBlock` when none does.
    pub(crate) fn accept_nonblocking(&self) -> io::Result<PipeStream> {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_none() {
            *pending = Some(self.instance(false)?);
        }
        let p = pending.as_mut().expect("set above");
        let h = p.handle.as_ref().map_or(f::INVALID_HANDLE_VALUE, |h| h.as_raw_handle());
        let mut n = 0u32;
        // SAFETY: `ov` belongs to this instance's connect; bWait FALSE only reads its status.
        if !p.connected && unsafe { wio::GetOverlappedResult(h, &*p.ov, &mut n, 0) } == 0 {
            // SAFETY: GetLastError has no preconditions.
            let err = unsafe { f::GetLastError() };
            if err == f::ERROR_IO_INCOMPLETE {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // This instance failed (its client left at once, say): start a fresh one.
            *pending = None;
            *pending = Some(self.instance(false)?);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // The connect is complete: the instance leaves its Pending without a cancel.
        let handle = p.handle.take().ok_or_else(|| io::Error::other("pipe instance missing"))?;
        // A failure here is tried again by the next accept.
        *pending = self.instance(false).ok();
        Ok(PipeStream::from_handle(handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this runs under Wine (its ntdll exports `wine_get_version`).
    fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; ntdll is loaded in every process.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    fn name(tag: &str) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        format!("rp-pipe-unit-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn a_live_name_cannot_be_bound_twice_and_clients_connect_one_after_another() {
        let n = name("bind");
        let l = PipeListener::bind(&n).unwrap();
        // Wine 8.0 does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE; Windows does.
        if !under_wine() {
            assert_eq!(PipeListener::bind(&n).unwrap_err().kind(), io::ErrorKind::AddrInUse);
        }
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let n = n.clone();
                std::thread::spawn(move || PipeStream::connect(&n, Duration::from_secs(5)))
            })
            .collect();
        let accepting = std::thread::spawn(move || {
            let mut accepted = Vec::new();
            for _ in 0..8 {
                let s = l.accept().unwrap();
                assert_eq!(s.peer_pid().unwrap(), std::process::id());
                accepted.push(s);
            }
            accepted
        });
        for c in clients {
            c.join().unwrap().unwrap();
        }
        assert_eq!(accepting.join().unwrap().len(), 8);
    }

    #[test]
    fn shutting_the_server_end_ends_the_stream_after_what_was_written() {
        let n = name("shut");
        let l = PipeListener::bind(&n).unwrap();
        let mut c = PipeStream::connect(&n, Duration::from_secs(5)).unwrap();
        let mut s = l.accept().unwrap();
        s.write_all(b"bye").unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        assert!(peer_gone(c.raw()));
    }
}
