//! Blocking frame I/O over any `Read` / `Write` stream.

use std::io::{ErrorKind as IoKind, Read, Write};

use super::frame::{frame_extent, Extent, FrameView};
use super::{WireError, HEADER_LEN, MAX_BODY};

/// The smallest read buffer; reads ask for this much at least so many small frames
/// arrive in one system call.
const MIN_BUFFER: usize = 8 * 1024;

/// An empty read buffer larger than this is freed before the next read, so a connection that
/// once carried a large frame does not keep its memory while idle.
const RELEASE_ABOVE: usize = 256 * 1024;

/// The read buffer under a framed reader: bytes read from a stream and not yet handed out.
///
/// Memory grows only with bytes that actually arrived (at most about twice the frame
/// being assembled), never with a length a peer merely announced; growing it is a fallible
/// allocation ([`WireError::NoMemory`] when it cannot be had, keeping what was buffered). Each
/// framing (v1 here, the liminal dialect in [`super::liminal`]) says how long its next frame is.
#[derive(Debug)]
pub(crate) struct ReadBuffer<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> ReadBuffer<R> {
    pub(crate) fn new(inner: R) -> Self {
        ReadBuffer { inner, buf: Vec::new(), start: 0, end: 0 }
    }

    /// Bytes received and not yet taken.
    #[inline]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Hands out the next `total` pending bytes (which the caller checked are there).
    #[inline]
    pub(crate) fn take(&mut self, total: usize) -> &[u8] {
        let at = self.start;
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        &self.buf[at..at + total]
    }

    /// The buffer's size in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The same buffer over another stream type, keeping every pending byte.
    pub(crate) fn map_inner<S>(self, f: impl FnOnce(R) -> S) -> ReadBuffer<S> {
        ReadBuffer { inner: f(self.inner), buf: self.buf, start: self.start, end: self.end }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// Reads at least one more byte towards `needed` pending bytes; returns the bytes read.
    ///
    /// End of stream is [`WireError::Closed`] with nothing pending and [`WireError::Truncated`]
    /// inside a frame; a read timeout (`WouldBlock` / `TimedOut`) is [`WireError::Timeout`] and
    /// keeps every pending byte.
    pub(crate) fn fill(&mut self, needed: usize) -> Result<usize, WireError> {
        let have = self.end - self.start;
        if have == 0 && self.buf.len() > RELEASE_ABOVE {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
        if self.start + needed > self.buf.len() {
            // Move the partial frame to the front, then grow by what arrived, not by what
            // was announced: double the buffer, capped at the frame's full size.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = have;
            }
            if needed > self.buf.len() {
                let grown = (self.buf.len() * 2).max(MIN_BUFFER);
                let target = grown.min(needed.max(MIN_BUFFER)).max(self.buf.len());
                // Fallible: a frame that does not fit in memory ends the stream, not the process.
                self.buf
                    .try_reserve_exact(target - self.buf.len())
                    .map_err(|_| WireError::NoMemory { bytes: target })?;
                self.buf.resize(target, 0);
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) if have == 0 => return Err(WireError::Closed),
                Ok(0) => {
                    return Err(WireError::Truncated {
                        received: have,
                        expected: needed,
                    })
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => return Err(WireError::from_io(e)),
            }
        }
    }
}

/// Reads frames from a stream through an internal buffer, handing out borrowed views.
///
/// Memory grows only with bytes that actually arrived (at most about twice the frame
/// being assembled), never with a length a peer merely announced; growing it is a fallible
/// allocation ([`WireError::NoMemory`] when it cannot be had, keeping what was buffered). A read timeout
/// (`WouldBlock` / `TimedOut` from the stream) returns [`WireError::Timeout`] and keeps every
/// buffered byte, so the next call resumes where this one stopped.
#[derive(Debug)]
pub struct FrameReader<R> {
    bytes: ReadBuffer<R>,
    max_body: u32,
    /// Frames returned so far.
    frames: u64,
}

impl<R: Read> FrameReader<R> {
    /// A reader with the 16 MiB body cap.
    pub fn new(inner: R) -> Self {
        Self::with_max_body(inner, MAX_BODY)
    }

    /// A reader with a smaller body cap (for example [`super::HELLO_MAX_BODY`]).
    pub fn with_max_body(inner: R, max_body: u32) -> Self {
        FrameReader { bytes: ReadBuffer::new(inner), frames: 0, max_body: max_body.min(MAX_BODY) }
    }

    /// Changes the body cap for the frames read from now on (clamped to 16 MiB).
    pub fn set_max_body(&mut self, max_body: u32) {
        self.max_body = max_body.min(MAX_BODY);
    }

    /// Reads the next frame, blocking until it is complete.
    ///
    /// End of stream at a frame boundary is [`WireError::Closed`]; inside a frame it is
    /// [`WireError::Truncated`]. Framing errors are fatal for the stream.
    pub fn read_frame(&mut self) -> Result<FrameView<'_>, WireError> {
        let total = loop {
            match frame_extent(self.bytes.pending(), self.max_body)? {
                Extent::Complete(total) => break total,
                Extent::NeedMore(needed) => self.bytes.fill(needed)?,
            };
        };
        self.frames += 1;
        FrameView::parse_body(&self.bytes.take(total)[HEADER_LEN..])
    }

