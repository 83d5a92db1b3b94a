//! The domain's shape (docs/architecture.md): contexts in folders, layered so that no file
//! imports another in a circle across contexts, and shared words beneath them all.
//!
//! Reads `src/` as text: every `crate::…` path (and `super::…` in a submodule) outside comments
//! and test modules is an import of the module it names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The contexts, each a folder; every other module is a shared word, except `store` and
/// `conformance`, which sit above every context.
const CONTEXTS: [&str; 8] = [
    "access",
    "audit",
    "vault",
    "consent",
    "disclosures",
    "requests",
    "retention",
    "incidents",
];
const TOP: [&str; 2] = ["store", "conformance"];

/// The old paths `lib.rs` keeps for other crates, and the modules they name.
const ALIASES: [(&str, &str); 8] = [
    ("api_key", "access::api_key"),
    ("password", "access::password"),
    ("rate_limit", "access::rate_limit"),
    ("staff", "access::staff"),
    ("ledger", "consent::ledger"),
    ("permit", "consent::permit"),
    ("request", "requests::request"),
    ("rotation", "vault::rotation"),
];

fn context(module: &str) -> &str {
    let first = module.split("::").next().unwrap_or(module);
    if CONTEXTS.contains(&first) || TOP.contains(&first) {
        first
    } else {
        "shared"
    }
}

/// Every module of `src/` (`vault`, `vault::staff` …) and its source without comments and
/// test modules.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel == "lib" {
                continue;
            }
            let name = rel.trim_end_matches("/mod").replace('/', "::");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            let code: Vec<&str> = text
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect();
            out.insert(name, code.join("\n"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The module a path names: its longest prefix that is a module.
fn resolve(path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let mut parts: Vec<String> = path.split("::").map(str::to_owned).collect();
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == parts[0]) {
        let mut full: Vec<String> = to.split("::").map(str::to_owned).collect();
        full.extend(parts.drain(1..));
        parts = full;
    }
    (1..=parts.len())
        .rev()
        .map(|k| parts[..k].join("::"))
        .find(|m| modules.contains_key(m))
}

/// Each module's imports of other modules.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (name, code) in modules {
        let mut deps = BTreeSet::new();
        let parent = name.rsplit_once("::").map(|(p, _)| p);
        for (prefix, base) in [("crate::", None), ("super::", parent)] {
            for (i, _) in code.match_indices(prefix) {
                let rest = &code[i + prefix.len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut targets = vec![path.trim_end_matches(':').to_owned()];
                // `use crate::{a::B, c}` names several.
                if let Some(group) = rest.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or_default();
                    targets = group
                        .split([',', '{'])
                        .map(|t| t.trim().trim_end_matches(':').to_owned())
                        .collect();
                }
                for t in targets {
                    let full = base.map_or(t.clone(), |b| format!("{b}::{t}"));
                    if let Some(m) = resolve(&full, modules).filter(|m| m != name) {
                        deps.insert(m);
                    }
                }
            }
        }
        graph.insert(name.clone(), deps);
    }
    graph
}

/// Every module `from` reaches through imports, with the way there.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeMap<String, Vec<String>> {
    let mut ways: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([vec![from.to_owned()]]);
    while let Some(way) = queue.pop_front() {
        let at = way.last().cloned().unwrap_or_default();
        for next in &graph[&at] {
            if !ways.contains_key(next) {
                let mut longer = way.clone();
                longer.push(next.clone());
                ways.insert(next.clone(), longer.clone());
                queue.push_back(longer);
            }
        }
    }
    ways
}

#[test]
fn no_module_imports_another_in_a_circle_across_contexts() {
    let modules = modules();
    let graph = imports(&modules);
    let reached: BTreeMap<&String, BTreeMap<String, Vec<String>>> =
        graph.keys().map(|m| (m, reach(&graph, m))).collect();
    // Two modules of different contexts that reach each other are on one circle.
    for (a, from_a) in &reached {
        for (b, there) in from_a {
            if context(a) != context(b)
                && let Some(back) = reached[b].get(a.as_str())
            {
                panic!(
                    "a circle across contexts: {} → {}",
                    there.join(" → "),
                    back[1..].join(" → ")
                );
            }
        }
    }
}

#[test]
fn shared_words_use_no_context_and_no_context_uses_the_top() {
    let modules = modules();
    let graph = imports(&modules);
    for (module, deps) in &graph {
        for dep in deps {
            let (from, to) = (context(module), context(dep));
            assert!(
                !(from == "shared" && to != "shared"),
                "`{module}` is a shared word but uses `{dep}` of the {to} context"
            );
            assert!(
                TOP.contains(&from) || !TOP.contains(&to),
                "`{module}` uses `{dep}`, which sits above every context: use the context's own `storage` module"
            );
        }
    }
}

#[test]
fn the_check_sees_imports_at_all() {
    // Guards the two tests above against reading nothing: the vault is known to use access.
    let modules = modules();
    let graph = imports(&modules);
    assert!(graph["vault"].contains("access"), "{:?}", graph["vault"]);
    assert!(
        graph["consent::ledger"].contains("vault"),
        "{:?}",
        graph["consent::ledger"]
    );
    assert!(modules.len() > 20, "{:?}", modules.keys());
}
