//! The host's layering runs one way: no file of `host/src` reaches itself through the modules it
//! uses. The graph is read from the source text: a file (one module) uses another when it names
//! it by `crate::a::b`, `super::b` or, for a module's own children, `b::`; each reference goes to
//! the longest module path it names; comments are left out. Inline test modules (`#[cfg(test)] mod tests`, at the end
//! of a file by this project's convention) are left out: tests may look anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

/// Module path (`report::stdout`, `""` for the crate root) to the modules it uses.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module graph of the crate whose `src` folder is `src`.
pub fn graph(src: &Path) -> Result<Graph> {
    let mut sources = BTreeMap::new();
    collect(src, src, &mut sources)?;
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, text) in &sources {
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        // Comments name modules too (doc links): only code counts.
        let text: String =
            text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
        let uses = graph.entry(module.clone()).or_default();
        for target in references(module, &text) {
            if let Some(found) = longest_module(&target, &modules).filter(|found| found != module) {
                uses.insert(found);
            }
        }
    }
    Ok(graph)
}

/// The first cycle found, as the modules along it (the first repeated at the end).
pub fn cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut found = path[start..].to_vec();
                found.push(node.to_string());
                return Some(found);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, marks, path) {
                return Some(found);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph.keys().find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

/// Reads every `.rs` file under `dir` as `module path -> source`.
fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root)?.with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "main" | "lib")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            out.insert(parts.join("::"), text);
        }
    }
    Ok(())
}

/// The module paths `text` (the source of `module`) names, absolute.
fn references(module: &str, text: &str) -> Vec<String> {
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let children: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ").strip_prefix("mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .collect();
    let join = |base: &str, rest: &str| if base.is_empty() { rest.to_string() } else { format!("{base}::{rest}") };
    let mut found = Vec::new();
    for (at, _) in text.match_indices("::") {
        // The path that ends at this `::`: identifiers and `::` back to its start.
        let start = text[..at].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |i| i + 1);
        let path = &text[start..at];
        if path.contains("::") {
            continue; // Seen at its first `::` already.
        }
        let rest = path_after(&text[start..]);
        match path {
            "crate" => found.push(rest.to_string()),
            "super" => found.push(join(parent, rest)),
            "self" => found.push(join(module, rest)),
            child if children.contains(&child) => {
                found.push(join(module, &text[start..start + path.len() + 2 + rest.len()]))
            }
            _ => {}
        }
    }
    found
}

/// `a::b::C` of `prefix::a::b::C...`: the path after the first segment.
fn path_after(text: &str) -> &str {
    let after = text.split_once("::").map_or("", |(_, rest)| rest);
    let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(after.len());
    after[..end].trim_end_matches(':')
}

/// The longest known module that `path` names (`report::stdout::print` -> `report::stdout`).
fn longest_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|candidate| modules.contains(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(files: &[(&str, &str)]) -> Graph {
        let dir = tempdir();
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let graph = graph(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        graph
    }

    fn tempdir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("layering-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_kind_of_reference_is_an_edge_and_a_circle_is_found() {
        let graph = graph_of(&[
            ("main.rs", "mod report;\nmod sandbox;\nfn main() { report::stdout::print(); }"),
            ("report/mod.rs", "pub mod stdout;\nuse crate::sandbox::Meter;"),
            ("report/stdout.rs", "use super::Report;\npub fn print() {}"),
            (
                "sandbox/mod.rs",
                "pub mod pool;\nuse self::pool::Pool;\n#[cfg(test)]\nmod tests { use crate::report::X; }",
            ),
            ("sandbox/pool.rs", "pub struct Pool;"),
        ]);
        assert_eq!(graph[""], BTreeSet::from(["report::stdout".to_string()]));
        assert_eq!(graph["report::stdout"], BTreeSet::from(["report".to_string()]));
        assert_eq!(graph["sandbox"], BTreeSet::from(["sandbox::pool".to_string()]), "tests are left out");
        assert_eq!(cycle(&graph), None);

        let graph = graph_of(&[
            ("main.rs", "mod a;\nmod b;"),
            ("a.rs", "fn f() { crate::b::g(); }"),
            ("b/mod.rs", "mod c;\nuse c::X;"),
            ("b/c.rs", "use super::super::a;\nfn g() { crate::a::f(); }"),
        ]);
        let found = cycle(&graph).expect("a -> b -> b::c -> a");
        assert_eq!(found.first(), found.last(), "{found:?}");
        assert!(found.contains(&"b::c".to_string()), "{found:?}");
    }

    #[test]
    fn the_host_has_no_import_cycle() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
        let graph = graph(&src).unwrap();
        assert!(graph.len() > 10, "the host's modules were read: {:?}", graph.keys());
        if let Some(found) = cycle(&graph) {
            panic!(
                "host/src modules use each other in a circle: {} (the host's layering must run one way)",
                found.join(" -> ")
            );
        }
    }
}
