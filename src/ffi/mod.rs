//! The C ABI. This folder is the only place with `extern "C"` and the only place with
//! `unsafe` code that touches C; every `unsafe` block says why it is sound.
//!
//! Plumbing: [`status`] (codes), [`boundary`] (panics and the last error), [`bytes`]
//! (borrowed views and owned buffers), [`handle`] (opaque handle ownership), [`callback`]
//! (callbacks with their user data), [`refusal`] (why a peer refused), [`version`].
//! One module per C object or role follows: [`frame`], [`registry`], [`identity`], [`mux`],
//! [`handoff`], [`push_worker`], [`push_server`], [`push_request`], [`push_worker_info`], [`broker`], [`conn`], [`admin`],
//! [`broker_server`], [`session`], [`session_ticket`], [`session_request`], [`tls`].
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod boundary;
pub mod broker;
// The header lists functions in module order: keep `conn`, `admin` and `broker_server` (split
// from `broker`) right after it.
pub mod conn;
pub mod admin;
pub mod broker_server;
pub mod bytes;
pub mod callback;
pub mod frame;
pub mod handle;
pub mod handoff;
pub mod identity;
pub mod log;
pub mod mux;
pub mod push_worker_options;
pub mod push_worker;
pub mod push_server;
// The header lists functions in module order: keep `push_request` and `push_worker_info` (split from
// `push_server`) right after it.
pub mod push_request;
pub mod push_worker_info;
pub mod refusal;
pub mod registry;
pub mod session;
// The header lists functions in module order: keep `session_ticket` and `session_request` (split
// from `session`) right after it.
pub mod session_ticket;
pub mod session_request;
pub mod stats;
pub mod tls;
pub mod status;
pub mod version;
