//! `rp push-server` and `rp worker`.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use rp::push::proto::Registration;
use rp::push::{
    ActivityDescriptor, Dialect, EventHandler, PushResult, PushServer, PushSpec, ReconnectPolicy, ServerEvent, ServerOptions,
    Target, Worker, WorkerOptions,
};
use rp::transport::{read_pem_file, ClientAuth, Endpoint, TlsServerOptions};
use std::path::PathBuf;

use crate::{endpoint_arg, log_level_arg, log_to_stderr, millis_arg, print_stats, protocol_arg, Failure};

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Where to listen
    #[arg(value_parser = endpoint_arg)]
    endpoint: Endpoint,
    /// Push to workers of this task queue (default: any worker serving --protocol)
    #[arg(long)]
    task_queue: Option<String>,
    /// Payload protocol of the pushes
    #[arg(long, default_value = "0x7001", value_parser = protocol_arg)]
    protocol: u32,
    /// Wait for this many workers to register before reading stdin
    #[arg(long, default_value = "1")]
    workers: usize,
    /// Time each push has for its reply
    #[arg(long, default_value = "10000", value_parser = millis_arg)]
    timeout_ms: Duration,
    /// Time to wait for the workers to register
    #[arg(long, default_value = "30000", value_parser = millis_arg)]
    wait_ms: Duration,
    /// Print one JSON object per reply
    #[arg(long)]
    json: bool,
    /// No progress messages on stderr
    #[arg(long, short)]
    quiet: bool,
    /// Print the server's statistics when done (stderr; with --json, a last JSON object on stdout)
    #[arg(long)]
    stats: bool,
    /// Print librp's log events at this level and above on stderr (error, warn, info, debug)
    #[arg(long, value_parser = log_level_arg)]
    log: Option<rp::log::Level>,
    /// Certificate chain of a tls:// endpoint (PEM file, leaf first)
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM file)
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Require workers to present a client certificate from these CA roots (PEM file): mutual TLS
    #[arg(long, value_name = "FILE", requires = "cert")]
    client_ca: Option<PathBuf>,
    /// With --client-ca: let workers without a client certificate in too
    #[arg(long, requires = "client_ca")]
    client_cert_optional: bool,
    /// Listen on a non-loopback address (a tls:// endpoint with --client-ca, which requires
    /// client certificates)
    #[arg(long)]
    allow_remote: bool,
}

/// The TLS options of `rp push-server` from its arguments.
fn server_tls(args: &ServerArgs) -> Result<Option<TlsServerOptions>, Failure> {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        if matches!(args.endpoint, Endpoint::Tls(_)) {
            return Err(Failure::new(2, format!("{}: a tls:// endpoint needs --cert and --key", args.endpoint)));
        }
        return Ok(None);
    };
    if !matches!(args.endpoint, Endpoint::Tls(_)) {
        return Err(Failure::new(2, format!("--cert: {} is not a tls:// endpoint", args.endpoint)));
    }
    let mut tls = TlsServerOptions {
        cert_chain_pem: read_pem_file(cert, "certificate chain")?,
        key_pem: read_pem_file(key, "private key")?,
        ..TlsServerOptions::default()
    };
    if let Some(ca) = &args.client_ca {
        tls.client_ca_pem = read_pem_file(ca, "client CA roots")?;
        tls.client_auth = if args.client_cert_optional { ClientAuth::Optional } else { ClientAuth::Required };
    }
    Ok(Some(tls))
}

