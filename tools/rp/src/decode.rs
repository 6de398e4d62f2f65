//! `rp decode`: print every v1 frame in some bytes, field by field.

use std::io::Read;

use prost::Message;
use rp::mux::DaemonIdentity;
use rp::push::proto::{Push, PushReply, Registration, RegistrationAck};
use rp::wire::proto::{AdminReply, AdminRequest, FrameKind, HandoffAck, HandoffOffer, Hello, HelloReply};
use rp::wire::{decode_frame, registry, Decoded, FrameView, MAX_BODY};

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The bytes as hex; without it, stdin is read (hex text or raw bytes, told apart automatically)
    hex: Option<String>,
    /// Print one JSON object per frame
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let bytes = match args.hex {
        Some(h) => parse_hex(&h)?,
        None => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).map_err(|e| Failure::new(1, format!("reading stdin: {e}")))?;
            if !input.is_empty() && input.iter().all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) {
                parse_hex(&String::from_utf8_lossy(&input))?
            } else {
                input
            }
        }
    };
    if bytes.is_empty() {
        return Err(Failure::new(1, "no bytes to decode"));
    }
    let mut at = 0usize;
    let mut index = 0usize;
    while at < bytes.len() {
        match decode_frame(&bytes[at..], MAX_BODY) {
            Ok(Decoded::Frame { frame, consumed }) => {
                if args.json {
                    println!("{}", frame_json(index, at, consumed, &frame));
                } else {
                    print_frame(index, at, consumed, &frame);
                }
                at += consumed;
                index += 1;
            }
            Ok(Decoded::NeedMore { needed }) => {
                return Err(Failure::new(
                    1,
                    format!(
                        "byte {at}: incomplete frame: {} bytes present, at least {needed} needed",
                        bytes.len() - at
                    ),
                ))
            }
            Err(e) => return Err(Failure::new(1, format!("byte {at}: {e}"))),
        }
    }
    Ok(())
}

fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(Failure::new(1, format!("hex input has an odd number of digits ({})", digits.len())));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| Failure::new(1, format!("hex digit pair {} ({:?}) is not hex", i, String::from_utf8_lossy(pair))))
        })
        .collect()
}

fn kind_name(kind: i32) -> String {
    FrameKind::try_from(kind).map(|k| k.as_str_name().trim_start_matches("FRAME_KIND_").to_owned()).unwrap_or_else(|_| format!("UNKNOWN({kind})"))
}

fn protocol_name(id: u32) -> String {
    match registry::name(id) {
        Some(n) => format!("0x{id:04X} ({n})"),
        None => format!("0x{id:04X} ({:?})", registry::classify(id)).to_lowercase().replace("0X", "0x"),
    }
}

/// The payload decoded as the message its protocol and kind say it is.
fn payload_message(frame: &FrameView<'_>) -> Option<Result<String, String>> {
    fn show<M: Message + Default + std::fmt::Debug>(name: &str, bytes: &[u8]) -> Result<String, String> {
        M::decode(bytes).map(|m| format!("{name} {m:?}")).map_err(|e| format!("{name}: {e}"))
    }
    let kind = frame.frame_kind();
    let p = frame.payload;
    Some(match (frame.payload_protocol, kind) {
        (registry::CONTROL, Some(FrameKind::Request)) => show::<Hello>("Hello", p),
        (registry::CONTROL, _) => show::<HelloReply>("HelloReply", p),
        (registry::ADMIN, Some(FrameKind::Request)) => show::<AdminRequest>("AdminRequest", p),
        (registry::ADMIN, _) => show::<AdminReply>("AdminReply", p),
        (registry::HANDOFF, Some(FrameKind::Request)) => show::<HandoffOffer>("HandoffOffer", p),
        (registry::HANDOFF, _) => show::<HandoffAck>("HandoffAck", p),
        (registry::IDENTITY_PROBE, Some(FrameKind::Request)) => Ok(format!("probe nonce {}", hex(p))),
        (registry::IDENTITY_PROBE, _) if p.len() >= 32 => DaemonIdentity::decode_reply_identity(&p[32..])
            .map(|id| format!("probe answer, nonce {} {id:?}", hex(&p[..32])))
            .map_err(|e| e.to_string()),
        (registry::LIBRP_PUSH, Some(FrameKind::Request)) => show::<Registration>("Registration", p),
        (registry::LIBRP_PUSH, Some(FrameKind::Event)) => show::<Push>("Push", p),
        (registry::LIBRP_PUSH, Some(FrameKind::Response)) if matches!(p.first(), Some(0x08 | 0x18)) => {
            show::<RegistrationAck>("RegistrationAck", p)
        }
        (registry::LIBRP_PUSH, Some(FrameKind::Response)) => show::<PushReply>("PushReply", p),
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Up to 64 bytes as text when printable, else hex.
fn preview(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(64)];
    let more = if bytes.len() > 64 { "..." } else { "" };
    match std::str::from_utf8(head) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n') => format!("{s:?}{more}"),
        _ => format!("{}{more}", hex(head)),
    }
}

fn print_frame(index: usize, at: usize, len: usize, f: &FrameView<'_>) {
    println!("frame {index} (bytes {at}..{}, {len} bytes)", at + len);
    println!("  envelope_version  {}", f.envelope_version);
    println!("  kind              {}", kind_name(f.kind));
    println!("  payload_protocol  {}", protocol_name(f.payload_protocol));
    println!("  request_id        {}", f.request_id);
    if f.payload_encoding != 0 {
        println!("  payload_encoding  {}", f.payload_encoding);
    }
    if f.deadline_unix_ms != 0 {
        println!("  deadline_unix_ms  {}", f.deadline_unix_ms);
    }
    if !f.traceparent.is_empty() {
        println!("  traceparent       {}", f.traceparent);
    }
    if !f.tracestate.is_empty() {
        println!("  tracestate        {}", f.tracestate);
    }
    println!("  payload           {} bytes {}", f.payload.len(), preview(f.payload));
    match payload_message(f) {
        Some(Ok(text)) => println!("  message           {text}"),
        Some(Err(e)) => println!("  message           (does not decode: {e})"),
        None => {}
    }
}

fn frame_json(index: usize, at: usize, len: usize, f: &FrameView<'_>) -> serde_json::Value {
    let message = match payload_message(f) {
        Some(Ok(text)) => serde_json::json!(text),
        Some(Err(e)) => serde_json::json!({ "error": e }),
        None => serde_json::Value::Null,
    };
    serde_json::json!({
        "index": index,
        "offset": at,
        "length": len,
        "envelope_version": f.envelope_version,
        "kind": kind_name(f.kind),
        "payload_protocol": f.payload_protocol,
        "payload_protocol_name": registry::name(f.payload_protocol),
        "request_id": f.request_id,
        "payload_encoding": f.payload_encoding,
        "deadline_unix_ms": f.deadline_unix_ms,
        "traceparent": f.traceparent,
        "tracestate": f.tracestate,
        "payload_hex": hex(f.payload),
        "message": message,
    })
}
