//! The live liminal interop tests live in tests/.
