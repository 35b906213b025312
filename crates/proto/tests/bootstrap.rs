#![allow(clippy::unwrap_used)]

//! The generated code in `src/gen` is checked in so that building CityEvents
//! needs no protobuf compiler and the output is reviewable. This test compiles
//! `proto/` again with protox (pure Rust) and fails when the checked-in code
//! differs. `make proto` (CE_BLESS=1) rewrites it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// This crate's folder, as `cargo test` says at run time: a test binary
/// reused from a build cache shared by clones at other paths would carry the
/// compile-time path of whichever clone built it.
fn crate_dir() -> PathBuf {
    std::env::var("CARGO_MANIFEST_DIR")
        .map_or_else(|_| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
}

fn repo_root() -> PathBuf {
    crate_dir().join("../..")
}

/// The folder holding `google/api/*.proto` from googleapis-common-protos.
fn googleapis_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("GOOGLEAPIS_PROTO_DIR") {
        return dir.into();
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/proto-deps.sh"))
        .output()
        .expect("run scripts/proto-deps.sh");
    assert!(
        out.status.success(),
        "scripts/proto-deps.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().into()
}

fn proto_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read proto dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            proto_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "proto") {
            found.push(path);
        }
    }
}

fn generate(out: &Path) {
    let root = repo_root().join("proto");
    let mut files = Vec::new();
    proto_files(&root.join("cityevents"), &mut files);
    let mut compiler = protox::Compiler::new([root.clone(), googleapis_dir()]).expect("compiler");
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(
            files
                .iter()
                .map(|f| f.strip_prefix(&root).expect("under proto/")),
        )
        .expect("proto files compile");
    // Encoded by protox itself: prost-types' copy would drop the custom
    // options (`google.api.http`) the BFF's REST routes are read from.
    std::fs::write(
        out.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )
    .expect("write descriptor");
    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .out_dir(out)
        .include_file("mod.rs")
        .build_transport(true)
        .compile_fds(fds)
        .expect("codegen");
}

#[test]
fn generated_code_matches_the_protos() {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate(tmp.path());
    let checked_in = crate_dir().join("src/gen");
    let bless = std::env::var_os("CE_BLESS").is_some();
    let mut stale = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read out")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    for name in names {
        let fresh = std::fs::read(tmp.path().join(&name)).expect("read fresh");
        let old = std::fs::read(checked_in.join(&name)).unwrap_or_default();
        if fresh != old {
            if bless {
                std::fs::write(checked_in.join(&name), &fresh).expect("write");
            }
            stale.push(name.to_string_lossy().into_owned());
        }
    }
    assert!(
        bless || stale.is_empty(),
        "generated code is stale ({stale:?}); run `make proto` and commit src/gen"
    );
}
