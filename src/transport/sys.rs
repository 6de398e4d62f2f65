//! The few socket system calls std does not offer safely: sends that never raise SIGPIPE,
//! kernel-reported peer credentials, the effective uid, non-blocking reads and peeks, `shutdown`,
//! `poll` and the `epoll` readiness sets. Every `unsafe` block here says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;

use super::PeerCredentials;

/// `send(2)` with `MSG_NOSIGNAL`: a vanished peer is `EPIPE`, never a SIGPIPE in the host process.
pub(crate) fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable slice of `buf.len()` bytes for the duration of the call;
    // an invalid fd makes send fail with EBADF, which is reported, not undefined behaviour.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The peer's pid, uid and gid as the kernel recorded them at connect time (`SO_PEERCRED`).
pub(crate) fn peer_credentials(fd: RawFd) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` holds the size of `cred`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { pid: cred.pid as u32, uid: cred.uid, gid: cred.gid })
}

/// The effective uid of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the peer of a socket has closed it with nothing left to read (a `recv` with
/// `MSG_PEEK | MSG_DONTWAIT` that returns 0, or a reset). Never consumes or blocks.
pub(crate) fn peer_gone(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid writable byte for the duration of the call.
    let n = unsafe { libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n == 0 || (n < 0 && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ECONNRESET | libc::EPIPE)))
}

/// `recv(2)` with `MSG_DONTWAIT`: never blocks, whatever the descriptor's mode.
pub(crate) fn recv_dontwait(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `shutdown(2)` on a socket descriptor: `SHUT_WR` ends what is sent (the peer reads the end),
/// `SHUT_RDWR` also wakes a thread blocked reading it.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown(2) takes no memory; an invalid descriptor is reported as EBADF.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits up to `timeout_ms` (negative = forever) for `fd` to be readable (or hung up).
/// Returns false on timeout. EINTR is retried with the time left.
pub(crate) fn wait_readable(fd: RawFd, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so a sub-millisecond remainder still waits.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // A limit beyond what one poll can wait (about 24 days) waits again.
        if n == 0 && ms == i32::MAX && deadline.is_some_and(|d| std::time::Instant::now() < d) {
            continue;
        }
        return Ok(n > 0);
    }
}

/// A level-triggered epoll set over `fds` (readable when any of them is), usable as one
/// pollable descriptor by an application's own event loop.
pub(crate) fn readiness_set(fds: &[RawFd]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: epoll_create1 has no memory preconditions.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `epfd` is a fresh descriptor this function owns from here on.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(epfd) };
    for &fd in fds {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
        // SAFETY: valid epoll fd, descriptor and event struct for the call.
        if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(owned)
}

/// Adds `fd` to (or removes it from) an epoll set made by [`readiness_set`]. Adding a
/// descriptor that is already readable makes the set readable at once.
pub(crate) fn readiness_set_member(set: RawFd, fd: RawFd, member: bool) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
    let op = if member { libc::EPOLL_CTL_ADD } else { libc::EPOLL_CTL_DEL };
    // SAFETY: valid epoll fd, descriptor and event struct for the call.
    if unsafe { libc::epoll_ctl(set, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `send(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT`: never blocks, never raises SIGPIPE.
pub(crate) fn send_nonblocking(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable slice of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
