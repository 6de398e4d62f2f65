//! `rp_tls_client_options` and `rp_tls_server_options`: TLS settings for the roles that take
//! them as one object (sessions and the broker client), for C. The push server and worker
//! keep theirs on their own options.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, slice_arg};
use super::handle::{box_free, box_into_handle, box_mut, castable, out_arg};
use super::status::rp_status;
use crate::transport::{read_pem_file, ClientAuth, TlsClientOptions, TlsServerOptions};

/// How a `tls://` server is verified and what the client presents: CA roots, the server name,
/// a client certificate for mutual TLS.
///
/// Methods: `rp_tls_client_options_new`, `_set_ca_pem`, `_set_ca_file`, `_set_server_name`,
/// `_set_client_cert_pem`, `_set_client_cert_files`, `_free`; read (copied) by
/// `rp_session_connect_tls` and `rp_broker_options_set_tls`.
///
/// Exclusive handle (Send).
pub struct rp_tls_client_options {
    _private: [u8; 0],
}

castable!(rp_tls_client_options => TlsClientOptions: OwnedBox);

/// What a `tls://` listener presents and asks of its clients: certificate chain and key, and
/// optionally client CA roots (mutual TLS).
///
/// Methods: `rp_tls_server_options_new`, `_set_cert_pem`, `_set_cert_files`,
/// `_set_client_ca_pem`, `_set_client_ca_file`, `_free`; read (copied) by
/// `rp_session_listener_bind_tls`.
///
/// Exclusive handle (Send).
pub struct rp_tls_server_options {
    _private: [u8; 0],
}

castable!(rp_tls_server_options => TlsServerOptions: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------------

/// Creates empty TLS client options: the system's CA roots (the file `SSL_CERT_FILE` names, or
/// the system CA bundle), the endpoint's host as the server name, no client certificate.
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_options`; free it with `rp_tls_client_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_new(out_options: *mut *mut rp_tls_client_options) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or valid for a write per the API contract.
        let out = unsafe { out_arg(out_options, "out_options") }?;
        out.write(box_into_handle(TlsClientOptions::default()));
        Ok(())
    })
}

/// Sets the CA roots (PEM text, copied) the server's certificate must chain to. Returns
/// `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`; PEM without a certificate fails the connect with
/// `RP_STATUS_CONFIG`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_set_ca_pem(
    options: *mut rp_tls_client_options,
    ca_pem: *const u8,
    ca_len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time, and `ca_len` readable
        // bytes at `ca_pem`, per the API contract.
        unsafe { set_ca(box_mut(options, "options")?, PemArg::Text { pem: ca_pem, len: ca_len, name: "ca_pem" }) }
    })
}

/// Like `rp_tls_client_options_set_ca_pem`, reading the PEM file at `ca_path` now. Returns
/// `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read), `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_set_ca_file(
    options: *mut rp_tls_client_options,
    ca_path: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time, and a NUL-terminated
        // path, per the API contract.
        unsafe { set_ca(box_mut(options, "options")?, PemArg::File { path: ca_path, name: "ca_path", what: "CA roots" }) }
    })
}

/// Sets the name the server's certificate must be valid for (a DNS name or an IP address;
/// default: the host of the endpoint). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`; a name that is neither fails the connect with
/// `RP_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_set_server_name(
    options: *mut rp_tls_client_options,
    server_name: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: NUL-terminated per the API contract.
        o.server_name = unsafe { cstr_arg(server_name, "server_name") }?.to_owned();
        Ok(())
    })
}

/// Sets the client certificate chain (leaf first) and private key presented to a server that
/// asks for one (mutual TLS), as PEM text (copied). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`; unusable or mismatched PEM fails the connect with
/// `RP_STATUS_CONFIG`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_set_client_cert_pem(
    options: *mut rp_tls_client_options,
    cert_chain_pem: *const u8,
    cert_chain_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::Text { pem: cert_chain_pem, len: cert_chain_len, name: "cert_chain_pem" };
        let key = PemArg::Text { pem: key_pem, len: key_len, name: "key_pem" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        unsafe { set_client_cert(box_mut(options, "options")?, chain, key) }
    })
}

/// Like `rp_tls_client_options_set_client_cert_pem`, reading the PEM files at
/// `cert_chain_path` and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file
/// could not be read), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_set_client_cert_files(
    options: *mut rp_tls_client_options,
    cert_chain_path: *const c_char,
    key_path: *const c_char,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::File { path: cert_chain_path, name: "cert_chain_path", what: "client certificate chain" };
        let key = PemArg::File { path: key_path, name: "key_path", what: "client private key" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        unsafe { set_client_cert(box_mut(options, "options")?, chain, key) }
    })
}

/// Frees TLS client options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_client_options_free(options: *mut rp_tls_client_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

// ---------------------------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------------------------

/// Creates empty TLS server options; a certificate and key must be set before they are used.
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_options`; free it with `rp_tls_server_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_new(out_options: *mut *mut rp_tls_server_options) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or valid for a write per the API contract.
        let out = unsafe { out_arg(out_options, "out_options") }?;
        out.write(box_into_handle(TlsServerOptions::default()));
        Ok(())
    })
}

