//! The soak run (`make bench-soak`): a steady mix of everything a deployment
//! does at once — ingest over every protocol, queries, live tails that come
//! and go, exports and alert rules evaluated — for `--soak-minutes`, with
//! the server's RSS, open file descriptors and each kind of request's p99
//! latency sampled every [`SAMPLE_EVERY`]. What it answers: after warm-up,
//! do they stay flat (no leak of memory, descriptors or speed)?
//!
//! The load is paced, not saturating: a saturated server's latencies
//! measure its queue, not whether it degrades.

use super::api::create_alert_rule;
use super::client::HttpConnection;
use super::corpus::Corpus;
use super::shippers::{elasticsearch_body, loki_body, otlp_body, syslog_frames};
use crate::domain::time::{format_rfc3339, now_micros};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// How often the server is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples before this are warm-up: caches fill, pools grow, and the
/// queries' and exports' windows fill with logs (they read the last
/// [`QUERY_WINDOW`] and [`EXPORT_WINDOW`], so their cost stops growing once
/// the run is longer than those: a flat line then means no degradation).
const WARM_UP: Duration = Duration::from_secs(180);
const QUERY_WINDOW: i64 = 120_000_000;
const EXPORT_WINDOW: i64 = 60_000_000;
/// Logs per request for the bulk protocols, and their pace.
const PER_REQUEST: usize = 100;
const BULK_EVERY: Duration = Duration::from_millis(100);
/// Single-log posts per second.
const SINGLES_PER_SECOND: u64 = 200;
const QUERY_EVERY: Duration = Duration::from_millis(250);
const EXPORT_EVERY: Duration = Duration::from_secs(30);
const LIVE_CLIENTS: usize = 4;
/// A live client reconnects this often: descriptors must not pile up.
const LIVE_RECONNECT: Duration = Duration::from_secs(60);
const ALERT_RULES: usize = 20;

/// The kinds of request whose latency is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ingest,
    Query,
    Export,
}

const KINDS: [(Kind, &str); 3] = [
    (Kind::Ingest, "ingest"),
    (Kind::Query, "query"),
    (Kind::Export, "export"),
];

/// Latencies (µs) and failures since the last sample.
#[derive(Default)]
struct Window {
    latencies: [Vec<u32>; 3],
    failures: u64,
    refused: u64,
    logs: u64,
}

type Shared = Arc<Mutex<Window>>;

fn record(window: &Shared, kind: Kind, started: Instant, status: u16) {
    let Ok(mut window) = window.lock() else {
        return;
    };
    let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
    window.latencies[kind as usize].push(micros);
    match status {
        200..=299 => {}
        429 | 503 => window.refused += 1,
        _ => window.failures += 1,
    }
}

/// One row of the soak table.
#[derive(Clone, Debug)]
pub struct Sample {
    pub seconds: f64,
    pub rss_mib: f64,
    /// RssAnon: the process's own memory, without mapped file pages.
    pub anon_mib: f64,
    pub open_fds: u64,
    /// p99 in ms per kind, NaN when none ran in the window.
    pub p99_ms: [f64; 3],
    pub logs_per_second: f64,
    pub failures: u64,
    pub refused: u64,
}

pub struct SoakSettings {
    pub address: String,
    pub pid: Option<u32>,
    pub syslog_tcp: Option<String>,
    pub minutes: u64,
    pub csv: Option<std::path::PathBuf>,
    pub plot: Option<std::path::PathBuf>,
}

pub async fn run(settings: SoakSettings) -> anyhow::Result<()> {
    // One thread, like the rest of the generator: the workers are local
    // tasks (the streamed export's reader is not `Send`).
    tokio::task::LocalSet::new().run_until(soak(settings)).await
}

