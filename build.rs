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

    // The shared library carries a SONAME that follows the ABI, not the full crate version:
    // while the major version is 0 a minor release may break the ABI, so 0.x releases are
    // librp.so.0.x (librp.so.0.2 for every 0.2.y); from 1.0 on, librp.so.MAJOR.
    // CMakeLists.txt (RP_SOVERSION) follows the same rule.
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let soversion = if major == "0" { format!("0.{minor}") } else { major };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,librp.so.{soversion}");
    } else if target_os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/librp.{soversion}.dylib");
    }
}
