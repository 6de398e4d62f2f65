//! Handing a connection to another process on Windows: the handle is duplicated into the
//! receiver (`DuplicateHandle`) and its value travels in `HandoffOffer.handle_value`, as
//! running-process does it. Windows has no descriptor passing over a stream (`SCM_RIGHTS`):
//! [`send_with_fd`] and [`recv_with_fd`] say so.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::System::Threading as th;

use super::{AsDescriptor, RawDescriptor};
use crate::error::{Error, Result};

/// Descriptors one received message may carry (none on Windows; kept for the same API).
pub const MAX_FDS_PER_MESSAGE: usize = 4;

fn no_descriptor_passing() -> Error {
    Error::invalid_argument(
        "descriptor passing (SCM_RIGHTS) does not exist on Windows; a handle is handed over with DuplicateHandle and HandoffOffer.handle_value",
    )
}

/// Not available on Windows (see the module docs).
pub fn send_with_fd(_socket: &impl AsDescriptor, _data: &[u8], _fd: &impl AsDescriptor) -> Result<usize> {
    Err(no_descriptor_passing())
}

/// Not available on Windows (see the module docs).
pub fn recv_with_fd(_socket: &impl AsDescriptor, _data: &mut [u8]) -> Result<(usize, Option<OwnedHandle>)> {
    Err(no_descriptor_passing())
}

/// Duplicates `source` (a handle of this process) into process `pid`, with the same access:
/// the value returned is valid in that process's handle table, not in this one. This process
/// keeps its own handle. `PermissionDenied` when the process may not be opened for handle
/// duplication, `NotFound` when it does not exist.
pub fn duplicate_handle_to(source: RawDescriptor, pid: u32) -> io::Result<u64> {
    // SAFETY: OpenProcess takes no memory; failure is a NULL handle.
    let target = unsafe { th::OpenProcess(th::PROCESS_DUP_HANDLE, 0, pid) };
    if target.is_null() {
        let e = io::Error::last_os_error();
        return Err(if e.kind() == io::ErrorKind::PermissionDenied {
            e
        } else {
            io::Error::new(io::ErrorKind::NotFound, format!("process {pid}: {e}"))
        });
    }
    // SAFETY: a fresh handle owned from here on.
    let target = unsafe { OwnedHandle::from_raw_handle(target) };
    let mut dup: f::HANDLE = std::ptr::null_mut();
    // SAFETY: `source` is open in this process for the call; `dup` is valid for a write.
    let ok = unsafe {
        f::DuplicateHandle(
            th::GetCurrentProcess(),
            source as f::HANDLE,
            target.as_raw_handle(),
            &mut dup,
            0,
            0,
            f::DUPLICATE_SAME_ACCESS,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(dup as usize as u64)
}

/// Whether `value` names a named pipe in this process's handle table.
pub fn names_pipe(value: u64) -> bool {
    value != 0 && value <= isize::MAX as u64 && super::pipe::is_pipe(value as RawDescriptor)
}

/// Takes ownership of the pipe handle `value` (one another process duplicated into this one):
/// closed when the returned handle drops. Fails unless `value` names a named pipe here.
pub fn adopt_handle(value: u64) -> io::Result<OwnedHandle> {
    if !names_pipe(value) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{value:#x} is not a pipe handle in this process")));
    }
    // SAFETY: the value names an open pipe handle of this process, which the sender gave to
    // this process to own; from here it is closed exactly once, by the OwnedHandle.
    Ok(unsafe { OwnedHandle::from_raw_handle(value as usize as f::HANDLE) })
}
