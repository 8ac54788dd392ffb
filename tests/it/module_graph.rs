//! The top-level modules (the children of `src/lib.rs`) must not import each other in a cycle:
//! a cycle means neither side can be understood, tested or replaced without the other.
//!
//! What is counted: every path `crate::<top>` in `src/**/*.rs` (also inside `use crate::{..}`
//! groups), and `super::` paths that climb out of a top-level module into another one. What is
//! not counted: comments, string literals, `src/lib.rs` and `src/main.rs` (the binary sees the
//! library from outside), `#[cfg(test)] mod NAME { .. }` blocks and files declared by
//! `#[cfg(test)] mod NAME;`, since test code may reach anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One import edge with the place that shows it.
type Edges = BTreeMap<(String, String), String>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The text with comments and the insides of string and char literals blanked out (newlines
/// kept, so line numbers still match).
fn code_only(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            // A raw string: r"..", r#".."#.
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            let hashes = j - i - 1;
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let mut k = j + 1;
            while k < b.len()
                && !(b[k] == '"'
                    && b[k + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|h| **h == '#')
                        .count()
                        == hashes)
            {
                k += 1;
            }
            let end = (k + 1 + hashes).min(b.len());
            for ch in &b[i..end] {
                out.push(blank(*ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && is_char_literal(&b, i) {
            let end = if b[i + 1] == '\\' {
                (i + 3..b.len()).find(|&k| b[k] == '\'').unwrap_or(i)
            } else {
                i + 2
            };
            for _ in i..=end {
                out.push(' ');
            }
            i = end + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// `'a'`, `'\n'`, `'\u{1F600}'` — not a lifetime such as `'a` or `'static`.
fn is_char_literal(b: &[char], i: usize) -> bool {
    matches!(
        (b.get(i + 1), b.get(i + 2)),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// Removes `#[cfg(test)] mod NAME { .. }` blocks; returns the names of `#[cfg(test)] mod NAME;`.
fn strip_test_modules(code: &mut String) -> Vec<String> {
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let start = from + at;
        let after = start + "#[cfg(test)]".len();
        let rest = code[after..].trim_start();
        let rest_at = code.len() - rest.len();
        let Some(decl) = rest
            .strip_prefix("mod ")
            .or_else(|| rest.strip_prefix("pub mod "))
        else {
            from = after;
            continue;
        };
        let name: String = decl
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let tail = decl.trim_start()[name.len()..].trim_start();
        if tail.starts_with(';') {
            test_files.push(name);
            from = after;
            continue;
        }
        let Some(open) = code[rest_at..].find('{').map(|n| rest_at + n) else {
            break;
        };
        let mut depth = 0;
        let mut end = code.len();
        for (k, ch) in code[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let blanked: String = code[start..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(start..end, &blanked);
        from = start + blanked.len();
    }
    test_files
}

/// The module path of a file below `src`, e.g. `src/audio/echo/mod.rs` → `["audio", "echo"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a line of code names, by `crate::` and `super::` paths.
fn referenced(line: &str, module: &[String], tops: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let chars: Vec<char> = rest.chars().collect();
        let ok_start =
            !ident_before(&chars, rest[..at].chars().count()) && !rest[..at].ends_with("::");
        let after = &rest[at + "crate::".len()..];
        if ok_start {
            if let Some(group) = after.strip_prefix('{') {
                // `use crate::{a, b::c, d::{e, f}}`: the names at depth 1.
                let mut depth = 1;
                let mut item_start = true;
                for (k, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => item_start = true,
                        c if item_start && depth == 1 && !c.is_whitespace() => {
                            found.push(ident_at(&group[k..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                found.push(ident_at(after));
            }
        }
        rest = after;
    }
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let chars: Vec<char> = rest.chars().collect();
        let starts_path =
            !ident_before(&chars, rest[..at].chars().count()) && !rest[..at].ends_with("::");
        let mut after = &rest[at..];
        if starts_path {
            let mut up = 0;
            while let Some(a) = after.strip_prefix("super::") {
                up += 1;
                after = a;
            }
            if up == module.len() {
                found.push(ident_at(after));
            }
        } else {
            after = &rest[at + "super::".len()..];
        }
        rest = after;
    }
    found.retain(|m| tops.contains(m));
    found
}

fn edges() -> (BTreeSet<String>, Edges) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let tops: BTreeSet<String> = code_only(&lib)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').trim().to_string())
        .collect();
    assert!(tops.contains("config"), "no modules found in src/lib.rs");

    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut edges = Edges::new();
    for file in &files {
        let module = module_path(&src, file);
        if module.len() == 1 && (module[0] == "lib" || module[0] == "main") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source file");
        let mut code = code_only(&text);
        // Where the files of this file's child modules live.
        let dir = if file.ends_with("mod.rs") {
            file.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            file.with_extension("")
        };
        for name in strip_test_modules(&mut code) {
            test_only.insert(dir.join(format!("{name}.rs")));
            test_only.insert(dir.join(&name).join("mod.rs"));
        }
        if test_only.contains(file) {
            continue;
        }
        let from = &module[0];
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in code.lines().enumerate() {
            for to in referenced(line, &module, &tops) {
                if &to != from {
                    edges
                        .entry((from.clone(), to))
                        .or_insert_with(|| format!("{rel}:{}", n + 1));
                }
            }
        }
    }
    (tops, edges)
}

/// Every elementary cycle, each written from its smallest module, shortest first.
fn cycles(tops: &BTreeSet<String>, edges: &Edges) -> Vec<Vec<String>> {
    let out = |m: &String| -> Vec<String> {
        edges
            .keys()
            .filter(|(a, _)| a == m)
            .map(|(_, b)| b.clone())
            .collect()
    };
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    // Small graph (13 nodes): a DFS from each start, keeping only nodes greater than the start,
    // lists every simple cycle once.
    for start in tops {
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, path)) = stack.pop() {
            for next in out(&node) {
                if &next == start {
                    found.insert(path.clone());
                } else if next > *start && !path.contains(&next) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next, p));
                }
            }
        }
    }
    let mut all: Vec<Vec<String>> = found.into_iter().collect();
    all.sort_by_key(|c| c.len());
    all
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let (tops, edges) = edges();
    let found = cycles(&tops, &edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let mut ring = c.clone();
            ring.push(c[0].clone());
            let steps: Vec<String> = ring
                .windows(2)
                .map(|w| {
                    let at = &edges[&(w[0].clone(), w[1].clone())];
                    format!("{} → {} ({at})", w[0], w[1])
                })
                .collect();
            format!("  {}\n      {}", ring.join(" → "), steps.join("\n      "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "import cycles between top-level modules (a lower module must not import a higher \
         one; move the shared type down, next to the module that owns it). Known until the \
         live/ rewrite lands: live/probe.rs imports config::Config and daemon::build_setup.\n{}",
        shown.join("\n")
    );
}

#[test]
fn the_checker_sees_crate_paths_groups_and_super() {
    let tops: BTreeSet<String> = ["audio", "config", "live"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let m = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        referenced("use crate::config::Config;", &m(&["live", "probe"]), &tops),
        m(&["config"])
    );
    assert_eq!(
        referenced(
            "use crate::{audio::EchoMode, live::{ApiKey, proto}};",
            &m(&["config"]),
            &tops
        ),
        m(&["audio", "live"])
    );
    assert_eq!(
        referenced("use super::super::audio::X;", &m(&["live", "probe"]), &tops),
        m(&["audio"])
    );
    assert_eq!(
        referenced("use super::proto;", &m(&["live", "probe"]), &tops),
        Vec::<String>::new()
    );
    let code = code_only("// crate::audio\nlet s = \"crate::audio\"; let c = '\"'; x::crate::live");
    assert_eq!(
        referenced(&code, &m(&["config"]), &tops),
        Vec::<String>::new()
    );
    let mut code = "fn a() {}\n#[cfg(test)]\nmod tests {\n    use crate::audio;\n}\n".to_string();
    assert!(strip_test_modules(&mut code).is_empty());
    assert!(!code.contains("crate::audio"), "{code}");
}