pub fn run_server(args: ServerArgs) -> Result<(), Failure> {
    log_to_stderr(args.log);
    let mut opts = ServerOptions::new(args.endpoint.clone());
    opts.events = true;
    opts.tls = server_tls(&args)?;
    opts.allow_remote_tcp = args.allow_remote;
    let server = PushServer::bind(opts)?;
    let say = |msg: String| {
        if !args.quiet {
            eprintln!("rp push-server: {msg}");
        }
    };
    say(format!("listening on {}", server.endpoint()));
    let mut registered = 0usize;
    let deadline = std::time::Instant::now() + args.wait_ms;
    while registered < args.workers {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = server.next_event(Some(left)).map_err(|e| match e.kind() {
            rp::ErrorKind::Timeout => Failure::new(
                4,
                format!("{registered} of {} workers registered within {} ms", args.workers, args.wait_ms.as_millis()),
            ),
            _ => e.into(),
        })?;
        match event {
            ServerEvent::WorkerConnected(w) => {
                registered += 1;
                let certificate = w.tls_identity.as_ref().map_or(String::new(), |t| format!(", certificate {}", t.subject));
                say(format!(
                    "worker {} registered: {} (queue {:?}{certificate}) [{registered}/{}]",
                    w.id, w.registration.identity, w.registration.task_queue, args.workers
                ));
            }
            ServerEvent::WorkerDisconnected { worker, reason } => {
                registered = registered.saturating_sub(1);
                say(format!("worker {} left: {reason}", worker.id));
            }
            ServerEvent::RegistrationRequest { .. } => {}
        }
    }
    let target = match &args.task_queue {
        Some(q) => Target::TaskQueue(q.clone()),
        None => Target::Protocol(args.protocol),
    };
    let stdout = std::io::stdout();
    let mut failed = 0usize;
    let mut total = 0usize;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| Failure::new(1, format!("reading stdin: {e}")))?;
        total += 1;
        say(format!("push {n}: {} bytes", line.len()));
        let spec = PushSpec { payload_protocol: args.protocol, payload: line.into_bytes(), ..PushSpec::default() };
        let (ok, reply, detail) = match server.push_wait(target.clone(), spec, args.timeout_ms) {
            Ok(PushResult::Reply(p)) => (true, String::from_utf8_lossy(&p).into_owned(), String::new()),
            Ok(PushResult::WorkerFailure { code, message }) => (false, String::new(), format!("worker failed ({code}): {message}")),
            Err(e) => (false, String::new(), e.to_string()),
        };
        failed += usize::from(!ok);
        let mut out = stdout.lock();
        let written = if args.json {
            writeln!(out, "{}", serde_json::json!({"index": n, "ok": ok, "reply": reply, "error": detail}))
        } else if ok {
            writeln!(out, "{}", reply.trim_end_matches('\n'))
        } else {
            say(format!("push {n} failed: {detail}"));
            Ok(())
        };
        written.and_then(|()| out.flush()).map_err(|e| Failure::new(1, format!("writing stdout: {e}")))?;
    }
    say(format!("{} of {total} pushes answered; shutting down", total - failed));
    if args.stats {
        print_stats("push-server", &server.stats().fields(), args.json);
    }
    server.shutdown();
    if failed > 0 {
        return Err(Failure::new(1, format!("{failed} of {total} pushes were not answered")));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The push server: a socket path, @name, tcp://host:port, tls://host:port, or a liminal server's
    /// liminal+tcp://host:port (the worker then speaks the liminal worker wire)
    #[arg(value_parser = worker_endpoint_arg)]
    endpoint: String,
    /// Who this worker is
    #[arg(long, default_value = "rp-worker")]
    identity: String,
    /// The task queue to register for (a liminal server routes pushes by it)
    #[arg(long, default_value = "")]
    task_queue: String,
    /// Payload protocol served [default: 0x7001; not on a liminal endpoint]
    #[arg(long, value_parser = protocol_arg)]
    protocol: Option<u32>,
    /// Service name in the Hello [default: librp-push; not on a liminal endpoint]
    #[arg(long)]
    service: Option<String>,
    /// Describe an activity with the JSON schemas of its input and output in the registration
    /// (liminal endpoints only; repeatable)
    #[arg(long, num_args = 3, value_names = ["NAME", "INPUT_SCHEMA_JSON", "OUTPUT_SCHEMA_JSON"])]
    activity_descriptor: Vec<String>,
    /// Time allowed for connecting and registering
    #[arg(long, default_value = "5000", value_parser = millis_arg)]
    connect_timeout_ms: Duration,
    /// Reconnect when the connection to the server is lost (exponential backoff with jitter),
    /// registering again; each transition is printed on stderr
    #[arg(long)]
    reconnect: bool,
    /// Shortest delay before a reconnect attempt
    #[arg(long, default_value = "100", value_parser = millis_arg, requires = "reconnect")]
    reconnect_min_ms: Duration,
    /// Longest delay before a reconnect attempt
    #[arg(long, default_value = "30000", value_parser = millis_arg, requires = "reconnect")]
    reconnect_max_ms: Duration,
    /// Give up after this many failed attempts in a row (0 = never)
    #[arg(long, default_value = "0", requires = "reconnect")]
    reconnect_attempts: u32,
    /// CA roots a tls:// server's certificate must chain to (PEM file; default: the system's)
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate chain for mutual TLS (PEM file, leaf first)
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key of --cert (PEM file)
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Name the server's certificate must be valid for (default: the endpoint's host)
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// No progress messages on stderr
    #[arg(long, short)]
    quiet: bool,
    /// Print the worker's statistics on stderr when the connection ends
    #[arg(long)]
    stats: bool,
    /// Print librp's log events at this level and above on stderr (error, warn, info, debug)
    #[arg(long, value_parser = log_level_arg)]
    log: Option<rp::log::Level>,
    /// The command run for each push: payload on its stdin, reply from its stdout; a non-zero
    /// exit becomes a failure reply carrying its stderr (on a liminal endpoint, a refusal
    /// record with code "internal")
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Checks a worker's endpoint: any endpoint, or `liminal+tcp://host:port`.
fn worker_endpoint_arg(s: &str) -> Result<String, String> {
    WorkerOptions::for_endpoint(s, Registration::default()).map(|_| s.to_owned()).map_err(|e| e.to_string())
}

