//! The import rule of ARCHITECTURE.md, checked on the source: every file
//! under `src/` may name (through `crate::` or `super::` paths, in `use`
//! lines or inline) only the top-level modules its layer may import, and
//! the client crates of the two external systems stay inside the modules
//! that own them. A failure names the file, the path it wrote and the rule.
//!
//! The reading is textual, like a reviewer's: comments and string literals
//! are left out, `super::` is resolved against the file's module path (and
//! the inline `mod name { … }` blocks around it), and `use` groups
//! (`crate::{a, b}`) count each member.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What each layer (top-level module of `src/`) may import besides itself.
/// The binaries (`main.rs`, `bin/`) and `lib.rs` wire everything and are not
/// checked.
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "domain",
        &[],
        "the domain is pure: it imports nothing of ours",
    ),
    (
        "metrics",
        &["domain"],
        "metrics sit below the components that count into them",
    ),
    ("cli", &[], "the flags know nothing of what they configure"),
    (
        "logging",
        &["domain"],
        "the process's own logs need only settings helpers",
    ),
    (
        "tls",
        &["domain"],
        "TLS files and configurations serve every hop and know no component",
    ),
    (
        "bus",
        &["domain", "metrics", "tls"],
        "a seam sits below the roles and config: it knows the domain, not the other seam",
    ),
    (
        "store",
        &["domain", "metrics", "tls"],
        "a seam sits below the roles and config: it knows the domain, not the other seam",
    ),
    (
        "http",
        &["domain", "metrics", "bus", "store", "tls"],
        "HTTP plumbing maps the seams' errors and checks their health, and serves no role",
    ),
    (
        "security",
        &["domain", "metrics", "http"],
        "security answers requests in the shared HTTP shape and knows no role",
    ),
    (
        "tenants",
        &["domain"],
        "tenancy's settings, resolution and limits are pure pieces the gate and the roles apply",
    ),
    (
        "auth",
        &["domain", "metrics", "bus", "http", "security", "tenants"],
        "sign-in builds on the security pieces, keeps revocations on the bus's coordination, and serves no role",
    ),
    (
        "alerts",
        &["domain", "metrics", "bus", "store", "http"],
        "alerting reads the store and leases through the bus, never a role",
    ),
    (
        "ingest",
        &["domain", "metrics", "bus", "http", "tls", "tenants"],
        "a role depends on domain, the seams and http, never on another role; ingest never touches the store",
    ),
    (
        "process",
        &["domain", "metrics", "bus", "store", "tenants"],
        "a role depends on domain and the seams, never on another role",
    ),
    (
        "query",
        &["domain", "metrics", "bus", "store", "http", "tenants"],
        "a role depends on domain, the seams and http, never on another role",
    ),
    (
        "config",
        &[
            "cli", "domain", "logging", "metrics", "tls", "bus", "store", "http", "security",
            "auth", "tenants", "alerts", "ingest", "process", "query",
        ],
        "config composes the components' own settings; only app and main import it",
    ),
    (
        "app",
        &[
            "config", "logging", "domain", "metrics", "tls", "bus", "store", "http", "security",
            "auth", "tenants", "alerts", "ingest", "process", "query",
        ],
        "app wires every component, and nothing imports app but main",
    ),
    (
        "loadgen",
        &["domain", "ingest"],
        "the load generator is a client of the HTTP API; it checks its bodies with the server's decoders",
    ),
];

/// Crates only some files may use: (crate, where it may appear, why).
const OWNED_CRATES: &[(&str, &[&str], &str)] = &[
    (
        "async_nats",
        &["bus/nats.rs", "bus/nats/"],
        "only the NATS bus knows async-nats",
    ),
    (
        "klickhouse",
        &["store/clickhouse/"],
        "only the ClickHouse store knows klickhouse",
    ),
    (
        "rusqlite",
        &["store/sqlite.rs", "store/sqlite/", "store/search_blocks.rs"],
        "only the embedded store (and its skip index) knows rusqlite",
    ),
];

const UNCHECKED: &[&str] = &["main", "bin", "lib"];

