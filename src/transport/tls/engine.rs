//! The rustls side of [`tls`](super): configurations built from the options, and
//! [`TlsStream`].

use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig};

use super::{read_pem_file, untangle, ClientAuth, TlsClientOptions, TlsFailure, TlsIdentity, TlsServerOptions};
use crate::error::{Error, ErrorKind};
use crate::transport::sys;

/// A built server configuration, shared by every connection a listener accepts.
#[derive(Clone)]
pub struct TlsServerConfig(Arc<ServerConfig>, bool);

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsServerConfig")
    }
}

impl TlsServerConfig {
    /// Builds the configuration; `Config` errors name what is wrong with the options.
    pub fn new(opts: &TlsServerOptions) -> Result<Self, Error> {
        let chain = certificates(&opts.cert_chain_pem, "server certificate chain")?;
        let key = private_key(&opts.key_pem, "server private key")?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}").into()))?;
        let builder = match opts.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                if opts.client_ca_pem.is_empty() {
                    return Err(Error::Config("TLS: client certificates need client CA roots".into()));
                }
                let roots = roots(&opts.client_ca_pem, "client CA roots")?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = if auth == ClientAuth::Optional { verifier.allow_unauthenticated() } else { verifier };
                let verifier = verifier.build().map_err(|e| Error::Config(format!("TLS client CA roots: {e}").into()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| Error::Config(format!("TLS server certificate and key: {e}").into()))?;
        Ok(TlsServerConfig(Arc::new(config), opts.client_auth == ClientAuth::Required))
    }

    /// Whether every client must present a verified certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.1
    }
}

/// A built client configuration and the name the server must prove.
#[derive(Clone)]
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig").field("name", &self.name).finish()
    }
}

impl TlsClientConfig {
    /// Builds the configuration for a server at `host` (the endpoint's host, used as the name
    /// to verify unless the options give one).
    pub fn new(opts: &TlsClientOptions, host: &str) -> Result<Self, Error> {
        let roots = if opts.ca_pem.is_empty() { system_roots()? } else { roots(&opts.ca_pem, "CA roots")? };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}").into()))?
            .with_root_certificates(roots);
        let config = match (opts.cert_chain_pem.is_empty(), opts.key_pem.is_empty()) {
            (true, true) => builder.with_no_client_auth(),
            (false, false) => {
                let chain = certificates(&opts.cert_chain_pem, "client certificate chain")?;
                let key = private_key(&opts.key_pem, "client private key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Config(format!("TLS client certificate and key: {e}").into()))?
            }
            _ => return Err(Error::Config("TLS: a client certificate and its key go together".into())),
        };
        let name = if opts.server_name.is_empty() { host_of(host) } else { opts.server_name.as_str() };
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| Error::invalid_argument(format!("TLS server name {name:?} is not a DNS name or IP address")))?;
        Ok(TlsClientConfig { config: Arc::new(config), name })
    }
}

/// The host part of `host:port` (without the brackets of an IPv6 address).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// The *ring* provider (see Cargo.toml for why *ring*). rustls marks it deprecated for lacking
/// post-quantum key exchange; its classical suites (TLS 1.3 and 1.2, ECDHE) are what librp uses.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("TLS {what}: not valid PEM: {e}").into()))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("TLS {what}: no CERTIFICATE block in the PEM text").into()));
    }
    Ok(certs)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| Error::Config(format!("TLS {what}: no usable private key in the PEM text ({e})").into()))
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, what)? {
        store.add(cert).map_err(|e| Error::Config(format!("TLS {what}: {e}").into()))?;
    }
    Ok(store)
}

/// The system's CA roots: the PEM file `SSL_CERT_FILE` names, or the first system bundle
/// found. Certificates the parser cannot use are skipped, as in any system bundle.
fn system_roots() -> Result<RootCertStore, Error> {
    const BUNDLES: [&str; 5] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
        "/usr/local/etc/openssl/cert.pem",
    ];
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let path = from_env
        .or_else(|| BUNDLES.iter().map(std::path::PathBuf::from).find(|p| p.is_file()))
        .ok_or_else(|| Error::Config("TLS: no CA roots given and no system CA bundle found (set SSL_CERT_FILE)".into()))?;
    let pem = read_pem_file(&path, "system CA bundle")?;
    let mut store = RootCertStore::empty();
    let (_added, _skipped) = store.add_parsable_certificates(CertificateDer::pem_slice_iter(&pem).flatten());
    if store.is_empty() {
        return Err(Error::Config(format!("TLS: no usable CA root in {}", path.display()).into()));
    }
    Ok(store)
}