    /// The next frame if one is already complete in the buffer; never reads.
    pub fn next_buffered(&mut self) -> Result<Option<FrameView<'_>>, WireError> {
        let total = match frame_extent(self.bytes.pending(), self.max_body)? {
            Extent::Complete(total) => total,
            Extent::NeedMore(_) => return Ok(None),
        };
        self.frames += 1;
        FrameView::parse_body(&self.bytes.take(total)[HEADER_LEN..]).map(Some)
    }

    /// Reads (blocking, per the stream's timeout) until at least one complete frame is
    /// buffered, without consuming it. Errors as [`read_frame`](Self::read_frame).
    pub fn wait_frame(&mut self) -> Result<(), WireError> {
        loop {
            match frame_extent(self.bytes.pending(), self.max_body)? {
                Extent::Complete(_) => return Ok(()),
                Extent::NeedMore(needed) => self.bytes.fill(needed)?,
            };
        }
    }

    /// How many frames this reader has returned: a caller watching for a stalled peer compares
    /// it between two moments to tell a frame that completed from one still arriving.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// The read buffer's size in bytes (what this reader holds in memory).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Reads once from the stream into the buffer (after `poll` said it is readable).
    ///
    /// Returns the bytes read; `WouldBlock` surfaces as [`WireError::Timeout`]; end of stream is
    /// [`WireError::Closed`] at a frame boundary and [`WireError::Truncated`] inside one.
    pub fn read_more(&mut self) -> Result<usize, WireError> {
        let needed = match frame_extent(self.bytes.pending(), self.max_body)? {
            Extent::NeedMore(n) => n,
            Extent::Complete(total) => total + HEADER_LEN,
        };
        self.bytes.fill(needed)
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> &[u8] {
        self.bytes.pending()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        self.bytes.get_ref()
    }

    /// The underlying stream, mutably (reading from it directly desynchronises the framing).
    pub fn get_mut(&mut self) -> &mut R {
        self.bytes.get_mut()
    }

    /// The same reader over another stream type, keeping every buffered byte.
    pub fn map_inner<S>(self, f: impl FnOnce(R) -> S) -> FrameReader<S> {
        FrameReader { bytes: self.bytes.map_inner(f), max_body: self.max_body, frames: self.frames }
    }

    /// Unwraps the stream, dropping any buffered bytes.
    pub fn into_inner(self) -> R {
        self.bytes.into_inner()
    }
}

/// Writes frames to a stream, reusing one encode buffer.
///
/// Frames can also be queued ([`queue`](Self::queue)) and written together
/// ([`write_queued`](Self::write_queued)): one system call for many small frames.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    /// Encode buffer, kept at its high-water length (up to [`KEEP_SCRATCH`]); only
    /// `scratch[..queued]` holds frames.
    scratch: Vec<u8>,
    queued: usize,
}

/// The largest encode buffer a writer keeps between writes; a larger one (a big frame) is
/// freed once written.
const KEEP_SCRATCH: usize = 256 * 1024;

