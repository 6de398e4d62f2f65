//! Readiness on Windows: event `HANDLE`s an event loop waits on with
//! `WaitForMultipleObjects`, the waits librp makes itself, and the doorbells through which the
//! servers' mio poller learns that a pipe or socket is readable.
//!
//! A pipe tells nobody when data arrives; a read of zero bytes, which the system completes
//! when data arrives and which takes nothing, stands in: a wait on one pipe is such a read, and
//! a readiness set and the doorbells' thread keep one in flight per pipe and connected socket
//! and wait on their events together with the event members (`WaitForMultipleObjects`). What
//! cannot be waited on that way is looked at every millisecond: a set's members while one is
//! readable (until none is: nothing tells when a reader took the data), writes waiting for
//! room, objects beyond the 64 one wait takes, and any object on which a zero-byte read does
//! not stay in flight.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::Threading as th;

use super::arrival::{Arm, ArrivalWatch};
use super::pipe::{new_event, readable_now as pipe_readable, wait_ms};
use super::{kind, Kind, RawDescriptor};
use crate::error::{Error, Result};

/// The pause between two looks at what cannot be waited on.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Whether a socket is ready for `events` (`POLLRDNORM`, `POLLWRNORM`) within `ms`; a hang-up or
/// an error counts as ready.
pub(crate) fn socket_ready(raw: RawDescriptor, events: i16, ms: i32) -> bool {
    let mut pfd = ws::WSAPOLLFD { fd: raw as ws::SOCKET, events, revents: 0 };
    // SAFETY: one valid WSAPOLLFD for the duration of the call.
    unsafe { ws::WSAPoll(&mut pfd, 1, ms) > 0 }
}

/// Whether an event is set.
fn event_set(raw: RawDescriptor) -> bool {
    // SAFETY: a zero wait on a handle; an invalid one only fails.
    unsafe { th::WaitForSingleObject(raw as f::HANDLE, 0) == f::WAIT_OBJECT_0 }
}

