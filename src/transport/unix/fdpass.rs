//! Descriptor passing (`SCM_RIGHTS`) and a caller's socket used under a deadline: the sockets of
//! a handoff.
//!
//! Received descriptors are close-on-exec (`MSG_CMSG_CLOEXEC`), are owned (`OwnedFd`) the moment
//! they are seen so every failure path closes them, and a truncated control message
//! (`MSG_CTRUNC`) is an error.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::send_nosignal;
use crate::error::{Error, Result};
use crate::wire::WireError;

// ---------------------------------------------------------------------------------------------

/// Descriptors one received message may carry before it is refused; room is made for this
/// many so a peer sending several is detected (and all are closed) rather than truncated.
pub const MAX_FDS_PER_MESSAGE: usize = 4;

/// Room for the control message of `MAX_FDS_PER_MESSAGE` descriptors, suitably aligned.
#[repr(C, align(8))]
struct ControlBuf([u8; 128]);

fn control_space(fds: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE((fds * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// Sends `data` (at least one byte) and the descriptor `fd` in one message.
pub fn send_with_fd(socket: &impl AsFd, data: &[u8], fd: &impl AsFd) -> Result<usize> {
    if data.is_empty() {
        return Err(Error::invalid_argument(
            "a descriptor needs at least one data byte",
        ));
    }
    let raw = fd.as_fd().as_raw_fd();
    let mut control = ControlBuf([0; 128]);
    let space = control_space(1);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` <= 128 aligned bytes, so the first header exists;
    // CMSG_DATA of it has room for one descriptor (CMSG_SPACE(sizeof(int)) bytes reserved).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), raw);
    }
    loop {
        // SAFETY: `msg` describes live buffers (`data`, `control`) for the duration of the call.
        let n = unsafe { libc::sendmsg(socket.as_fd().as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(Error::io("sendmsg with SCM_RIGHTS", err));
        }
    }
}

/// `recvmsg` flags: received descriptors are close-on-exec from the start where the kernel can
/// (Linux); elsewhere they are made so right after.
#[cfg(target_os = "linux")]
const RECV_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const RECV_FLAGS: libc::c_int = 0;

/// Receives bytes into `data` and at most one descriptor from `socket`.
///
/// Returns the bytes received and the descriptor, if the message carried one. Fails, closing
/// every descriptor received, when the control message was truncated, when it carried more
/// than one descriptor, or at end of stream.
pub fn recv_with_fd(socket: &impl AsFd, data: &mut [u8]) -> Result<(usize, Option<OwnedFd>)> {
    let mut control = ControlBuf([0; 128]);
    let space = control_space(MAX_FDS_PER_MESSAGE);
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: `msg` describes live, writable buffers (`data`, `control`) for the call.
        let n = unsafe { libc::recvmsg(socket.as_fd().as_raw_fd(), &mut msg, RECV_FLAGS) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(WireError::from_io(err).into());
        }
    };
    // Take ownership of every descriptor first, so that any early return below closes them.
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: after a successful recvmsg, the kernel filled `msg_controllen` bytes of
    // `control` with well-formed control messages; CMSG_FIRSTHDR/NXTHDR stay inside them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data_ptr = libc::CMSG_DATA(cmsg);
                let header = data_ptr as usize - cmsg as usize;
                let count = ((*cmsg).cmsg_len as usize - header) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data_ptr.cast::<RawFd>().add(i));
                    // SAFETY: SCM_RIGHTS installed `raw` in this process for us to own.
                    fds.push(OwnedFd::from_raw_fd(raw));
                    // Without MSG_CMSG_CLOEXEC (macOS), close-on-exec is set here instead.
                    #[cfg(not(target_os = "linux"))]
                    libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(
            WireError::Protocol("control message truncated: descriptors were lost".into()).into(),
        );
    }
    if fds.len() > 1 {
        return Err(WireError::Protocol(
            format!("expected at most one descriptor, received {}", fds.len()).into(),
        )
        .into());
    }
    if n == 0 && fds.is_empty() {
        return Err(WireError::Closed.into());
    }
    Ok((n, fds.pop()))
}

// ---------------------------------------------------------------------------------------------
// A caller's socket with a deadline
// ---------------------------------------------------------------------------------------------

/// A descriptor borrowed for the length of a call (see [`DeadlineSocket`]).
pub type BorrowedDescriptor<'a> = BorrowedFd<'a>;

/// A socket borrowed from a caller for one call, whose reads and writes give up with
/// `TimedOut` at a deadline; its own blocking mode and options are left untouched. Writes use
/// `MSG_NOSIGNAL`.
#[derive(Debug)]
pub struct DeadlineSocket<'a> {
    socket: BorrowedDescriptor<'a>,
    deadline: Option<std::time::Instant>,
}

impl<'a> DeadlineSocket<'a> {
    /// Borrows `socket` until `deadline` (`None` = no limit).
    pub fn new(socket: BorrowedDescriptor<'a>, deadline: Option<std::time::Instant>) -> Self {
        DeadlineSocket { socket, deadline }
    }

    /// Waits until the socket is readable; `TimedOut` once the deadline passed (a deadline
    /// already passed still looks once).
    pub fn wait_readable(&self) -> io::Result<()> {
        self.wait(libc::POLLIN)
    }

    fn wait(&self, events: libc::c_short) -> io::Result<()> {
        loop {
            let timeout_ms = match self.deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut pfd = libc::pollfd { fd: self.socket.as_raw_fd(), events, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            match n {
                n if n > 0 => return Ok(()),
                0 => return Err(io::ErrorKind::TimedOut.into()),
                _ => {
                    let err = io::Error::last_os_error();
                    if err.kind() != io::ErrorKind::Interrupted {
                        return Err(err);
                    }
                }
            }
        }
    }
}

impl AsFd for DeadlineSocket<'_> {
    fn as_fd(&self) -> BorrowedDescriptor<'_> {
        self.socket
    }
}

impl io::Read for DeadlineSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.wait(libc::POLLIN)?;
            // SAFETY: `buf` is writable for `buf.len()` bytes; the descriptor is borrowed open.
            let n = unsafe { libc::read(self.socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if !matches!(err.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) {
                return Err(err);
            }
        }
    }
}

impl io::Write for DeadlineSocket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            self.wait(libc::POLLOUT)?;
            match send_nosignal(self.socket.as_raw_fd(), buf) {
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn received_descriptors_are_cloexec_and_usable() {
        let (a, b) = UnixStream::pair().unwrap();
        let (x, mut y) = UnixStream::pair().unwrap();
        send_with_fd(&a, b"hi", &x).unwrap();
        drop(x);
        let mut buf = [0u8; 8];
        let (n, fd) = recv_with_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi");
        let fd = fd.unwrap();
        // SAFETY: fcntl on a descriptor we own.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0);
        let mut adopted = UnixStream::from(fd);
        use std::io::{Read, Write};
        adopted.write_all(b"ok").unwrap();
        let mut got = [0u8; 2];
        y.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");
    }

    #[test]
    fn deadline_socket_reads_writes_and_gives_up_at_its_deadline() {
        use std::io::{Read, Write};
        use std::time::{Duration, Instant};
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut s = DeadlineSocket::new(a.as_fd(), Some(Instant::now() + Duration::from_millis(50)));
        s.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).unwrap();
        b.write_all(b"pong").unwrap();
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");
        let started = Instant::now();
        assert_eq!(s.read(&mut got).unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
