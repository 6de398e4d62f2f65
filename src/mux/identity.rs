//! The identity a backend daemon reports when a broker probes its endpoint.
//!
//! A probe reply carries, after the echoed nonce, the protobuf `DaemonProcess` of the answering
//! process followed by one extra field appended by hand: field 3 (tag byte `0x1a`, length byte
//! `0x20`) holding a 32-byte legacy SHA-256 of the executable, or 32 zero bytes. Probers of the
//! reference implementation expect that exact layout (`WIRE.md`, "Identity probe").

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use prost::Message;
use sha2::Digest;

use crate::error::{Error, Result};
use crate::transport;
use crate::wire::proto::{DaemonProcess, Endpoint};

/// The hash algorithm name probers expect in `exe_hash_algorithm`.
pub const EXE_HASH_ALGORITHM: &str = "blake3";
/// Length of the legacy SHA-256 slot appended after the `DaemonProcess` message.
pub const LEGACY_SHA256_LEN: usize = 32;
/// Tag byte of the hand-appended legacy field (field 3, length-delimited).
const LEGACY_FIELD_TAG: u8 = 0x1a;

/// Which hashes of the executable [`DaemonIdentity::current_process`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegacyHash {
    /// Only BLAKE3; the legacy SHA-256 slot is 32 zero bytes.
    #[default]
    Zeros,
    /// BLAKE3, and SHA-256 of the executable in the legacy slot (for old probers).
    Sha256,
}

/// The identity of a daemon process, as reported in identity-probe replies.
///
/// Build it for the running process with [`DaemonIdentity::current_process`], or field by
/// field (every field is public) when the daemon knows better.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DaemonIdentity {
    /// Process id.
    pub pid: u32,
    /// Canonical absolute path of the executable.
    pub exe_path: String,
    /// Namespace of the endpoint the daemon serves.
    pub endpoint_namespace: String,
    /// Path of the endpoint the daemon serves (the one probers connect to).
    pub endpoint_path: String,
    /// When the process started, in Unix milliseconds.
    pub started_at_unix_ms: u64,
    /// `/proc/sys/kernel/random/boot_id` of the machine, without the trailing newline.
    pub boot_id: String,
    /// How long the daemon stays up without clients, if it has such a limit.
    pub idle_timeout_secs: Option<u32>,
    /// Name of the hash in `exe_hash`; [`EXE_HASH_ALGORITHM`] for identities librp builds.
    pub exe_hash_algorithm: String,
    /// Hash of the executable file.
    pub exe_hash: Vec<u8>,
    /// The legacy SHA-256 slot: SHA-256 of the executable, or zeros.
    pub legacy_exe_sha256: [u8; LEGACY_SHA256_LEN],
}

impl DaemonIdentity {
    /// The identity of the calling process serving the endpoint `namespace`:`path`.
    ///
    /// Reads `/proc/self/exe` (canonical path, BLAKE3 hash, and SHA-256 when `legacy` asks for
    /// it), `/proc/sys/kernel/random/boot_id`, and the process start time from `/proc/self/stat`;
    /// fails with an I/O error when `/proc` is not mounted. On macOS and Windows the same facts
    /// come from that system (on Windows the executable path as `current_exe` gives it and the
    /// boot id as running-process writes it there).
    pub fn current_process(
        namespace: &str,
        path: &str,
        idle_timeout_secs: Option<u32>,
        legacy: LegacyHash,
    ) -> Result<Self> {
        let self_exe = transport::process_exe(None);
        let exe = transport::identity_exe_path(&self_exe)
            .map_err(|e| Error::io("resolving /proc/self/exe", e))?;
        let exe_path = exe
            .to_str()
            .ok_or(Error::InvalidUtf8("executable path"))?
            .to_owned();
        let (exe_hash, legacy_exe_sha256) = hash_executable(&self_exe, legacy)?;
        Ok(DaemonIdentity {
            pid: std::process::id(),
            exe_path,
            endpoint_namespace: namespace.to_owned(),
            endpoint_path: path.to_owned(),
            started_at_unix_ms: transport::process_start_unix_ms()?,
            boot_id: transport::boot_id()?,
            idle_timeout_secs,
            exe_hash_algorithm: EXE_HASH_ALGORITHM.to_owned(),
            exe_hash,
            legacy_exe_sha256,
        })
    }

    /// The `DaemonProcess` protobuf message (without the legacy slot, which has no proto field).
    pub fn to_proto(&self) -> DaemonProcess {
        DaemonProcess {
            pid: self.pid,
            exe_path: self.exe_path.clone(),
            ipc_endpoint: Some(Endpoint {
                namespace_id: self.endpoint_namespace.clone(),
                path: self.endpoint_path.clone(),
            }),
            started_at_unix_ms: self.started_at_unix_ms,
            boot_id: self.boot_id.clone(),
            idle_timeout_secs: self.idle_timeout_secs,
            exe_hash_algorithm: self.exe_hash_algorithm.clone(),
            exe_hash: self.exe_hash.clone(),
        }
    }