/// Sets an event.
pub(crate) fn set_event(raw: RawDescriptor) -> io::Result<()> {
    // SAFETY: an invalid handle only fails.
    if unsafe { th::SetEvent(raw as f::HANDLE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a read of `raw` (or an accept, for a listener's event) would return at once.
pub(super) fn readable(raw: RawDescriptor) -> bool {
    match kind(raw) {
        Kind::Pipe => pipe_readable(raw),
        Kind::Socket => socket_ready(raw, ws::POLLRDNORM, 0),
        Kind::Other => event_set(raw),
    }
}

/// Waits up to `timeout` (`None` = forever) for the socket `raw` to be writable (or hung up);
/// false on timeout.
pub(crate) fn wait_writable(raw: RawDescriptor, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    Ok(socket_ready(raw, ws::POLLWRNORM, ms))
}

/// Waits up to `timeout` (`None` = forever) for `raw` to be readable (or at its end); false on
/// timeout.
pub(crate) fn wait_readable(raw: RawDescriptor, timeout: Option<Duration>) -> io::Result<bool> {
    // A readiness set's event may lag its members by a look; librp's own waits look themselves.
    let set = sets().lock().unwrap_or_else(|e| e.into_inner()).get(&raw).and_then(std::sync::Weak::upgrade);
    if let Some(set) = set {
        return Ok(set.wait(timeout));
    }
    match kind(raw) {
        // SAFETY: waits on a handle; an invalid one fails (reported).
        Kind::Other => match unsafe { th::WaitForSingleObject(raw as f::HANDLE, wait_ms(timeout)) } {
            f::WAIT_OBJECT_0 => Ok(true),
            f::WAIT_TIMEOUT => Ok(false),
            _ => Err(io::Error::last_os_error()),
        },
        Kind::Socket => {
            let deadline = timeout.map(|t| Instant::now() + t);
            loop {
                let ms = deadline.map_or(-1, |d| wait_ms(Some(d.saturating_duration_since(Instant::now()))).min(i32::MAX as u32) as i32);
                if socket_ready(raw, ws::POLLRDNORM, ms) {
                    return Ok(true);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
        }
        Kind::Pipe => Ok(super::pipe::wait_readable(raw, timeout)),
    }
}

// ---------------------------------------------------------------------------------------------
// Signals and sets an application's event loop can wait on
// ---------------------------------------------------------------------------------------------

/// An event set exactly while its owner says something is ready: the one mechanism behind every
/// handle librp gives an event loop, level-triggered (manual reset) even for what librp already
/// holds in memory. [`set`](Self::set) makes a system call only when the state changes.
#[derive(Debug)]
pub struct ReadySignal {
    event: OwnedHandle,
    raised: AtomicBool,
}

impl ReadySignal {
    /// A lowered signal.
    pub fn new() -> Result<ReadySignal> {
        let event = new_event(true).map_err(|e| Error::io("readiness signal", e))?;
        Ok(ReadySignal { event, raised: AtomicBool::new(false) })
    }

    /// Raises (`ready`) or lowers the signal. Callers serialise it with what decides `ready`.
    pub fn set(&self, ready: bool) {
        if ready == self.raised.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the signal's own event.
        unsafe {
            if ready {
                th::SetEvent(self.event.as_raw_handle());
            } else {
                th::ResetEvent(self.event.as_raw_handle());
            }
        }
        self.raised.store(ready, Ordering::Relaxed);
    }

    /// The event, set while the signal is raised. Owned by the signal.
    pub fn fd(&self) -> RawDescriptor {
        self.event.as_raw_handle() as RawDescriptor
    }
}

/// A wake-up between threads that an event loop can wait on: [`notify`](Self::notify) sets
/// the event until [`drain`](Self::drain). Never blocks.
#[derive(Debug)]
pub struct WakePair {
    event: OwnedHandle,
}

impl WakePair {
    /// A pair with nothing pending.
    pub fn new() -> io::Result<WakePair> {
        Ok(WakePair { event: new_event(true)? })
    }

    /// Sets the event.
    pub fn notify(&self) {
        // SAFETY: the pair's own event.
        unsafe { th::SetEvent(self.event.as_raw_handle()) };
    }

    /// Takes every pending notification.
    pub fn drain(&self) {
        // SAFETY: the pair's own event.
        unsafe { th::ResetEvent(self.event.as_raw_handle()) };
    }

    /// The event to wait on (owned by the pair).
    pub fn descriptor(&self) -> RawDescriptor {
        self.event.as_raw_handle() as RawDescriptor
    }
}

#[derive(Debug)]
struct SetInner {
    members: Mutex<Vec<RawDescriptor>>,
    /// A zero-byte read per pipe member, through which a wait learns that data came.
    watches: Mutex<HashMap<RawDescriptor, Arc<Mutex<ArrivalWatch>>>>,
    /// The events of the threads waiting on the set now, set when the members change.
    waiters: Mutex<Vec<usize>>,
    event: OwnedHandle,
    dropped: AtomicBool,
}

thread_local! {
    /// The calling thread's wake-up while it waits on a readiness set (auto reset).
    static WAIT_EVENT: Option<OwnedHandle> = new_event(false).ok();
}

/// The most handles one `WaitForMultipleObjects` takes.
const MAX_WAIT_OBJECTS: usize = 64;

impl SetInner {
    fn any_ready(&self) -> bool {
        self.members.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|&m| readable(m))
    }

    /// Sets or resets the event after a look at the members; whether any is ready.
    fn refresh(&self) -> bool {
        let ready = self.any_ready();
        let h = self.event.as_raw_handle();
        // SAFETY: the set's own event.
        unsafe {
            if ready {
                th::SetEvent(h);
            } else {
                th::ResetEvent(h);
            }
        }
        ready
    }

    /// Waits up to `timeout` (`None` = forever) for the members to be readable.
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.refresh() {
                return true;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return false;
            }
            self.wait_for_change(left);
        }
    }

    /// Waits up to `timeout` for something that may make a member readable: data arriving on
    /// a pipe or socket member (its zero-byte read completes), an event member set, or the
    /// members changed. A member that cannot be watched that way ends the wait after
    /// [`FIRST_PAUSE`] for a look. Returns early, without waiting, when a member is readable
    /// already.
    fn wait_for_change(&self, timeout: Option<Duration>) {
        let Some(own) = WAIT_EVENT.with(|e| e.as_ref().map(|e| e.as_raw_handle() as usize)) else {
            std::thread::sleep(timeout.map_or(FIRST_PAUSE, |t| t.min(FIRST_PAUSE)));
            return;
        };
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).push(own);
        let mut handles: Vec<f::HANDLE> = vec![own as f::HANDLE];
        // Keeps the watches' events open through the wait, even if their member goes meanwhile.
        let mut held = Vec::new();
        let mut look = false;
        let mut ready = false;
        let members = self.members.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for m in members {
            match kind(m) {
                Kind::Other => handles.push(m as f::HANDLE),
                k => match self.watch(m, k) {
                    Some(watch) => match watch.lock().unwrap_or_else(|e| e.into_inner()).arm() {
                        Arm::Wait(event) => {
                            handles.push(event);
                            held.push(Arc::clone(&watch));
                        }
                        Arm::Ready => ready = true,
                        Arm::Look => look = true,
                    },
                    None => look = true,
                },
            }
        }
        if !ready {
            if handles.len() > MAX_WAIT_OBJECTS {
                handles.truncate(MAX_WAIT_OBJECTS);
                look = true;
            }
            let pause = timeout.map_or(FIRST_PAUSE, |t| t.min(FIRST_PAUSE));
            let wait = if look { Some(pause) } else { timeout };
            // SAFETY: the thread's own event and the watches held above are open for the wait;
            // a member event closed meanwhile makes the wait fail, never wait on freed memory.
            let woke = unsafe { th::WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, wait_ms(wait)) };
            if woke == f::WAIT_FAILED {
                std::thread::sleep(pause); // a member went without leaving the set: look again
            }
        }
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).retain(|&w| w != own);
        drop(held);
    }

    /// The watch of the pipe or socket member `m`, made on first use; `None` if none can be
    /// made.
    fn watch(&self, m: RawDescriptor, kind: Kind) -> Option<Arc<Mutex<ArrivalWatch>>> {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = watches.get(&m) {
            return Some(Arc::clone(w));
        }
        let w = Arc::new(Mutex::new(ArrivalWatch::new(m, kind).ok()?));
        watches.insert(m, Arc::clone(&w));
        Some(w)
    }

    /// Wakes the threads waiting on the set, to look at its members again.
    fn wake_waiters(&self) {
        for &w in self.waiters.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            // SAFETY: a waiting thread's own event, open while it is listed.
            unsafe { th::SetEvent(w as f::HANDLE) };
        }
    }
}

