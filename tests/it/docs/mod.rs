//! The docs as part of the contract: the README is a short front door into
//! `docs/`, every relative link and anchor between the docs resolves, and
//! the README's commands still run (`readme.rs`).

mod links;
mod markdown;
mod readme;

use std::path::{Path, PathBuf};

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = repository_root();
    let documents = links::documents(&root);
    let report = links::check(&root, &documents);
    assert!(
        report.problems.is_empty(),
        "broken links:\n{}",
        report.problems.join("\n")
    );
    // A reader that found no links would pass anything.
    assert!(
        report.checked >= 50,
        "only {} relative links found in {documents:?}",
        report.checked
    );
}

#[test]
fn the_readme_is_a_short_front_door_into_every_docs_page() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines: the manual belongs in docs/"
    );
    let readme_links: Vec<String> = markdown::links(&readme)
        .into_iter()
        .map(|link| link.target)
        .collect();
    for page in links::documents(&root)
        .into_iter()
        .filter(|path| path.starts_with("docs"))
    {
        let page_name = page.to_string_lossy().into_owned();
        assert!(
            readme_links
                .iter()
                .any(|target| target.split('#').next() == Some(page_name.as_str())),
            "the README's index does not link {page_name}"
        );
        let text = std::fs::read_to_string(root.join(&page)).expect("page");
        assert!(
            markdown::links(&text)
                .iter()
                .any(|link| link.target.starts_with("../README.md")),
            "{page_name} does not link back to the README"
        );
    }
}

#[test]
fn anchors_are_github_slugs() {
    let cases = [
        ("`GET /api/logs` — search", "get-apilogs--search"),
        ("The query language (`query`)", "the-query-language-query"),
        (
            "Shippers: OpenTelemetry, Loki, Elasticsearch and syslog",
            "shippers-opentelemetry-loki-elasticsearch-and-syslog",
        ),
        (
            "`nats.max_retries` and 3 more",
            "natsmax_retries-and-3-more",
        ),
        ("[A link](elsewhere.md) in a heading", "a-link-in-a-heading"),
        ("Ünïcode stays", "ünïcode-stays"),
    ];
    for (heading, anchor) in cases {
        assert_eq!(markdown::slug(heading), anchor, "{heading}");
    }
    let repeated = "# Title\n\n## Dup\n\n```\n## not a heading\n```\n\n## Dup ##\n";
    assert_eq!(markdown::anchors(repeated), ["title", "dup", "dup-1"]);
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
    std::fs::write(path, text).expect("write");
}

/// The checker itself, on a tree with one of each kind of mistake: it must
/// name each, and only them.
#[test]
fn the_link_check_names_a_missing_file_an_unknown_anchor_and_an_escape() {
    let tree = tempfile::tempdir().expect("temp dir");
    let root = tree.path();
    write(
        root,
        "README.md",
        "# Top\n\n## Two words\n\n\
         [fine](docs/a.md#a-heading) and [fine too](docs/a.md)\n\
         [missing file](docs/missing.md)\n\
         [unknown anchor](docs/a.md#nope)\n\
         [own heading](#two-words) and [own typo](#three-words)\n\
         [external](https://example.com/missing.md#nope) ![picture](docs/pic.png)\n\
         `[in code](nowhere.md)`\n\
         ```\n[fenced](nowhere.md)\n```\n\
         [ref]: docs/gone.md\n",
    );
    write(
        root,
        "docs/a.md",
        "# A heading\n\n## Dup\n\n## Dup\n\n\
         [back](../README.md#two-words) [second dup](#dup-1) [source line](../src/x.rs#L10)\n\
         [out](../../outside.md)\n",
    );
    write(root, "docs/pic.png", "");
    write(root, "src/x.rs", "");

    let report = links::check(
        root,
        &[PathBuf::from("README.md"), PathBuf::from("docs/a.md")],
    );
    let problems = report.problems.join("\n");
    for expected in [
        "README.md:6: [docs/missing.md] names docs/missing.md, which does not exist",
        "README.md:7: [docs/a.md#nope] no heading of docs/a.md has the anchor #nope",
        "README.md:8: [#three-words] no heading of README.md has the anchor #three-words",
        "README.md:14: [docs/gone.md] names docs/gone.md, which does not exist",
        "docs/a.md:8: [../../outside.md] climbs out of the repository",
    ] {
        assert!(
            problems.contains(expected),
            "missing {expected:?} in:\n{problems}"
        );
    }
    assert_eq!(report.problems.len(), 5, "{problems}");
    // fine, fine too, missing, anchor, own heading, own typo, picture, ref;
    // back, second dup, source line, out.
    assert_eq!(report.checked, 12);
}