async fn soak(settings: SoakSettings) -> anyhow::Result<()> {
    let window: Shared = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(settings.minutes * 60);
    eprintln!(
        "soak: {} minutes of mixed load on {} (samples every {:?})",
        settings.minutes, settings.address, SAMPLE_EVERY
    );
    create_alert_rules(&settings.address).await?;
    let mut workers = tokio::task::JoinSet::new();
    for protocol in Protocol::ALL {
        if protocol == Protocol::Syslog && settings.syslog_tcp.is_none() {
            continue;
        }
        workers.spawn_local(ship(
            settings.address.clone(),
            settings.syslog_tcp.clone(),
            protocol,
            Arc::clone(&window),
            deadline,
        ));
    }
    workers.spawn_local(singles(
        settings.address.clone(),
        Arc::clone(&window),
        deadline,
    ));
    let by_path: QueryTimes = Rc::default();
    workers.spawn_local(queries(
        settings.address.clone(),
        Arc::clone(&window),
        Rc::clone(&by_path),
        deadline,
    ));
    workers.spawn_local(exports(
        settings.address.clone(),
        Arc::clone(&window),
        deadline,
    ));
    for n in 0..LIVE_CLIENTS {
        workers.spawn_local(live(settings.address.clone(), n, deadline));
    }
    let samples = sample_until(&settings, &window, deadline).await;
    while let Some(finished) = workers.join_next().await {
        if let Ok(Err(error)) = finished {
            eprintln!("soak: a worker failed: {error:#}");
        }
    }
    let summary = summarise(&samples);
    println!("{summary}");
    println!("{}", query_table(&by_path.borrow()));
    if let Some(path) = &settings.csv {
        std::fs::write(path, csv(&samples))?;
        eprintln!("soak: samples written to {}", path.display());
    }
    if let Some(path) = &settings.plot {
        std::fs::write(path, svg(&samples))?;
        eprintln!("soak: plot written to {}", path.display());
    }
    Ok(())
}

async fn sample_until(settings: &SoakSettings, window: &Shared, deadline: Instant) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    ticks.tick().await;
    println!(
        "seconds\trss_mib\tanon_mib\topen_fds\tingest_p99_ms\tquery_p99_ms\texport_p99_ms\tlogs_per_s\tfailures\trefused"
    );
    while Instant::now() < deadline {
        ticks.tick().await;
        let taken = match window.lock() {
            Ok(mut window) => std::mem::take(&mut *window),
            Err(_) => break,
        };
        let (rss_mib, anon_mib, open_fds) = settings
            .pid
            .map(process_state)
            .unwrap_or((f64::NAN, f64::NAN, 0));
        let mut p99_ms = [f64::NAN; 3];
        for (slot, mut latencies) in taken.latencies.into_iter().enumerate() {
            latencies.sort_unstable();
            if !latencies.is_empty() {
                let rank =
                    ((0.99 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
                p99_ms[slot] = latencies[rank - 1] as f64 / 1000.0;
            }
        }
        let sample = Sample {
            seconds: started.elapsed().as_secs_f64(),
            rss_mib,
            anon_mib,
            open_fds,
            p99_ms,
            logs_per_second: taken.logs as f64 / SAMPLE_EVERY.as_secs_f64(),
            failures: taken.failures,
            refused: taken.refused,
        };
        println!(
            "{:.0}\t{:.1}\t{:.1}\t{}\t{:.1}\t{:.1}\t{:.1}\t{:.0}\t{}\t{}",
            sample.seconds,
            sample.rss_mib,
            sample.anon_mib,
            sample.open_fds,
            sample.p99_ms[0],
            sample.p99_ms[1],
            sample.p99_ms[2],
            sample.logs_per_second,
            sample.failures,
            sample.refused
        );
        samples.push(sample);
    }
    samples
}

/// VmRSS and RssAnon in MiB, and the number of open descriptors. RssAnon
/// is the process's own memory (heap, stacks: where a leak shows); VmRSS
/// adds the database file's pages while a facet scan has them mapped, which
/// the kernel can drop at will.
fn process_state(pid: u32) -> (f64, f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count() as u64)
        .unwrap_or(0);
    (mib("VmRSS:"), mib("RssAnon:"), fds)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Ndjson,
    Otlp,
    Loki,
    Elasticsearch,
    Syslog,
}

