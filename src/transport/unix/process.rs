//! What the kernel says about processes, from `/proc` (Linux).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// The executable of process `pid` (`None`: this process) as a path that opens it
/// (`/proc/PID/exe`), valid even when the file was replaced or deleted since it started.
pub fn process_exe(pid: Option<u32>) -> PathBuf {
    match pid {
        None => PathBuf::from("/proc/self/exe"),
        Some(pid) => PathBuf::from(format!("/proc/{pid}/exe")),
    }
}

/// Whether a process `pid` is running on this machine.
pub fn process_alive(pid: u32) -> bool {
    pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The kernel's id of the current boot, without the trailing newline.
pub fn boot_id() -> Result<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_err(|e| Error::io("reading boot_id", e))?;
    Ok(text.trim_end().to_owned())
}

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel reports them in
/// USER_HZ, which is 100 on every architecture Linux ships today (the ABI fixes it).
const USER_HZ: u64 = 100;

/// Start time of the current process in Unix milliseconds: boot time (`btime` in `/proc/stat`)
/// plus the process start offset (field 22 of `/proc/self/stat`).
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
