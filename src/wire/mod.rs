//! The v1 wire: framing, the `Frame` envelope, generated protobuf messages, and the
//! payload-protocol registry.
//!
//! A frame on a stream is `[u8 framing version = 1][u32 LE body length][Frame body]`.
//! [`decode_frame`] classifies the front of a buffer without copying; [`FrameView`]
//! is a borrowed, allocation-free view of one frame; [`FrameReader`] and
//! [`FrameWriter`] move frames over blocking streams.

mod encode;
mod error;
mod frame;
pub(crate) mod fast;
pub(crate) mod pb;
pub mod proto;
pub mod names;
pub mod registry;
mod refusal;
pub mod liminal;
mod stream;

pub use error::WireError;
pub use refusal::Refusal;
pub use frame::{decode_frame, frame_extent, Decoded, Extent, FrameView};
pub(crate) use frame::trace_context_fits;
pub use stream::{write_frame, FrameReader, FrameWriter};

/// The only framing version librp speaks (the first byte of every frame).
pub const FRAMING_VERSION: u8 = 1;
/// Bytes before the body: framing version and little-endian u32 body length.
pub const HEADER_LEN: usize = 5;
/// Largest body accepted on any frame (16 MiB).
pub const MAX_BODY: u32 = 16 * 1024 * 1024;
/// Largest body accepted for the first Hello frame of a connection (64 KiB).
pub const HELLO_MAX_BODY: u32 = 64 * 1024;
/// Most bytes of trace context (traceparent and tracestate together) librp keeps from a frame
/// of its own protocols (push, session); a frame with more is a protocol violation.
pub const MAX_TRACE_CONTEXT: usize = 8 * 1024;
/// The envelope version every frame librp builds carries.
pub const ENVELOPE_VERSION: u32 = 1;
/// The protocol version carried in Hello / Negotiated.
pub const PROTOCOL_VERSION: u32 = 1;
/// Capability bit: connection handoff (handle passing).
pub const CAP_HANDLE_PASSING: u64 = 1;
