//! The folders are the architecture: no module imports one that imports it back, anywhere in the
//! workspace (`src/`, `fake_atlas/src/`, `benches/scrape/`, `fuzz/fuzz_targets/`).
//!
//! A module here is a file. There is an edge from file `a` to file `b` when `a` names something
//! `b` defines: in a `use` (brace groups, `self`, renames and globs included) or in a path in its
//! code (`crate::…`, `super::…`, `self::…`, a child module's name, a name a `use` brought in,
//! and such paths inside macro invocations). A name is followed through re-exports to the file
//! that defines it: when a face `mod.rs` says `pub use b::Y`, `crate::x::Y` is an edge to `b`,
//! not to the face. A parent's `mod child;` declaration is not an edge; its `use child::…` is.
//! Code under `#[cfg(test)]` is left out: test scaffolding is not the architecture.
//!
//! The source is read with `syn`, so a path is found wherever Rust allows one, not where a
//! regular expression would guess it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path inside its crate (`[]` is the crate root).
type ModPath = Vec<String>;

/// What a `use` brings in: `name` (`None` for a glob) standing for `target`, a path as written.
#[derive(Debug)]
struct Import {
    name: Option<String>,
    target: Vec<String>,
}

/// One module: a file, or a `mod x { … }` inside one.
#[derive(Debug, Default)]
struct Module {
    /// The module of the file it is written in (itself, unless it is inline).
    file: ModPath,
    children: BTreeSet<String>,
    /// Names of the items it defines.
    items: BTreeSet<String>,
    imports: Vec<Import>,
    /// Paths of two segments or more in its code.
    paths: Vec<Vec<String>>,
}

/// A module, and the item in it a path ends at, if it ends at an item.
struct Resolved {
    module: ModPath,
    item: Option<String>,
}

/// One crate's modules, read from its root file.
struct Crate {
    name: String,
    modules: BTreeMap<ModPath, Module>,
    /// Every file read, and those of modules declared only under `#[cfg(test)]`.
    files: BTreeSet<PathBuf>,
    test_files: BTreeSet<PathBuf>,
}

/// Reads a file of the tree being checked: the disk, or a test's files in memory.
type Read<'a> = &'a dyn Fn(&Path) -> Option<String>;

impl Crate {
    fn load(name: &str, root: &Path, read: Read) -> Crate {
        let mut krate = Crate {
            name: name.to_owned(),
            modules: BTreeMap::new(),
            files: BTreeSet::new(),
            test_files: BTreeSet::new(),
        };
        let dir = root
            .parent()
            .expect("a root file in a directory")
            .to_owned();
        krate.load_file(Vec::new(), root, &dir, read);
        krate
    }

    fn load_file(&mut self, path: ModPath, file: &Path, dir: &Path, read: Read) {
        let text = read(file).unwrap_or_else(|| panic!("{} cannot be read", file.display()));
        let parsed = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        self.files.insert(file.to_owned());
        self.load_items(&parsed.items, &path, path.clone(), dir, read);
    }

    /// The items of module `path`, written in the file of module `file_module`; its child
    /// modules' files are in `dir`.
    fn load_items(
        &mut self,
        items: &[syn::Item],
        file_module: &ModPath,
        path: ModPath,
        dir: &Path,
        read: Read,
    ) {
        let mut module = Module {
            file: file_module.clone(),
            ..Module::default()
        };
        let mut inner = Vec::new();
        for item in items {
            if cfg_test(item_attrs(item)) {
                if let syn::Item::Mod(declared) = item
                    && declared.content.is_none()
                {
                    let (child, _) = child_file(declared, dir, read);
                    self.test_files.insert(child);
                }
                continue;
            }
            match item {
                syn::Item::Mod(declared) => {
                    let name = declared.ident.to_string();
                    module.children.insert(name.clone());
                    inner.push((declared, name));
                }
                syn::Item::Use(used) if used.leading_colon.is_none() => {
                    flatten(&used.tree, Vec::new(), &mut module.imports);
                }
                syn::Item::Use(_) => {}
                other => {
                    if let Some(name) = item_name(other) {
                        module.items.insert(name);
                    }
                    let mut visitor = Paths {
                        paths: &mut module.paths,
                        imports: &mut module.imports,
                    };
                    visitor.visit_item(other);
                }
            }
        }
        self.modules.insert(path.clone(), module);
        for (declared, name) in inner {
            let mut child = path.clone();
            child.push(name.clone());
            match &declared.content {
                Some((_, items)) => {
                    self.load_items(items, file_module, child, &dir.join(&name), read)
                }
                None => {
                    let (child_file, child_dir) = child_file(declared, dir, read);
                    self.load_file(child, &child_file, &child_dir, read);
                }
            }
        }
    }

