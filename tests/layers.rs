//! The module layering of `src/`: every `crate::…` path in a top-level module must name a
//! module listed before it in [`LAYERS`], so dependencies only point down and there are no
//! cycles. A new top-level module must be given a place here (and in the `src/lib.rs` doc,
//! which this test also checks). Test modules (`#[cfg(test)] mod tests`, last in a file) and
//! comments are not counted: tests may reach anywhere, and docs may mention anything.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom first. Same order as the `src/lib.rs` doc.
const LAYERS: &[&str] = &[
    "util",
    "model",
    "metrics",
    "store",
    "auth",
    "transform",
    "config",
    "derivative",
    "backup",
    "lifecycle",
    "s3",
    "admin",
    "http",
    "cli",
];

/// One dependency that breaks the layering.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    file: String,
    from: String,
    to: String,
}

/// Source text without comments (line, doc and block) and without string literals' content,
/// so `"crate::x"` in a message or `// see crate::x` does not count as a use.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                let end = text[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 2);
                i = end;
            }
            // A char literal of a quote is not the start of a string.
            (b'\'', Some(b'"')) if bytes.get(i + 2) == Some(&b'\'') => i += 3,
            // Raw strings may hold quotes: skip to their own terminator.
            (b'r', Some(b'#')) if bytes.get(i + 2) == Some(&b'"') => {
                i = text[i + 3..].find("\"#").map_or(bytes.len(), |e| i + 3 + e + 2);
                out.push_str("\"\"");
            }
            (b'"', _) => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The top-level modules a file's code names through `crate::`.
fn crate_uses(text: &str) -> BTreeSet<String> {
    let code = code_only(text);
    // Unit tests sit last in a file (clippy's items_after_test_module keeps them there).
    let code = code.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b}`: each path's first segment.
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for path in inner.split(',') {
                found.insert(first_ident(path.trim()));
            }
        } else {
            found.insert(first_ident(rest));
        }
    }
    found.remove("");
    found
}

fn first_ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Checks files given as (path under `src/`, text) against the layer order.
fn violations<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>, layers: &[&str]) -> Vec<Violation> {
    let rank = |m: &str| layers.iter().position(|l| *l == m);
    let mut found = Vec::new();
    for (path, text) in files {
        let top = path.split('/').next().unwrap_or(path).trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(from_rank) = rank(top) else {
            found.push(Violation {
                file: path.to_string(),
                from: top.to_string(),
                to: "(not in LAYERS)".to_string(),
            });
            continue;
        };
        for used in crate_uses(text) {
            if used == top {
                continue;
            }
            // Names that are not modules (e.g. a re-exported item at the root) are not ours.
            let Some(to_rank) = rank(&used) else { continue };
            if to_rank > from_rank {
                found.push(Violation {
                    file: path.to_string(),
                    from: top.to_string(),
                    to: used,
                });
            }
        }
    }
    found.sort();
    found
}

fn rust_files(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(base)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).expect("read source")));
        }
    }
}

#[test]
fn dependencies_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    let bad = violations(files.iter().map(|(p, t)| (p.as_str(), t.as_str())), LAYERS);
    assert!(
        bad.is_empty(),
        "dependencies that point up the layers (util → … → cli):\n{}",
        bad.iter()
            .map(|v| format!("  {}: {} uses {}", v.file, v.from, v.to))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer_and_lib_rs_lists_them_in_order() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(declared, LAYERS, "src/lib.rs declares its modules in layer order");
    let doc: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .collect::<Vec<_>>()
        .join(" ");
    let chain = LAYERS.join(" → ");
    assert!(
        doc.split_whitespace().collect::<Vec<_>>().join(" ").contains(&chain),
        "the lib.rs doc states the order {chain}"
    );
}

#[test]
fn the_check_catches_an_upward_use_a_cycle_and_an_unplaced_module() {
    let layers = ["low", "high"];
    let files = [
        ("low/mod.rs", "use crate::high::Thing;\n"),
        ("high/mod.rs", "use crate::{low::A, high::B};\n"),
        ("stray.rs", "fn f() {}\n"),
    ];
    let bad = violations(files, &layers);
    assert_eq!(
        bad,
        vec![
            Violation {
                file: "low/mod.rs".into(),
                from: "low".into(),
                to: "high".into()
            },
            Violation {
                file: "stray.rs".into(),
                from: "stray".into(),
                to: "(not in LAYERS)".into()
            },
        ]
    );
}

#[test]
fn comments_strings_and_unit_tests_do_not_count() {
    let text = "//! see crate::high\n/* crate::high */\nconst M: &str = \"crate::high\";\n\
                fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::high::X;\n}\n";
    assert!(crate_uses(text).is_empty(), "{:?}", crate_uses(text));
    assert_eq!(
        crate_uses("fn g() { crate::high::x(); }"),
        BTreeSet::from(["high".to_string()])
    );
}