impl<W: Write> FrameWriter<W> {
    /// Wraps a stream.
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            scratch: Vec::new(),
            queued: 0,
        }
    }

    /// Encodes and writes one frame, all of it or an error (frames queued before it are
    /// written first, in the same system call).
    pub fn write_frame(&mut self, frame: &FrameView<'_>) -> Result<(), WireError> {
        self.queue(frame)?;
        self.write_queued()
    }

    /// [`write_frame`](Self::write_frame) for a frame whose payload field holds `head` then the
    /// frame's payload (see `FrameView::encode_at_with`), encoded in one pass.
    pub(crate) fn write_frame_with_head(&mut self, frame: &FrameView<'_>, head: &[u8]) -> Result<(), WireError> {
        self.queue_with_head(frame, head)?;
        self.write_queued()
    }

    /// Encodes several frames into one buffer and writes them with as few system calls as the
    /// stream allows (all of them, or an error). A frame over the cap fails before anything is
    /// written.
    pub fn write_frames(&mut self, frames: &[FrameView<'_>]) -> Result<(), WireError> {
        for frame in frames {
            if let Err(e) = self.queue(frame) {
                self.discard_queued();
                return Err(e);
            }
        }
        self.write_queued()
    }

    /// Encodes a frame behind the ones already queued, writing nothing yet. A frame over the
    /// cap fails and leaves the queue as it was.
    pub fn queue(&mut self, frame: &FrameView<'_>) -> Result<(), WireError> {
        self.queued = frame.encode_at(&mut self.scratch, self.queued)?;
        Ok(())
    }

    /// [`queue`](Self::queue) for a frame whose payload field holds `head` then the frame's
    /// payload (see `FrameView::encode_at_with`).
    pub(crate) fn queue_with_head(&mut self, frame: &FrameView<'_>, head: &[u8]) -> Result<(), WireError> {
        self.queued = frame.encode_at_with(head, &mut self.scratch, self.queued)?;
        Ok(())
    }

    /// Writes bytes another framing encoded (the liminal dialect), behind any queued frames,
    /// in one system call where the stream allows: all of them, or an error.
    pub(crate) fn write_raw(&mut self, parts: &[&[u8]]) -> Result<(), WireError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if self.scratch.len() < self.queued + total {
            self.scratch.resize(self.queued + total, 0);
        }
        for part in parts {
            self.scratch[self.queued..self.queued + part.len()].copy_from_slice(part);
            self.queued += part.len();
        }
        self.write_queued()
    }

    /// Bytes of the frames queued and not yet written.
    pub fn queued_len(&self) -> usize {
        self.queued
    }

    /// Drops the frames queued and not yet written.
    pub fn discard_queued(&mut self) {
        self.queued = 0;
    }

    /// Writes every queued frame, all of them or an error (after which the queue is empty:
    /// the stream may hold part of it).
    pub fn write_queued(&mut self) -> Result<(), WireError> {
        let result = write_all(&mut self.inner, &self.scratch[..self.queued]);
        self.queued = 0;
        if self.scratch.len() > KEEP_SCRATCH {
            self.scratch = Vec::new();
        }
        result
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

/// Encodes and writes one frame to `w` (allocates an encode buffer; see [`FrameWriter`]).
pub fn write_frame<W: Write>(w: &mut W, frame: &FrameView<'_>) -> Result<(), WireError> {
    write_all(w, &frame.to_bytes()?)
}

fn write_all<W: Write>(w: &mut W, mut bytes: &[u8]) -> Result<(), WireError> {
    while !bytes.is_empty() {
        match w.write(bytes) {
            Ok(0) => return Err(WireError::Closed),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            Err(e) => return Err(WireError::from_io(e)),
        }
    }
    match w.flush() {
        Ok(()) => Ok(()),
        Err(e) => Err(WireError::from_io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::proto::FrameKind;

    fn frame_bytes(payload_len: usize) -> Vec<u8> {
        let payload = vec![7u8; payload_len];
        FrameView { kind: FrameKind::Event as i32, payload_protocol: 0x8000, payload: &payload, ..FrameView::default() }
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn a_large_frame_does_not_keep_its_buffer_once_read() {
        let mut stream = frame_bytes(1 << 20);
        stream.extend_from_slice(&frame_bytes(64));
        let mut reader = FrameReader::new(&stream[..]);
        assert_eq!(reader.read_frame().unwrap().payload.len(), 1 << 20);
        assert_eq!(reader.frames_read(), 1);
        assert!(reader.capacity() >= 1 << 20);
        assert_eq!(reader.read_frame().unwrap().payload.len(), 64);
        assert_eq!(reader.frames_read(), 2);
        assert!(reader.capacity() <= RELEASE_ABOVE, "buffer kept at {} bytes", reader.capacity());
    }

    #[test]
    fn a_batch_with_a_frame_over_the_cap_writes_nothing_and_the_writer_goes_on() {
        let small = [7u8; 64];
        let huge = vec![0u8; MAX_BODY as usize + 1];
        let frame = |payload| FrameView { payload, request_id: 1, ..FrameView::default() };
        let mut writer = FrameWriter::new(Vec::new());
        let err = writer.write_frames(&[frame(&small), frame(&huge), frame(&small)]).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err:?}");
        assert!(writer.get_ref().is_empty());
        writer.write_frames(&[frame(&small), frame(&small)]).unwrap();
        writer.write_frame(&frame(&small)).unwrap();
        let expected: Vec<u8> = (0..3).flat_map(|_| frame(&small).to_bytes().unwrap()).collect();
        assert_eq!(writer.get_ref(), &expected);
    }

    #[test]
    fn a_large_frame_does_not_keep_its_encode_buffer_once_written() {
        let big = vec![1u8; 1 << 20];
        let mut writer = FrameWriter::new(Vec::new());
        writer.write_frame(&FrameView { payload: &big, ..FrameView::default() }).unwrap();
        assert_eq!(writer.scratch.len(), 0, "encode buffer kept after a 1 MiB frame");
        writer.write_frame(&FrameView { payload: &big[..64], ..FrameView::default() }).unwrap();
        assert!(writer.scratch.len() < KEEP_SCRATCH);
        let mut reader = FrameReader::new(&writer.get_ref()[..]);
        assert_eq!(reader.read_frame().unwrap().payload.len(), 1 << 20);
        assert_eq!(reader.read_frame().unwrap().payload.len(), 64);
    }

    #[test]
    fn buffered_frames_count_as_read() {
        let mut stream = frame_bytes(10);
        stream.extend_from_slice(&frame_bytes(20));
        let mut reader = FrameReader::new(&stream[..]);
        reader.read_more().unwrap();
        assert!(reader.next_buffered().unwrap().is_some());
        assert!(reader.next_buffered().unwrap().is_some());
        assert!(reader.next_buffered().unwrap().is_none());
        assert_eq!(reader.frames_read(), 2);
    }
}