impl Protocol {
    const ALL: [Protocol; 5] = [
        Protocol::Ndjson,
        Protocol::Otlp,
        Protocol::Loki,
        Protocol::Elasticsearch,
        Protocol::Syslog,
    ];
}

/// One protocol's bulk requests, paced at [`BULK_EVERY`] (syslog: frames on
/// one TCP connection).
async fn ship(
    address: String,
    syslog: Option<String>,
    protocol: Protocol,
    window: Shared,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut corpus = Corpus::new(protocol as u64 + 11);
    let mut pace = tokio::time::interval(BULK_EVERY);
    let mut connection = HttpConnection::connect(&address).await?;
    let mut syslog_stream = match (&syslog, protocol) {
        (Some(target), Protocol::Syslog) => Some(tokio::net::TcpStream::connect(target).await?),
        _ => None,
    };
    while Instant::now() < deadline {
        pace.tick().await;
        let now = now_micros();
        let logs: Vec<_> = (0..PER_REQUEST).map(|_| corpus.log(None)).collect();
        let (path, content_type, body) = match protocol {
            Protocol::Ndjson => {
                let mut body = Vec::new();
                for _ in 0..PER_REQUEST {
                    corpus.log_json(Some(format_rfc3339(now)), &mut body);
                    body.push(b'\n');
                }
                ("/log/bulk", "application/x-ndjson", body)
            }
            Protocol::Otlp => ("/v1/logs", "application/x-protobuf", otlp_body(&logs, now)),
            Protocol::Loki => (
                "/loki/api/v1/push",
                "application/x-protobuf",
                loki_body(&logs, now),
            ),
            Protocol::Elasticsearch => (
                "/_bulk",
                "application/x-ndjson",
                elasticsearch_body(&logs, now),
            ),
            Protocol::Syslog => {
                if let Some(stream) = syslog_stream.as_mut() {
                    stream.write_all(&syslog_frames(&logs, now)).await?;
                    if let Ok(mut window) = window.lock() {
                        window.logs += PER_REQUEST as u64;
                    }
                }
                continue;
            }
        };
        let request = HttpConnection::post_bytes(connection.host(), path, content_type, &body);
        let started = Instant::now();
        let response = match connection.send(&request).await {
            Ok(response) => response,
            Err(_) => {
                connection = HttpConnection::connect(&address).await?;
                continue;
            }
        };
        record(&window, Kind::Ingest, started, response.status);
        if (200..300).contains(&response.status)
            && let Ok(mut window) = window.lock()
        {
            window.logs += PER_REQUEST as u64;
        }
    }
    Ok(())
}

/// Single-log posts at [`SINGLES_PER_SECOND`].
async fn singles(address: String, window: Shared, deadline: Instant) -> anyhow::Result<()> {
    let mut corpus = Corpus::new(5);
    let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / SINGLES_PER_SECOND));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connection = HttpConnection::connect(&address).await?;
    let mut body = Vec::new();
    while Instant::now() < deadline {
        pace.tick().await;
        body.clear();
        corpus.log_json(None, &mut body);
        let request =
            HttpConnection::post_bytes(connection.host(), "/log", "application/json", &body);
        let started = Instant::now();
        match connection.send(&request).await {
            Ok(response) => {
                record(&window, Kind::Ingest, started, response.status);
                if response.status == 202
                    && let Ok(mut window) = window.lock()
                {
                    window.logs += 1;
                }
            }
            Err(_) => connection = HttpConnection::connect(&address).await?,
        }
    }
    Ok(())
}

/// Each query path's latencies (µs) over the whole run, after the warm-up:
/// which read a p99 comes from.
type QueryTimes = Rc<RefCell<BTreeMap<&'static str, Vec<u32>>>>;

