//! Compiles `proto/*.proto` with protox (no `protoc` needed) and sets the SONAME.

fn main() {
    let protos = ["proto/running_process_v1.proto", "proto/librp_push.proto", "proto/librp_session.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(protos, ["proto"]).expect("proto files compile");
    let mut config = prost_build::Config::new();
    // Deterministic encoding of map fields (Refused.details).
    config.btree_map(["."]);
    config
        .compile_fds(fds)
        .expect("prost-build generates Rust code");

    // The shared library carries a SONAME that follows the ABI, not the crate version:
    // librp.so.0 for every 0.x release.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librp.so.{major}");
    } else if target_os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/librp.{major}.dylib");
    }
}
