//! Blocking frame I/O over real Unix socket pairs (named-pipe pairs on Windows): batching,
//! trickling, caps, truncation, timeouts.

use std::io::Write;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(windows)]
use rp::transport::PipeStream as UnixStream;
use std::thread;
use std::time::Duration;

use rp::wire::{FrameReader, FrameView, FrameWriter, WireError, HELLO_MAX_BODY};

fn frame(id: u64, payload: &[u8]) -> FrameView<'_> {
    FrameView { payload_protocol: 0x7001, request_id: id, payload, ..FrameView::default() }
}

#[test]
fn many_frames_in_one_write_are_read_one_by_one() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut all = Vec::new();
    for id in 1..=100u64 {
        frame(id, &id.to_le_bytes()).encode_to_vec(&mut all).unwrap();
    }
    let writer = thread::spawn(move || (&a).write_all(&all).unwrap());
    let mut reader = FrameReader::new(b);
    for id in 1..=100u64 {
        let f = reader.read_frame().unwrap();
        assert_eq!(f.request_id, id);
        assert_eq!(f.payload, id.to_le_bytes());
    }
    writer.join().unwrap();
    assert!(matches!(reader.read_frame(), Err(WireError::Closed)));
}

#[test]
fn a_frame_trickled_byte_by_byte_arrives_whole() {
    let (a, b) = UnixStream::pair().unwrap();
    let payload = vec![0xabu8; 20_000];
    let bytes = frame(9, &payload).to_bytes().unwrap();
    let writer = thread::spawn(move || {
        // One byte at a time for the header and the first bytes, then larger chunks.
        for (i, chunk) in bytes.chunks(1).enumerate() {
            (&a).write_all(chunk).unwrap();
            if i < 16 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut reader = FrameReader::new(b);
    let f = reader.read_frame().unwrap();
    assert_eq!(f.request_id, 9);
    assert_eq!(f.payload.len(), payload.len());
    writer.join().unwrap();
}

#[test]
fn eof_mid_header_and_mid_body_is_truncated() {
    let bytes = frame(1, b"0123456789").to_bytes().unwrap();
    for cut in [1, 3, 5, bytes.len() - 1] {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&bytes[..cut]).unwrap();
        drop(a);
        let mut reader = FrameReader::new(b);
        match reader.read_frame() {
            Err(WireError::Truncated { received, .. }) => assert_eq!(received, cut),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn oversize_and_foreign_headers_fail_without_reading_a_body() {
    for (header, hello_cap) in [
        (vec![1u8, 0xff, 0xff, 0xff, 0xff], false),
        (vec![1u8, 0x01, 0x00, 0x00, 0x01], false), // 16 MiB + 1
        (vec![1u8, 0x01, 0x00, 0x01, 0x00], true),  // 64 KiB + 1 on a Hello reader
    ] {
        let (a, b) = UnixStream::pair().unwrap();
        (&a).write_all(&header).unwrap();
        let mut reader = if hello_cap {
            FrameReader::with_max_body(b, HELLO_MAX_BODY)
        } else {
            FrameReader::new(b)
        };
        assert!(matches!(reader.read_frame(), Err(WireError::TooLarge { .. })), "{header:02x?}");
        drop(a);
    }
    let (a, b) = UnixStream::pair().unwrap();
    (&a).write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut reader = FrameReader::new(b);
    assert!(matches!(
        reader.read_frame(),
        Err(WireError::UnsupportedFramingVersion { byte: b'G' })
    ));
}

#[test]
fn a_timeout_keeps_the_partial_frame() {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let bytes = frame(5, b"partial then whole").to_bytes().unwrap();
    (&a).write_all(&bytes[..7]).unwrap();
    let mut reader = FrameReader::new(b);
    assert!(matches!(reader.read_frame(), Err(WireError::Timeout)));
    assert_eq!(reader.buffered(), &bytes[..7]);
    (&a).write_all(&bytes[7..]).unwrap();
    let f = reader.read_frame().unwrap();
    assert_eq!(f.payload, b"partial then whole");
}

#[test]
fn writer_round_trips_and_reports_a_closed_peer() {
    let (a, b) = UnixStream::pair().unwrap();
    let mut writer = FrameWriter::new(a);
    writer.write_frame(&frame(3, b"x")).unwrap();
    let mut reader = FrameReader::new(b);
    assert_eq!(reader.read_frame().unwrap().request_id, 3);
    drop(reader);
    // Writing to a socket whose peer is gone is an error, not a signal (Rust ignores SIGPIPE
    // in test binaries; the transport layer adds MSG_NOSIGNAL for C hosts); to a pipe, too.
    let big = vec![0u8; 1 << 20];
    let err = (0..8).find_map(|_| writer.write_frame(&frame(4, &big)).err());
    assert!(matches!(err, Some(WireError::Closed)), "{err:?}");
}

// Unix only: it measures the resident set in /proc and raises RLIMIT_NOFILE.
#[cfg(unix)]
#[test]
fn announced_length_does_not_allocate_up_front() {
    // 1,000 readers each holding a header that announces a 16 MiB body: the buffers hold only
    // what arrived (8 KiB minimum each), not 16 GiB.
    raise_fd_limit(4096);
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..1000 {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (&a).write_all(&[1, 0x00, 0x00, 0x00, 0x01]).unwrap();
        let mut r = FrameReader::new(b);
        assert!(matches!(r.read_frame(), Err(WireError::Timeout)));
        assert_eq!(r.buffered().len(), 5);
        readers.push(r);
        writers.push(a);
    }
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap();
    assert!(rss_kib < 256 * 1024, "RSS {rss_kib} KiB with 1000 stalled maximal frames");
}

/// Raises the soft descriptor limit (the test holds 2,000 sockets).
#[cfg(unix)]
#[allow(unsafe_code)]
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}
