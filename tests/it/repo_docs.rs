//! The documents that comments cite are in this repository (`docs/design.md`, "Docs live here").
//! Someone who clones the repository must be able to follow every pointer, so this fails on a
//! markdown path that does not exist here, and on any pointer to the write-ups that were never
//! part of the repository.

use std::fs;
use std::path::{Path, PathBuf};

/// Scanned, relative to the repository root: directories recursively, files as they are. The
/// packaging scripts in `cross/` are left out: they name paths inside the `.deb`
/// (`usr/share/doc/…`), not files of the repository.
const SCANNED: &[&str] = &[
    "src",
    "tests",
    "benches",
    "docs",
    "README.md",
    "cross/README.md",
    "systemd",
    "debian",
    "config",
    ".ci",
];

/// Not scanned: test data kept byte-for-byte as recorded (with its upstream README), and this
/// file, which has to name what it forbids.
const SKIPPED: &[&str] = &["tests/fixtures", "tests/it/repo_docs.rs"];

/// Documents that lived outside the repository, and paths that lead out of it.
const FOREIGN: &[&str] = &[
    "live-api.md",
    "test-infra.md",
    "crates.md",
    "../shared",
    "/work/",
];

#[test]
fn every_cited_document_is_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for entry in SCANNED {
        collect(root, &root.join(entry), &mut files);
    }
    assert!(
        files.iter().any(|f| f.ends_with("src/lib.rs")),
        "the scan found no sources under {}",
        root.display()
    );

    let mut problems = Vec::new();
    for file in &files {
        // Binary files cannot cite anything.
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let rel = file.strip_prefix(root).unwrap_or(file);
        let dir = file.parent().unwrap_or(root);
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", rel.display(), i + 1);
            for foreign in FOREIGN {
                if line.contains(foreign) {
                    problems.push(format!(
                        "{at}: points outside the repository (`{foreign}`): {}",
                        line.trim()
                    ));
                }
            }
            for path in markdown_paths(line) {
                // Absolute paths are where a package installs things (/usr/share/doc/…) and
                // URLs end up here as `//host/…`: neither is a file of this repository.
                if path.starts_with('/') || FOREIGN.iter().any(|f| path.contains(f)) {
                    continue;
                }
                if !root.join(path).is_file() && !dir.join(path).is_file() {
                    problems.push(format!(
                        "{at}: `{path}` does not exist in the repository: {}",
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} pointer(s) a reader of this repository cannot follow (cite docs/design.md, \
         docs/protocol.md or docs/aec.md by heading instead):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every file under `path` (or `path` itself), minus [`SKIPPED`].
fn collect(root: &Path, path: &Path, out: &mut Vec<PathBuf>) {
    let rel = path.strip_prefix(root).unwrap_or(path);
    if SKIPPED.iter().any(|s| rel == Path::new(s)) {
        return;
    }
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            collect(root, &entry, out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

/// The paths ending in `.md` that a line mentions, e.g. `docs/aec.md` in "(`docs/aec.md`, …)".
fn markdown_paths(line: &str) -> Vec<&str> {
    let is_path_char = |c: u8| c.is_ascii_alphanumeric() || b"_-./".contains(&c);
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = line[from..].find(".md") {
        let dot = from + pos;
        let end = dot + 3;
        from = end;
        // `.md` must end the name: not `.mdx`, not `x.md5`.
        if bytes
            .get(end)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
        {
            continue;
        }
        let mut start = dot;
        while start > 0 && is_path_char(bytes[start - 1]) {
            start -= 1;
        }
        if start < dot {
            found.push(&line[start..end]);
        }
    }
    found
}

#[test]
fn markdown_paths_are_found_in_comments() {
    assert_eq!(
        markdown_paths("//! (`docs/aec.md`, \"Timing rule\") and README.md §6."),
        ["docs/aec.md", "README.md"]
    );
    assert_eq!(
        markdown_paths("see /work/shared/docs/live-api.md §5"),
        ["/work/shared/docs/live-api.md"]
    );
    assert_eq!(
        markdown_paths("Documentation=file:///usr/share/doc/gemlive/README.md"),
        ["///usr/share/doc/gemlive/README.md"]
    );
    assert!(markdown_paths("a .md file, x.mdx, y.md5, `.md`").is_empty());
}
