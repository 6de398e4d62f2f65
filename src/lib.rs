//! librp: the running-process v1 broker protocol for C, C++ and Go programs.
//!
//! The crate is a safe Rust core (`wire`, and the protocol roles built on it) with one
//! thin C ABI shell in [`ffi`]. `unsafe` code is denied everywhere else except in the one
//! module that makes the system calls std does not offer, `transport::unix` (sends without
//! SIGPIPE, peer credentials, `poll`, `epoll`, `shutdown`, `SCM_RIGHTS`): the roles reach the
//! OS only through [`transport`].
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
