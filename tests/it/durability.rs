//! Nothing acknowledged is lost when the embedded store's disk fills up: on a
//! small tmpfs the test mounts, ingest refuses with 503 + Retry-After before
//! acknowledging, `/health` says `disk_full`, reads keep working, ingest
//! resumes by itself when space returns, and a stop that cannot store
//! spills what it holds, exits non-zero, and the next start stores it.
//!
//! Mounting a tmpfs needs root, as installing the test dependencies does.

use crate::support::{Launch, Server, eventually};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed: the full-disk tests need root (as scripts/install-test-deps.sh does)"
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem has no byte left.
    pub fn fill(&self, name: &str) -> PathBuf {
        let path = self.path().join(name);
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![7u8; 256 << 10];
        loop {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        // The last partial chunk: byte by byte would be slow; 4 KiB blocks.
        loop {
            if file.write_all(&chunk[..4096]).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A bulk body of `count` logs whose messages are `{marker}-{first + i}`,
/// padded so the disk fills in a reasonable number of requests.
fn bulk(marker: &str, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| {
            let level = ["info", "warn", "error"][n % 3];
            json!({
                "level": level,
                "service": format!("svc-{}", n % 5),
                "message": format!("{marker}-{n} {}", "x".repeat(200)),
                "attributes": {"n": n.to_string()},
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// The message markers (`{marker}-{n}`) the server holds, read through the
/// export; panics on a duplicate.
async fn stored_markers(server: &Server, marker: &str) -> HashSet<String> {
    let mut response = server
        .client
        .get(server.url(&format!("/api/export?format=ndjson&q={marker}-&order=asc")))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.body().limit(1 << 30).await.expect("export body");
    let mut seen = HashSet::new();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let row: Value = serde_json::from_slice(line).expect("export row");
        let message = row["message"].as_str().unwrap_or_default();
        let id = message.split(' ').next().unwrap_or_default().to_string();
        assert!(seen.insert(id.clone()), "{id} stored twice");
    }
    seen
}

/// What a load of bulk requests saw.
#[derive(Default)]
struct Load {
    accepted: HashSet<String>,
    refused: usize,
    next: usize,
}

/// Ships one request of `per_request` logs; records what was acknowledged.
/// Every answer is 202 or 503 with `Retry-After` and a JSON error: nothing
/// else (no 500, no reset connection) is allowed.
async fn ship_once(server: &Server, load: &Rc<RefCell<Load>>, marker: &str, per_request: usize) {
    let first = {
        let mut load = load.borrow_mut();
        load.next += per_request;
        load.next - per_request
    };
    let mut response = server
        .client
        .post(server.url("/log/bulk"))
        .insert_header(("Content-Type", "application/x-ndjson"))
        .send_body(bulk(marker, first, per_request))
        .await
        .unwrap_or_else(|error| panic!("the connection failed instead of a refusal: {error}"));
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let answer: Value = response.json().await.expect("a JSON answer");
    match status {
        StatusCode::ACCEPTED => {
            assert_eq!(answer["accepted"], per_request, "{answer}");
            load.borrow_mut()
                .accepted
                .extend((first..first + per_request).map(|n| format!("{marker}-{n}")));
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            assert!(retry_after.is_some(), "503 without Retry-After: {answer}");
            assert!(answer["error"].as_str().is_some(), "{answer}");
            load.borrow_mut().refused += 1;
        }
        other => panic!("ingest answered {other}: {answer}"),
    }
}

fn on_small_disk(disk: &SmallDisk) -> Launch {
    Launch::default()
        .data_dir(&disk.path().join("data"))
        .env("OGLOGSTREAM_INGEST__QUEUE_MAX_BYTES", "4MiB")
}

#[actix_web::test]
async fn a_full_disk_refuses_before_acknowledging_and_loses_nothing() {
    const PER_REQUEST: usize = 200;
    let disk = SmallDisk::mount("64m");
    let mut server = Server::launch(on_small_disk(&disk)).await;
    let load = Rc::new(RefCell::new(Load::default()));

    // Some logs in, then the disk fills up under load.
    for _ in 0..20 {
        ship_once(&server, &load, "full", PER_REQUEST).await;
    }
    assert_eq!(load.borrow().refused, 0, "refused with room on the disk");
    let filler = disk.fill("filler-1");
    let health = eventually(
        "ingest to refuse for the full disk",
        Duration::from_secs(30),
        || {
            let (server, load) = (&server, &load);
            async move {
                ship_once(server, load, "full", PER_REQUEST).await;
                let (status, health) = server.get("/health").await;
                (load.borrow().refused > 0 && status == StatusCode::SERVICE_UNAVAILABLE)
                    .then_some(health)
            }
        },
    )
    .await;
    assert!(
        health["failing"]
            .as_array()
            .is_some_and(|parts| parts.contains(&json!("disk_full"))),
        "{health}"
    );
    assert_eq!(health["disk"]["full"], true, "{health}");
    assert!(health["disk"]["free_bytes"].as_u64().is_some(), "{health}");
    let (status, answer) = server
        .post(
            "/log",
            Some("application/json"),
            json!({"level":"info","message":"m","service":"s"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("disk is full"),
        "says why: {answer}"
    );

    // Reads keep working on a full disk.
    let (status, stats) = server.get("/api/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let (status, page) = server.get("/api/logs?limit=5&q=full-").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, metrics) = server.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics
            .as_str()
            .unwrap_or("")
            .contains("oglogstream_disk_full 1"),
        "{metrics}"
    );

    // Space returns: ingest resumes by itself, without a restart.
    std::fs::remove_file(&filler).unwrap();
    eventually("ingest to take logs again", Duration::from_secs(30), || {
        let (server, load) = (&server, &load);
        async move {
            let before = load.borrow().accepted.len();
            ship_once(server, load, "full", PER_REQUEST).await;
            (load.borrow().accepted.len() > before).then_some(())
        }
    })
    .await;
    server.wait_healthy().await;

    // Full again under load, then a graceful stop: whatever it could not
    // store it keeps, and the next start stores it.
    let _filler = disk.fill("filler-2");
    for _ in 0..30 {
        ship_once(&server, &load, "full", PER_REQUEST).await;
    }
    let status = server.terminate(Duration::from_secs(60));
    let log = server.logs();
    assert!(!log.contains("panicked"), "{log}");
    if !status.success() {
        assert!(
            log.contains("acknowledged logs could not be stored before the stop"),
            "a failed stop says why: {log}"
        );
    }
    std::fs::remove_file(disk.path().join("filler-2")).unwrap();
    let restarted = Server::launch(on_small_disk(&disk)).await;
    let accepted = load.borrow().accepted.clone();
    assert!(accepted.len() >= 20 * PER_REQUEST);
    let stored = eventually(
        "every acknowledged log stored",
        Duration::from_secs(60),
        || {
            let (restarted, accepted) = (&restarted, &accepted);
            async move {
                let stored = stored_markers(restarted, "full").await;
                accepted.is_subset(&stored).then_some(stored)
            }
        },
    )
    .await;
    // Nothing refused was stored either: a 503 means not taken.
    assert_eq!(stored.len(), accepted.len());
}

#[actix_web::test]
async fn a_stop_that_cannot_store_spills_exits_non_zero_and_the_next_start_stores_it() {
    const LOGS: usize = 20_000;
    let disk = SmallDisk::mount("64m");
    // Logs wait in memory for a minute: at the stop, all of them are still
    // to be written, onto a disk that has no room left.
    let slow_batches = |launch: Launch| {
        launch
            .env("BATCH_SIZE", "100000")
            .env("FLUSH_TIMEOUT", "60s")
            .env("OGLOGSTREAM_INGEST__QUEUE_MAX_BYTES", "16MiB")
    };
    let mut server = Server::launch(slow_batches(on_small_disk(&disk))).await;
    for first in (0..LOGS).step_by(1000) {
        let (status, answer) = server
            .post(
                "/log/bulk",
                Some("application/x-ndjson"),
                bulk("spill", first, 1000),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let filler = disk.fill("filler");
    let status = server.terminate(Duration::from_secs(60));
    let log = server.logs();
    assert!(!status.success(), "exited 0 with logs unstored: {log}");
    assert!(
        log.contains(&format!(
            "{LOGS} acknowledged logs could not be stored before the stop"
        )),
        "the error names the count: {log}"
    );
    let spill_file = disk.path().join("data").join("spill.ndjson");
    assert!(spill_file.exists(), "{log}");

    std::fs::remove_file(&filler).unwrap();
    let restarted = Server::launch(on_small_disk(&disk)).await;
    restarted.wait_stored(LOGS as u64).await;
    let stored = stored_markers(&restarted, "spill").await;
    let expected: HashSet<String> = (0..LOGS).map(|n| format!("spill-{n}")).collect();
    assert_eq!(stored, expected);
    eventually(
        "the spill file to be removed",
        Duration::from_secs(10),
        || async { (!spill_file.exists()).then_some(()) },
    )
    .await;
}

#[actix_web::test]
async fn a_full_disk_under_the_process_role_leaves_its_logs_in_the_stream() {
    use crate::split::deps::{JetStreamAdmin, Nats};
    const LOGS: usize = 5_000;
    let nats = Nats::start().await;
    let disk = SmallDisk::mount("64m");
    let split = |role: &str| {
        Launch::default()
            .arg("--role")
            .arg(role)
            .env("NATS_URL", &nats.url())
            .env("OGLOGSTREAM_NATS__ACK_WAIT", "3s")
            .env("FLUSH_TIMEOUT", "100ms")
    };
    let ingest = Server::launch(split("ingest")).await;
    // The process role's embedded store sits on the small disk, which fills
    // up before any log arrives.
    let data_dir = disk.path().join("data");
    let mut process = Server::launch(split("process").data_dir(&data_dir)).await;
    let filler = disk.fill("filler");
    for first in (0..LOGS).step_by(500) {
        let (status, answer) = ingest
            .post(
                "/log/bulk",
                Some("application/x-ndjson"),
                bulk("stream", first, 500),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "the broker takes them: {answer}"
        );
    }
    eventually(
        "the processor to fail its writes",
        Duration::from_secs(30),
        || async { process.logs().contains("disk is full").then_some(()) },
    )
    .await;
    let status = process.terminate(Duration::from_secs(60));
    assert!(
        status.success(),
        "nothing dropped, so a clean exit: {}",
        process.logs()
    );
    assert!(
        process.logs().contains("the stream keeps them"),
        "{}",
        process.logs()
    );
    let admin = JetStreamAdmin::connect(&nats.url()).await.expect("admin");
    let info = admin.stream_info("OGLOGSTREAM").await;
    assert!(
        info["state"]["messages"].as_u64().unwrap_or(0) > 0,
        "the stream keeps what was not stored: {info}"
    );

    std::fs::remove_file(&filler).unwrap();
    let reader = Server::launch(split("process,query").data_dir(&data_dir)).await;
    reader.wait_stored(LOGS as u64).await;
    let stored = stored_markers(&reader, "stream").await;
    assert_eq!(stored.len(), LOGS);
}

/// The number a `/metrics` line gives `name` (with its labels), if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[actix_web::test]
async fn storage_max_bytes_deletes_the_oldest_logs_first() {
    const MINUTES: i64 = 120;
    const PER_MINUTE: usize = 250;
    let server =
        Server::launch(Launch::default().env("OGLOGSTREAM_STORAGE__MAX_BYTES", "4MiB")).await;
    // Two hours of logs, oldest first: about 10 MB of rows, more than twice
    // the bound.
    let start = oglogstream::domain::time::now_micros() - MINUTES * 60_000_000;
    let mut sent = 0;
    for minute in 0..MINUTES {
        let body: String = (0..PER_MINUTE)
            .map(|i| {
                let ts = start + minute * 60_000_000 + i as i64 * 1000;
                json!({
                    "level": "info",
                    "service": "sized",
                    "message": format!("sized-{minute}-{i} {}", "y".repeat(200)),
                    "timestamp": oglogstream::domain::time::format_rfc3339(ts),
                })
                .to_string()
                    + "\n"
            })
            .collect();
        server
            .post_accepted("/log/bulk", "application/x-ndjson", body)
            .await;
        sent += PER_MINUTE;
    }
    let (used, deleted) = eventually(
        "size retention to bring the store under its bound",
        Duration::from_secs(60),
        || async {
            let (_, text) = server.get("/metrics").await;
            let text = text.as_str().unwrap_or_default().to_string();
            let used = metric(&text, "oglogstream_store_used_bytes")?;
            let deleted = metric(
                &text,
                "oglogstream_retention_deleted_logs_total{reason=\"size\"}",
            )?;
            (deleted > 0.0 && used <= (4 << 20) as f64).then_some((used, deleted))
        },
    )
    .await;
    let (_, stats) = server.get("/api/stats").await;
    let total = stats["total_logs"].as_u64().unwrap();
    assert_eq!(total as f64 + deleted, sent as f64, "{stats} used={used}");
    // The oldest went, the newest stayed.
    let (_, oldest) = server.get("/api/logs?order=asc&limit=1").await;
    let (_, newest) = server.get("/api/logs?order=desc&limit=1").await;
    let first_kept: i64 = oldest[0]["message"].as_str().unwrap()[6..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_kept > 0, "{oldest}");
    assert!(
        newest[0]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("sized-{}-", MINUTES - 1)),
        "{newest}"
    );
}
