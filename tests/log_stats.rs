//! Logs and statistics through the Rust API: the broker's handoff counters and log events, and
//! the METRICS admin verb's exact OpenMetrics body. (One test: the log sink is process-wide.)
//! Over Unix sockets; on Windows over named pipes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TempDir;
use rp::broker::{admin_request, connect, BrokerOptions, BrokerServer, BrokerServerOptions, BrokerService, Route};
use rp::handoff::{accept_handoff, HandoffStore};
use rp::log::Level;
use rp::transport::{ListenOptions, Listener};
use rp::wire::proto::{AdminReplyKind, AdminRequest, AdminVerb};

#[test]
fn broker_handoffs_logs_and_metrics() {
    let events: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
    let sink = Arc::clone(&events);
    rp::log::set_sink(
        Level::Info,
        Some(Arc::new(move |l: Level, c: &str, m: &str| sink.lock().unwrap().push((l, c.to_owned(), m.to_owned())))),
    );

    let dir = TempDir::new("logstats");
    let backend = dir.endpoint_named("backend").to_string();
    let handoff = dir.endpoint_named("handoff");
    let store = Arc::new(HandoffStore::default());
    // The backend's handoff socket: accepts exactly one handed-off connection.
    let listener = Listener::bind(&handoff, &ListenOptions::default()).unwrap();
    let backend_store = Arc::clone(&store);
    let backend_thread = std::thread::spawn(move || {
        let mut s = listener.accept().unwrap();
        accept_handoff(&mut s, &backend_store).map(|(fd, _)| fd)
    });
    let services = vec![
        BrokerService {
            service_name: "good".into(),
            backend_pipe: backend.clone(),
            daemon_version: "1.0.0".into(),
            handoff_endpoint: Some(handoff.clone()),
            handoff_store: Some(Arc::clone(&store)),
            ..BrokerService::default()
        },
        BrokerService {
            service_name: "gone".into(),
            backend_pipe: backend.clone(),
            daemon_version: "1.0.0".into(),
            handoff_endpoint: Some(dir.endpoint_named("nobody")),
            ..BrokerService::default()
        },
    ];
    let broker_ep = dir.endpoint_named("broker");
    let broker = BrokerServer::bind(BrokerServerOptions::new(broker_ep.clone(), services)).unwrap();

    let mut opts = BrokerOptions::new(broker_ep.clone(), "good", "1.0.0", "1.0.0");
    opts.adopt_handoff = true;
    opts.handoff_wait = Duration::from_secs(3);
    let connected = connect(&opts).unwrap();
    assert_eq!(connected.route, Route::HandedOff);
    let _adopted = backend_thread.join().unwrap().unwrap();

    // The backend of "gone" does not listen: the handoff fails and the client is told to
    // reconnect (which fails here too: no backend listens).
    let mut opts = BrokerOptions::new(broker_ep.clone(), "gone", "1.0.0", "1.0.0");
    opts.adopt_handoff = true;
    opts.handoff_wait = Duration::from_secs(3);
    let _ = connect(&opts);

    let mut stats = broker.stats();
    for _ in 0..300 {
        if stats.handoffs_accepted + stats.handoffs_failed == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        stats = broker.stats();
    }
    assert_eq!((stats.hellos_negotiated, stats.handoffs_started), (2, 2), "{stats:?}");
    assert_eq!((stats.handoffs_accepted, stats.handoffs_failed), (1, 1), "{stats:?}");
    assert_eq!(stats.refused.total(), 0);

    let reply = admin_request(
        &broker_ep,
        &AdminRequest { verb: AdminVerb::Metrics as i32, ..AdminRequest::default() },
        Some(Duration::from_secs(2)),
    )
    .unwrap();
    assert_eq!(reply.kind, AdminReplyKind::Openmetrics as i32);
    assert_eq!(reply.content_type, "application/openmetrics-text");
    assert_eq!(reply.exit_code, 0);
    let s = broker.stats();
    let uptime = reply.body.lines().find_map(|l| l.strip_prefix("running_process_broker_v1_uptime_seconds ")).unwrap();
    let want = format!(
        "# TYPE running_process_broker_v1_hello_total counter\n\
         running_process_broker_v1_hello_total{{outcome=\"negotiated\"}} 2\n\
         running_process_broker_v1_hello_total{{outcome=\"peer_rejected\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"rate_limited\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"service_unknown\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"version_unsupported\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"version_blocked\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"shutting_down\"}} 0\n\
         running_process_broker_v1_hello_total{{outcome=\"refused_other\"}} 0\n\
         # TYPE running_process_broker_v1_hello_duration_seconds histogram\n\
         # TYPE running_process_broker_v1_active_backends gauge\n\
         # TYPE running_process_broker_v1_spawn_attempts_total counter\n\
         # TYPE running_process_broker_v1_spawn_budget_remaining gauge\n\
         # TYPE running_process_broker_v1_connections_open gauge\n\
         running_process_broker_v1_connections_open 1\n\
         # TYPE running_process_broker_v1_fd_usage_ratio gauge\n\
         running_process_broker_v1_fd_usage_ratio 0\n\
         # TYPE running_process_broker_v1_uptime_seconds gauge\n\
         running_process_broker_v1_uptime_seconds {uptime}\n\
         # TYPE librp_broker_connections_accepted_total counter\n\
         librp_broker_connections_accepted_total {}\n\
         # TYPE librp_broker_admin_requests_total counter\n\
         librp_broker_admin_requests_total 1\n\
         # TYPE librp_broker_hello_timeouts_total counter\n\
         librp_broker_hello_timeouts_total 0\n\
         # TYPE librp_broker_handoffs_total counter\n\
         librp_broker_handoffs_total{{outcome=\"started\"}} 2\n\
         librp_broker_handoffs_total{{outcome=\"accepted\"}} 1\n\
         librp_broker_handoffs_total{{outcome=\"failed\"}} 1\n\
         # EOF\n",
        s.connections_accepted
    );
    assert_eq!(reply.body, want);
    assert_eq!(s.admin_requests, 1);

    rp::log::set_sink(Level::Error, None);
    let events = events.lock().unwrap();
    let has = |level: Level, prefix: &str, suffix: &str| {
        events.iter().any(|(l, c, m)| *l == level && c == "broker" && m.starts_with(prefix) && m.ends_with(suffix))
    };
    assert!(has(Level::Info, "handoff 1 to ", " accepted"), "{events:?}");
    assert!(has(Level::Warn, "handoff 2 to ", ""), "{events:?}");
    assert!(has(Level::Info, "connection 2 from pid ", " negotiated service \"good\" version \"1.0.0\""), "{events:?}");
    assert!(events.iter().all(|(l, _, _)| *l <= Level::Info), "DEBUG events filtered out");
    drop(broker);
}
