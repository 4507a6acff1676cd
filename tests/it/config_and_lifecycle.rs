//! Start-up configuration errors, health, and graceful shutdown with restart.

use crate::support::{Launch, Server, all_ids, log, run_to_exit};
use awc::http::StatusCode;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn assert_config_error(env: &[(&str, &str)], args: &[&str], key: &str) {
    let output = run_to_exit(args, env);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{env:?} {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    assert!(lines[0].contains(key), "names {key}: {stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn wrong_values_stop_start_up_with_exit_code_2() {
    assert_config_error(&[("FLUSH_TIMEOUT", "abc")], &[], "process.flush_timeout");
    assert_config_error(&[("HTTP_PORT", "99999")], &[], "server.port");
    assert_config_error(&[("LOG_LEVEL", "chatty")], &[], "log.level");
    assert_config_error(
        &[("OGLOGSTREAM_PROCESS__BATCH_SIZE", "0")],
        &[],
        "process.batch_size",
    );
    assert_config_error(&[], &["--role", "ingest"], "nats.url");
    assert_config_error(&[], &["--role", "janitor"], "role");
    assert_config_error(
        &[],
        &["--config", "/nonexistent/oglogstream.toml"],
        "--config",
    );
}

#[test]
fn help_documents_every_flag() {
    let output = run_to_exit(&["--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--role",
        "--config",
        "--listen",
        "--data-dir",
        "HTTP_PORT",
        "OGLOGSTREAM_",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn the_shipped_config_file_is_valid_and_matches_the_defaults() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/oglogstream.toml");
    let text = std::fs::read_to_string(shipped).expect("config/oglogstream.toml exists");
    let keys = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains(" = "))
        .count();
    assert!(keys >= 15, "documents every key ({keys} found)");
    // Starting with it and a bad override proves it parses: the only error is ours.
    assert_config_error(
        &[("LOG_LEVEL", "chatty")],
        &["--config", shipped],
        "log.level",
    );
}

#[actix_web::test]
async fn health_reports_roles_and_storage() {
    let server = Server::start().await;
    let (status, health) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "oglogstream");
    assert_eq!(
        health["roles"],
        serde_json::json!(["ingest", "process", "query"])
    );
    assert_eq!(health["storage"], "sqlite");
    assert_eq!(health["storage_status"], "ok");
    assert_eq!(health["dead_letters"], 0);
    assert!(health["timestamp"].as_str().is_some());
}

/// `THP_enabled` of a process's `/proc/PID/status` (Linux 5.0 and newer):
/// `0` once it has turned transparent huge pages off for itself.
fn thp_enabled(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(|value| value.trim().to_string())
        .unwrap_or_else(|| panic!("no THP_enabled in /proc/{pid}/status:\n{status}"))
}

/// The allocator's transparent huge pages kept ~40 MB more resident under
/// load (docs/performance.md), so the server turns them off for itself;
/// `MIMALLOC_ALLOW_THP=1` leaves the process as it was started (as this
/// test's own process is).
#[actix_web::test]
async fn the_server_turns_transparent_huge_pages_off_unless_asked_to_keep_them() {
    let server = Server::start().await;
    assert_eq!(thp_enabled(&server.pid().to_string()), "0");
    let kept = Server::launch(Launch::default().env("MIMALLOC_ALLOW_THP", "1")).await;
    assert_eq!(
        thp_enabled(&kept.pid().to_string()),
        thp_enabled("self"),
        "with MIMALLOC_ALLOW_THP=1 the server keeps what it inherited"
    );
}

#[actix_web::test]
async fn sigterm_during_ingestion_keeps_every_accepted_log() {
    let data = tempfile::tempdir().unwrap();
    // A long flush timeout and big batches: at SIGTERM most accepted logs are
    // still waiting in memory, so the test proves the shutdown flush.
    let mut server = Server::launch(
        Launch::default()
            .data_dir(data.path())
            .env("BATCH_SIZE", "100000")
            .env("FLUSH_TIMEOUT", "60s"),
    )
    .await;
    let url = server.url("/log");
    let stop = Rc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..4 {
        let url = url.clone();
        let stop = Rc::clone(&stop);
        clients.push(actix_web::rt::spawn(async move {
            let http = awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish();
            let mut accepted = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = log("info", &format!("client-{client}"), &format!("n{i}")).to_string();
                let Ok(mut response) = http
                    .post(&url)
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body)
                    .await
                else {
                    break; // the server is gone
                };
                if response.status() == StatusCode::ACCEPTED {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    accepted.push(answer["id"].as_str().unwrap().to_string());
                }
            }
            accepted
        }));
    }
    // Let steady traffic build up, then stop the server under load.
    crate::support::eventually("steady ingestion", Duration::from_secs(20), || async {
        let (_, health) = server.get("/health").await;
        (health["queue_depth"].as_u64() >= Some(300)).then_some(())
    })
    .await;
    let status = server.terminate(Duration::from_secs(30));
    stop.store(true, Ordering::Relaxed);
    assert!(
        status.success(),
        "exit 0 after SIGTERM: {status:?}\n{}",
        server.logs()
    );
    let mut accepted = HashSet::new();
    for client in clients {
        accepted.extend(client.await.unwrap());
    }
    assert!(accepted.len() >= 300);

    let restarted = Server::launch(Launch::default().data_dir(data.path())).await;
    let stored: Vec<String> = all_ids(&restarted).await;
    let stored_set: HashSet<String> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "no duplicates");
    let missing: Vec<&String> = accepted.difference(&stored_set).collect();
    assert!(
        missing.is_empty(),
        "{} accepted logs lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}
