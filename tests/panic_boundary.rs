//! Every exported C function runs its body inside the panic boundary (`ffi::boundary` or
//! `ffi::boundary_or`), checked from the source, not by review; and the set of functions checked
//! is exactly the set `librp.so` exports (`nm -D --defined-only`).
//!
//! Accepted shapes of an extern body (comments skipped):
//! - its first statement is `boundary(..)` or `boundary_or(..)`;
//! - `unsafe { helper(..) }` where `helper` is a function in the same file whose own body is
//!   `boundary(..)`/`boundary_or(..)` (the typed setters share one such helper per object);
//! - `let .. = ForeignCallback::new(..);` or `CallbackDetector(..)` first (it only moves the
//!   caller's callback and user_data into a guard, so that user_data is released on every
//!   path), then `boundary(..)`; `rp_last_refusal` reads the thread's last refusal first
//!   (before `boundary` overwrites it with this call's own outcome);
//! - a short list of bodies that cannot panic (no allocation, no indexing, no unwrap), named in
//!   `PANIC_FREE` below with the reason; the list must match the source exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Exported functions whose body is not wrapped because it cannot panic.
const PANIC_FREE: &[(&str, &str)] = &[
    ("rp_status_str", "a linear search in a constant array and a pointer to a static C string"),
    ("rp_version_string", "returns a pointer to a static C string"),
];

/// Statements allowed before the boundary (they move arguments into a drop guard).
const PRE_BOUNDARY: &[&str] = &[
    "let detector = CallbackDetector(ForeignCallback::new(",
    "let callback = ForeignCallback::new(",
    "let cb = ForeignCallback::new(",
    "let last = LAST_REFUSAL.with_borrow(|r| r.clone());",
];

fn is_boundary(stmt: &str) -> bool {
    let s = stmt.trim_start_matches("super::boundary::");
    s.starts_with("boundary(") || s.starts_with("boundary_or(")
}

/// Code lines of the body that starts right after `open` (the `{` ending the signature).
fn body_lines(src: &str, open: usize) -> Vec<&str> {
    src[open + 1..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .take(6)
        .collect()
}

/// Position of the `{` that opens the body of the function declared at `at`.
fn body_open(src: &str, at: usize) -> usize {
    at + src[at..].find("{\n").expect("function body")
}

/// The helper called as `unsafe { helper(` / `unsafe { helper::<T>(`, if any.
fn helper_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("unsafe {")?.trim_start();
    let end = rest.find(['(', ':'])?;
    Some(&rest[..end])
}

fn wrapped(src: &str, name: &str, open: usize) -> Result<(), String> {
    if PANIC_FREE.iter().any(|(n, _)| *n == name) {
        return Ok(());
    }
    let lines = body_lines(src, open);
    let first = lines.first().copied().unwrap_or("");
    let rest = if PRE_BOUNDARY.iter().any(|p| first.starts_with(p)) { &lines[1..] } else { &lines[..] };
    starts_inside_boundary(src, rest).map_err(|e| format!("{name}: {e}"))
}

/// The statement is `boundary(..)`/`boundary_or(..)`, or `unsafe { helper(..) }` with a helper
/// whose body is.
fn starts_inside_boundary(src: &str, lines: &[&str]) -> Result<(), String> {
    let first = lines.first().copied().unwrap_or("");
    if is_boundary(first) {
        return Ok(());
    }
    // `unsafe {` alone on its line: the helper call is the next line.
    let call = if first == "unsafe {" {
        format!("unsafe {{ {}", lines.get(1).copied().unwrap_or(""))
    } else {
        first.to_owned()
    };
    let Some(helper) = helper_name(&call) else {
        return Err(format!("body starts with {first:?}"));
    };
    let decl = format!("fn {helper}");
    let at = src
        .match_indices(&decl)
        .map(|(i, _)| i)
        .find(|&i| src[i + decl.len()..].starts_with(['(', '<']))
        .ok_or_else(|| format!("helper {helper} not found in the same file"))?;
    let helper_first = body_lines(src, body_open(src, at)).first().copied().unwrap_or("");
    if is_boundary(helper_first) {
        Ok(())
    } else {
        Err(format!("helper {helper} starts with {helper_first:?}"))
    }
}

/// name -> file, for every `pub [unsafe] extern "C" fn` in src/ffi/.
fn extern_fns() -> (BTreeMap<String, String>, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut found = BTreeMap::new();
    let mut failures = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        for pat in ["pub unsafe extern \"C\" fn ", "pub extern \"C\" fn "] {
            for (at, _) in src.match_indices(pat) {
                let name_start = at + pat.len();
                let name: String =
                    src[name_start..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.starts_with("rp_") {
                    continue; // test-only callbacks inside #[cfg(test)] modules
                }
                if let Err(e) = wrapped(&src, &name, body_open(&src, at)) {
                    failures.push(e);
                }
                found.insert(name, file.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    (found, failures)
}

#[test]
fn every_extern_fn_runs_inside_the_panic_boundary() {
    let (found, failures) = extern_fns();
    assert!(found.len() > 50, "found only {} extern fns", found.len());
    assert!(failures.is_empty(), "extern fns outside the panic boundary:\n{}", failures.join("\n"));
    for (name, _) in PANIC_FREE {
        assert!(found.contains_key(*name), "PANIC_FREE names {name}, which no longer exists");
    }
    println!("panic boundary: {}/{} extern fns wrapped ({} panic-free by construction)", found.len(), found.len(), PANIC_FREE.len());
}

/// The library cargo just built for these tests.
fn built_library() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    // The test binary lives in <target>/<profile>/deps/; the cdylib in <target>/<profile>/.
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?.to_path_buf();
    [exe.parent()?.join("librp.so"), profile_dir.join("librp.so"), target.join("debug/deps/librp.so")].into_iter().find(|p| p.exists())
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads librp.so's exports with nm -D (Linux); scripts/windows.sh checks rp.dll's")]
fn the_checked_set_equals_the_exported_set() {
    let Some(lib) = built_library() else {
        panic!("librp.so not found next to the test binary; cargo builds the cdylib with the tests")
    };
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("run nm");
    assert!(out.status.success());
    let exported: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            (kind == "T").then(|| name.to_owned())
        })
        .collect();
    let (found, _) = extern_fns();
    let checked: BTreeSet<String> = found.keys().cloned().collect();
    let missing: Vec<_> = exported.difference(&checked).collect();
    let extra: Vec<_> = checked.difference(&exported).collect();
    assert!(missing.is_empty(), "exported but not found in src/ffi: {missing:?}");
    assert!(extra.is_empty(), "declared in src/ffi but not exported: {extra:?}");
    println!("{}: {} exported functions, all checked", lib.display(), exported.len());
}