    /// Where `segments`, written in module `ctx`, leads: `None` for another crate's name, a
    /// generic, or a local item a `use` did not bring in. With `strict`, a name not found
    /// where the path leads is `None` too (for searching globs).
    fn resolve(
        &self,
        ctx: &[String],
        segments: &[String],
        depth: u32,
        strict: bool,
    ) -> Option<Resolved> {
        if depth > 32 || segments.is_empty() {
            return None;
        }
        let (mut current, rest): (ModPath, &[String]) = match segments[0].as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (ctx.to_vec(), &segments[1..]),
            "super" => {
                let mut current = ctx.to_vec();
                let supers = segments.iter().take_while(|s| *s == "super").count();
                for _ in 0..supers {
                    current.pop()?;
                }
                (current, &segments[supers..])
            }
            first => {
                let module = self.modules.get(ctx)?;
                if module.children.contains(first) {
                    let mut child = ctx.to_vec();
                    child.push(first.to_owned());
                    (child, &segments[1..])
                } else {
                    let import = module
                        .imports
                        .iter()
                        .find(|i| i.name.as_deref() == Some(first))?;
                    let mut target = import.target.clone();
                    target.extend_from_slice(&segments[1..]);
                    return self.resolve(ctx, &target, depth + 1, strict);
                }
            }
        };
        for segment in rest {
            let mut next = current.clone();
            next.push(segment.clone());
            if self.modules.contains_key(&next) {
                current = next;
            } else {
                return self.item(current, segment, depth, strict);
            }
        }
        Some(Resolved {
            module: current,
            item: None,
        })
    }

    /// The module that defines `name` as seen from `module`: itself, or where its `use`s (by
    /// name, then globs) lead.
    fn item(&self, module: ModPath, name: &str, depth: u32, strict: bool) -> Option<Resolved> {
        let found = self.modules.get(&module)?;
        if found.items.contains(name) {
            return Some(Resolved {
                module,
                item: Some(name.to_owned()),
            });
        }
        if let Some(import) = found
            .imports
            .iter()
            .find(|i| i.name.as_deref() == Some(name))
        {
            // A re-export of another crate's item is no edge in this one.
            return self.resolve(&module, &import.target, depth + 1, strict);
        }
        for glob in found.imports.iter().filter(|i| i.name.is_none()) {
            let mut target = glob.target.clone();
            target.push(name.to_owned());
            if let Some(resolved) = self.resolve(&module, &target, depth + 1, true) {
                return Some(resolved);
            }
        }
        (!strict).then(|| Resolved {
            module,
            item: Some(name.to_owned()),
        })
    }

    /// The file-to-file edges, as module paths of files.
    fn edges(&self) -> BTreeSet<(ModPath, ModPath)> {
        let mut edges = BTreeSet::new();
        for (path, module) in &self.modules {
            let mut add = |resolved: Option<Resolved>, glob: bool| {
                let Some(resolved) = resolved else { return };
                // A `use` of a module itself is a name for it: its uses are the edges.
                if resolved.item.is_none() && !glob {
                    return;
                }
                let target = &self.modules[&resolved.module].file;
                if *target != module.file {
                    edges.insert((module.file.clone(), target.clone()));
                }
            };
            for import in &module.imports {
                let glob = import.name.is_none();
                add(self.resolve(path, &import.target, 0, false), glob);
            }
            for segments in &module.paths {
                add(self.resolve(path, segments, 0, false), true);
            }
        }
        edges
    }

    /// `crate::a::b` as `name::a::b`.
    fn display(&self, path: &ModPath) -> String {
        std::iter::once(self.name.as_str())
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::")
    }

    /// Every import circle, each as its modules in order, the first again at the end.
    fn circles(&self) -> Vec<String> {
        let edges = self.edges();
        circles(&edges)
            .into_iter()
            .map(|circle| {
                circle
                    .iter()
                    .map(|m| self.display(m))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            })
            .collect()
    }
}

