//! [`PipeListener`]: named-pipe instances created owner-only (a DACL granting this user alone),
//! the first one with `FILE_FLAG_FIRST_PIPE_INSTANCE`, all rejecting remote clients, each
//! waiting for its client with an overlapped `ConnectNamedPipe`.

use std::io;
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

use super::pipe::*;
use super::RawDescriptor;

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
        // SAFETY: cancels this instance's connect (a completed one is left as it is).
        unsafe { wio::CancelIoEx(h, &*self.ov) };
        // The kernel writes `ov` until the cancel completes. A waiting GetOverlappedResult
        // would wait on `ov.hEvent`, the listener's event, which may be set already (a client
        // waiting, a wake-up) and then return at once, before the kernel is done: so the
        // status is polled instead. Should it not settle, `ov` is leaked rather than freed.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut n = 0u32;
            // SAFETY: this instance's connect; bWait FALSE only reads its status.
            let done = unsafe { wio::GetOverlappedResult(h, &*self.ov, &mut n, 0) } != 0
                // SAFETY: GetLastError has no preconditions.
                || unsafe { f::GetLastError() } != f::ERROR_IO_INCOMPLETE;
            if done {
                return;
            }
            if Instant::now() >= deadline {
                // SAFETY: an all-zero OVERLAPPED is a valid value; the leaked one stays the
                // kernel's.
                let spare = Box::new(unsafe { std::mem::zeroed() });
                Box::leak(std::mem::replace(&mut self.ov, spare));
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
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
        // The pending instance's connect signals `event`: it is cancelled and waited for while
        // the event is still open (the fields, `event` first, drop after this).
        drop(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()).take());
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
    use std::io::{Read, Write};

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