/// The worker's options from its arguments; what a liminal endpoint has no room for (a payload
/// protocol, a service name) and activity descriptors elsewhere are usage errors.
fn worker_options(args: &WorkerArgs) -> Result<WorkerOptions, Failure> {
    let registration = Registration {
        identity: args.identity.clone(),
        task_queue: args.task_queue.clone(),
        activity_types: vec![args.command[0].clone()],
        ..Registration::default()
    };
    let mut opts = WorkerOptions::for_endpoint(&args.endpoint, registration).map_err(|e| Failure::new(2, e.to_string()))?;
    match opts.dialect {
        Dialect::Liminal => {
            let refused = |flag: &str, what: &str| {
                Failure::new(2, format!("{flag}: a liminal endpoint ({}) has no {what}", args.endpoint))
            };
            if args.protocol.is_some() {
                return Err(refused("--protocol", "payload protocols"));
            }
            if args.service.is_some() {
                return Err(refused("--service", "service name"));
            }
            opts.activity_descriptors = args
                .activity_descriptor
                .chunks(3)
                .map(|d| ActivityDescriptor {
                    name: d[0].clone(),
                    input_schema_json: d[1].clone(),
                    output_schema_json: d[2].clone(),
                })
                .collect();
        }
        Dialect::Librp => {
            if !args.activity_descriptor.is_empty() {
                return Err(Failure::new(2, "--activity-descriptor: activity descriptors are sent to liminal endpoints only"));
            }
            opts.registration.payload_protocols = vec![args.protocol.unwrap_or(0x7001)];
            if let Some(service) = &args.service {
                opts.service_name = service.clone();
            }
        }
    }
    opts.connect_timeout = args.connect_timeout_ms;
    if args.reconnect {
        if args.reconnect_min_ms.is_zero() || args.reconnect_min_ms > args.reconnect_max_ms {
            return Err(Failure::new(2, "--reconnect-min-ms must be at least 1 and at most --reconnect-max-ms"));
        }
        opts.reconnect = Some(ReconnectPolicy {
            min_delay: args.reconnect_min_ms,
            max_delay: args.reconnect_max_ms,
            max_attempts: args.reconnect_attempts,
            ..ReconnectPolicy::default()
        });
        if !args.quiet {
            let identity = args.identity.clone();
            opts.on_event = Some(EventHandler::new(move |event| eprintln!("rp worker {identity}: {event}")));
        }
    }
    if let Some(ca) = &args.ca {
        opts.tls.ca_pem = read_pem_file(ca, "CA roots")?;
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        opts.tls.cert_chain_pem = read_pem_file(cert, "client certificate chain")?;
        opts.tls.key_pem = read_pem_file(key, "client private key")?;
    }
    if let Some(name) = &args.server_name {
        opts.tls.server_name = name.clone();
    }
    let tls_set = args.ca.is_some() || args.cert.is_some() || args.server_name.is_some();
    if tls_set && !matches!(opts.endpoint, Endpoint::Tls(_)) {
        return Err(Failure::new(2, format!("--ca, --cert, --server-name: {} is not a tls:// endpoint", args.endpoint)));
    }
    Ok(opts)
}

