//! `rp`: poke at running-process v1 endpoints from the shell.
//!
//! Exit codes: 0 success; 1 the operation failed (unreachable endpoint, bad bytes, a push not
//! answered); 2 bad usage; 3 the server refused (Hello refused or registration rejected);
//! 4 timed out; 5 `probe --verify` found a mismatch. With `--json`, a failure also prints one
//! JSON object on stdout: `{"ok": false, "exit_code": N, "error": "...", "refusal": {...}}`
//! (`refusal` only when the server refused).

mod broker;
mod decode;
mod probe;
mod push;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rp::transport::Endpoint;
use rp::{Error, ErrorKind};

#[derive(Parser)]
#[command(
    name = "rp",
    version,
    about = "Probe, decode and drive running-process v1 endpoints",
    after_help = "Exit codes: 0 ok, 1 failed, 2 usage, 3 refused or rejected, 4 timed out, 5 verification failed.\n\
                  Endpoints: a socket path, @name (Linux abstract socket) or tcp://host:port; `rp worker` also\n\
                  joins a liminal server at liminal+tcp://host:port."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send an identity probe and print who answered
    Probe(probe::Args),
    /// Run the Hello exchange with a broker and print Negotiated or the refusal
    Hello(broker::HelloArgs),
    /// Run a librp broker from flags or a config file, logging each connection and refusal
    Broker(broker::BrokerArgs),
    /// Print every v1 frame in some bytes, field by field (hex argument, or hex/raw on stdin)
    Decode(decode::Args),
    /// Push each line read from stdin to a registered worker and print the replies
    PushServer(push::ServerArgs),
    /// Register with a push server (or a liminal server) and answer each push by running a command
    Worker(push::WorkerArgs),
}

/// A failure with the exit code it maps to.
pub struct Failure {
    code: u8,
    message: String,
    /// The server's refusal, when the failure is one.
    refusal: Option<rp::control::Refusal>,
    /// The command already printed this failure as JSON on stdout.
    reported: bool,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), refusal: None, reported: false }
    }

    /// Marks the failure as already printed as JSON on stdout (main prints nothing more).
    pub fn reported(mut self) -> Self {
        self.reported = true;
        self
    }

    /// The failure as the JSON object `--json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"ok": false, "exit_code": self.code, "error": self.message});
        if let Some(r) = &self.refusal {
            v["refusal"] = serde_json::json!({
                "code": r.code, "code_name": r.code_name(), "reason": r.reason,
                "retry_after_ms": r.retry_after_ms, "details": r.details,
            });
        }
        v
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::Refused | ErrorKind::Rejected => 3,
            ErrorKind::Timeout => 4,
            _ => 1,
        };
        let mut message = e.to_string();
        if let Some(r) = e.refusal() {
            if r.retry_after_ms > 0 {
                message.push_str(&format!(" (retry after {} ms)", r.retry_after_ms));
            }
            for (k, v) in &r.details {
                message.push_str(&format!(" [{k}={v}]"));
            }
        }
        Failure { code, message, refusal: e.refusal().cloned(), reported: false }
    }
}

/// Parses an endpoint argument.
pub fn endpoint_arg(s: &str) -> Result<Endpoint, String> {
    Endpoint::parse(s).map_err(|e| e.to_string())
}

/// Parses a payload protocol id, decimal or 0x-prefixed hex.
pub fn protocol_arg(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{s:?} is not a payload protocol id (decimal or 0x-hex)"))
}

/// Parses milliseconds into a duration.
pub fn millis_arg(s: &str) -> Result<Duration, String> {
    s.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("{s:?} is not a number of milliseconds"))
}

/// Parses a `--log` level: error, warn, info or debug.
pub fn log_level_arg(s: &str) -> Result<rp::log::Level, String> {
    match s {
        "error" => Ok(rp::log::Level::Error),
        "warn" => Ok(rp::log::Level::Warn),
        "info" => Ok(rp::log::Level::Info),
        "debug" => Ok(rp::log::Level::Debug),
        _ => Err(format!("{s:?} is not a log level (error, warn, info, debug)")),
    }
}

/// Sends librp's own log events at `level` and above to stderr (`--log LEVEL`).
pub fn log_to_stderr(level: Option<rp::log::Level>) {
    if let Some(level) = level {
        let sink = |l: rp::log::Level, component: &str, message: &str| {
            eprintln!("rp: [{}] {component}: {message}", l.as_str());
        };
        rp::log::set_sink(level, Some(std::sync::Arc::new(sink)));
    }
}

/// Prints statistics (`--stats`): one JSON object on stdout with `json`, else `name value`
/// lines on stderr under a title.
pub fn print_stats(title: &str, fields: &[(String, u64)], json: bool) {
    if json {
        let map: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(*v))).collect();
        println!("{}", serde_json::json!({ "stats": title, "values": map }));
    } else {
        eprintln!("rp: {title} statistics:");
        for (k, v) in fields {
            eprintln!("  {k} {v}");
        }
    }
}

/// True when the command line asks for JSON output (`--json` before any `--`).
fn json_requested() -> bool {
    std::env::args().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

fn main() -> ExitCode {
    let json = json_requested();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if json && e.use_stderr() {
                let f = Failure::new(2, e.kind().to_string());
                println!("{}", f.to_json());
            }
            e.exit();
        }
    };
    let result = match cli.command {
        Command::Probe(a) => probe::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Hello(a) => broker::run_hello(a),
        Command::Broker(a) => broker::run_broker(a),
        Command::PushServer(a) => push::run_server(a),
        Command::Worker(a) => push::run_worker(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json && !f.reported {
                println!("{}", f.to_json());
            }
            eprintln!("rp: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