/// Sets the certificate chain (leaf first) and private key the server presents, as PEM text
/// (`CERTIFICATE` blocks; a PKCS#8, PKCS#1 or SEC1 key), copied; checked when a listener binds
/// with them (`RP_STATUS_CONFIG` there when unusable or mismatched). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_set_cert_pem(
    options: *mut rp_tls_server_options,
    cert_chain_pem: *const u8,
    cert_chain_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::Text { pem: cert_chain_pem, len: cert_chain_len, name: "cert_chain_pem" };
        let key = PemArg::Text { pem: key_pem, len: key_len, name: "key_pem" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_server_cert(|| o, chain, key) }
    })
}

/// Like `rp_tls_server_options_set_cert_pem`, reading the PEM files at `cert_chain_path` and
/// `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file could not be read),
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_set_cert_files(
    options: *mut rp_tls_server_options,
    cert_chain_path: *const c_char,
    key_path: *const c_char,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::File { path: cert_chain_path, name: "cert_chain_path", what: "certificate chain" };
        let key = PemArg::File { path: key_path, name: "key_path", what: "private key" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_server_cert(|| o, chain, key) }
    })
}

/// Asks clients for a certificate that chains to the CA roots `ca_pem` (PEM text, copied):
/// mutual TLS. With `required` a client without one is refused (`RP_STATUS_PERMISSION_DENIED`
/// on its side), and the listener may then bind an address other than loopback; without, a
/// client that presents none gets in and one that presents an invalid one does not. Returns
/// `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_set_client_ca_pem(
    options: *mut rp_tls_server_options,
    ca_pem: *const u8,
    ca_len: usize,
    required: bool,
) -> rp_status {
    boundary(|| {
        let ca = PemArg::Text { pem: ca_pem, len: ca_len, name: "ca_pem" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_client_ca(|| o, ca, required) }
    })
}

/// Like `rp_tls_server_options_set_client_ca_pem`, reading the PEM file at `ca_path` now.
/// Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read),
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_set_client_ca_file(
    options: *mut rp_tls_server_options,
    ca_path: *const c_char,
    required: bool,
) -> rp_status {
    boundary(|| {
        let ca = PemArg::File { path: ca_path, name: "ca_path", what: "client CA roots" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_client_ca(|| o, ca, required) }
    })
}

/// Frees TLS server options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_tls_server_options_free(options: *mut rp_tls_server_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

// ---------------------------------------------------------------------------------------------
// PEM from C, shared by every TLS setter (these options, the push server's and the worker's)
// ---------------------------------------------------------------------------------------------

/// PEM a C caller passes: text in a buffer (copied) or a file named by a path (read now).
pub(super) enum PemArg {
    /// `len` readable bytes at `pem`; `name` is the argument's name in errors.
    Text { pem: *const u8, len: usize, name: &'static str },
    /// A NUL-terminated path; `name` is the argument's name, `what` the file's role in errors.
    File { path: *const c_char, name: &'static str, what: &'static str },
}

impl PemArg {
    /// Reads the PEM.
    ///
    /// # Safety
    /// The pointers are valid as the API contract of the calling function says.
    unsafe fn read(self) -> Result<Vec<u8>, Failure> {
        match self {
            // SAFETY: per this function's contract.
            PemArg::Text { pem, len, name } => Ok(unsafe { slice_arg(pem, len, name) }?.to_vec()),
            PemArg::File { path, name, what } => {
                // SAFETY: per this function's contract.
                let path = unsafe { cstr_arg(path, name) }?;
                Ok(read_pem_file(path.as_ref(), what)?)
            }
        }
    }
}

/// Sets the CA roots a client verifies its server with.
///
/// # Safety
/// As [`PemArg::read`].
pub(super) unsafe fn set_ca(options: &mut TlsClientOptions, ca: PemArg) -> Result<(), Failure> {
    // SAFETY: per this function's contract.
    options.ca_pem = unsafe { ca.read() }?;
    Ok(())
}

/// Sets the certificate chain and key a client presents for mutual TLS; both are read before
/// either is set.
///
/// # Safety
/// As [`PemArg::read`].
pub(super) unsafe fn set_client_cert(options: &mut TlsClientOptions, chain: PemArg, key: PemArg) -> Result<(), Failure> {
    // SAFETY: per this function's contract.
    let (chain, key) = unsafe { (chain.read()?, key.read()?) };
    options.cert_chain_pem = chain;
    options.key_pem = key;
    Ok(())
}

/// Sets the certificate chain and key a server presents; both are read before `options` is
/// asked for the settings to change.
///
/// # Safety
/// As [`PemArg::read`].
pub(super) unsafe fn set_server_cert<'a>(
    options: impl FnOnce() -> &'a mut TlsServerOptions,
    chain: PemArg,
    key: PemArg,
) -> Result<(), Failure> {
    // SAFETY: per this function's contract.
    let (chain, key) = unsafe { (chain.read()?, key.read()?) };
    let o = options();
    o.cert_chain_pem = chain;
    o.key_pem = key;
    Ok(())
}

/// Sets the CA roots a server verifies client certificates with, and whether one is required;
/// the PEM is read before `options` is asked for the settings to change.
///
/// # Safety
/// As [`PemArg::read`].
pub(super) unsafe fn set_client_ca<'a>(
    options: impl FnOnce() -> &'a mut TlsServerOptions,
    ca: PemArg,
    required: bool,
) -> Result<(), Failure> {
    // SAFETY: per this function's contract.
    let ca = unsafe { ca.read() }?;
    let o = options();
    o.client_ca_pem = ca;
    o.client_auth = if required { ClientAuth::Required } else { ClientAuth::Optional };
    Ok(())
}
