//! A probe answered with the current process's identity verifies against `/proc`, the way a
//! strict prober of the reference implementation checks it (Unix); a probe over a real
//! connection (a Unix socket; a named pipe on Windows) verifies strictly.

use rp::mux::{DaemonIdentity, LegacyHash, Mux, MuxEvent};

// Unix only: it reads the process's identity from /proc.
#[cfg(unix)]
#[test]
fn current_process_identity_verifies_against_proc() {
    use prost::Message;
    use rp::wire::proto::DaemonProcess;
    use rp::wire::{decode_frame, Decoded, FrameView, MAX_BODY};

    let endpoint = "/tmp/rp-identity-test.sock";
    let identity =
        DaemonIdentity::current_process("test-ns", endpoint, Some(30), LegacyHash::Sha256).unwrap();
    let mux = Mux::new(&identity, &[0x7001], None).unwrap();

    let nonce: Vec<u8> = (100..132).collect();
    let probe = FrameView {
        payload_protocol: 0xB232,
        payload: &nonce,
        request_id: u64::from_le_bytes(nonce[..8].try_into().unwrap()),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ..FrameView::default()
    }
    .to_bytes()
    .unwrap();
    let MuxEvent::ProbeAnswered { reply, consumed } = mux.poll(&probe).unwrap() else {
        panic!("probe not answered");
    };
    assert_eq!(consumed, probe.len());
    let Decoded::Frame { frame, .. } = decode_frame(&reply, MAX_BODY).unwrap() else {
        panic!("incomplete reply");
    };
    assert_eq!(frame.kind, 1, "RESPONSE");
    assert_eq!(
        frame.request_id,
        u64::from_le_bytes(nonce[..8].try_into().unwrap())
    );
    assert_eq!(
        frame.traceparent,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(&frame.payload[..32], &nonce[..]);

    let dp = DaemonProcess::decode(&frame.payload[32..]).unwrap();
    let pid = std::process::id();
    assert_eq!(dp.pid, pid);
    let exe = std::fs::canonicalize(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(dp.exe_path, exe.to_str().unwrap());
    assert_eq!(dp.exe_hash_algorithm, "blake3");
    let file = std::fs::read(&exe).unwrap();
    assert_eq!(dp.exe_hash, blake3::hash(&file).as_bytes());
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(dp.boot_id, boot_id.trim_end());
    assert!(
        std::path::Path::new(&format!("/proc/{}", dp.pid)).exists(),
        "pid alive"
    );
    let endpoint_field = dp.ipc_endpoint.unwrap();
    assert_eq!(endpoint_field.path, endpoint);
    assert_eq!(endpoint_field.namespace_id, "test-ns");
    assert_eq!(dp.idle_timeout_secs, Some(30));
    // The hand-appended legacy field closes the payload: 0x1a 0x20 + SHA-256 of the file.
    let tail = &frame.payload[frame.payload.len() - 34..];
    assert_eq!(&tail[..2], &[0x1a, 0x20]);
    use sha2::Digest;
    assert_eq!(&tail[2..], &sha2::Sha256::digest(&file)[..]);
}

/// The prober side: `rp::mux::probe` over a real socket against a daemon answering through the
/// mux, then `verify_identity`, which must pass for a truthful daemon and flag a lying one.
#[test]
fn probe_over_a_socket_and_verify_strictly() {
    use std::io::{Read, Write};
    use std::time::Duration;
    use rp::transport::{Endpoint, ListenOptions, Listener};

    let dir = std::env::temp_dir().join(format!("rp-probe-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The endpoint as the daemon reports it: the socket path; on Windows the bare pipe name (as
    // running-process writes it).
    #[cfg(unix)]
    let (endpoint, path) = (Endpoint::Path(dir.join("daemon.sock")), dir.join("daemon.sock").to_str().unwrap().to_owned());
    #[cfg(windows)]
    let (endpoint, path) = {
        let name = format!("rp-probe-test-{}", std::process::id());
        (Endpoint::Pipe(name.clone()), name)
    };
    let listener = Listener::bind(&endpoint, &ListenOptions::default()).unwrap();
    let truthful = DaemonIdentity::current_process("probe-ns", &path, None, LegacyHash::Zeros).unwrap();
    let mut liar = truthful.clone();
    liar.exe_path = "/usr/bin/definitely-not-me".into();
    liar.exe_hash = vec![0; 32];

    let serve = |identity: DaemonIdentity| {
        let mut conn = listener.accept().unwrap();
        let mux = Mux::new(&identity, &[0x7001], None).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "prober hung up early");
            buf.extend_from_slice(&chunk[..n]);
            match mux.poll(&buf).unwrap() {
                MuxEvent::NeedMoreBytes => continue,
                MuxEvent::ProbeAnswered { reply, .. } => {
                    conn.write_all(&reply).unwrap();
                    return;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    std::thread::scope(|s| {
        let prober = s.spawn(|| rp::mux::probe(&endpoint, Duration::from_secs(5)));
        serve(truthful.clone());
        let answered = prober.join().unwrap().unwrap();
        assert_eq!(answered, truthful);
        assert_eq!(rp::mux::verify_identity(&answered, &endpoint), Vec::<String>::new());

        let prober = s.spawn(|| rp::mux::probe(&endpoint, Duration::from_secs(5)));
        serve(liar.clone());
        let answered = prober.join().unwrap().unwrap();
        let problems = rp::mux::verify_identity(&answered, &endpoint);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("exe_path"));
        assert!(problems[1].contains("exe_hash"));
    });
    let _ = std::fs::remove_dir_all(&dir);
}