/// The file of a `mod name;` declared in a file whose children live in `dir`, and the directory
/// of its own children.
fn child_file(declared: &syn::ItemMod, dir: &Path, read: Read) -> (PathBuf, PathBuf) {
    let name = declared.ident.to_string();
    let explicit = declared.attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        },
        _ => None,
    });
    if let Some(explicit) = explicit {
        let file = dir.join(explicit);
        let parent = file.parent().unwrap_or(dir).to_owned();
        return (file, parent);
    }
    let flat = dir.join(format!("{name}.rs"));
    let file = if read(&flat).is_some() {
        flat
    } else {
        dir.join(&name).join("mod.rs")
    };
    (file, dir.join(name))
}

/// Whether an item is compiled for tests only.
fn cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && matches!(&attr.meta, syn::Meta::List(list) if list.tokens.to_string() == "test")
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// A `use` tree as one [`Import`] per name it brings in.
fn flatten(tree: &syn::UseTree, prefix: Vec<String>, out: &mut Vec<Import>) {
    match tree {
        syn::UseTree::Path(path) => {
            let mut prefix = prefix;
            prefix.push(path.ident.to_string());
            flatten(&path.tree, prefix, out);
        }
        syn::UseTree::Name(name) => out.push(named(prefix, &name.ident, None)),
        syn::UseTree::Rename(rename) => {
            out.push(named(prefix, &rename.ident, Some(&rename.rename)))
        }
        syn::UseTree::Glob(_) => out.push(Import {
            name: None,
            target: prefix,
        }),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten(tree, prefix.clone(), out);
            }
        }
    }
}

/// `prefix::ident as rename`, where `ident` may be `self` (the prefix itself).
fn named(prefix: Vec<String>, ident: &syn::Ident, rename: Option<&syn::Ident>) -> Import {
    let (target, own) = if ident == "self" {
        let own = prefix.last().cloned().unwrap_or_default();
        (prefix, own)
    } else {
        let mut target = prefix;
        target.push(ident.to_string());
        (target, ident.to_string())
    };
    Import {
        name: Some(rename.map_or(own, ToString::to_string)),
        target,
    }
}

/// Collects the paths of an item's code, and the `use`s inside its functions.
struct Paths<'a> {
    paths: &'a mut Vec<Vec<String>>,
    imports: &'a mut Vec<Import>,
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() >= 2 {
            self.paths
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, used: &'ast syn::ItemUse) {
        if used.leading_colon.is_none() {
            flatten(&used.tree, Vec::new(), self.imports);
        }
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        macro_paths(mac.tokens.clone(), self.paths);
        syn::visit::visit_macro(self, mac);
    }

    // `pub(in crate::x)` names where an item is visible, not what it uses.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !cfg_test(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }
}

/// The `a::b::c` sequences in a macro's tokens (which `syn` leaves unparsed).
fn macro_paths(tokens: TokenStream, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(group) => {
                macro_paths(group.stream(), out);
                i += 1;
            }
            TokenTree::Ident(first) => {
                let mut path = vec![first.to_string()];
                let mut j = i + 1;
                while let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(next)),
                ) = (tokens.get(j), tokens.get(j + 1), tokens.get(j + 2))
                {
                    if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':' {
                        break;
                    }
                    path.push(next.to_string());
                    j += 3;
                }
                if path.len() >= 2 {
                    out.push(path);
                }
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// Every circle of `edges`: per strongly connected set of two modules or more, the shortest
/// circle through each of its modules, starting at its smallest, each once.
fn circles(edges: &BTreeSet<(ModPath, ModPath)>) -> Vec<Vec<ModPath>> {
    let mut graph: BTreeMap<&ModPath, Vec<&ModPath>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from).or_default().push(to);
        graph.entry(to).or_default();
    }
    let mut found = BTreeSet::new();
    for set in strongly_connected(&graph) {
        if set.len() < 2 {
            continue;
        }
        for start in &set {
            // Breadth first from `start`, inside the set, back to `start`.
            let mut before: BTreeMap<&ModPath, &ModPath> = BTreeMap::new();
            let mut queue = VecDeque::from([*start]);
            'search: while let Some(at) = queue.pop_front() {
                for next in &graph[at] {
                    if !set.contains(next) {
                        continue;
                    }
                    if *next == *start {
                        let mut circle = vec![at.clone()];
                        let mut back = at;
                        while back != *start {
                            back = before[back];
                            circle.push(back.clone());
                        }
                        circle.reverse();
                        // Start at the smallest module, so each circle is found once.
                        let smallest = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap_or(0);
                        circle.rotate_left(smallest);
                        circle.push(circle[0].clone());
                        found.insert(circle);
                        break 'search;
                    }
                    if !before.contains_key(next) && *next != *start {
                        before.insert(next, at);
                        queue.push_back(next);
                    }
                }
            }
        }
    }
    found.into_iter().collect()
}