fn query_table(times: &BTreeMap<&'static str, Vec<u32>>) -> String {
    let mut out = String::from("query (after the warm-up) | requests | p50 ms | p99 ms | max ms\n");
    for (path, latencies) in times {
        let mut sorted = latencies.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1] as f64 / 1000.0
        };
        if !sorted.is_empty() {
            let _ = writeln!(
                out,
                "`{path}` | {} | {:.1} | {:.1} | {:.1}",
                sorted.len(),
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
    }
    out
}

/// The reads a dashboard makes, in turn.
async fn queries(
    address: String,
    window: Shared,
    by_path: QueryTimes,
    deadline: Instant,
) -> anyhow::Result<()> {
    let warm_until = Instant::now() + WARM_UP;
    let paths = [
        "/api/logs?limit=100",
        "/api/logs?limit=100&query=level%3A%3E%3Dwarn%20service%3Acheckout",
        "/api/logs?limit=100&q=timeout",
        "/api/stats",
        "/api/histogram?interval=1m",
        "/api/services",
        "/api/facets?fields=level,service,region",
        "/api/fields",
    ];
    let mut pace = tokio::time::interval(QUERY_EVERY);
    let mut connection = HttpConnection::connect(&address).await?;
    let mut turn = 0;
    while Instant::now() < deadline {
        pace.tick().await;
        let now = now_micros();
        let range = format!(
            "from={}&to={}",
            format_rfc3339(now - QUERY_WINDOW),
            format_rfc3339(now)
        );
        let path = paths[turn % paths.len()];
        turn += 1;
        let separator = if path.contains('?') { '&' } else { '?' };
        let started = Instant::now();
        match connection.get(&format!("{path}{separator}{range}")).await {
            Ok(response) => {
                record(&window, Kind::Query, started, response.status);
                if Instant::now() > warm_until {
                    let micros = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    by_path.borrow_mut().entry(path).or_default().push(micros);
                }
            }
            Err(_) => connection = HttpConnection::connect(&address).await?,
        }
    }
    Ok(())
}

/// An export of the last minute every [`EXPORT_EVERY`], read through.
async fn exports(address: String, window: Shared, deadline: Instant) -> anyhow::Result<()> {
    let mut pace = tokio::time::interval(EXPORT_EVERY);
    while Instant::now() < deadline {
        pace.tick().await;
        let now = now_micros();
        let path = format!(
            "/api/export?format=ndjson&from={}&to={}",
            format_rfc3339(now - EXPORT_WINDOW),
            format_rfc3339(now)
        );
        // A connection per export, as a browser download makes.
        let mut connection = HttpConnection::connect(&address).await?;
        let started = Instant::now();
        let mut bytes = 0usize;
        let response = connection
            .get_streamed(&path, &mut |piece| bytes += piece.len())
            .await?;
        record(&window, Kind::Export, started, response.status);
    }
    Ok(())
}

/// A live tail that reads everything and reconnects every
/// [`LIVE_RECONNECT`].
async fn live(address: String, n: usize, deadline: Instant) -> anyhow::Result<()> {
    let filters = ["", "?level=error", "?service=checkout", "?q=timeout"];
    while Instant::now() < deadline {
        let connection = HttpConnection::connect(&address).await?;
        let mut socket = connection
            .websocket(&format!("/ws/live{}", filters[n % filters.len()]))
            .await?;
        let until = (Instant::now() + LIVE_RECONNECT).min(deadline);
        while let Ok(Ok(Some(_))) = tokio::time::timeout_at(until.into(), socket.next_text()).await
        {
        }
        socket.close().await;
    }
    Ok(())
}

