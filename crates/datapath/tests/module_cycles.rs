//! No module of the crate may depend on itself through others: each file's
//! `crate::a::b` paths (in `use` lines and inline) are edges from its module
//! to the deepest module they name, and the graph must have no cycle. A
//! module's own submodules and ancestors are not edges (containment is not
//! dependence). Test modules inside a file count like the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// `src/a/b.rs` → `a::b`; `src/a/mod.rs` → `a`; `lib.rs` → "".
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.insert(
                module_of(p.strip_prefix(root).unwrap()),
                fs::read_to_string(&p).unwrap(),
            );
        }
    }
}

fn related(a: &str, b: &str) -> bool {
    let under = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    under(a, b) || under(b, a)
}

/// Module → the modules it names through `crate::` paths.
fn graph(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for (module, src) in sources {
        let mut deps = BTreeSet::new();
        for (i, _) in src.match_indices("crate::") {
            let path: String = src[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            // The deepest prefix that is a module (the rest names an item).
            let target = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("::"))
                .find(|m| sources.contains_key(m));
            if let Some(t) = target {
                if !related(module, &t) {
                    deps.insert(t);
                }
            }
        }
        g.insert(module.clone(), deps);
    }
    g
}

/// One cycle of `g`, if any, as the modules along it.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn dfs(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in &g[v] {
            match state.get(w.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = path.iter().position(|p| p == w).unwrap();
                    let mut c = path[start..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = dfs(w, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in g.keys() {
        if !state.contains_key(v) {
            if let Some(c) = dfs(v, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_checker_finds_a_cycle_and_ignores_containment() {
    let src = |s: &str| s.to_string();
    let m: BTreeMap<String, String> = [
        (src("a"), src("use crate::b::Thing;")),
        (src("b"), src("fn f() { crate::c::g() }")),
        (src("c"), src("use crate::a::{self};")),
        (src("d"), src("use crate::d::inner::X;")),
        (src("d::inner"), src("use crate::d::Y;")),
    ]
    .into();
    assert_eq!(
        find_cycle(&graph(&m)),
        Some(vec![src("a"), src("b"), src("c"), src("a")])
    );
    let mut m = m;
    m.remove("c");
    assert_eq!(find_cycle(&graph(&m)), None);
}

#[test]
fn crate_modules_have_no_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = BTreeMap::new();
    walk(&root, &root, &mut sources);
    assert!(sources.len() > 10);
    let g = graph(&sources);
    assert!(
        g.values().map(BTreeSet::len).sum::<usize>() > 10,
        "no edges found: the parser is broken"
    );
    assert_eq!(find_cycle(&g), None, "module cycle");
}