/// What a rustls error means for users. `server` is this side's role.
fn describe(e: &rustls::Error, server: bool) -> TlsFailure {
    use rustls::Error as E;
    use CertificateError as C;
    let peer = if server { "the client's" } else { "the server's" };
    let denied = |message: String| TlsFailure { kind: ErrorKind::PermissionDenied, message, not_tls: false };
    match e {
        E::InvalidCertificate(c) => denied(match c {
            C::UnknownIssuer => format!("TLS: {peer} certificate is not signed by a trusted CA (unknown CA)"),
            C::Expired | C::ExpiredContext { .. } => format!("TLS: {peer} certificate has expired"),
            C::NotValidYet | C::NotValidYetContext { .. } => format!("TLS: {peer} certificate is not valid yet"),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("TLS: {peer} certificate is not valid for the server name (wrong name): {c}")
            }
            other => format!("TLS: {peer} certificate was refused: {other}"),
        }),
        E::NoCertificatesPresented => denied("TLS: a client certificate is required and the client sent none".into()),
        E::AlertReceived(alert) => {
            let by = if server { "the client" } else { "the server" };
            match alert {
                AlertDescription::CertificateRequired => {
                    denied(format!("TLS: {by} requires a client certificate and none was given"))
                }
                AlertDescription::UnknownCA => denied(format!("TLS: {by} does not trust this side's certificate (unknown CA)")),
                AlertDescription::CertificateExpired => denied(format!("TLS: {by} finds this side's certificate expired")),
                AlertDescription::BadCertificate | AlertDescription::CertificateUnknown | AlertDescription::AccessDenied => {
                    denied(format!("TLS: {by} refused this side's certificate ({alert:?})"))
                }
                AlertDescription::HandshakeFailure if !server => denied(
                    "TLS: the server refused the handshake (handshake failure: a required client certificate missing, or no common parameters)"
                        .into(),
                ),
                other => TlsFailure { kind: ErrorKind::Protocol, message: format!("TLS: {by} sent alert {other:?}"), not_tls: false },
            }
        }
        other => TlsFailure { kind: ErrorKind::Protocol, message: format!("TLS: {other}"), not_tls: false },
    }
}

/// A TLS record starts with its content type: change-cipher-spec, alert, handshake or data.
fn looks_like_tls(first: u8) -> bool {
    (20..=23).contains(&first)
}

/// The bytes of one read from the socket (a little over one TLS record).
const READ_CHUNK: usize = 17 * 1024;
thread_local! {
    /// The bytes of one read from a socket, before they are decrypted.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A connection's buffer of decrypted or encrypted bytes larger than this is freed once empty,
/// so one large push does not keep its memory on an idle connection.
const KEEP_BUFFER: usize = 32 * 1024;

/// Plaintext accepted by one non-blocking send.
const SEND_CHUNK: usize = 64 * 1024;

struct State {
    conn: rustls::Connection,
    /// Decrypted bytes not yet read.
    plain: Vec<u8>,
    plain_pos: usize,
    /// Encrypted bytes not yet written.
    out: Vec<u8>,
    out_pos: usize,
    /// The peer ended the stream.
    eof: bool,
    /// Why the connection failed, once it has (every later read and write says it again).
    failed: Option<TlsFailure>,
    /// Whether any byte came from the peer yet.
    heard: bool,
    /// A server whose client turned out not to speak TLS: what is sent goes out as it is (a
    /// plain refusal the client can read).
    passthrough: bool,
}

/// One TLS connection over TCP, shared by its readers and writers (see the module docs).
pub struct TlsStream {
    sock: TcpStream,
    server: bool,
    /// Serializes readers, so bytes reach the TLS state in the order they came.
    read_lock: Mutex<()>,
    /// Held while encrypted bytes are on their way to the socket, so records leave in order:
    /// a blocking writer sends without the state locked, and a reader's own output (an alert,
    /// a key update) waits for it.
    send_lock: Mutex<()>,
    state: Mutex<State>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("fd", &sys::tcp_descriptor(&self.sock)).field("server", &self.server).finish()
    }
}

