//! The README's commands still do what it says: `make run` and `make test`
//! are Makefile targets with the recipes the README names, and the Try it
//! block, as written, runs against a started server.
//!
//! `make run` itself is not started here: it is `cargo run --release`, a
//! release build that takes many minutes on the test machines. What can rot
//! is checked instead: the target exists, and its recipe is the command the
//! README says it is.

use super::{markdown, repository_root};
use crate::support::Server;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// The `bash` blocks under a README heading, each as its text.
fn bash_blocks(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).expect("README.md");
    markdown::blocks_under(&readme, heading)
        .into_iter()
        .filter(|block| block.info == "bash")
        .map(|block| block.text)
        .collect()
}

/// What the README says a make target runs: the command in
/// "`make run` is `cargo run --release`" or "`make test` runs `scripts/test.sh`".
fn command_the_readme_names(readme: &str, target: &str) -> Option<String> {
    let mention = format!("`make {target}` ");
    readme.match_indices(&mention).find_map(|(at, _)| {
        let rest = &readme[at + mention.len()..];
        let rest = rest
            .strip_prefix("is `")
            .or_else(|| rest.strip_prefix("runs `"))?;
        rest.split('`').next().map(str::to_string)
    })
}

/// The recipe of a Makefile target, as `make -n` prints it (nothing runs).
/// Under `make test` this runs inside make, whose variables would make the
/// inner make print "Entering directory" around the recipe: they are left
/// out, and so are the directory lines.
fn recipe(root: &Path, target: &str) -> String {
    let output = Command::new("make")
        .arg("--no-print-directory")
        .arg("-n")
        .arg(target)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .current_dir(root)
        .output()
        .expect("make is installed");
    assert!(
        output.status.success(),
        "`make {target}` is not a target the Makefile knows: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn the_two_commands_are_makefile_targets_that_run_what_the_readme_says() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let blocks = bash_blocks("The two commands");
    assert_eq!(blocks.len(), 1, "one bash block under \"The two commands\"");
    let targets: Vec<&str> = blocks[0]
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|command| !command.is_empty())
        .map(|command| {
            command
                .strip_prefix("make ")
                .unwrap_or_else(|| panic!("{command:?} is not a make command"))
        })
        .collect();
    // The front door promises exactly these two; CI runs the second.
    assert_eq!(targets, ["run", "test"]);

    for target in targets {
        let said = command_the_readme_names(&readme, target).unwrap_or_else(|| {
            panic!(
                "the README no longer says what `make {target}` runs (\"`make {target}` is `...`\")"
            )
        });
        assert_eq!(
            recipe(&root, target),
            said,
            "the README says `make {target}` runs `{said}`; the Makefile disagrees"
        );
        // A script named as the recipe must be there and runnable as it stands.
        let program = said.split_whitespace().next().unwrap_or_default();
        if program.contains('/') {
            use std::os::unix::fs::PermissionsExt;
            let metadata = std::fs::metadata(root.join(program))
                .unwrap_or_else(|e| panic!("`make {target}` runs {program}: {e}"));
            assert!(
                metadata.permissions().mode() & 0o111 != 0,
                "{program} is not executable"
            );
        }
    }
}

/// What every `curl` of the block reports on stderr, beside its own output.
const CURL_WRAPPER: &str = r#"curl() {
  command curl -q --silent --show-error --write-out '%{stderr}@@ %{http_code} %{method} %{url_effective}\n' "$@"
}
"#;

/// A live tail never ends by itself: websocat's line passes when the stream
/// is still open after 3 s (the handshake, filter included, was accepted).
const WEBSOCAT_WRAPPER: &str = r#"websocat() {
  local status=0
  timeout 3 websocat "$@" < <(sleep 5) || status=$?
  [ "$status" -eq 124 ] || [ "$status" -eq 0 ] || return "$status"
}
"#;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|output| output.status.success())
}

/// One curl of the block, from the wrapper's report.
#[derive(Debug)]
struct Call {
    status: u16,
    method: String,
    url: String,
}

fn calls(stderr: &str) -> Vec<Call> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("@@ "))
        .map(|report| {
            let mut parts = report.splitn(3, ' ');
            Call {
                status: parts.next().unwrap_or_default().parse().unwrap_or(0),
                method: parts.next().unwrap_or_default().to_string(),
                url: parts.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// Logs the answers in the block's output accepted: `/log` answers one
/// `{"status":"accepted"}`, `/log/bulk` `{"accepted": n, ...}`.
fn accepted_in(stdout: &[u8]) -> u64 {
    serde_json::Deserializer::from_slice(stdout)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .map(|answer| {
            if answer["status"] == "accepted" {
                1
            } else {
                answer["accepted"].as_u64().unwrap_or(0)
            }
        })
        .sum()
}

fn run_bash(script: &str) -> Output {
    let workspace = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new("timeout");
    command
        .arg("120")
        .arg("bash")
        .arg("-c")
        .arg(script)
        .current_dir(workspace.path());
    // A proxy from the environment would take the loopback requests elsewhere.
    for proxy in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(proxy);
    }
    command.output().expect("bash runs")
}

#[actix_web::test]
async fn the_try_it_block_runs_against_a_started_server() {
    let server = Server::start().await;
    let blocks = bash_blocks("Try it");
    assert!(!blocks.is_empty(), "a bash block under \"Try it\"");
    let address = format!("127.0.0.1:{}", server.port);
    let websocat = installed("websocat");
    let mut accepted = 0;

    for block in blocks {
        assert!(
            block.contains("localhost:8080"),
            "Try it talks to the server `make run` starts: {block}"
        );
        let mut script = String::from("set -euo pipefail\n");
        script.push_str(CURL_WRAPPER);
        if websocat {
            script.push_str(WEBSOCAT_WRAPPER);
        }
        for line in block.lines() {
            // websocat is no package on the test machines' Debian; where it
            // is missing its line is skipped (said below), every other runs.
            if !websocat && line.trim_start().starts_with("websocat ") {
                eprintln!("Try it: websocat is not installed, so this line is skipped: {line}");
                continue;
            }
            script.push_str(&line.replace("localhost:8080", &address));
            script.push('\n');
        }
        let curls = script
            .lines()
            .filter(|line| line.trim_start().starts_with("curl "))
            .count();

        let output = run_bash(&script);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let explain = format!("script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(
            output.status.success(),
            "the block failed ({}); {explain}",
            output.status
        );

        let calls = calls(&stderr);
        assert_eq!(calls.len(), curls, "every curl ran; {explain}");
        for call in &calls {
            assert!(
                call.url.starts_with(&format!("http://{address}/")),
                "{call:?} went to the started server; {explain}"
            );
            let expected = if call.method == "POST" { 202 } else { 200 };
            assert_eq!(call.status, expected, "{call:?}; {explain}");
        }

        accepted += accepted_in(&output.stdout);
    }
    // Try it ingests, and what its curls were promised is stored (the
    // server is fresh, so its count is exactly theirs).
    assert!(accepted > 0, "the Try it block sends logs");
    server.wait_stored(accepted).await;
}
