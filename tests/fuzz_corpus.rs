//! Replays every file of the fuzz corpus (`fuzz/corpus/<target>/`) and every committed
//! regression input (`fuzz/regressions/<target>/`) through the same target bodies the fuzzer
//! runs (`fuzz/src/lib.rs`), without a fuzz engine: a corpus or regression input that fails
//! here is a bug, whether or not cargo-fuzz is installed. Linux only, like the fuzz targets (the
//! event-loop ones listen on abstract sockets).
#![cfg(target_os = "linux")]

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod targets;

use std::path::Path;

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(folder);
    let mut total = 0;
    for (name, body) in targets::TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
            total += 1;
        }
    }
    total
}

#[test]
fn corpus_replays_clean() {
    let n = replay("corpus");
    assert!(n >= 7, "the seed corpus is missing ({n} files)");
    println!("replayed {n} corpus files");
}

#[test]
fn regressions_replay_clean() {
    println!("replayed {} regression inputs", replay("regressions"));
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in targets::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
        let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(n > 0, "fuzz/corpus/{name} is empty");
    }
}