impl TlsStream {
    /// The server side of an accepted connection; the handshake runs as it is read.
    pub fn server(sock: TcpStream, config: &TlsServerConfig) -> io::Result<Arc<TlsStream>> {
        let conn = rustls::ServerConnection::new(Arc::clone(&config.0)).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::wrap(sock, rustls::Connection::Server(conn), true))
    }

    /// The client side of a connected socket; [`handshake`](Self::handshake) completes it.
    pub fn client(sock: TcpStream, config: &TlsClientConfig) -> io::Result<Arc<TlsStream>> {
        let conn = rustls::ClientConnection::new(Arc::clone(&config.config), config.name.clone())
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self::wrap(sock, rustls::Connection::Client(conn), false))
    }

    fn wrap(sock: TcpStream, mut conn: rustls::Connection, server: bool) -> Arc<TlsStream> {
        // Bounded by the callers instead (SEND_CHUNK, and the roles' own send buffers).
        conn.set_buffer_limit(None);
        let state = State {
            conn,
            plain: Vec::new(),
            plain_pos: 0,
            out: Vec::new(),
            out_pos: 0,
            eof: false,
            failed: None,
            heard: false,
            passthrough: false,
        };
        let (read_lock, send_lock, state) = (Mutex::new(()), Mutex::new(()), Mutex::new(state));
        Arc::new(TlsStream { sock, server, read_lock, send_lock, state })
    }

    /// The TCP socket under the TLS.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the client handshake to its end, giving up at `deadline`: every certificate
    /// problem the client finds shows here. A refusal of this side's certificate by the
    /// server may only show on the first read.
    pub fn handshake(&self, deadline: Instant) -> Result<(), Error> {
        loop {
            {
                let mut st = self.lock();
                if let Some(f) = &st.failed {
                    return Err(f.clone().into_error());
                }
                st.pull_output();
                if !st.conn.is_handshaking() && st.out_pos == st.out.len() {
                    return Ok(());
                }
                while st.out_pos < st.out.len() {
                    let at = st.out_pos;
                    match sys::send_nonblocking(sys::tcp_descriptor(&self.sock), &st.out[at..]) {
                        Ok(n) => st.out_pos += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(Error::io("TLS handshake", e)),
                    }
                }
                st.compact_out();
                if !st.conn.is_handshaking() && st.out.is_empty() {
                    return Ok(());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout("the TLS handshake did not finish in time".into()));
            }
            let pending = !self.lock().out.is_empty();
            let ready = if pending {
                sys::wait_writable(sys::tcp_descriptor(&self.sock), Some(left.min(Duration::from_millis(50)))).map(|_| false)
            } else {
                sys::wait_readable(sys::tcp_descriptor(&self.sock), Some(left))
            }
            .map_err(|e| Error::io("TLS handshake", e))?;
            if !ready {
                continue;
            }
            let mut buf = [0u8; 0];
            match self.read_inner(&mut buf, false) {
                Ok(_) => {
                    if self.lock().eof {
                        return Err(Error::Closed(
                            "the server closed the connection during the TLS handshake (is it a TLS endpoint?)".into(),
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(untangle(Error::io("TLS handshake", e))),
            }
        }
    }

    /// Reads decrypted bytes: waiting for the socket (its read timeout applies) when `wait`,
    /// else `WouldBlock` once the socket has nothing more. `Ok(0)` at the end of the stream.
    pub fn read(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        self.read_inner(buf, wait)
    }

    fn read_inner(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        let _reader = self.read_lock.lock().unwrap_or_else(|p| p.into_inner());
        // One buffer for the socket's bytes per thread, not per connection or per read.
        RAW.with_borrow_mut(|raw| {
            if raw.len() < READ_CHUNK {
                raw.resize(READ_CHUNK, 0);
            }
            self.read_with(buf, wait, raw)
        })
    }

    fn read_with(&self, buf: &mut [u8], wait: bool, raw: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut st = self.lock();
                if st.passthrough {
                    drop(st);
                    return if wait { (&self.sock).read(buf) } else { sys::recv_dontwait(sys::tcp_descriptor(&self.sock), buf) };
                }
                if st.plain_pos < st.plain.len() {
                    return Ok(st.take_plain(buf));
                }
                if let Some(f) = &st.failed {
                    return Err(f.clone().io());
                }
                if st.eof {
                    return Ok(0);
                }
            }
            let got = if wait { (&self.sock).read(raw) } else { sys::recv_dontwait(sys::tcp_descriptor(&self.sock), raw) };
            let n = match got {
                Ok(n) => n,
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        // Whatever the handshake still has to say goes out before the caller waits.
                        let _ = self.flush_nonblocking();
                    }
                    return Err(e);
                }
            };
            let mut st = self.lock();
            if let Err(f) = st.feed(&raw[..n], self.server) {
                // The alert rustls queued says why, where the peer can read it; a peer that
                // does not speak TLS gets nothing it would misread.
                if !f.not_tls {
                    st.pull_output();
                    drop(st);
                    let _ = self.flush_nonblocking();
                    st = self.lock();
                }
                st.passthrough = f.not_tls && self.server;
                st.failed = Some(f.clone());
                return Err(f.io());
            }
            let wants_write = st.conn.wants_write();
            drop(st);
            if wants_write {
                let _ = self.flush_nonblocking();
            }
            if buf.is_empty() {
                return Ok(0);
            }
        }
    }

    /// Encrypts up to 64 KiB of `buf` and writes what the socket takes now; the rest waits in
    /// the connection ([`flush_nonblocking`](Self::flush_nonblocking) writes it). `WouldBlock`
    /// (nothing taken) while earlier bytes still wait.
    pub fn send_nonblocking(&self, buf: &[u8]) -> io::Result<usize> {
        let _sending = self.send_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        if st.passthrough {
            return sys::send_nonblocking(sys::tcp_descriptor(&self.sock), buf);
        }
        if let Some(f) = &st.failed {
            return Err(f.clone().io());
        }
        if !st.flush(sys::tcp_descriptor(&self.sock))? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(SEND_CHUNK);
        io::Write::write_all(&mut st.conn.writer(), &buf[..n])?;
        st.pull_output();
        st.flush(sys::tcp_descriptor(&self.sock))?;
        Ok(n)
    }

    /// Writes encrypted bytes still waiting, without blocking: true once none wait. While a
    /// blocking write is under way, leaves them to it (false).
    pub fn flush_nonblocking(&self) -> io::Result<bool> {
        let Ok(_sending) = self.send_lock.try_lock() else { return Ok(false) };
        let mut st = self.lock();
        st.pull_output();
        st.flush(sys::tcp_descriptor(&self.sock))
    }

    /// Whether encrypted bytes wait to be written.
    pub fn has_pending_output(&self) -> bool {
        let st = self.lock();
        st.out_pos < st.out.len() || st.conn.wants_write()
    }

    /// Whether decrypted bytes wait to be read (the socket may not be readable then).
    pub fn has_buffered_input(&self) -> bool {
        let st = self.lock();
        st.plain_pos < st.plain.len() || st.failed.is_some() || st.eof
    }

    /// Encrypts and writes all of `buf`, blocking (the socket's write timeout applies). The
    /// bytes are sent without the state locked, so readers go on meanwhile; writers are
    /// serialized by the caller (every role has one writer lock per connection). A write that
    /// fails or times out ends the TLS stream (its records are numbered: none can be left out):
    /// later reads and writes fail.
    pub fn write_blocking(&self, buf: &[u8]) -> io::Result<usize> {
        let _sending = self.send_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = true;
        loop {
            // The bytes of `buf`, then whatever a reader queued meanwhile (it left them to us):
            // the whole buffer is taken, and given back once sent.
            let (bytes, mut at) = {
                let mut st = self.lock();
                if let Some(f) = &st.failed {
                    return Err(f.clone().io());
                }
                if first {
                    io::Write::write_all(&mut st.conn.writer(), buf)?;
                    first = false;
                }
                st.pull_output();
                let at = std::mem::take(&mut st.out_pos);
                (std::mem::take(&mut st.out), at)
            };
            if at == bytes.len() {
                self.give_back(bytes);
                return Ok(buf.len());
            }
            while at < bytes.len() {
                match sys::send_nosignal(sys::tcp_descriptor(&self.sock), &bytes[at..]) {
                    Ok(n) => at += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let message = format!("TLS: a write failed ({e}); the connection cannot go on");
                        self.lock().failed = Some(TlsFailure { kind: ErrorKind::Protocol, message, not_tls: false });
                        return Err(e);
                    }
                }
            }
            self.give_back(bytes);
        }
    }

    /// Returns the send buffer a blocking writer took, emptied, unless another one took its
    /// place or it grew beyond what an idle connection keeps.
    fn give_back(&self, mut bytes: Vec<u8>) {
        bytes.clear();
        let mut st = self.lock();
        if st.out.is_empty() && st.out.capacity() == 0 && bytes.capacity() <= KEEP_BUFFER {
            st.out = bytes;
        }
    }

    /// Shuts down the socket (wakes readers blocked on it).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// The verified certificate of the peer (a client's, under mutual TLS), if it sent one.
    pub fn peer_identity(&self) -> Option<TlsIdentity> {
        let st = self.lock();
        let cert = st.conn.peer_certificates()?.first()?;
        Some(crate::transport::x509::identity(cert.as_ref()))
    }

    /// Whether the handshake is done.
    pub fn is_handshaking(&self) -> bool {
        self.lock().conn.is_handshaking()
    }
}