/// Every readiness set by its event, so that a wait on the event looks at the members.
fn sets() -> &'static Mutex<HashMap<RawDescriptor, std::sync::Weak<SetInner>>> {
    static SETS: OnceLock<Mutex<HashMap<RawDescriptor, std::sync::Weak<SetInner>>>> = OnceLock::new();
    SETS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A set of pipes, sockets and events that is one event: set while any member is readable.
/// The event ([`descriptor`](Self::descriptor)) is kept by a thread of the set's own, started
/// on the first call, which waits for data on the pipes and sockets and for the events, and
/// while a member is readable looks at the members every millisecond until none is;
/// [`wait`](Self::wait) waits the same way itself. Stops with the set.
#[derive(Debug)]
pub struct ReadinessSet {
    inner: Arc<SetInner>,
    watcher: OnceLock<()>,
}

impl ReadinessSet {
    /// A set over `members`.
    pub fn new(members: &[RawDescriptor]) -> io::Result<ReadinessSet> {
        let inner = Arc::new(SetInner {
            members: Mutex::new(members.to_vec()),
            watches: Mutex::new(HashMap::new()),
            waiters: Mutex::new(Vec::new()),
            event: new_event(true)?,
            dropped: AtomicBool::new(false),
        });
        let key = inner.event.as_raw_handle() as RawDescriptor;
        sets().lock().unwrap_or_else(|e| e.into_inner()).insert(key, Arc::downgrade(&inner));
        Ok(ReadinessSet { inner, watcher: OnceLock::new() })
    }

