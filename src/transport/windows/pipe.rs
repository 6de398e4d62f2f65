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
use windows_sys::Win32::Storage::FileSystem as fs;
use windows_sys::Win32::System::Pipes as pipes;
use windows_sys::Win32::System::Threading as th;
use windows_sys::Win32::System::IO as wio;

use super::pipe_listener::PipeListener;
use super::RawDescriptor;
use crate::error::{Error, Result};

/// The prefix of every pipe name in the kernel's namespace.
pub(super) const PIPE_PREFIX: &str = r"\\.\pipe\";
/// Longest pipe name Windows accepts, prefix included (characters).
const MAX_PIPE_NAME: usize = 256;
/// Buffer sizes asked of the pipe system per instance (a hint; writes wait for the reader
/// once this much is unread).
pub(super) const PIPE_BUFFER: u32 = 64 * 1024;

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

pub(super) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

pub(super) fn pipe_path(name: &str) -> Vec<u16> {
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

pub(super) fn last_error() -> io::Error {
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

/// Waits up to `timeout` (`None` = forever) until a read would return at once (data, the end
/// of the stream, an error or a shutdown); false on timeout. The wait is a read of zero bytes,
/// which the system completes when data arrives and which takes nothing: the pipe is not
/// looked at in between, and a shutdown cancels the wait as it cancels a read.
pub(crate) fn wait_readable(raw: RawDescriptor, timeout: Option<Duration>) -> bool {
    if readable_now(raw) {
        return true;
    }
    if timeout == Some(Duration::ZERO) {
        return false;
    }
    // Not a pipe (any more): a read fails at once.
    let Some(pipe) = lookup(raw) else { return true };
    let Some(h) = pipe.get() else { return true };
    let mut none = [0u8; 1];
    let r = overlapped(h, timeout, || marked(&SHUT_READ, raw), |ov| {
        // SAFETY: a read of zero bytes into `none`, which outlives the operation (the helper
        // waits for its completion before returning).
        unsafe { fs::ReadFile(h, none.as_mut_ptr(), 0, std::ptr::null_mut(), ov) }
    });
    match r {
        // Data came, or the read failed (the end of the stream, an error): a read returns
        // either at once.
        Ok(_) | Err(Early::Failed(_)) => true,
        Err(Early::Cancelled) => readable_now(raw),
    }
}

/// Starts a read of zero bytes on the pipe `raw` with `ov` (at rest, its event reset): it
/// completes when data arrives and takes nothing. `Ok(Some(h))`: in flight on the pipe handle
/// `h`; `Ok(None)`: completed at once.
///
/// # Safety
/// `buf` and `ov` must stay in place, untouched, until the read is complete.
pub(crate) unsafe fn start_zero_read(raw: RawDescriptor, buf: *mut u8, ov: *mut wio::OVERLAPPED) -> io::Result<Option<f::HANDLE>> {
    let pipe = lookup(raw).ok_or_else(not_a_pipe)?;
    let h = pipe.get().ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
    // SAFETY: `h` is held open by `pipe` during the call; `buf` and `ov` per the contract.
    if unsafe { fs::ReadFile(h, buf, 0, std::ptr::null_mut(), ov) } != 0 {
        return Ok(None);
    }
    // SAFETY: GetLastError has no preconditions.
    match unsafe { f::GetLastError() } {
        f::ERROR_IO_PENDING => Ok(Some(h)),
        err => Err(io::Error::from_raw_os_error(err as i32)),
    }
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
