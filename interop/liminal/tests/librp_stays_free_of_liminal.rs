//! The liminal crates are AGPL-3.0: only this test workspace may use them. librp's own
//! dependency graph must hold no crate whose name starts with `liminal`: neither its lock file
//! (every target) nor `cargo tree` of its workspace (every edge kind, this host's target).

use std::path::PathBuf;
use std::process::Command;

fn librp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn liminal_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names.filter(|name| name.starts_with("liminal")).map(str::to_owned).collect()
}

#[test]
fn librp_lock_file_names_no_liminal_crate() {
    let lock = std::fs::read_to_string(librp_root().join("Cargo.lock")).expect("librp's Cargo.lock");
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|line| line.strip_prefix("name = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .collect();
    assert!(names.contains(&"rp"), "not librp's lock file");
    assert_eq!(liminal_names(names.into_iter()), Vec::<String>::new());
    // And this workspace's own lock does hold them, so the check above can see such a name.
    let ours = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    assert!(ours.contains("name = \"liminal-server\""));
}

#[test]
fn cargo_tree_of_librp_holds_no_liminal_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = librp_root();
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["tree", "--locked", "--offline", "--workspace", "--edges", "all"])
        .args(["--prefix", "none", "--format", "{p}"])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree.lines().filter_map(|line| line.split_whitespace().next()).collect();
    assert!(names.contains(&"rp") && names.contains(&"prost"), "unexpected cargo tree output:\n{tree}");
    assert_eq!(liminal_names(names.into_iter()), Vec::<String>::new());
}
