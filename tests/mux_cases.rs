//! Every case of `tests/vectors/mux_cases.json` (the reference mux's verdicts) through the
//! Rust API, plus the drift check of `tests/vectors/mux_cases.tsv`, the same cases flattened
//! for the C test (`tests/c/test_mux.c`). `RP_BLESS_VECTORS=1 cargo test --test mux_cases`
//! rewrites the TSV from the JSON.

use std::path::Path;

use rp::mux::{DaemonIdentity, LegacyVerdict, Mux, MuxError, MuxEvent};
use serde_json::Value;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_id(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

/// The identity the reference mux answered probes with (`probe_response_legacy`).
fn fixed_identity() -> DaemonIdentity {
    DaemonIdentity {
        pid: 4242,
        exe_path: "/opt/rp-demo/bin/rp-demo-backend".into(),
        endpoint_namespace: "rp-demo-ns".into(),
        endpoint_path: "/tmp/rp-demo/backend.sock".into(),
        started_at_unix_ms: 1_700_000_000_000,
        boot_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
        idle_timeout_secs: Some(600),
        exe_hash_algorithm: "blake3".into(),
        exe_hash: (0xa0..=0xbf).collect(),
        legacy_exe_sha256: [0x5a; 32],
    }
}

/// The detector of the vectors: empty → need more; first byte == magic → legacy; else not.
fn magic_detector(magic: u8) -> rp::mux::LegacyDetector {
    Box::new(move |buf: &[u8]| {
        Ok(match buf.first() {
            None => LegacyVerdict::NeedMore,
            Some(&b) if b == magic => LegacyVerdict::Legacy,
            Some(_) => LegacyVerdict::NotLegacy,
        })
    })
}

fn cases() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/vectors/mux_cases.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["cases"].as_array().unwrap().clone()
}

fn magic_of(case: &Value) -> Option<u8> {
    case["legacy_magic"].as_str().map(|m| parse_id(m) as u8)
}

