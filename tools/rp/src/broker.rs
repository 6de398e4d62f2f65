//! `rp hello` and `rp broker`.

use std::path::PathBuf;
use std::time::Duration;

use rp::broker::{BrokerEvent, BrokerServer, BrokerServerOptions, BrokerService};
use rp::control::{client_handshake, ClientHello};
use rp::transport::{self, read_pem_file, Endpoint, PeerCredentials, TlsClientOptions};
use rp::wire::{FrameReader, FrameWriter, WireError};

use crate::{endpoint_arg, millis_arg, Failure};

#[derive(clap::Args)]
pub struct HelloArgs {
    /// The broker (or any peer that answers a Hello, such as a push server; tls://host:port
    /// with --ca)
    #[arg(value_parser = endpoint_arg)]
    broker: Endpoint,
    /// The service to ask for
    service: String,
    /// The version wanted (semver)
    version: String,
    /// This client's version, sent as client_version
    #[arg(long, default_value = "")]
    client_version: String,
    /// Advertise handle passing (capability bit 0)
    #[arg(long)]
    handoff: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
    /// Give up after this many milliseconds
    #[arg(long, default_value = "5000", value_parser = millis_arg)]
    timeout_ms: Duration,
    /// A backend endpoint remembered from an earlier Negotiated: connect straight to it
    /// (hello-skip, no Hello sent) when --own-version equals VERSION, else say Hello
    #[arg(long, value_parser = endpoint_arg)]
    cached: Option<Endpoint>,
    /// This client's own version, for the hello-skip rule (default: VERSION)
    #[arg(long)]
    own_version: Option<String>,
    /// CA roots a tls:// endpoint's certificate must chain to (PEM file; default: the system's)
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate chain for mutual TLS (PEM file, leaf first)
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM file)
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Name a tls:// endpoint's certificate must be valid for (default: the endpoint's host)
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
}

/// The TLS options of `rp hello` for tls:// endpoints (the broker's or the cached one).
fn hello_tls(args: &HelloArgs) -> Result<TlsClientOptions, Failure> {
    let mut tls = TlsClientOptions::default();
    if let Some(ca) = &args.ca {
        tls.ca_pem = read_pem_file(ca, "CA roots")?;
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls.cert_chain_pem = read_pem_file(cert, "client certificate chain")?;
        tls.key_pem = read_pem_file(key, "client private key")?;
    }
    if let Some(name) = &args.server_name {
        tls.server_name = name.clone();
    }
    let tls_set = args.ca.is_some() || args.cert.is_some() || args.server_name.is_some();
    let any_tls = matches!(args.broker, Endpoint::Tls(_)) || matches!(args.cached, Some(Endpoint::Tls(_)));
    if tls_set && !any_tls {
        return Err(Failure::new(2, format!("--ca, --cert, --server-name: {} is not a tls:// endpoint", args.broker)));
    }
    if args.handoff && matches!(args.broker, Endpoint::Tls(_)) {
        return Err(Failure::new(2, "--handoff: a TLS connection cannot be handed off (its TLS state stays in this process)"));
    }
    Ok(tls)
}

pub fn run_hello(args: HelloArgs) -> Result<(), Failure> {
    let hello = ClientHello {
        service_name: args.service.clone(),
        wanted_version: args.version.clone(),
        client_version: args.client_version.clone(),
        capabilities: if args.handoff { rp::wire::CAP_HANDLE_PASSING } else { 0 },
        ..ClientHello::default()
    };
    hello.validate()?;
    let tls = hello_tls(&args)?;
    // Hello-skip, as the reference client does it: only when the wanted version is the
    // client's own, and only if the cached endpoint accepts the connection.
    let own_version = args.own_version.as_deref().unwrap_or(&args.version);
    if let Some(cached) = args.cached.as_ref().filter(|_| own_version == args.version) {
        if transport::connect_with(cached, args.timeout_ms, &tls).is_ok() {
            if args.json {
                println!("{}", serde_json::json!({ "route": "hello-skip", "endpoint": cached.to_string() }));
            } else {
                println!("route:         hello-skip");
                println!("endpoint:      {cached}");
            }
            return Ok(());
        }
    }
    let stream = transport::connect_with(&args.broker, args.timeout_ms, &tls)?;
    let io = |e| Failure::from(rp::Error::io("configure socket", e));
    stream.set_read_timeout(Some(args.timeout_ms)).map_err(io)?;
    stream.set_write_timeout(Some(args.timeout_ms)).map_err(io)?;
    let mut writer = FrameWriter::new(stream.try_clone().map_err(io)?);
    let mut reader = FrameReader::new(stream);
    let outcome = client_handshake(&mut reader, &mut writer, &hello).map_err(|e| match e {
        rp::Error::Wire(WireError::Timeout) => {
            Failure::new(4, format!("{} did not answer the Hello within {} ms", args.broker, args.timeout_ms.as_millis()))
        }
        e => e.into(),
    });
    match outcome {
        Ok(n) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "route": "negotiated",
                        "negotiated": true,
                        "negotiated_protocol": n.negotiated_protocol,
                        "daemon_version": n.daemon_version,
                        "backend_pipe": n.backend_pipe,
                        "warnings": n.warnings,
                        "server_capabilities": n.server_capabilities,
                        "keepalive_interval_secs": n.keepalive_interval_secs,
                        "handoff_token_len": n.handle_passed_token.len(),
                        "connection_id": n.connection_id,
                    })
                );
            } else {
                println!("route:         negotiated");
                println!("negotiated:    protocol {}", n.negotiated_protocol);
                println!("daemon:        {}", n.daemon_version);
                println!("backend pipe:  {}", n.backend_pipe);
                println!("keepalive:     {} s", n.keepalive_interval_secs);
                println!("capabilities:  {:#x}", n.server_capabilities);
                if !n.handle_passed_token.is_empty() {
                    println!("handoff token: {} bytes (not shown)", n.handle_passed_token.len());
                }
                println!("connection id: {}", n.connection_id);
                for w in &n.warnings {
                    println!("warning:       {w}");
                }
            }
            Ok(())
        }
        Err(f) => {
            if let Some(r) = refusal_of(&f) {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "negotiated": false,
                            "code": r.0, "code_name": r.1, "reason": r.2, "retry_after_ms": r.3, "details": r.4,
                            "ok": false, "exit_code": f.code, "error": f.message,
                        })
                    );
                    return Err(f.reported());
                } else {
                    println!("refused:       {} ({})", r.1, r.0);
                    println!("reason:        {}", r.2);
                    if r.3 > 0 {
                        println!("retry after:   {} ms", r.3);
                    }
                    for (k, v) in &r.4 {
                        println!("detail:        {k}={v}");
                    }
                }
            }
            Err(f)
        }
    }
}

