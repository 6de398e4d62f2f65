//! What the kernel says about processes: from `/proc` on Linux, from `proc_pidpath`,
//! `proc_pidinfo` and `sysctl` on macOS.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The executable of process `pid` (`None`: this process) as a path that opens it
/// (`/proc/PID/exe`), valid even when the file was replaced or deleted since it started.
#[cfg(target_os = "linux")]
pub fn process_exe(pid: Option<u32>) -> PathBuf {
    match pid {
        None => PathBuf::from("/proc/self/exe"),
        Some(pid) => PathBuf::from(format!("/proc/{pid}/exe")),
    }
}

/// Whether a process `pid` is running on this machine.
#[cfg(target_os = "linux")]
pub fn process_alive(pid: u32) -> bool {
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The kernel's id of the current boot, without the trailing newline.
#[cfg(target_os = "linux")]
pub fn boot_id() -> Result<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|e| Error::io("reading boot_id", e))?;
    Ok(text.trim_end().to_owned())
}

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel reports them in
/// USER_HZ, which is 100 on every architecture Linux ships today (the ABI fixes it).
#[cfg(target_os = "linux")]
const USER_HZ: u64 = 100;

/// Start time of the current process in Unix milliseconds: boot time (`btime` in `/proc/stat`)
/// plus the process start offset (field 22 of `/proc/self/stat`).
#[cfg(target_os = "linux")]
pub fn process_start_unix_ms() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| Error::io("reading /proc/self/stat", e))?;
    // The command name (field 2) may contain spaces and parentheses: fields after it are
    // counted from the last ')'.
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| Error::invalid_argument("unexpected /proc/self/stat format"))?;
    // `after_comm` starts with field 3, so field 22 is the 20th item.
    let start_ticks: u64 = after_comm
        .split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::invalid_argument("no start time in /proc/self/stat"))?;
    let proc_stat = std::fs::read_to_string("/proc/stat").map_err(|e| Error::io("reading /proc/stat", e))?;
    let boot_secs: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::invalid_argument("no btime in /proc/stat"))?;
    Ok(boot_secs * 1000 + start_ticks * 1000 / USER_HZ)
}

/// The executable of process `pid` (`None`: this process), from `proc_pidpath`; an empty path
/// (which opens nothing) when the process is gone or not ours to ask about.
#[cfg(target_os = "macos")]
pub fn process_exe(pid: Option<u32>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let pid = pid.unwrap_or_else(std::process::id);
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: `buf` is writable for the size given.
    let n = unsafe { libc::proc_pidpath(pid as libc::c_int, buf.as_mut_ptr().cast(), buf.len() as u32) };
    if n <= 0 {
        return PathBuf::new();
    }
    buf.truncate(n as usize);
    PathBuf::from(std::ffi::OsString::from_vec(buf))
}

/// Whether a process `pid` is running on this machine (`kill(pid, 0)`: EPERM means it runs
/// under another user).
#[cfg(target_os = "macos")]
pub fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid != 0 && (unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// An identifier of the current boot: macOS has no boot uuid, so the kernel's boot instant
/// (`kern.boottime`) stands in, written `macos-boot-<seconds>-<microseconds>` as
/// running-process writes it.
#[cfg(target_os = "macos")]
pub fn boot_id() -> Result<String> {
    let mut mib = [libc::CTL_KERN, libc::KERN_BOOTTIME];
    // SAFETY: an all-zero timeval is valid.
    let mut boot: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>();
    // SAFETY: `boot` and `len` are valid for writes and `len` holds the size of `boot`.
    let rc = unsafe {
        libc::sysctl(mib.as_mut_ptr(), 2, (&mut boot as *mut libc::timeval).cast(), &mut len, std::ptr::null_mut(), 0)
    };
    if rc != 0 {
        return Err(Error::io("reading kern.boottime", std::io::Error::last_os_error()));
    }
    Ok(format!("macos-boot-{}-{}", boot.tv_sec, boot.tv_usec))
}

/// Start time of the current process in Unix milliseconds (`proc_pidinfo`, `PROC_PIDTBSDINFO`).
#[cfg(target_os = "macos")]
pub fn process_start_unix_ms() -> Result<u64> {
    // SAFETY: an all-zero proc_bsdinfo is valid.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is writable for `size` bytes.
    let n = unsafe {
        libc::proc_pidinfo(std::process::id() as libc::c_int, libc::PROC_PIDTBSDINFO, 0, (&mut info as *mut libc::proc_bsdinfo).cast(), size)
    };
    if n != size {
        return Err(Error::io("reading the process start time", std::io::Error::last_os_error()));
    }
    Ok(info.pbi_start_tvsec * 1000 + info.pbi_start_tvusec / 1000)
}