    /// Adds `member` to (or removes it from) the set.
    pub fn set_member(&self, member: RawDescriptor, on: bool) -> io::Result<()> {
        {
            let mut m = self.inner.members.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|&x| x != member);
            if on {
                m.push(member);
            }
        }
        if !on {
            // Its read is cancelled once no wait holds the watch (not under the lock).
            let gone = self.inner.watches.lock().unwrap_or_else(|e| e.into_inner()).remove(&member);
            drop(gone);
        }
        self.inner.wake_waiters();
        Ok(())
    }

    /// Waits up to `timeout` (`None` = forever) for a member to be readable; false on timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(self.inner.wait(timeout))
    }

    /// The set's event (owned by the set), set while a member is readable.
    pub fn descriptor(&self) -> RawDescriptor {
        self.inner.refresh();
        self.watcher.get_or_init(|| {
            let inner = Arc::clone(&self.inner);
            let _ = std::thread::Builder::new().name("rp-readiness".into()).spawn(move || {
                while !inner.dropped.load(Ordering::Relaxed) {
                    if inner.refresh() {
                        // Readable: the event stays set until a look finds nothing more.
                        std::thread::sleep(FIRST_PAUSE);
                    } else {
                        inner.wait_for_change(None);
                    }
                }
            });
        });
        self.inner.event.as_raw_handle() as RawDescriptor
    }
}

impl Drop for ReadinessSet {
    fn drop(&mut self) {
        self.inner.dropped.store(true, Ordering::Relaxed);
        self.inner.wake_waiters();
        sets().lock().unwrap_or_else(|e| e.into_inner()).remove(&(self.inner.event.as_raw_handle() as RawDescriptor));
    }
}

// ---------------------------------------------------------------------------------------------
// Doorbells: pipes and sockets in an event loop's mio poller
// ---------------------------------------------------------------------------------------------

/// One registration: the doorbell mio watches for the loop, and whether it may ring.
#[derive(Debug)]
struct Bell {
    socket: mio::net::UdpSocket,
    addr: SocketAddr,
    registry: mio::Registry,
    token: mio::Token,
    interest: mio::Interest,
    /// Rings when the registered object is readable; cleared by a ring, set again once the
    /// loop has read it down to `WouldBlock` (or registered it anew).
    armed: bool,
    /// A write found no room: the loop hears "writable" once there is room again.
    want_write: bool,
    /// What the registered object is.
    kind: Kind,
    /// For a pipe: the zero-byte read through which the ringer learns that data came.
    watch: Option<Arc<Mutex<ArrivalWatch>>>,
}

impl Bell {
    /// Takes the rings that were delivered and arms it again.
    fn rearm(&mut self) {
        let mut sink = [0u8; 16];
        while self.socket.recv_from(&mut sink).is_ok() {}
        self.armed = true;
    }

    /// Whether the registered object (`raw`) is readable now. If not, what the ringer can wait
    /// on for it goes to `handles` (a pipe's watch is kept in `held` through the wait), or
    /// `look` is set when it can only be looked at again.
    fn readable_or_wait(
        &mut self,
        raw: RawDescriptor,
        handles: &mut Vec<f::HANDLE>,
        held: &mut Vec<Arc<Mutex<ArrivalWatch>>>,
        look: &mut bool,
    ) -> bool {
        if self.kind == Kind::Other {
            let ready = event_set(raw);
            if !ready {
                handles.push(raw as f::HANDLE);
            }
            return ready;
        }
        if self.watch.is_none() {
            self.watch = ArrivalWatch::new(raw, self.kind).ok().map(|w| Arc::new(Mutex::new(w)));
        }
        let Some(watch) = &self.watch else {
            *look = true;
            return readable(raw);
        };
        let arm = watch.lock().unwrap_or_else(|e| e.into_inner()).arm();
        match arm {
            Arm::Wait(event) => {
                handles.push(event);
                held.push(Arc::clone(watch));
                false
            }
            Arm::Ready => true,
            Arm::Look => {
                *look = true;
                false
            }
        }
    }
}

