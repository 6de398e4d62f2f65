//! Broker: reach a backend for a service through a broker ([`connect`]), the framed
//! connection that results ([`Conn`]), admin requests ([`admin_request`]), and a broker server
//! ([`BrokerServer`]).
//!
//! Wire facts are in `WIRE.md` ("Control plane", "Client behaviour of the reference",
//! "Handoff"); the messages a librp broker sends are listed in `docs/PROTOCOL.md`.

mod client;
mod conn;
mod server;

pub use client::{admin_request, broker_disabled_by_env, connect, BrokerConnection, BrokerOptions, Route};
pub use conn::Conn;
pub use server::{BrokerEvent, BrokerServer, BrokerServerOptions, BrokerService};

/// Entry points for the fuzz targets and their corpus replay; not part of the stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::BrokerService;
    use crate::transport::PeerCredentials;

    /// The broker server's answer to a client connection that sent `bytes`: the reply bytes,
    /// or `None` when the server would close the connection without one.
    pub fn client_stream(bytes: &[u8], peer: Option<PeerCredentials>, services: &[BrokerService]) -> Option<Vec<u8>> {
        super::server::fuzz_client_stream(bytes, peer, services)
    }
}

/// Environment variable that turns the broker path off (value `1`) for callers that honour it.
pub const DISABLE_ENV: &str = "RUNNING_PROCESS_DISABLE";
/// How long a client waits for the handoff-ready relay by default.
pub const DEFAULT_HANDOFF_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