/// Tarjan's strongly connected sets of `graph`.
fn strongly_connected<'a>(
    graph: &BTreeMap<&'a ModPath, Vec<&'a ModPath>>,
) -> Vec<BTreeSet<&'a ModPath>> {
    struct State<'a> {
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        sets: Vec<BTreeSet<&'a ModPath>>,
    }
    fn visit<'a>(
        node: &'a ModPath,
        graph: &BTreeMap<&'a ModPath, Vec<&'a ModPath>>,
        s: &mut State<'a>,
    ) {
        let n = s.index.len();
        s.index.insert(node, n);
        s.low.insert(node, n);
        s.stack.push(node);
        s.on_stack.insert(node);
        for next in &graph[node] {
            if !s.index.contains_key(next) {
                visit(next, graph, s);
                let low = s.low[node].min(s.low[next]);
                s.low.insert(node, low);
            } else if s.on_stack.contains(next) {
                let low = s.low[node].min(s.index[next]);
                s.low.insert(node, low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut set = BTreeSet::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(top);
                set.insert(top);
                if top == node {
                    break;
                }
            }
            s.sets.push(set);
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        sets: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(node, graph, &mut state);
        }
    }
    state.sets
}

// ---------------------------------------------------------------------------------------------------------
// The workspace
// ---------------------------------------------------------------------------------------------------------

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn from_disk(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The `.rs` files under `dir`.
fn rust_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.insert(path);
            }
        }
    }
    files
}

/// Every crate of the workspace the rule covers: the library, the binary, the stand-in, the
/// benchmark and each fuzz target.
fn workspace() -> Vec<Crate> {
    let mut crates = vec![
        Crate::load("atlas_backup_exporter", &repo("src/lib.rs"), &from_disk),
        Crate::load("main", &repo("src/main.rs"), &from_disk),
        Crate::load("fake_atlas", &repo("fake_atlas/src/lib.rs"), &from_disk),
        Crate::load("scrape", &repo("benches/scrape/main.rs"), &from_disk),
    ];
    for target in rust_files(&repo("fuzz/fuzz_targets")) {
        let name = target.file_stem().expect("a file name").to_string_lossy();
        crates.push(Crate::load(&format!("fuzz_{name}"), &target, &from_disk));
    }
    crates
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let crates = workspace();
    // Every file of the four trees is one of the modules read (or a test's), so a file the
    // check never saw cannot hide a circle.
    let read: BTreeSet<PathBuf> = crates
        .iter()
        .flat_map(|c| c.files.iter().chain(&c.test_files).cloned())
        .collect();
    for dir in [
        "src",
        "fake_atlas/src",
        "benches/scrape",
        "fuzz/fuzz_targets",
    ] {
        let unread: Vec<_> = rust_files(&repo(dir)).difference(&read).cloned().collect();
        assert!(
            unread.is_empty(),
            "not reached from a crate root: {unread:?}"
        );
    }
    let edges: usize = crates.iter().map(|c| c.edges().len()).sum();
    assert!(
        edges > 100,
        "only {edges} edges: the check reads too little"
    );
    let circles: Vec<String> = crates.iter().flat_map(Crate::circles).collect();
    assert!(
        circles.is_empty(),
        "{} import circles:\n{}",
        circles.len(),
        circles.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------------------
// The check itself, on small trees
// ---------------------------------------------------------------------------------------------------------

/// A crate `x` of `files` (path under `src/`, text), read from memory.
fn tree(files: &[(&str, &str)]) -> Crate {
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (Path::new("src").join(path), (*text).to_owned()))
        .collect();
    Crate::load("x", Path::new("src/lib.rs"), &|path| {
        files.get(path).cloned()
    })
}

fn edges(krate: &Crate) -> Vec<String> {
    krate
        .edges()
        .iter()
        .map(|(a, b)| format!("{} -> {}", krate.display(a), krate.display(b)))
        .collect()
}

#[test]
fn a_planted_circle_is_found_with_its_modules_in_order() {
    let krate = tree(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", "pub struct B(crate::c::C);\n"),
        ("c.rs", "pub struct C;\nfn f() -> super::a::A { todo!() }\n"),
    ]);
    assert_eq!(krate.circles(), ["x::a -> x::b -> x::c -> x::a"]);
}

