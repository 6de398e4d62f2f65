//! `rp probe ENDPOINT`: who answers this endpoint?

use std::time::Duration;

use rp::mux::{probe, probe_with_nonce, verify_identity, DaemonIdentity};
use rp::transport::Endpoint;

use crate::{endpoint_arg, millis_arg, Failure};

#[derive(clap::Args)]
pub struct Args {
    /// The endpoint to probe
    #[arg(value_parser = endpoint_arg)]
    endpoint: Endpoint,
    /// Check the answer against the local process table like a strict prober (exit 5 on a mismatch)
    #[arg(long)]
    verify: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Give up after this many milliseconds
    #[arg(long, default_value = "5000", value_parser = millis_arg)]
    timeout_ms: Duration,
    /// Use this 32-byte nonce (64 hex digits) instead of a random one, to replay a capture
    #[arg(long, value_parser = nonce_arg)]
    nonce: Option<[u8; 32]>,
}

fn nonce_arg(s: &str) -> Result<[u8; 32], String> {
    if s.len() != 64 {
        return Err("a nonce is 64 hex digits (32 bytes)".into());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| format!("{s:?} is not hex"))?;
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let identity = match &args.nonce {
        Some(nonce) => probe_with_nonce(&args.endpoint, nonce, args.timeout_ms)?,
        None => probe(&args.endpoint, args.timeout_ms)?,
    };
    let problems = args.verify.then(|| verify_identity(&identity, &args.endpoint));
    if args.json {
        let mut v = to_json(&identity);
        if let Some(p) = &problems {
            v["verified"] = serde_json::json!(p.is_empty());
            v["problems"] = serde_json::json!(p);
        }
        println!("{v}");
    } else {
        print_text(&identity);
        if let Some(p) = &problems {
            if p.is_empty() {
                println!("verified:   yes (pid alive, executable, BLAKE3, boot id and endpoint match)");
            } else {
                for problem in p {
                    println!("MISMATCH:   {problem}");
                }
            }
        }
    }
    match problems {
        Some(p) if !p.is_empty() => Err(Failure::new(5, format!("{} identity check(s) failed", p.len()))),
        _ => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn print_text(id: &DaemonIdentity) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    println!("pid:        {}", id.pid);
    println!("executable: {}", id.exe_path);
    println!("hash:       {} {}", id.exe_hash_algorithm, hex(&id.exe_hash));
    println!("boot id:    {}", id.boot_id);
    println!("endpoint:   {}:{}", id.endpoint_namespace, id.endpoint_path);
    println!(
        "started:    {} ms since the epoch ({} s ago)",
        id.started_at_unix_ms,
        now_ms.saturating_sub(id.started_at_unix_ms) / 1000
    );
    match id.idle_timeout_secs {
        Some(s) => println!("idle limit: {s} s"),
        None => println!("idle limit: none"),
    }
    let legacy = if id.legacy_exe_sha256 == [0; 32] { "zeros".to_owned() } else { hex(&id.legacy_exe_sha256) };
    println!("legacy sha: {legacy}");
}

fn to_json(id: &DaemonIdentity) -> serde_json::Value {
    serde_json::json!({
        "pid": id.pid,
        "exe_path": id.exe_path,
        "exe_hash_algorithm": id.exe_hash_algorithm,
        "exe_hash": hex(&id.exe_hash),
        "boot_id": id.boot_id,
        "endpoint": {"namespace": id.endpoint_namespace, "path": id.endpoint_path},
        "started_at_unix_ms": id.started_at_unix_ms,
        "idle_timeout_secs": id.idle_timeout_secs,
        "legacy_exe_sha256": hex(&id.legacy_exe_sha256),
    })
}