type RefusalParts = (i32, String, String, u64, std::collections::BTreeMap<String, String>);

/// The refusal carried by a failure of the handshake, if it was one.
fn refusal_of(f: &Failure) -> Option<RefusalParts> {
    f.refusal.as_ref().map(|r| (r.code, r.code_name().to_owned(), r.reason.clone(), r.retry_after_ms, r.details.clone()))
}

#[derive(clap::Args)]
pub struct BrokerArgs {
    /// Where to listen (a socket path or @name)
    #[arg(value_parser = endpoint_arg)]
    endpoint: Endpoint,
    /// A service: NAME=BACKEND_ENDPOINT@VERSION (repeatable)
    #[arg(long = "service", value_parser = service_arg)]
    services: Vec<BrokerService>,
    /// Serve only these versions of a service: NAME=VERSION (repeatable)
    #[arg(long = "allow", value_parser = pair_arg)]
    allow: Vec<(String, String)>,
    /// Refuse these versions with VERSION_BLOCKED: NAME=VERSION (repeatable)
    #[arg(long = "block", value_parser = pair_arg)]
    block: Vec<(String, String)>,
    /// Refuse versions below this one with VERSION_BLOCKED: NAME=VERSION (repeatable)
    #[arg(long = "min-version", value_parser = pair_arg)]
    min_version: Vec<(String, String)>,
    /// Offer handoff for a service: NAME=HANDOFF_ENDPOINT (repeatable). A client advertising
    /// handle passing gets a one-time token, and its connection is passed (SCM_RIGHTS, with a
    /// HandoffOffer carrying the token) to the backend listening there; its HandoffAck is
    /// relayed to the client. rp broker cannot tell another process its tokens in advance: the
    /// backend accepts offers on the strength of its owner-only socket (for example by adding
    /// the offered token to its store, rp_handoff_store_insert, before answering)
    #[arg(long = "handoff", value_parser = pair_arg)]
    handoff: Vec<(String, String)>,
    /// A file of lines `service NAME BACKEND VERSION`, `allow|block|min|handoff NAME VALUE` (# comments)
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Accept Hellos from processes of other users
    #[arg(long)]
    allow_other_uids: bool,
    /// Print one JSON object per connection on stdout instead of log lines on stderr
    #[arg(long)]
    json: bool,
    /// No log lines
    #[arg(long, short)]
    quiet: bool,
    /// Also print librp's log events at this level and above on stderr (error, warn, info, debug)
    #[arg(long, value_parser = crate::log_level_arg)]
    log: Option<rp::log::Level>,
}

fn service_arg(s: &str) -> Result<BrokerService, String> {
    let (name, rest) = s.split_once('=').ok_or("expected NAME=BACKEND_ENDPOINT@VERSION")?;
    let (backend, version) = rest.rsplit_once('@').ok_or("expected NAME=BACKEND_ENDPOINT@VERSION")?;
    Ok(BrokerService {
        service_name: name.to_owned(),
        backend_pipe: backend.to_owned(),
        daemon_version: version.to_owned(),
        ..BrokerService::default()
    })
}

fn pair_arg(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(a, b)| (a.to_owned(), b.to_owned())).ok_or_else(|| "expected NAME=VERSION".to_owned())
}

