//! The house's dependency rules, checked on the source. This file is the one home of the layer
//! list: `src/lib.rs` and `docs/development.md` point here instead of restating it.
//!
//! 1. **Layers**: every top-level module of the agent (`src/`) has a rank in [`LAYERS`]; a file
//!    may use (`crate::…`) modules of its own layer or a lower one, never a higher one. A new
//!    top-level module must be given a layer here, or the test fails.
//! 2. **No circles** of `use crate::…` references between files, in the agent and in the
//!    simulator (`sim/src/`): a circle is how a rule ends up with two homes. A file and its own
//!    submodules (`broker.rs` and `broker/peer.rs`) may refer to each other: that is one
//!    concept split into files.
//! 3. **No Debug formatting** in shipped code (see [`shipped_code_never_formats_with_debug`]).
//!
//! Reads the text only: every `crate::a::b` path in a file is resolved to the longest module
//! path that exists as a file. `super::` and glob re-exports are not followed (they stay within
//! a module and its parent). Test code may reach anywhere: files named `tests.rs` and whatever
//! follows `#[cfg(test)]` in a file are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `text` without the items marked `#[cfg(test)]` (a `mod x;` line, or an item with its braced
/// body), so test code may reach anywhere while code after a `#[cfg(test)] mod tests;` near the
/// top of a file is still read. Braces inside string and character literals are not counted.
fn shipped_code(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        rest = skip_item(rest);
    }
    out.push_str(rest);
    out
}

/// Skips one item: up to its `;` if that comes before any `{`, else to the brace that closes
/// the first `{`.
fn skip_item(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' if depth == 0 => return &text[i + 1..],
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[i + 1..];
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if i + 2 < bytes.len() && bytes[i + 2] == b'\'' => i += 2,
            b'\'' if i + 3 < bytes.len() && bytes[i + 1] == b'\\' && bytes[i + 3] == b'\'' => {
                i += 3
            }
            _ => {}
        }
        i += 1;
    }
    ""
}

/// `src/broker/client.rs` -> `["broker", "client"]`; `src/lib.rs` -> `[]`.
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths a file names with `crate::`, from `use` lines and inline paths.
fn references(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let path: Vec<String> = rest
                .split("::")
                .map_while(|seg| {
                    let ident: String = seg
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    (!ident.is_empty() && ident.len() == seg.len().min(ident.len()))
                        .then_some(ident)
                })
                .collect();
            if !path.is_empty() {
                found.push(path);
            }
            // `use crate::{a, b::c}`: each name in the braces is a path too.
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| s.trim().trim_matches('{').to_string())
                        .filter(|s| !s.is_empty() && s != "self")
                        .collect();
                    if !path.is_empty() {
                        found.push(path);
                    }
                }
            }
        }
    }
    found
}

/// Circles among the files under `root` (a crate's src/), as lists of files.
fn circles(root: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            (
                module_of(root, f),
                f.strip_prefix(root).unwrap().display().to_string(),
            )
        })
        .collect();
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(root, file);
        let text = std::fs::read_to_string(file).unwrap();
        // Tests may reach anywhere: only the code above `#[cfg(test)]` counts.
        let text = shipped_code(&text);
        for path in references(&text) {
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains_key(p));
            if let Some(to) = target
                && !related(&from, &to)
            {
                edges
                    .entry(modules[&from].clone())
                    .or_default()
                    .insert(modules[&to].clone());
            }
        }
    }
    // Depth-first search; a back edge closes a circle.
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for start in modules.values() {
        let mut stack = vec![(start.clone(), 0usize)];
        let mut on_path = vec![start.clone()];
        while let Some((node, next)) = stack.last().cloned() {
            let children: Vec<String> = edges.get(&node).into_iter().flatten().cloned().collect();
            if next >= children.len() || done.contains(&node) {
                done.insert(node);
                stack.pop();
                on_path.pop();
                continue;
            }
            stack.last_mut().unwrap().1 += 1;
            let child = children[next].clone();
            if let Some(at) = on_path.iter().position(|n| *n == child) {
                let mut circle = on_path[at..].to_vec();
                circle.push(child);
                found.push(circle);
            } else if !done.contains(&child) {
                on_path.push(child.clone());
                stack.push((child, 0));
            }
        }
    }
    found
}

/// The layers of the agent, highest first. A module may use its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("the command line: parsing and settings", &["cli", "config"]),
    ("the commands", &["commands"]),
    ("the long-running agent (`run`)", &["service"]),
    (
        "the token broker and its health answer",
        &["broker", "health"],
    ),
    ("the agent: pairing, sessions, refresh", &["agent"]),
    (
        "parts the agent and the commands use",
        &[
            "board", "call", "delivery", "desired", "headless", "listen", "outbox", "pkcs11",
            "present", "seal", "testing",
        ],
    ),
    (
        "the protocol core and the seams with their backends",
        &[
            "api",
            "event",
            "flow",
            "http",
            "keepalive",
            "login_url",
            "notify",
            "refusal",
            "rest",
            "session",
            "signature",
            "store",
            "wire",
        ],
    ),
    (
        "foundations",
        &[
            "access_expiry",
            "child",
            "clock_check",
            "error",
            "files",
            "json",
            "jwt",
            "logging",
            "mailbox",
            "process",
            "sanitize",
            "secret",
            "stop",
            "text",
            "time",
            "trust",
            "url",
        ],
    ),
];