/// Rules on the rollups and on message text, evaluated by the server on its
/// own schedule for the whole run.
async fn create_alert_rules(address: &str) -> anyhow::Result<()> {
    let mut connection = HttpConnection::connect(address).await?;
    for n in 0..ALERT_RULES {
        let (query, group_by): (&str, &[&str]) = match n % 3 {
            0 => ("level:>=error", &["service"]),
            1 => ("service:checkout level:>=warn", &[]),
            _ => ("timeout", &[]),
        };
        create_alert_rule(&mut connection, &format!("soak rule {n}"), query, group_by).await?;
    }
    Ok(())
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { f64::NAN } else { num / den }
}

fn summarise(samples: &[Sample]) -> String {
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds >= WARM_UP.as_secs_f64())
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsoak summary: {} samples, {} after the {} s warm-up",
        samples.len(),
        steady.len(),
        WARM_UP.as_secs()
    );
    if steady.is_empty() {
        return out;
    }
    let range = |values: Vec<f64>| {
        let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    };
    let rss: Vec<(f64, f64)> = steady.iter().map(|s| (s.seconds, s.rss_mib)).collect();
    let (rss_min, rss_max) = range(rss.iter().map(|(_, y)| *y).collect());
    let _ = writeln!(
        out,
        "RSS: {rss_min:.1}..{rss_max:.1} MiB, trend {:+.1} MiB/hour",
        slope(&rss) * 3600.0
    );
    let anon: Vec<(f64, f64)> = steady.iter().map(|s| (s.seconds, s.anon_mib)).collect();
    let (anon_min, anon_max) = range(anon.iter().map(|(_, y)| *y).collect());
    let _ = writeln!(
        out,
        "anonymous RSS (heap): {anon_min:.1}..{anon_max:.1} MiB, trend {:+.1} MiB/hour",
        slope(&anon) * 3600.0
    );
    let fds: Vec<(f64, f64)> = steady
        .iter()
        .map(|s| (s.seconds, s.open_fds as f64))
        .collect();
    let (fd_min, fd_max) = range(fds.iter().map(|(_, y)| *y).collect());
    let _ = writeln!(
        out,
        "open descriptors: {fd_min:.0}..{fd_max:.0}, trend {:+.1}/hour",
        slope(&fds) * 3600.0
    );
    for (kind, name) in KINDS {
        let points: Vec<(f64, f64)> = steady
            .iter()
            .map(|s| (s.seconds, s.p99_ms[kind as usize]))
            .filter(|(_, y)| y.is_finite())
            .collect();
        let (min, max) = range(points.iter().map(|(_, y)| *y).collect());
        let _ = writeln!(
            out,
            "{name} p99: {min:.1}..{max:.1} ms, trend {:+.2} ms/hour",
            slope(&points) * 3600.0
        );
    }
    let logs: f64 = steady.iter().map(|s| s.logs_per_second).sum::<f64>() / steady.len() as f64;
    let failures: u64 = samples.iter().map(|s| s.failures).sum();
    let refused: u64 = samples.iter().map(|s| s.refused).sum();
    let _ = writeln!(
        out,
        "ingest: {logs:.0} logs/s on average; answers other than 2xx: {failures} failures, {refused} refusals (429/503)"
    );
    out
}

fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "seconds,rss_mib,anon_mib,open_fds,ingest_p99_ms,query_p99_ms,export_p99_ms,logs_per_s,failures,refused\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:.0},{:.1},{:.1},{},{:.2},{:.2},{:.2},{:.0},{},{}",
            s.seconds,
            s.rss_mib,
            s.anon_mib,
            s.open_fds,
            s.p99_ms[0],
            s.p99_ms[1],
            s.p99_ms[2],
            s.logs_per_second,
            s.failures,
            s.refused
        );
    }
    out
}

/// A line of a chart: its name, colour and one value per sample.
type Series<'a> = (&'a str, &'a str, Vec<f64>);

