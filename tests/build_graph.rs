//! The build needs nothing but the Rust toolchain and a C compiler: no crate in the server's
//! dependency graph may drive CMake (`cmake`) or NASM (`nasm-rs`). Checked on the graph
//! itself (`cargo tree`), not on what happens to be installed, so a machine where someone
//! once installed cmake by hand cannot hide a regression. `-e normal,build`: `-e build` alone
//! lists only the build dependencies of the root crate and would not see one pulled in by a
//! normal dependency's build script. Dev-dependencies are out of scope (the SDK's TLS stack
//! lists `cmake` for aws-lc-sys, which builds with the C compiler unless told otherwise).
//! Not `--offline`: `--target all` needs the manifests of crates only other platforms build
//! (e.g. `android_system_properties`), which a Linux build never downloaded; CI reaches
//! crates.io, and `--locked` keeps the graph the one in Cargo.lock.

use std::process::Command;

const FORBIDDEN: [&str; 2] = ["cmake", "nasm-rs"];

/// The crate names (first word of each `cargo tree --prefix none` line) that are forbidden.
fn forbidden_lines(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|name| FORBIDDEN.contains(&name))
        })
        .collect()
}

#[test]
fn no_cmake_or_nasm_in_the_build_graph() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--locked",
            "--target",
            "all",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The output is the graph we think it is: the root, and a build dependency.
    assert!(
        tree.lines().any(|l| l.starts_with("strata v")),
        "no root crate in:\n{tree}"
    );
    assert!(
        tree.lines().any(|l| l.starts_with("cc v")),
        "no build dependency in:\n{tree}"
    );
    let offenders = forbidden_lines(&tree);
    assert!(
        offenders.is_empty(),
        "the build graph needs CMake or NASM again: {offenders:?}\n(see `cargo tree -e normal,build -i cmake`)"
    );
}

#[test]
fn the_match_is_on_the_crate_name() {
    let tree = "strata v0.1.0 (/x)\ncmake v0.1.58\nnasm-rs v0.3.0\ncmake-parser v1.0.0\nmy-cmake v1.0.0\ncc v1.2.0\n";
    assert_eq!(forbidden_lines(tree), vec!["cmake v0.1.58", "nasm-rs v0.3.0"]);
}