/// Reads a service table file into the arguments.
fn read_config(args: &mut BrokerArgs, path: &std::path::Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::new(1, format!("{}: {e}", path.display())))?;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = || Failure::new(1, format!("{}:{}: cannot read {line:?}", path.display(), n + 1));
        match words.as_slice() {
            ["service", name, backend, version] => args.services.push(BrokerService {
                service_name: (*name).to_owned(),
                backend_pipe: (*backend).to_owned(),
                daemon_version: (*version).to_owned(),
                ..BrokerService::default()
            }),
            ["allow", name, version] => args.allow.push(((*name).to_owned(), (*version).to_owned())),
            ["block", name, version] => args.block.push(((*name).to_owned(), (*version).to_owned())),
            ["min", name, version] => args.min_version.push(((*name).to_owned(), (*version).to_owned())),
            ["handoff", name, endpoint] => args.handoff.push(((*name).to_owned(), (*endpoint).to_owned())),
            _ => return Err(bad()),
        }
    }
    Ok(())
}

pub fn run_broker(mut args: BrokerArgs) -> Result<(), Failure> {
    crate::log_to_stderr(args.log);
    if let Some(path) = args.config.clone() {
        read_config(&mut args, &path)?;
    }
    if args.services.is_empty() {
        return Err(Failure::new(2, "no services: give --service NAME=BACKEND@VERSION or --config FILE"));
    }
    for (rules, apply) in [
        (&args.allow, (|s: &mut BrokerService, v: &str| s.allowed_versions.push(v.to_owned())) as fn(&mut BrokerService, &str)),
        (&args.block, |s, v| s.blocked_versions.push(v.to_owned())),
        (&args.min_version, |s, v| s.min_version = v.to_owned()),
    ] {
        for (name, version) in rules {
            let service = args
                .services
                .iter_mut()
                .find(|s| &s.service_name == name)
                .ok_or_else(|| Failure::new(2, format!("version rule for unknown service {name:?}")))?;
            apply(service, version);
        }
    }
    for (name, endpoint) in &args.handoff {
        let service = args
            .services
            .iter_mut()
            .find(|s| &s.service_name == name)
            .ok_or_else(|| Failure::new(2, format!("handoff for unknown service {name:?}")))?;
        let endpoint = endpoint_arg(endpoint).map_err(|e| Failure::new(2, format!("--handoff {name}: {e}")))?;
        service.handoff_endpoint = Some(endpoint);
    }
    let mut opts = BrokerServerOptions::new(args.endpoint.clone(), args.services.clone());
    opts.allow_other_uids = args.allow_other_uids;
    opts.events = true;
    let server = BrokerServer::bind(opts)?;
    if !args.quiet && !args.json {
        let names: Vec<String> = args
            .services
            .iter()
            .map(|s| {
                let handoff = s.handoff_endpoint.as_ref().map(|e| format!(", handoff to {e}")).unwrap_or_default();
                format!("{} -> {} ({}{handoff})", s.service_name, s.backend_pipe, s.daemon_version)
            })
            .collect();
        eprintln!("rp broker: listening on {}; services: {}", server.endpoint(), names.join(", "));
    }
    loop {
        let event = match server.next_event(None) {
            Ok(e) => e,
            Err(e) if e.kind() == rp::ErrorKind::Closed => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if args.quiet {
            continue;
        }
        if args.json {
            println!("{}", event_json(&event));
        } else {
            eprintln!("rp broker: {}", event_text(&event));
        }
    }
}

fn who(peer: &Option<PeerCredentials>) -> String {
    peer.map_or("an unknown peer".to_owned(), |p| format!("pid {} (uid {})", p.pid, p.uid))
}

fn event_text(e: &BrokerEvent) -> String {
    match e {
        BrokerEvent::Negotiated { peer, service, wanted_version, connection_id, handoff } => format!(
            "negotiated {service} {wanted_version} for {} as connection {connection_id}{}",
            who(peer),
            if *handoff { ", handing it off" } else { "" }
        ),
        BrokerEvent::Refused { peer, service, refusal } => {
            let code = refusal.code_name();
            let service = if service.is_empty() { "-" } else { service };
            let retry = if refusal.retry_after_ms > 0 { format!(", retry after {} ms", refusal.retry_after_ms) } else { String::new() };
            format!("refused {service} for {}: {code}: {}{retry}", who(peer), refusal.reason)
        }
    }
}

fn event_json(e: &BrokerEvent) -> serde_json::Value {
    let peer = |p: &Option<PeerCredentials>| p.map(|p| serde_json::json!({"pid": p.pid, "uid": p.uid, "gid": p.gid}));
    match e {
        BrokerEvent::Negotiated { peer: p, service, wanted_version, connection_id, handoff } => serde_json::json!({
            "event": "negotiated", "peer": peer(p), "service": service, "wanted_version": wanted_version,
            "connection_id": connection_id, "handoff": handoff,
        }),
        BrokerEvent::Refused { peer: p, service, refusal } => serde_json::json!({
            "event": "refused", "peer": peer(p), "service": service, "code": refusal.code,
            "reason": refusal.reason, "retry_after_ms": refusal.retry_after_ms,
        }),
    }
}