fn served_of(case: &Value) -> Vec<u32> {
    case["served_protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| parse_id(v.as_str().unwrap()))
        .collect()
}

#[test]
fn every_case_matches_the_reference_verdict() {
    let cases = cases();
    assert!(cases.len() >= 20, "all cases loaded");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let mux = Mux::new(
            &fixed_identity(),
            &served_of(case),
            magic_of(case).map(magic_detector),
        )
        .unwrap();
        let input = hex(case["input_hex"].as_str().unwrap());
        let got = mux.poll(&input);
        match (case["verdict"].as_str().unwrap(), got) {
            ("NeedMoreBytes", Ok(MuxEvent::NeedMoreBytes)) => {}
            ("Legacy", Ok(MuxEvent::Legacy)) => {}
            ("ProbeAnswered", Ok(MuxEvent::ProbeAnswered { reply, consumed })) => {
                assert_eq!(
                    to_hex(&reply),
                    case["reply_hex"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    consumed as u64,
                    case["consumed"].as_u64().unwrap(),
                    "{name}"
                );
            }
            ("Payload", Ok(MuxEvent::Payload { frame, consumed })) => {
                let f = &case["frame"];
                assert_eq!(
                    consumed as u64,
                    case["consumed"].as_u64().unwrap(),
                    "{name}"
                );
                assert_eq!(frame.kind as i64, f["kind_num"].as_i64().unwrap(), "{name}");
                assert_eq!(
                    u64::from(frame.envelope_version),
                    f["envelope_version"].as_u64().unwrap()
                );
                assert_eq!(
                    frame.payload_protocol,
                    parse_id(f["payload_protocol"].as_str().unwrap())
                );
                assert_eq!(
                    frame.request_id,
                    f["request_id"].as_u64().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    frame.deadline_unix_ms,
                    f["deadline_unix_ms"].as_u64().unwrap()
                );
                assert_eq!(
                    to_hex(frame.payload),
                    f["payload_hex"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    frame.traceparent,
                    f["traceparent"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    frame.tracestate,
                    f["tracestate"].as_str().unwrap(),
                    "{name}"
                );
            }
            ("Error", Err(err)) => {
                let kind_matches = match case["error_kind"].as_str().unwrap() {
                    "UnservedPayloadProtocol" => {
                        matches!(err, MuxError::UnservedPayloadProtocol { .. })
                    }
                    "UnexpectedFirstPartyFrame" => {
                        matches!(err, MuxError::UnexpectedFirstPartyFrame { .. })
                    }
                    "MalformedProbe" => matches!(err, MuxError::MalformedProbe(_)),
                    "Framing" => matches!(err, MuxError::Framing(_)),
                    other => panic!("{name}: unknown error kind {other}"),
                };
                assert!(kind_matches, "{name}: got {err:?}");
                assert!(!err.to_string().is_empty());
            }
            (want, got) => panic!("{name}: expected {want}, got {got:?}"),
        }
    }
}

#[test]
fn partial_frames_need_more_bytes_at_every_length() {
    let mux = Mux::new(&fixed_identity(), &[0x7001], None).unwrap();
    for case in cases() {
        let verdict = case["verdict"].as_str().unwrap();
        if verdict != "ProbeAnswered" && verdict != "Payload" {
            continue;
        }
        let input = hex(case["input_hex"].as_str().unwrap());
        let consumed = case["consumed"].as_u64().unwrap() as usize;
        for n in 0..consumed {
            assert_eq!(mux.poll(&input[..n]).unwrap(), MuxEvent::NeedMoreBytes);
        }
    }
}

/// One line per case, tab-separated, "-" for an absent or empty field.
fn tsv_line(case: &Value) -> String {
    let s = |v: &Value| match v.as_str() {
        Some("") | None => "-".to_owned(),
        Some(s) => s.to_owned(),
    };
    let n = |v: &Value| v.as_u64().map_or("-".to_owned(), |n| n.to_string());
    let f = &case["frame"];
    let served: Vec<String> = served_of(case).iter().map(|p| format!("{p:04x}")).collect();
    let magic = magic_of(case).map_or("-".to_owned(), |m| format!("{m:02x}"));
    let fields = [
        s(&case["name"]),
        magic,
        served.join(","),
        s(&case["input_hex"]),
        s(&case["verdict"]),
        n(&case["consumed"]),
        s(&case["reply_hex"]),
        s(&case["error_kind"]),
        f["kind_num"]
            .as_i64()
            .map_or("-".to_owned(), |k| k.to_string()),
        n(&f["envelope_version"]),
        f["payload_protocol"]
            .as_str()
            .map_or("-".to_owned(), |p| format!("{:04x}", parse_id(p))),
        n(&f["request_id"]),
        n(&f["deadline_unix_ms"]),
        s(&f["payload_hex"]),
        s(&f["traceparent"]),
        s(&f["tracestate"]),
    ];
    for field in &fields {
        assert!(!field.contains('\t') && !field.contains('\n'));
    }
    fields.join("\t")
}

#[test]
fn committed_tsv_matches_the_json() {
    let mut text = String::from(
        "# Generated from mux_cases.json by tests/mux_cases.rs \
         (RP_BLESS_VECTORS=1 cargo test --test mux_cases). Do not edit.\n\
         # name\tlegacy_magic\tserved\tinput_hex\tverdict\tconsumed\treply_hex\terror_kind\t\
         kind\tenvelope_version\tpayload_protocol\trequest_id\tdeadline_unix_ms\tpayload_hex\t\
         traceparent\ttracestate\n",
    );
    for case in cases() {
        text.push_str(&tsv_line(&case));
        text.push('\n');
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mux_cases.tsv");
    if std::env::var_os("RP_BLESS_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "tests/vectors/mux_cases.tsv is stale: run RP_BLESS_VECTORS=1 cargo test --test mux_cases"
    );
}

#[test]
fn one_mux_polled_from_many_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Mux>();
    let mux = std::sync::Arc::new(
        Mux::new(&fixed_identity(), &[0x7001], Some(magic_detector(0x4c))).unwrap(),
    );
    let cases = std::sync::Arc::new(cases());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (mux, cases) = (mux.clone(), cases.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    for case in cases.iter() {
                        let input = hex(case["input_hex"].as_str().unwrap());
                        if case["verdict"] == "ProbeAnswered" {
                            let Ok(MuxEvent::ProbeAnswered { reply, .. }) = mux.poll(&input) else {
                                panic!("probe not answered");
                            };
                            assert_eq!(to_hex(&reply), case["reply_hex"].as_str().unwrap());
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
