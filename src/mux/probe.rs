//! The prober's side of the identity probe: ask whoever answers an endpoint who it is, and check
//! the answer against the local process table the way a strict prober does.

use std::time::Duration;

use super::identity::{hash_executable, DaemonIdentity, LegacyHash, EXE_HASH_ALGORITHM};
use super::PROBE_NONCE_LEN;
use crate::error::{Error, Result};
use crate::transport::fill_random;
use crate::transport::{self, Endpoint};
use crate::wire::proto::FrameKind;
use crate::wire::{registry, FrameReader, FrameView, FrameWriter, WireError};

/// Sends an identity probe to `endpoint` and returns the identity that answered.
///
/// The probe carries a fresh 32-byte random nonce and, as the reference does, the first eight
/// nonce bytes (little endian) as its request id. The answer must be a RESPONSE on the probe
/// protocol with the same request id whose payload starts with the nonce. The whole exchange
/// (connect, send, answer) is bounded by `timeout`.
pub fn probe(endpoint: &Endpoint, timeout: Duration) -> Result<DaemonIdentity> {
    let mut nonce = [0u8; PROBE_NONCE_LEN];
    fill_random(&mut nonce).map_err(|e| Error::io("reading /dev/urandom", e))?;
    probe_with_nonce(endpoint, &nonce, timeout)
}

/// [`probe`] with a nonce of the caller's choosing (for replaying a capture or testing against
/// recorded answers; a fixed nonce lets a recorded answer pass, so use [`probe`] otherwise).
pub fn probe_with_nonce(endpoint: &Endpoint, nonce: &[u8; PROBE_NONCE_LEN], timeout: Duration) -> Result<DaemonIdentity> {
    let nonce = *nonce;
    let request_id = u64::from_le_bytes(nonce[..8].try_into().expect("8 bytes"));
    let stream = transport::connect(endpoint, timeout)?;
    let io = |e| Error::io("configure socket", e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut writer = FrameWriter::new(stream.try_clone().map_err(io)?);
    writer.write_frame(&FrameView {
        kind: FrameKind::Request as i32,
        payload_protocol: registry::IDENTITY_PROBE,
        payload: &nonce,
        request_id,
        ..FrameView::default()
    })?;
    let mut reader = FrameReader::new(stream);
    let answer = reader.read_frame().map_err(|e| match e {
        WireError::Timeout => Error::Timeout(format!("{endpoint} did not answer the probe").into()),
        WireError::Closed => Error::Closed(format!("{endpoint} closed the connection without answering").into()),
        e => e.into(),
    })?;
    let protocol_error = |why: String| Error::Wire(WireError::Protocol(why.into()));
    if answer.payload_protocol != registry::IDENTITY_PROBE || answer.frame_kind() != Some(FrameKind::Response) {
        return Err(protocol_error(format!(
            "expected a probe RESPONSE, got kind {} on payload protocol 0x{:04X}",
            answer.kind, answer.payload_protocol
        )));
    }
    if answer.request_id != request_id {
        return Err(protocol_error(format!("answer has request id {}, probe had {request_id}", answer.request_id)));
    }
    if answer.payload.len() < PROBE_NONCE_LEN || answer.payload[..PROBE_NONCE_LEN] != nonce {
        return Err(protocol_error("answer does not echo the probe's nonce".into()));
    }
    DaemonIdentity::decode_reply_identity(&answer.payload[PROBE_NONCE_LEN..])
}

/// Checks an identity against this machine as a strict prober does, for the process `pid`
/// reported: it is alive; `exe_path` is the canonical path of `/proc/PID/exe`; the hash is a
/// BLAKE3 equal to that file's; `boot_id` is this boot's; and the reported endpoint path is the
/// one probed. Returns every mismatch found (empty = verified).
pub fn verify_identity(identity: &DaemonIdentity, probed: &Endpoint) -> Vec<String> {
    let mut problems = Vec::new();
    if !transport::process_alive(identity.pid) {
        problems.push(format!("pid {} is not a running process", identity.pid));
        return problems;
    }
    let exe = transport::process_exe(Some(identity.pid));
    match transport::identity_exe_path(&exe) {
        Ok(real) if real.to_str() == Some(identity.exe_path.as_str()) => {}
        Ok(real) => problems.push(format!(
            "exe_path {:?} is not the process's executable {}",
            identity.exe_path,
            real.display()
        )),
        Err(e) => problems.push(format!("cannot resolve {}: {e}", exe.display())),
    }
    if identity.exe_hash_algorithm != EXE_HASH_ALGORITHM {
        problems.push(format!(
            "exe_hash_algorithm is {:?}, expected {EXE_HASH_ALGORITHM:?}",
            identity.exe_hash_algorithm
        ));
    } else {
        match hash_executable(&exe, LegacyHash::Zeros) {
            Ok((hash, _)) if hash == identity.exe_hash => {}
            Ok(_) => problems.push("exe_hash does not match the BLAKE3 of the executable".into()),
            Err(e) => problems.push(format!("cannot hash the executable: {e}")),
        }
    }
    match transport::boot_id() {
        Ok(boot) if boot == identity.boot_id => {}
        Ok(boot) => problems.push(format!("boot_id {:?} is not this boot ({boot})", identity.boot_id)),
        Err(e) => problems.push(format!("cannot read boot_id: {e}")),
    }
    let probed_path = match probed {
        Endpoint::Path(p) => p.display().to_string(),
        // The bare pipe name, as running-process writes a Windows endpoint on the wire.
        #[cfg(windows)]
        Endpoint::Pipe(name) => name.clone(),
        other => other.to_string(),
    };
    if identity.endpoint_path != probed_path {
        problems.push(format!(
            "reported endpoint {:?} is not the probed endpoint {probed_path:?}",
            identity.endpoint_path
        ));
    }
    problems
}