#[test]
fn every_file_imports_only_what_its_layer_may() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut layers_seen = BTreeSet::new();
    for file in rust_files(&source) {
        let relative = file
            .strip_prefix(&source)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let module = module_path(&relative);
        let layer = module[0].clone();
        if UNCHECKED.contains(&layer.as_str()) {
            continue;
        }
        layers_seen.insert(layer.clone());
        let Some((_, allowed, why)) = RULES.iter().find(|(name, _, _)| *name == layer) else {
            broken.push(format!(
                "src/{relative}: its module `{layer}` has no rule: add one to RULES and to ARCHITECTURE.md"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable source");
        let code = strip_comments_and_strings(&text);
        for (written, target) in crate_references(&code, &module) {
            if target != layer && !allowed.contains(&target.as_str()) {
                broken.push(format!(
                    "src/{relative}: `{written}` imports `{target}`, but `{layer}` may import only [{}] ({why})",
                    allowed.join(", ")
                ));
            }
        }
        for (name, places, why) in OWNED_CRATES {
            let owner = places.iter().any(|place| relative.starts_with(place));
            if !owner && mentions(&code, name) {
                broken.push(format!(
                    "src/{relative}: uses `{name}`, which only [{}] may use ({why})",
                    places.join(", ")
                ));
            }
        }
    }
    assert!(
        layers_seen.len() >= 10,
        "the source was not found: {layers_seen:?}"
    );
    assert!(
        broken.is_empty(),
        "imports against the layer rules (see ARCHITECTURE.md, Invariants):\n{}",
        broken.join("\n")
    );
}

/// The checker itself: what it must see and what it must not.
#[test]
fn the_checker_resolves_paths_like_the_compiler() {
    let refs = |path: &str, code: &str| {
        let module = module_path(path);
        crate_references(&strip_comments_and_strings(code), &module)
            .into_iter()
            .map(|(_, target)| target)
            .collect::<Vec<_>>()
    };
    assert_eq!(refs("store/mod.rs", "use crate::config::X;"), ["config"]);
    assert_eq!(
        refs(
            "store/clickhouse/read.rs",
            "use super::super::super::query::Y;"
        ),
        ["query"],
        "three supers from store::clickhouse::read reach the crate root"
    );
    assert_eq!(
        refs("store/clickhouse/read.rs", "use super::pool::Pool;"),
        ["store"]
    );
    assert_eq!(
        refs("ingest/mod.rs", "use crate::{bus::Bus, store::Store};"),
        ["bus", "store"]
    );
    assert_eq!(
        refs("http/mod.rs", "fn f() { let _ = crate::ingest::routes; }"),
        ["ingest"]
    );
    assert_eq!(
        refs(
            "app.rs",
            "mod tests { use super::*; fn f() { super::run(); } }"
        ),
        ["app", "app"],
        "inside an inline module, super is the file's own module"
    );
    assert_eq!(
        refs("bus/mod.rs", "use super::config;"),
        ["config"],
        "from a top-level module, super is the crate root"
    );
    assert!(
        refs(
            "domain/mod.rs",
            "// crate::store::X\n/// crate::store::Y\nconst A: &str = \"crate::store::Z {\"; const B: char = '{';"
        )
        .is_empty(),
        "comments and literals are not code"
    );
}

fn rust_files(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("readable directory") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `store/clickhouse/read.rs` -> `[store, clickhouse, read]`; a `mod.rs` is
/// its folder.
fn module_path(relative: &str) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

/// The code with comments, string literals and char literals blanked, so
/// that neither paths nor braces inside them count.
fn strip_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let ident = |i: usize| i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
    while at < bytes.len() {
        let rest = &text[at..];
        if rest.starts_with("//") {
            at += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(comment) = rest.strip_prefix("/*") {
            at += comment.find("*/").map_or(rest.len(), |end| end + 4);
        } else if let Some(skip) = raw_string(rest).filter(|_| !ident(at)) {
            out.push_str("\"\"");
            at += skip;
        } else if rest.starts_with('"') || (rest.starts_with("b\"") && !ident(at)) {
            let mut i = at + if rest.starts_with('b') { 2 } else { 1 };
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            at = (i + 1).min(bytes.len());
        } else if let Some(skip) = char_literal(rest) {
            out.push_str("' '");
            at += skip;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// The length of a raw string (`r"…"`, `r#"…"#`, `br"…"`) at the start.
fn raw_string(rest: &str) -> Option<usize> {
    let after_b = rest.strip_prefix('b').unwrap_or(rest);
    let after_r = after_b.strip_prefix('r')?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    let end = format!("\"{}", "#".repeat(hashes));
    let length = body.find(&end)?;
    Some(rest.len() - body.len() + length + end.len())
}

/// The length of a char literal at the start (`'{'`, `'\n'`, `'\u{7f}'`);
/// `None` for a lifetime.
fn char_literal(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    let length = match body.strip_prefix('\\') {
        Some(escaped) => {
            1 + match escaped.chars().next()? {
                'u' => escaped.find('}')? + 1,
                'x' => 3,
                other => other.len_utf8(),
            }
        }
        None => body.chars().next()?.len_utf8(),
    };
    body.get(length..)?.starts_with('\'').then_some(length + 2)
}

fn mentions(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// Every `crate::…` and `super::…` path in `code`, as written, with the
/// top-level module it reaches. `module` is the file's module path.
fn crate_references(code: &str, module: &[String]) -> Vec<(String, String)> {
    let tokens = tokenize(code);
    let mut found = Vec::new();
    // Inline `mod name {` blocks around the current position, with the
    // brace depth each opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut at = 0;
    while at < tokens.len() {
        let token = tokens[at].as_str();
        match token {
            "{" => depth += 1,
            "}" => {
                if inline.last().is_some_and(|(_, opened)| *opened == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            "mod" if tokens.get(at + 2).is_some_and(|t| t == "{") => {
                depth += 1;
                inline.push((tokens[at + 1].clone(), depth));
                at += 3;
                continue;
            }
            "crate" | "super"
                if tokens.get(at + 1).is_some_and(|t| t == "::")
                    && (at == 0 || tokens[at - 1] != "::") =>
            {
                let mut here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                let mut path: Vec<String> = if token == "crate" {
                    Vec::new()
                } else {
                    here.pop();
                    here
                };
                let mut written = token.to_string();
                let mut next = at + 1;
                // `::name` or `::super` steps.
                while tokens.get(next).is_some_and(|t| t == "::") {
                    let Some(step) = tokens.get(next + 1) else {
                        break;
                    };
                    if step == "{" {
                        break;
                    }
                    written.push_str("::");
                    written.push_str(step);
                    next += 2;
                    if step == "super" {
                        path.pop();
                    } else if step == "self" || step == "*" {
                    } else {
                        path.push(step.clone());
                        if path.len() >= 2 {
                            break;
                        }
                    }
                }
                let mut targets = Vec::new();
                if path.is_empty() && tokens.get(next).is_some_and(|t| t == "::") {
                    // A group at the crate root: each member's first name.
                    let mut level = 0;
                    let mut expect_name = true;
                    for token in &tokens[next + 1..] {
                        match token.as_str() {
                            "{" => {
                                level += 1;
                                expect_name = level == 1;
                            }
                            "}" if level == 1 => break,
                            "}" => level -= 1,
                            "," if level == 1 => expect_name = true,
                            name if expect_name && level == 1 => {
                                targets.push(name.to_string());
                                expect_name = false;
                            }
                            _ => {}
                        }
                    }
                    written.push_str("::{…}");
                } else if let Some(first) = path.first() {
                    targets.push(first.clone());
                }
                for target in targets {
                    if target != "self" && target != "*" {
                        found.push((written.clone(), target));
                    }
                }
                at = next;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    found
}

/// Identifiers, `::`, braces, commas and `*`; everything else is dropped.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, next)) = chars.peek() {
                if next.is_alphanumeric() || next == '_' {
                    end = i + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(code[start..end].to_string());
        } else if c == ':' && chars.peek().is_some_and(|&(_, next)| next == ':') {
            chars.next();
            tokens.push("::".into());
        } else if matches!(c, '{' | '}' | ',' | '*') {
            tokens.push(c.to_string());
        }
    }
    tokens
}