#[test]
fn a_face_re_export_is_followed_to_the_file_that_defines_the_name() {
    let face = "mod client;\nmod endpoint;\nmod user;\npub use client::Client;\npub use endpoint::Endpoint;\n";
    let krate = tree(&[
        ("lib.rs", "pub mod atlas;\n"),
        ("atlas/mod.rs", face),
        ("atlas/endpoint.rs", "pub enum Endpoint { List }\n"),
        // Through the face, to its sibling: an edge to endpoint.rs, not to the face.
        (
            "atlas/client.rs",
            "use super::Endpoint;\npub struct Client(Endpoint);\n",
        ),
        (
            "atlas/user.rs",
            "fn f(c: crate::atlas::Client) { let _ = crate::atlas::Endpoint::List; }\n",
        ),
    ]);
    assert_eq!(
        edges(&krate),
        [
            "x::atlas -> x::atlas::client",
            "x::atlas -> x::atlas::endpoint",
            "x::atlas::client -> x::atlas::endpoint",
            "x::atlas::user -> x::atlas::client",
            "x::atlas::user -> x::atlas::endpoint",
        ]
    );
    assert!(krate.circles().is_empty(), "{:?}", krate.circles());
}

#[test]
fn a_face_that_defines_what_its_children_use_is_in_a_circle_with_them() {
    let krate = tree(&[
        ("lib.rs", "mod atlas;\n"),
        (
            "atlas/mod.rs",
            "mod client;\npub use client::Client;\npub(crate) fn page() {}\n",
        ),
        (
            "atlas/client.rs",
            "pub struct Client;\nfn f() { super::page() }\n",
        ),
    ]);
    assert_eq!(
        krate.circles(),
        ["x::atlas -> x::atlas::client -> x::atlas"]
    );
}

#[test]
fn declaring_a_child_is_no_edge_but_using_it_is() {
    let child = ("a.rs", "pub struct A;\nfn f() { crate::helper() }\n");
    let declared = tree(&[("lib.rs", "mod a;\npub fn helper() {}\n"), child]);
    assert_eq!(edges(&declared), ["x::a -> x"]);
    assert!(declared.circles().is_empty());
    let used = tree(&[("lib.rs", "mod a;\nuse a::A;\npub fn helper() {}\n"), child]);
    assert_eq!(used.circles(), ["x -> x::a -> x"]);
}

#[test]
fn brace_groups_renames_globs_and_macros_are_edges() {
    let krate = tree(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\n"),
        (
            "a.rs",
            "use crate::{b::{self, B as Bee}, c::*};\nfn f() { b::g(); }\n",
        ),
        ("b.rs", "pub struct B;\npub fn g() {}\n"),
        ("c.rs", "pub struct C;\n"),
        ("d.rs", "fn f() { println!(\"{}\", crate::e::NAME); }\n"),
        ("e.rs", "pub const NAME: &str = \"e\";\n"),
    ]);
    assert_eq!(
        edges(&krate),
        ["x::a -> x::b", "x::a -> x::c", "x::d -> x::e"]
    );
}

#[test]
fn an_inline_module_is_part_of_its_file_and_test_code_is_left_out() {
    let krate = tree(&[
        ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod tests;\n"),
        (
            "a.rs",
            "pub struct A;\nmod inner {\n    fn f() -> super::super::b::B { todo!() }\n}\n",
        ),
        (
            "b.rs",
            "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
        ),
        ("tests.rs", "use crate::a::A;\nuse crate::b::B;\n"),
    ]);
    assert_eq!(edges(&krate), ["x::a -> x::b"]);
    assert!(krate.test_files.contains(Path::new("src/tests.rs")));
}