/// Wakes the ringer to look at the registrations again (one changed, under the lock before
/// this call); not needed while it looks every [`FIRST_PAUSE`] anyway.
fn wake_ringer() {
    if RINGER_LOOKS.load(Ordering::Acquire) {
        return;
    }
    if let Some(Ok(event)) = RINGER_WAKE.get() {
        // SAFETY: the ringer's own event, never closed.
        unsafe { th::SetEvent(event.as_raw_handle()) };
    }
}

/// The ringer's wake-up (auto reset), made with the ringer.
static RINGER_WAKE: OnceLock<io::Result<OwnedHandle>> = OnceLock::new();
/// Whether the ringer's current wait ends after [`FIRST_PAUSE`] for a look (written under the
/// registrations' lock at the end of each pass over them). Many registrations (more than one
/// wait takes) then cost one pass a millisecond, not one per change.
static RINGER_LOOKS: AtomicBool = AtomicBool::new(false);

fn bells() -> &'static Mutex<HashMap<RawDescriptor, Bell>> {
    static BELLS: OnceLock<Mutex<HashMap<RawDescriptor, Bell>>> = OnceLock::new();
    BELLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Starts, once, the thread that rings the bells of readable registrations. It waits on the
/// registered events and on a zero-byte read per registered pipe and socket, with
/// `WaitForMultipleObjects`; writes waiting for room and registrations beyond what one wait
/// takes are looked at every [`FIRST_PAUSE`] instead.
fn start_ringer() -> io::Result<()> {
    static RINGER: OnceLock<io::Result<()>> = OnceLock::new();
    let started = RINGER.get_or_init(|| {
        let wake = match RINGER_WAKE.get_or_init(|| new_event(false)) {
            Ok(event) => event.as_raw_handle() as usize,
            Err(e) => return Err(io::Error::new(e.kind(), e.to_string())),
        };
        let sender = UdpSocket::bind("127.0.0.1:0")?;
        std::thread::Builder::new().name("rp-doorbells".into()).spawn(move || loop {
            let mut handles: Vec<f::HANDLE> = vec![wake as f::HANDLE];
            let mut held = Vec::new();
            let mut look = false;
            {
                let mut map = bells().lock().unwrap_or_else(|e| e.into_inner());
                for (&raw, bell) in map.iter_mut() {
                    if bell.armed && bell.interest.is_readable() && bell.readable_or_wait(raw, &mut handles, &mut held, &mut look) {
                        bell.armed = false;
                        let _ = sender.send_to(&[1], bell.addr);
                    }
                    if bell.want_write {
                        if writable(raw) {
                            bell.want_write = false;
                            let (token, interest) = (bell.token, bell_interest(bell.interest));
                            let _ = bell.registry.reregister(&mut bell.socket, token, interest);
                        } else {
                            look = true;
                        }
                    }
                }
                if handles.len() > MAX_WAIT_OBJECTS {
                    handles.truncate(MAX_WAIT_OBJECTS);
                    look = true;
                }
                RINGER_LOOKS.store(look, Ordering::Release);
            }
            let ms = if look { wait_ms(Some(FIRST_PAUSE)) } else { th::INFINITE };
            // SAFETY: the ringer's event and the watches held above are open for the wait; a
            // registered event closed meanwhile makes the wait fail, never wait on freed memory.
            let woke = unsafe { th::WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
            if woke == f::WAIT_FAILED {
                std::thread::sleep(FIRST_PAUSE); // closed before it was deregistered: look again
            }
            drop(held);
        })?;
        Ok(())
    });
    match started {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

/// What the doorbell is registered for: always readable (its rings), writable when the loop
/// wants to write (a UDP socket has room at once, so the loop tries).
fn bell_interest(interest: mio::Interest) -> mio::Interest {
    if interest.is_writable() {
        mio::Interest::READABLE | mio::Interest::WRITABLE
    } else {
        mio::Interest::READABLE
    }
}

/// Adds a pipe, socket or event to an event loop's poller: the loop gets `token` when it is
/// readable (through its doorbell), and at once when it asks for writable.
pub fn register(registry: &mio::Registry, socket: RawDescriptor, token: mio::Token, interest: mio::Interest) -> io::Result<()> {
    start_ringer()?;
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    udp.set_nonblocking(true)?;
    let addr = udp.local_addr()?;
    let mut bell_socket = mio::net::UdpSocket::from_std(udp);
    registry.register(&mut bell_socket, token, bell_interest(interest))?;
    let bell = Bell {
        socket: bell_socket,
        addr,
        registry: registry.try_clone()?,
        token,
        interest,
        armed: true,
        want_write: false,
        kind: kind(socket),
        watch: None,
    };
    let old = bells().lock().unwrap_or_else(|e| e.into_inner()).insert(socket, bell);
    if let Some(mut old) = old {
        let _ = old.registry.deregister(&mut old.socket);
    }
    wake_ringer();
    Ok(())
}

/// Changes what a registered pipe or socket is watched for (and arms it again).
pub fn reregister(registry: &mio::Registry, socket: RawDescriptor, token: mio::Token, interest: mio::Interest) -> io::Result<()> {
    let mut map = bells().lock().unwrap_or_else(|e| e.into_inner());
    let bell = map.get_mut(&socket).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not registered"))?;
    bell.token = token;
    bell.interest = interest;
    bell.rearm();
    let result = registry.reregister(&mut bell.socket, token, bell_interest(interest));
    drop(map);
    wake_ringer();
    result
}

/// Takes a pipe or socket out of an event loop's poller.
pub fn deregister(registry: &mio::Registry, socket: RawDescriptor) -> io::Result<()> {
    let removed = bells().lock().unwrap_or_else(|e| e.into_inner()).remove(&socket);
    wake_ringer();
    match removed {
        Some(mut bell) => registry.deregister(&mut bell.socket),
        None => Err(io::Error::new(io::ErrorKind::NotFound, "not registered")),
    }
}

/// The loop read `raw` down to `WouldBlock`: its bell may ring again.
pub(crate) fn rearm(raw: RawDescriptor) {
    if let Some(bell) = bells().lock().unwrap_or_else(|e| e.into_inner()).get_mut(&raw) {
        bell.rearm();
    } else {
        return;
    }
    wake_ringer();
}

/// A write to `raw` found no room: the loop hears "writable" once there is room again.
pub(crate) fn rearm_writable(raw: RawDescriptor) {
    if let Some(bell) = bells().lock().unwrap_or_else(|e| e.into_inner()).get_mut(&raw) {
        bell.want_write = true;
    } else {
        return;
    }
    wake_ringer();
}

/// Whether a write that never waits would take bytes now.
fn writable(raw: RawDescriptor) -> bool {
    match kind(raw) {
        Kind::Pipe => !super::pipe::write_in_flight(raw),
        Kind::Socket => socket_ready(raw, ws::POLLWRNORM, 0),
        Kind::Other => true,
    }
}

/// `raw` is being closed: its registration, if any, goes.
pub(crate) fn forget(raw: RawDescriptor) {
    let removed = bells().lock().unwrap_or_else(|e| e.into_inner()).remove(&raw);
    if let Some(mut bell) = removed {
        let _ = bell.registry.deregister(&mut bell.socket);
        wake_ringer();
    }
}
