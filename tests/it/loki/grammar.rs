//! Every LogQL query the tests and the docs use parses in Grafana's own
//! grammar (`@grafana/lezer-logql`, run by `tests/clients/logql_grammar.mjs`
//! under Node): the engine's `EXAMPLE_QUERIES`, the queries of the Loki
//! tests (each string literal of `tests/it/loki/` that our parser takes as
//! LogQL) and the `logql` blocks of the docs. So nothing we accept and
//! document is something Grafana's editor would mark as wrong.

use crate::shippers::{client_command, run_client};
use oglogstream::domain::logql::examples::{BEYOND_GRAFANA_GRAMMAR, EXAMPLE_QUERIES};
use oglogstream::domain::logql::{self};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The contents of every `r#"…"#` literal of a Rust file.
fn raw_strings(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("r#\"") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("\"#") else { break };
        found.push(after[..end].to_string());
        rest = &after[end + 2..];
    }
    found
}

/// The lines of the ```logql blocks of a Markdown file.
fn logql_blocks(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            inside = !inside && trimmed == "```logql";
            continue;
        }
        if inside && !trimmed.is_empty() {
            found.push(trimmed.to_string());
        }
    }
    found
}

fn test_queries() -> Vec<String> {
    let folder = repository().join("tests/it/loki");
    let mut files: Vec<PathBuf> = Vec::new();
    let mut pending = vec![folder];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/it/loki") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
        .iter()
        .flat_map(|file| raw_strings(&std::fs::read_to_string(file).expect("a test file")))
        .filter(|text| logql::parse(text).is_ok())
        .collect()
}

fn doc_queries(doc: &Path) -> Vec<String> {
    logql_blocks(&std::fs::read_to_string(doc).expect("the doc"))
}

#[actix_web::test]
async fn every_query_parses_in_grafanas_grammar() {
    let docs = doc_queries(&repository().join("docs/grafana.md"));
    assert!(docs.len() >= 5, "docs/grafana.md shows queries: {docs:?}");
    for query in &docs {
        assert!(
            logql::parse(query).is_ok(),
            "docs/grafana.md: {query} does not parse here"
        );
    }
    let tests = test_queries();
    assert!(
        tests.len() >= 100,
        "the tests' queries were found: {}",
        tests.len()
    );
    let beyond: BTreeSet<String> = BEYOND_GRAFANA_GRAMMAR
        .iter()
        .map(|q| q.to_string())
        .collect();
    let queries: BTreeSet<String> = EXAMPLE_QUERIES
        .iter()
        .map(|q| q.to_string())
        .chain(tests)
        .chain(docs)
        .filter(|q| !beyond.contains(q))
        .collect();
    let output = run_client(
        "@grafana/lezer-logql",
        client_command("logql_grammar.mjs"),
        serde_json::to_string(&queries).expect("a JSON list"),
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&output).expect("the script's JSON");
    assert_eq!(answer["checked"], queries.len());
    assert_eq!(
        answer["refused"],
        serde_json::json!([]),
        "Grafana's grammar refuses these"
    );
    // What we take beyond Grafana's grammar is listed, and still beyond it.
    let output = run_client(
        "@grafana/lezer-logql",
        client_command("logql_grammar.mjs"),
        serde_json::to_string(&beyond).expect("a JSON list"),
    )
    .await;
    let answer: serde_json::Value = serde_json::from_str(&output).expect("the script's JSON");
    assert_eq!(
        answer["refused"].as_array().map(Vec::len),
        Some(beyond.len()),
        "Grafana's grammar takes some of BEYOND_GRAFANA_GRAMMAR now: move them to EXAMPLE_QUERIES: {answer}"
    );
}

#[test]
fn a_query_grafana_refuses_is_noticed() {
    // The script's refusal is what the test above relies on: check it sees
    // one (synchronously, with the same client).
    let mut command = client_command("logql_grammar.mjs");
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = command.spawn().expect("node");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(br#"["{a=\"b\"} |= \"x\"", "sum(rate({a=\"b\"}[5m]) by"]"#)
            .expect("write");
    }
    let output = child.wait_with_output().expect("output");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(answer["checked"], 2);
    assert_eq!(answer["refused"].as_array().map(Vec::len), Some(1));
}