impl State {
    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plain.len() - self.plain_pos);
        buf[..n].copy_from_slice(&self.plain[self.plain_pos..self.plain_pos + n]);
        self.plain_pos += n;
        if self.plain_pos == self.plain.len() {
            self.plain.clear();
            self.plain_pos = 0;
            if self.plain.capacity() > KEEP_BUFFER {
                self.plain = Vec::new();
            }
        }
        n
    }

    /// Gives the connection the bytes read from the socket (`[]`: the end of the stream) and
    /// keeps what they decrypt to.
    fn feed(&mut self, mut bytes: &[u8], server: bool) -> Result<(), TlsFailure> {
        if bytes.is_empty() {
            self.eof = true;
            if !self.heard && self.conn.is_handshaking() && !server {
                return Err(TlsFailure {
                    kind: ErrorKind::Protocol,
                    message: "TLS: the server closed the connection during the handshake (is it a TLS endpoint?)".into(),
                    not_tls: false,
                });
            }
            let _ = self.conn.read_tls(&mut bytes);
            if let Ok(io_state) = self.conn.process_new_packets() {
                self.drain_plaintext(io_state.plaintext_bytes_to_read());
            }
            return Ok(());
        }
        if !self.heard {
            self.heard = true;
            if !looks_like_tls(bytes[0]) {
                let message = if server {
                    "TLS: the client does not speak TLS (a plain TCP client on a tls:// endpoint; connect with tls://)".into()
                } else {
                    "TLS: the server does not speak TLS (a plain tcp:// endpoint; connect with tcp://, or to its TLS endpoint)".into()
                };
                return Err(TlsFailure { kind: ErrorKind::Protocol, message, not_tls: true });
            }
        }
        while !bytes.is_empty() {
            self.conn.read_tls(&mut bytes).map_err(|e| TlsFailure {
                kind: ErrorKind::Protocol,
                message: format!("TLS: {e}"),
                not_tls: false,
            })?;
            let io_state = self.conn.process_new_packets().map_err(|e| describe(&e, server))?;
            self.drain_plaintext(io_state.plaintext_bytes_to_read());
            if io_state.peer_has_closed() {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Moves the `n` decrypted bytes the connection holds into `plain`.
    fn drain_plaintext(&mut self, n: usize) {
        if self.plain_pos > 0 {
            self.plain.drain(..self.plain_pos);
            self.plain_pos = 0;
        }
        if n == 0 {
            return;
        }
        let start = self.plain.len();
        self.plain.resize(start + n, 0);
        if self.conn.reader().read_exact(&mut self.plain[start..]).is_err() {
            self.plain.truncate(start);
        }
    }

    /// Moves what the connection has to send into `out`.
    fn pull_output(&mut self) {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.out).is_err() {
                break;
            }
        }
    }

    /// Writes `out` without blocking: true once it is all out.
    fn flush(&mut self, fd: crate::transport::RawDescriptor) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            let at = self.out_pos;
            match sys::send_nonblocking(fd, &self.out[at..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.compact_out();
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        Ok(true)
    }

    fn compact_out(&mut self) {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > 64 * 1024 {
            let at = self.out_pos;
            self.out.drain(..at);
            self.out_pos = 0;
        }
    }
}
