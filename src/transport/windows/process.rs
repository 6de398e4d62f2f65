//! What Windows says about processes, the boot, and random bytes — the sources running-process
//! 4.10.21 reads on Windows, so the identity a probe answers with matches its.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::PathBuf;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation as f;
use windows_sys::Win32::Security::Cryptography as crypto;
use windows_sys::Win32::System::Registry as reg;
use windows_sys::Win32::System::Threading as th;

use crate::error::{Error, Result};

/// Opens process `pid` with `access`; `None` when it is gone or not ours to ask about.
fn open_process(pid: u32, access: th::PROCESS_ACCESS_RIGHTS) -> Option<OwnedHandle> {
    // SAFETY: OpenProcess takes no memory; failure is a NULL handle.
    let h = unsafe { th::OpenProcess(access, 0, pid) };
    // SAFETY: a fresh handle owned from here on.
    (!h.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(h) })
}

/// The executable of process `pid` (`None`: this process): its image path
/// (`QueryFullProcessImageNameW`); an empty path (which opens nothing) when the process is gone
/// or not ours to ask about.
pub fn process_exe(pid: Option<u32>) -> PathBuf {
    let Some(pid) = pid else {
        return std::env::current_exe().unwrap_or_default();
    };
    let Some(process) = open_process(pid, th::PROCESS_QUERY_LIMITED_INFORMATION) else {
        return PathBuf::new();
    };
    let mut buf = vec![0u16; 32768];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` is writable for `len` wide characters; `len` receives the length written.
    if unsafe { th::QueryFullProcessImageNameW(process.as_raw_handle(), th::PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len) } == 0 {
        return PathBuf::new();
    }
    buf.truncate(len as usize);
    PathBuf::from(String::from_utf16_lossy(&buf))
}

/// Whether a process `pid` is running (its exit code is still `STILL_ACTIVE`).
pub fn process_alive(pid: u32) -> bool {
    let Some(process) = (pid != 0).then(|| open_process(pid, th::PROCESS_QUERY_LIMITED_INFORMATION)).flatten() else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: `code` is valid for a write.
    unsafe { th::GetExitCodeProcess(process.as_raw_handle(), &mut code) != 0 && code == f::STILL_ACTIVE as u32 }
}

/// The boot id as running-process writes it on Windows: `windows-boot-<n>` with the boot counter
/// from the registry's `PrefetchParameters\BootId`, else from the kernel's telemetry record of
/// this process; where the system has neither (Wine),
/// `windows-boot-unavailable-<pid>-<unix nanos>`, fixed for the life of this process.
pub fn boot_id() -> Result<String> {
    static ID: OnceLock<String> = OnceLock::new();
    Ok(ID
        .get_or_init(|| match registry_boot_id().or_else(telemetry_boot_id) {
            Some(n) => format!("windows-boot-{n}"),
            None => {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
                format!("windows-boot-unavailable-{}-{nanos}", std::process::id())
            }
        })
        .clone())
}

fn registry_boot_id() -> Option<u32> {
    let key: Vec<u16> = "SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management\\PrefetchParameters"
        .encode_utf16()
        .chain(Some(0))
        .collect();
    let value: Vec<u16> = "BootId".encode_utf16().chain(Some(0)).collect();
    let mut data = 0u32;
    let mut len = std::mem::size_of::<u32>() as u32;
    // SAFETY: NUL-terminated wide strings; `data` is writable for `len` bytes.
    let rc = unsafe {
        reg::RegGetValueW(
            reg::HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            reg::RRF_RT_REG_DWORD,
            std::ptr::null_mut(),
            (&mut data as *mut u32).cast(),
            &mut len,
        )
    };
    (rc == f::ERROR_SUCCESS).then_some(data)
}

/// The boot counter in the kernel's telemetry record of this process
/// (`NtQueryInformationProcess` with `ProcessTelemetryIdInformation`). The record starts with
/// two 4-byte fields and six 8-byte ones, then the session id and the boot id (bytes 60..64);
/// strings of varying length follow, so its size is asked first (and once more if it grew).
fn telemetry_boot_id() -> Option<u32> {
    use windows_sys::Wdk::System::Threading::{NtQueryInformationProcess, ProcessTelemetryIdInformation};
    const BOOT_ID: std::ops::Range<usize> = 60..64;
    const MAX_RECORD: usize = 1 << 20;
    // SAFETY: the pseudo handle of this process, never closed.
    let process = unsafe { th::GetCurrentProcess() };
    let mut needed = 0u32;
    // SAFETY: no buffer (length 0) asks for the size; `needed` is valid for a write.
    unsafe { NtQueryInformationProcess(process, ProcessTelemetryIdInformation, std::ptr::null_mut(), 0, &mut needed) };
    for _ in 0..2 {
        let len = needed as usize;
        if !(BOOT_ID.end..=MAX_RECORD).contains(&len) {
            return None;
        }
        // u64 words: the record is 8-byte aligned.
        let mut record = vec![0u64; len.div_ceil(8)];
        let capacity = record.len() * 8;
        let mut returned = 0u32;
        // SAFETY: `record` is writable for `capacity` bytes; `returned` is valid for a write.
        let status = unsafe {
            NtQueryInformationProcess(process, ProcessTelemetryIdInformation, record.as_mut_ptr().cast(), capacity as u32, &mut returned)
        };
        if status >= 0 && returned as usize >= BOOT_ID.end {
            // SAFETY: `record` holds `capacity` initialized bytes.
            let bytes = unsafe { std::slice::from_raw_parts(record.as_ptr().cast::<u8>(), capacity) };
            return bytes.get(BOOT_ID)?.try_into().ok().map(u32::from_ne_bytes);
        }
        if returned as usize <= capacity {
            return None;
        }
        needed = returned;
    }
    None
}

/// Start time of the current process in Unix milliseconds (`GetProcessTimes`).
pub fn process_start_unix_ms() -> Result<u64> {
    let zero = f::FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the pseudo handle of this process; four FILETIMEs valid for writes.
    if unsafe { th::GetProcessTimes(th::GetCurrentProcess(), &mut created, &mut exited, &mut kernel, &mut user) } == 0 {
        return Err(Error::io("reading the process start time", std::io::Error::last_os_error()));
    }
    // 100 ns ticks since 1601-01-01; 11644473600 s separate that from the Unix epoch.
    let ticks = (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime);
    Ok((ticks / 10_000).saturating_sub(11_644_473_600_000))
}

/// Fills `buf` from the system's random source (`BCryptGenRandom`, system-preferred RNG).
pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    for chunk in buf.chunks_mut(u32::MAX as usize) {
        // SAFETY: `chunk` is writable for its length; no algorithm handle with the
        // system-preferred flag.
        let status = unsafe {
            crypto::BCryptGenRandom(std::ptr::null_mut(), chunk.as_mut_ptr(), chunk.len() as u32, crypto::BCRYPT_USE_SYSTEM_PREFERRED_RNG)
        };
        if status != 0 {
            return Err(std::io::Error::other(format!("BCryptGenRandom failed: NTSTATUS {status:#x}")));
        }
    }
    Ok(())
}