/// The rank of a top-level module in [`LAYERS`] (0 is the highest layer).
fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, names)| names.contains(&module))
}

/// The files under `root` that are shipped code, with that code (test parts cut off).
fn shipped_sources(root: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let shipped = shipped_code(&text);
            (f, shipped)
        })
        .collect()
}

/// Every `use` of a higher layer, and every top-level module with no layer, under `root`.
fn layer_breaches(root: &Path) -> Vec<String> {
    let mut found = BTreeSet::new();
    for (file, text) in shipped_sources(root) {
        let from = module_of(root, &file);
        let Some(top) = from.first() else { continue }; // lib.rs, main.rs
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        let Some(from_rank) = rank(top) else {
            found.insert(format!(
                "{rel}: module `{top}` has no layer in tests/layers.rs"
            ));
            continue;
        };
        for path in references(&text) {
            let to = &path[0];
            if to == top {
                continue;
            }
            match rank(to) {
                Some(to_rank) if to_rank < from_rank => {
                    found.insert(format!(
                        "{rel} uses `{to}` ({}), a layer above `{top}` ({})",
                        LAYERS[to_rank].0, LAYERS[from_rank].0
                    ));
                }
                _ => {}
            }
        }
    }
    found.into_iter().collect()
}

#[test]
fn every_module_uses_only_its_own_layer_and_those_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = layer_breaches(&root);
    assert!(
        found.is_empty(),
        "layer rule broken (tests/layers.rs, LAYERS):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_layer_check_finds_an_import_upwards_and_a_module_without_a_layer() {
    let dir = std::env::temp_dir().join(format!("sfpair-ranks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod store;\npub mod agent;\n").unwrap();
    std::fs::write(dir.join("agent.rs"), "use crate::store::Record;\n").unwrap();
    std::fs::write(dir.join("store.rs"), "pub struct Record;\n").unwrap();
    assert!(layer_breaches(&dir).is_empty(), "downwards is fine");
    std::fs::write(dir.join("store.rs"), "use crate::agent::Agent;\n").unwrap();
    let found = layer_breaches(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("store.rs uses `agent`"), "{found:?}");
    // Test code may reach up; code after a test module declared at the top is still read.
    let test_code = "#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod t { fn f() { let _ = \"}\"; crate::agent::g() } }\n";
    std::fs::write(dir.join("store.rs"), test_code).unwrap();
    assert!(
        layer_breaches(&dir).is_empty(),
        "{:?}",
        layer_breaches(&dir)
    );
    std::fs::write(
        dir.join("store.rs"),
        format!("{test_code}use crate::agent::Agent;\n"),
    )
    .unwrap();
    assert_eq!(layer_breaches(&dir).len(), 1);
    std::fs::write(dir.join("gadget.rs"), "pub fn f() {}\n").unwrap();
    let found = layer_breaches(&dir);
    assert!(found[0].contains("`gadget` has no layer"), "{found:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn check(dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let found = circles(&root);
    assert!(
        found.is_empty(),
        "dependency circles in {dir}:\n{}",
        found
            .iter()
            .map(|c| c.join(" -> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_agent_has_no_dependency_circle() {
    check("src");
}

#[test]
fn the_simulator_has_no_dependency_circle() {
    check("sim/src");
}

/// The shipped ARM binaries are built with `-Zfmt-debug=shallow` (scripts/lib/arm.sh): a
/// derived Debug prints the type's name only there. So no code that runs in the product may
/// format with Debug; tests and the public test doubles (`testing.rs`) may.
#[test]
fn shipped_code_never_formats_with_debug() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        if rel.starts_with("testing") || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let shipped = shipped_code(&text);
        for (n, line) in shipped.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(":?}") || code.contains(":#?}") {
                found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "Debug formatting in shipped code (it prints only type names in the ARM builds):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_finds_a_circle_when_there_is_one() {
    let dir = std::env::temp_dir().join(format!("sfpair-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::c::Thing;\n").unwrap();
    std::fs::write(dir.join("b.rs"), "mod c;\n").unwrap();
    std::fs::write(
        dir.join("b/c.rs"),
        "use crate::{a, b};\nfn f() { a::g() }\n",
    )
    .unwrap();
    let found = circles(&dir);
    assert_eq!(found, [vec!["a.rs", "b/c.rs", "a.rs"]], "{found:?}");
    // A file and its submodule referring to each other is not a circle.
    std::fs::write(dir.join("b/c.rs"), "use crate::b::X;\n").unwrap();
    assert!(circles(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
