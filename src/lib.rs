//! librp: the running-process v1 broker protocol for C, C++ and Go programs.
//!
//! The crate is a safe Rust core (`wire`, and the protocol roles built on it) with one
//! thin C ABI shell in [`ffi`]. `unsafe` code is denied everywhere else except in two modules
//! that make the system calls std does not offer: `transport::sys` (sends without SIGPIPE,
//! peer credentials, `poll`, `epoll`, `shutdown`) and `handoff::fdpass` (`SCM_RIGHTS`), plus
//! one `poll` in a unit test of `event_queue`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod broker;
pub mod control;
pub mod error;
mod event_queue;
mod idmap;
mod own_read;
pub mod handoff;
pub mod log;
pub mod mux;
pub mod push;
pub mod session;
pub mod stats;
pub mod transport;
pub mod wire;

#[doc(hidden)]
pub mod ffi;

pub use error::{Error, ErrorKind, Result};
pub use wire::{Decoded, FrameView};

/// Crate version components, as compiled.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
