//! The C ABI. This folder is the only place with `extern "C"` and the only place with
//! `unsafe` code that touches C; every `unsafe` block says why it is sound.
//!
//! Plumbing: [`status`] (codes), [`boundary`] (panics and the last error), [`bytes`]
//! (borrowed views and owned buffers), [`handle`] (opaque handle ownership), [`callback`]
//! (callbacks with their user data), [`refusal`] (why a peer refused), [`version`].
//! One module per C object or role follows: [`frame`], [`registry`], [`identity`], [`mux`],
//! [`handoff`], [`push_client`], [`push_server`], [`broker`] (with `rp_conn` and admin
//! requests), [`session`].
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod boundary;
pub mod broker;
pub mod bytes;
pub mod callback;
pub mod frame;
pub mod handle;
pub mod handoff;
pub mod identity;
pub mod log;
pub mod mux;
pub mod push_client;
pub mod push_server;
pub mod refusal;
pub mod registry;
pub mod session;
pub mod stats;
pub mod status;
pub mod version;
