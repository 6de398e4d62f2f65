//! include/rp.h must be exactly what cbindgen generates from src/ffi.
//! `RP_BLESS_HEADER=1 cargo test --test header` (scripts/gen-header.sh) rewrites it.

use std::path::Path;

#[test]
fn committed_header_matches_src_ffi() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);

    let header = root.join("include/rp.h");
    if std::env::var_os("RP_BLESS_HEADER").is_some() {
        std::fs::write(&header, &generated).expect("write include/rp.h");
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    if committed != generated {
        let committed = String::from_utf8_lossy(&committed);
        let generated = String::from_utf8_lossy(&generated);
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/rp.h is out of date with src/ffi (first difference at line {}).\n\
             Regenerate it with scripts/gen-header.sh.\n committed: {:?}\n generated: {:?}",
            first_diff + 1,
            committed.lines().nth(first_diff),
            generated.lines().nth(first_diff)
        );
    }
}
