//! CI replay of the fuzz corpus: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same target function the fuzzer
//! (`examples/fuzz.rs`) runs, and must not panic. A crash found by the fuzzer is kept by copying
//! it into `fuzz/regressions/<target>/`; this test then fails until the bug is fixed.
//!
//! Also guards the corpus itself: every directory names a target, each seed is at most 64 KiB
//! and the whole corpus at most 2 MiB.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::Instant;

const MAX_SEED_BYTES: u64 = 64 * 1024;
const MAX_CORPUS_BYTES: u64 = 2 * 1024 * 1024;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Input files of one directory (notes such as `*.txt` / `*.md` next to them are skipped).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "txt" && e != "md"))
        .collect();
    files.sort();
    files
}

/// Runs every input of `name`; returns the failures as readable lines.
fn replay(name: &str) -> (usize, Vec<String>) {
    let target = targets::target(name).unwrap_or_else(|| panic!("no target {name}"));
    let mut failures = Vec::new();
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let t0 = Instant::now();
            let result = std::panic::catch_unwind(|| (target.run)(&data));
            count += 1;
            let took = t0.elapsed();
            if took.as_secs() >= 5 {
                eprintln!("slow input ({took:?}): {}", path.display());
            }
            if let Err(p) = result {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                failures.push(format!("{}: {msg}", path.display()));
            }
        }
    }
    (count, failures)
}

fn check(name: &str) {
    let (count, failures) = replay(name);
    if name == "keys" {
        targets::teardown();
    }
    assert!(count > 0, "no corpus for target {name}");
    assert!(
        failures.is_empty(),
        "{} of {count} {name} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn transform_params() {
    check("transform-params");
}

#[test]
fn image_decode() {
    check("image-decode");
}

#[test]
fn xml_delete() {
    check("xml-delete");
}

#[test]
fn xml_complete() {
    check("xml-complete");
}

#[test]
fn post_policy() {
    check("post-policy");
}

#[test]
fn headers() {
    check("headers");
}

#[test]
fn config_toml() {
    check("config-toml");
}

#[test]
fn keys() {
    check("keys");
}

#[test]
fn bucket_policy() {
    check("bucket-policy");
}

#[test]
fn xml_acl() {
    check("xml-acl");
}

#[test]
fn xml_cors() {
    check("xml-cors");
}

#[test]
fn xml_lifecycle() {
    check("xml-lifecycle");
}

#[test]
fn every_target_has_a_test_and_the_corpus_is_small() {
    let tested = [
        "transform-params",
        "image-decode",
        "xml-delete",
        "xml-complete",
        "post-policy",
        "headers",
        "config-toml",
        "keys",
        "bucket-policy",
        "xml-acl",
        "xml-cors",
        "xml-lifecycle",
    ];
    for t in targets::TARGETS {
        assert!(tested.contains(&t.name), "target {} has no replay test", t.name);
    }
    let mut total = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(dirs) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for dir in dirs.filter_map(Result::ok) {
            let name = dir.file_name().to_string_lossy().into_owned();
            assert!(targets::target(&name).is_some(), "fuzz/{kind}/{name} is not a target");
            for path in inputs(&dir.path()) {
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                assert!(len <= MAX_SEED_BYTES, "{} is {len} bytes (> 64 KiB)", path.display());
                if kind == "corpus" {
                    total += len;
                }
            }
        }
    }
    assert!(total <= MAX_CORPUS_BYTES, "corpus is {total} bytes (> 2 MiB)");
}
