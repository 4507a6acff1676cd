//! Relative links between the docs: the file a link names must exist (in
//! the repository), and its `#anchor` must be one of that file's headings.

use super::markdown;
use std::path::{Component, Path, PathBuf};

/// The documents whose links are checked, relative to the repository root:
/// the README, the architecture doc, the dashboard's README and every page
/// under `docs/`.
pub fn documents(root: &Path) -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(root).expect("under root").to_path_buf())
        .collect();
    pages.sort();
    let mut documents: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "web/README.md"]
        .iter()
        .map(PathBuf::from)
        .collect();
    documents.extend(pages);
    documents
}

pub struct Report {
    /// Relative links looked at (external ones are not).
    pub checked: usize,
    /// One line per broken link: `file:line: [target] what is wrong`.
    pub problems: Vec<String>,
}

/// A link with a scheme (`https:`, `mailto:`) or to another host (`//host`)
/// points outside the repository: not ours to check here.
fn is_external(target: &str) -> bool {
    if target.starts_with("//") {
        return true;
    }
    let before_path = target.split(['/', '#', '?']).next().unwrap_or_default();
    before_path.contains(':')
}

/// `%20` and the like, as a browser would decode them before asking for the file.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = text.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `relative` resolved against `base` (both within the repository), or
/// `None` when `..` climbs out of it.
fn resolve(base: &Path, relative: &Path) -> Option<PathBuf> {
    let mut resolved = PathBuf::new();
    for component in base.join(relative).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::ParentDir => {
                if !resolved.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            // An absolute link (`/docs/api.md`) is relative to the
            // repository's root on GitHub, which is where `resolved` starts.
            Component::RootDir | Component::Prefix(_) => resolved = PathBuf::new(),
        }
    }
    Some(resolved)
}

/// Checks every relative link of `documents` (paths relative to `root`).
pub fn check(root: &Path, documents: &[PathBuf]) -> Report {
    let mut report = Report {
        checked: 0,
        problems: Vec::new(),
    };
    for document in documents {
        let text = match std::fs::read_to_string(root.join(document)) {
            Ok(text) => text,
            Err(error) => {
                report
                    .problems
                    .push(format!("{}: cannot be read: {error}", document.display()));
                continue;
            }
        };
        let directory = document.parent().unwrap_or(Path::new(""));
        for link in markdown::links(&text) {
            if is_external(&link.target) {
                continue;
            }
            report.checked += 1;
            let mut problem = |what: String| {
                report.problems.push(format!(
                    "{}:{}: [{}] {what}",
                    document.display(),
                    link.line,
                    link.target
                ))
            };
            if link.target.is_empty() {
                problem("is empty".into());
                continue;
            }
            let (path, anchor) = match link.target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (link.target.as_str(), None),
            };
            let path = percent_decoded(path.split('?').next().unwrap_or_default());
            let target = if path.is_empty() {
                document.clone()
            } else {
                match resolve(directory, Path::new(&path)) {
                    Some(target) => target,
                    None => {
                        problem("climbs out of the repository".into());
                        continue;
                    }
                }
            };
            let on_disk = root.join(&target);
            if !on_disk.exists() {
                problem(format!("names {}, which does not exist", target.display()));
                continue;
            }
            // Anchors are checked in Markdown files only: GitHub's `#L10`
            // line anchors of source files are not headings.
            let Some(anchor) = anchor else { continue };
            if on_disk.extension().is_none_or(|ext| ext != "md") {
                continue;
            }
            let anchors = markdown::anchors(&std::fs::read_to_string(&on_disk).unwrap_or_default());
            if !anchors
                .iter()
                .any(|known| known == &percent_decoded(anchor))
            {
                problem(format!(
                    "no heading of {} has the anchor #{anchor}; its anchors: {}",
                    target.display(),
                    anchors.join(", ")
                ));
            }
        }
    }
    report
}
