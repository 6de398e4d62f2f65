//! Arrival watches: a read of zero bytes kept in flight on a pipe or connected socket, so that
//! one thread can wait for data on several objects at once with `WaitForMultipleObjects`
//! (used by the readiness sets and the servers' doorbells in `ready`).

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::Networking::WinSock as ws;
use windows_sys::Win32::System::Threading as th;
use windows_sys::Win32::System::IO as wio;

use super::pipe::{new_event, start_zero_read};
use super::ready::readable;
use super::{Kind, RawDescriptor};

/// What a watch says about its object.
pub(super) enum Arm {
    /// Nothing to read yet: wait on this event, set when data arrives (or the stream ends).
    Wait(f::HANDLE),
    /// A read would return at once.
    Ready,
    /// The object cannot be watched this way: look at it again after a pause.
    Look,
}

/// A read of zero bytes kept in flight on one pipe or connected socket, so that a thread
/// watching several objects can wait for data with `WaitForMultipleObjects` instead of looking
/// at each. Its event is set once data arrives, the stream ends, or the read is cancelled (a
/// shutdown). Dropping it cancels the read and waits until the system is done with it.
pub(super) struct ArrivalWatch {
    raw: RawDescriptor,
    kind: Kind,
    event: OwnedHandle,
    /// Boxed: the system writes into it until the read completes.
    ov: Box<wio::OVERLAPPED>,
    buf: Box<[u8; 1]>,
    /// The handle (or socket) of the read in flight, if one is.
    pending: Option<f::HANDLE>,
    /// A read of zero bytes could not be kept in flight on this object: it is looked at.
    broken: bool,
}

impl std::fmt::Debug for ArrivalWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrivalWatch").field("raw", &self.raw).field("pending", &self.pending.is_some()).finish()
    }
}

// SAFETY: the raw handle and the OVERLAPPED are only used through `&mut self` (callers hold the
// watch under a lock), and Win32 lets any thread use them.
unsafe impl Send for ArrivalWatch {}

impl ArrivalWatch {
    /// A watch of the pipe or socket `raw` (nothing is read until [`arm`](Self::arm)).
    pub(super) fn new(raw: RawDescriptor, kind: Kind) -> io::Result<ArrivalWatch> {
        // SAFETY: an all-zero OVERLAPPED is a valid start value.
        let ov = Box::new(unsafe { std::mem::zeroed::<wio::OVERLAPPED>() });
        let broken = kind == Kind::Other;
        Ok(ArrivalWatch { raw, kind, event: new_event(true)?, ov, buf: Box::new([0]), pending: None, broken })
    }

    /// Whether the read is still in flight (the system writes its status when it completes).
    fn in_flight(&self) -> bool {
        // SAFETY: a read of memory the watch owns; volatile, as the system writes it.
        unsafe { std::ptr::read_volatile(&self.ov.Internal) == f::STATUS_PENDING as usize }
    }

    /// Makes sure the zero-byte read is in flight, and says what to do.
    pub(super) fn arm(&mut self) -> Arm {
        if self.pending.is_some() {
            if self.in_flight() {
                return Arm::Wait(self.event.as_raw_handle());
            }
            self.pending = None; // done: data came, or the stream ended, or a cancel
        }
        if readable(self.raw) {
            return Arm::Ready;
        }
        if self.broken {
            return Arm::Look;
        }
        let event = self.event.as_raw_handle();
        // SAFETY: no operation uses `ov` (none is in flight), and the watch's own event.
        unsafe {
            *self.ov = std::mem::zeroed();
            th::ResetEvent(event);
        }
        self.ov.hEvent = event;
        let buf = self.buf.as_mut_ptr();
        let ov: *mut wio::OVERLAPPED = &mut *self.ov;
        // SAFETY: `buf` and `ov` are boxed and stay in place until the read is complete,
        // which `drop` waits for.
        let started = match self.kind {
            Kind::Pipe => unsafe { start_zero_read(self.raw, buf, ov) },
            _ => unsafe { start_zero_recv(self.raw, buf, ov) },
        };
        match started {
            Ok(Some(h)) => {
                self.pending = Some(h);
                Arm::Wait(event)
            }
            // Completed at once, or failed: a read returns at once too, unless this object
            // does not do zero-byte reads the way they are meant; then it is looked at.
            Ok(None) | Err(_) if readable(self.raw) => Arm::Ready,
            Ok(None) | Err(_) => {
                self.broken = true;
                Arm::Look
            }
        }
    }
}

impl Drop for ArrivalWatch {
    fn drop(&mut self) {
        let Some(h) = self.pending else { return };
        // SAFETY: cancels this watch's read only; on an object closed meanwhile the read is
        // already over (and a handle value since reused has no operation with this OVERLAPPED).
        unsafe { wio::CancelIoEx(h, &*self.ov) };
        for _ in 0..50 {
            if !self.in_flight() {
                return;
            }
            // SAFETY: the watch's own event, set when the read completes.
            unsafe { th::WaitForSingleObject(self.event.as_raw_handle(), 100) };
        }
        // The system never finished with the read: the memory it may still write to stays
        // allocated (its event may close: the read holds the event object itself).
        // SAFETY: an all-zero OVERLAPPED is a valid value.
        let spare = Box::new(unsafe { std::mem::zeroed::<wio::OVERLAPPED>() });
        std::mem::forget(std::mem::replace(&mut self.ov, spare));
        std::mem::forget(std::mem::replace(&mut self.buf, Box::new([0])));
    }
}

/// Starts a receive of zero bytes on the connected socket `raw` with `ov` (at rest, its event
/// reset): it completes when data arrives and takes nothing. `Ok(Some(h))`: in flight on `h`
/// (the socket); `Ok(None)`: completed at once.
///
/// # Safety
/// `buf` and `ov` must stay in place, untouched, until the receive is complete.
unsafe fn start_zero_recv(raw: RawDescriptor, buf: *mut u8, ov: *mut wio::OVERLAPPED) -> io::Result<Option<f::HANDLE>> {
    let wsabuf = ws::WSABUF { len: 0, buf };
    let mut flags = 0u32;
    // SAFETY: the WSABUF is captured by the call; `buf` and `ov` per the contract; an invalid
    // socket only fails.
    let rc = unsafe { ws::WSARecv(raw as ws::SOCKET, &wsabuf, 1, std::ptr::null_mut(), &mut flags, ov, None) };
    if rc == 0 {
        return Ok(None);
    }
    // SAFETY: WSAGetLastError has no preconditions.
    match unsafe { ws::WSAGetLastError() } {
        ws::WSA_IO_PENDING => Ok(Some(raw as f::HANDLE)),
        err => Err(io::Error::from_raw_os_error(err)),
    }
}
