//! Two rules checked on the source. The dependency rule: no circle of `use crate::…` references between
//! files, in the agent (`src/`) and in the simulator (`sim/src/`). Dependencies point one way
//! (main -> config -> commands -> agent -> adapters -> pure core); a circle is how a rule ends
//! up with two homes. A file and its own submodules (`broker.rs` and `broker/peer.rs`) may
//! refer to each other: that is one concept split into files, not a circle.
//!
//! Reads the text only: every `crate::a::b` path in a file is resolved to the longest module
//! path that exists as a file. `super::` and glob re-exports are not followed (they stay within
//! a module and its parent).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for path in references(text) {
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
        let shipped = text.split("#[cfg(test)]").next().unwrap_or("");
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