pub fn run_worker(args: WorkerArgs) -> Result<(), Failure> {
    log_to_stderr(args.log);
    let opts = worker_options(&args)?;
    let opts_reconnect = opts.reconnect.is_some();
    // The longest failure message the server takes (a liminal refusal's words are shorter).
    let max_message = match opts.dialect {
        Dialect::Librp => rp::push::MAX_FAILURE_MESSAGE,
        Dialect::Liminal => rp::wire::liminal::MAX_REFUSAL_WORDS,
    };
    // Until the connect timeout, keep trying while nothing listens yet (the server may still be
    // starting); any other failure ends the attempt at once.
    let deadline = std::time::Instant::now() + args.connect_timeout_ms;
    let client = loop {
        match Worker::connect(opts.clone()) {
            Ok(c) => break c,
            Err(rp::Error::Io { source, .. })
                if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let say = |msg: String| {
        if !args.quiet {
            eprintln!("rp worker {}: {msg}", args.identity);
        }
    };
    match client.dialect() {
        Dialect::Librp => say(format!("registered as worker {}", client.worker_id())),
        Dialect::Liminal => {
            say(format!("registered with the liminal server (version {})", client.negotiated().daemon_version))
        }
    }
    let mut handled = 0usize;
    loop {
        let job = match client.recv(None) {
            Ok(job) => job,
            Err(e) if e.kind() == rp::ErrorKind::Closed => {
                say(format!("{e}; answered {handled} pushes"));
                if args.stats {
                    print_stats("worker", &client.stats().fields(), false);
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let outcome = run_command(&args.command, &job.payload);
        let sent = match outcome {
            Ok(stdout) => client.reply(job.correlation_id, &stdout),
            Err((code, message)) => {
                say(format!("push {} failed: {message}", job.correlation_id));
                client.reply_error(job.correlation_id, code, truncated(&message, max_message))
            }
        };
        match sent {
            // The push came on a connection that was lost (its server already failed it), or the
            // worker has ended: the next recv says which.
            Err(e) if opts_reconnect && e.kind() == rp::ErrorKind::Closed => {
                say(format!("push {} not answered: {e}", job.correlation_id));
                continue;
            }
            sent => sent?,
        }
        handled += 1;
    }
}

/// `message` cut to at most `max` bytes, at a character boundary.
fn truncated(message: &str, max: usize) -> &str {
    let mut end = message.len().min(max);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Runs the command with `input` on stdin; its stdout on success, else (1000 + exit code, stderr).
fn run_command(command: &[String], input: &[u8]) -> Result<Vec<u8>, (i32, String)> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (1000, format!("cannot run {}: {e}", command[0])))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().map_err(|e| (1000, format!("waiting for {}: {e}", command[0])))?;
    let _ = feeder.join();
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let code = 1000 + output.status.code().unwrap_or(255);
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        Err((code, format!("{} exited with {}: {stderr}", command[0], output.status)))
    }
}