/// Three small line charts over time: RSS, open descriptors, p99 by kind.
fn svg(samples: &[Sample]) -> String {
    const WIDTH: f64 = 720.0;
    const PANEL: f64 = 150.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 130.0;
    let end = samples.last().map_or(1.0, |s| s.seconds).max(1.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        3.0 * (PANEL + 30.0) + 20.0
    );
    let panels: [(&str, Vec<Series>); 3] = [
        (
            "RSS and anonymous RSS (MiB)",
            vec![
                (
                    "rss",
                    "#1f77b4",
                    samples.iter().map(|s| s.rss_mib).collect(),
                ),
                (
                    "anonymous",
                    "#17becf",
                    samples.iter().map(|s| s.anon_mib).collect(),
                ),
            ],
        ),
        (
            "open file descriptors",
            vec![(
                "fds",
                "#2ca02c",
                samples.iter().map(|s| s.open_fds as f64).collect(),
            )],
        ),
        (
            "p99 latency (ms)",
            KINDS
                .iter()
                .zip(["#d62728", "#9467bd", "#ff7f0e"])
                .map(|((kind, name), colour)| {
                    (
                        *name,
                        colour,
                        samples.iter().map(|s| s.p99_ms[*kind as usize]).collect(),
                    )
                })
                .collect(),
        ),
    ];
    for (index, (title, series)) in panels.iter().enumerate() {
        let top = 20.0 + index as f64 * (PANEL + 30.0);
        let max = series
            .iter()
            .flat_map(|(_, _, values)| values.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let x = |seconds: f64| LEFT + seconds / end * (WIDTH - LEFT - RIGHT);
        let y = |value: f64| top + PANEL - value / max * PANEL;
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-weight=\"bold\">{title}</text>\n<rect x=\"{LEFT}\" y=\"{top}\" width=\"{:.1}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{max:.0}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
            top - 5.0,
            WIDTH - LEFT - RIGHT,
            LEFT - 4.0,
            top + 10.0,
            LEFT - 4.0,
            top + PANEL
        );
        let warm = x(WARM_UP.as_secs_f64().min(end));
        let _ = writeln!(
            out,
            "<line x1=\"{warm:.1}\" y1=\"{top}\" x2=\"{warm:.1}\" y2=\"{:.1}\" stroke=\"#ccc\" stroke-dasharray=\"4 3\"/>",
            top + PANEL
        );
        for (line, (name, colour, values)) in series.iter().enumerate() {
            let points: Vec<String> = samples
                .iter()
                .zip(values)
                .filter(|(_, v)| v.is_finite())
                .map(|(s, v)| format!("{:.1},{:.1}", x(s.seconds), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{name}</text>",
                points.join(" "),
                WIDTH - RIGHT + 8.0,
                top + 14.0 + line as f64 * 14.0
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} min</text>",
            WIDTH - RIGHT,
            top + PANEL + 13.0,
            end / 60.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, rss: f64) -> Sample {
        Sample {
            seconds,
            rss_mib: rss,
            anon_mib: rss / 2.0,
            open_fds: 40,
            p99_ms: [2.0, 5.0, f64::NAN],
            logs_per_second: 3000.0,
            failures: 0,
            refused: 0,
        }
    }

    #[test]
    fn a_flat_run_has_no_trend_and_a_leak_has_one() {
        let flat: Vec<Sample> = (0..60).map(|i| sample(i as f64 * 10.0, 80.0)).collect();
        assert!(
            summarise(&flat).contains("trend +0.0 MiB/hour"),
            "{}",
            summarise(&flat)
        );
        let leaking: Vec<Sample> = (0..60)
            .map(|i| sample(i as f64 * 10.0, 80.0 + i as f64 / 6.0))
            .collect();
        // 1 MiB a minute is 60 MiB an hour.
        assert!(
            summarise(&leaking).contains("trend +60.0 MiB/hour"),
            "{}",
            summarise(&leaking)
        );
        let plot = svg(&leaking);
        assert!(plot.starts_with("<svg") && plot.contains("polyline"));
        assert_eq!(csv(&flat).lines().count(), 61);
    }
}