    /// Parses the identity bytes of a probe reply (what follows the nonce): the `DaemonProcess`
    /// and, when the reply ends with the hand-appended field 3 (`0x1a 0x20` + 32 bytes), the
    /// legacy slot (zeros otherwise).
    pub fn decode_reply_identity(bytes: &[u8]) -> Result<Self> {
        let message = DaemonProcess::decode(bytes)
            .map_err(|e| crate::wire::WireError::from_prost("DaemonProcess", e))?;
        let mut legacy_exe_sha256 = [0u8; LEGACY_SHA256_LEN];
        let tail = bytes.len().checked_sub(2 + LEGACY_SHA256_LEN).map(|at| &bytes[at..]);
        if let Some(tail) = tail.filter(|t| t[0] == LEGACY_FIELD_TAG && t[1] == LEGACY_SHA256_LEN as u8) {
            legacy_exe_sha256.copy_from_slice(&tail[2..]);
        }
        let endpoint = message.ipc_endpoint.unwrap_or_default();
        Ok(DaemonIdentity {
            pid: message.pid,
            exe_path: message.exe_path,
            endpoint_namespace: endpoint.namespace_id,
            endpoint_path: endpoint.path,
            started_at_unix_ms: message.started_at_unix_ms,
            boot_id: message.boot_id,
            idle_timeout_secs: message.idle_timeout_secs,
            exe_hash_algorithm: message.exe_hash_algorithm,
            exe_hash: message.exe_hash,
            legacy_exe_sha256,
        })
    }

    /// The identity bytes of a probe reply (what follows the 32-byte nonce): the encoded
    /// `DaemonProcess`, then `0x1a 0x20` and the 32-byte legacy slot.
    pub fn encode_reply_identity(&self) -> Vec<u8> {
        let message = self.to_proto();
        let mut out = Vec::with_capacity(message.encoded_len() + 2 + LEGACY_SHA256_LEN);
        // Encoding into a Vec cannot run out of space.
        message
            .encode(&mut out)
            .expect("a Vec grows to fit the message");
        out.push(LEGACY_FIELD_TAG);
        out.push(LEGACY_SHA256_LEN as u8);
        out.extend_from_slice(&self.legacy_exe_sha256);
        out
    }
}

/// BLAKE3 of the file, and its SHA-256 (or zeros) for the legacy slot, in one read.
pub(crate) fn hash_executable(path: &Path, legacy: LegacyHash) -> Result<(Vec<u8>, [u8; LEGACY_SHA256_LEN])> {
    let mut file = File::open(path).map_err(|e| Error::io("opening the executable", e))?;
    let mut blake = blake3::Hasher::new();
    let mut sha = (legacy == LegacyHash::Sha256).then(sha2::Sha256::new);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("hashing the executable", e)),
        };
        blake.update(&chunk[..n]);
        if let Some(sha) = &mut sha {
            sha.update(&chunk[..n]);
        }
    }
    let mut legacy_slot = [0u8; LEGACY_SHA256_LEN];
    if let Some(sha) = sha {
        legacy_slot.copy_from_slice(&sha.finalize());
    }
    Ok((blake.finalize().as_bytes().to_vec(), legacy_slot))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fixed identity of `vectors/probe_response_*.hex`.
    pub(crate) fn fixed_identity() -> DaemonIdentity {
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

    #[cfg(windows)]
    #[test]
    fn current_process_reports_the_executable_and_verifies() {
        let id = DaemonIdentity::current_process("ns", "rp-demo", None, LegacyHash::Sha256).unwrap();
        assert_eq!(id.pid, std::process::id());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(id.exe_path, exe.to_str().unwrap());
        assert_eq!(id.exe_hash, blake3::hash(&std::fs::read(&exe).unwrap()).as_bytes());
        assert!(id.boot_id.starts_with("windows-boot-"), "{}", id.boot_id);
        assert_eq!(id.boot_id, crate::transport::boot_id().unwrap(), "fixed for the process");
        let problems = crate::mux::probe::verify_identity(&id, &crate::transport::Endpoint::Pipe("rp-demo".into()));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn current_process_matches_proc() {
        let id =
            DaemonIdentity::current_process("ns", "/tmp/x.sock", None, LegacyHash::Sha256).unwrap();
        assert_eq!(id.pid, std::process::id());
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        assert_eq!(id.exe_path, exe.to_str().unwrap());
        let bytes = std::fs::read(&exe).unwrap();
        assert_eq!(id.exe_hash, blake3::hash(&bytes).as_bytes());
        assert_eq!(id.legacy_exe_sha256[..], sha2::Sha256::digest(&bytes)[..]);
        assert_eq!(
            id.boot_id,
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim_end()
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(id.started_at_unix_ms <= now + 1000);
        assert!(
            id.started_at_unix_ms + 3_600_000 > now,
            "started within the hour"
        );
        let zeros =
            DaemonIdentity::current_process("ns", "/tmp/x.sock", Some(5), LegacyHash::Zeros)
                .unwrap();
        assert_eq!(zeros.legacy_exe_sha256, [0; 32]);
        assert_eq!(zeros.idle_timeout_secs, Some(5));
    }

    #[test]
    fn identity_bytes_have_the_legacy_field_last() {
        let bytes = fixed_identity().encode_reply_identity();
        assert_eq!(&bytes[bytes.len() - 34..bytes.len() - 32], &[0x1a, 0x20]);
        assert_eq!(&bytes[bytes.len() - 32..], &[0x5a; 32]);
    }
}
