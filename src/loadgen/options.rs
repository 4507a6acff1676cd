//! What the load generator is told to run, and against what.

/// What to run and how hard; see `oglogstream-bench --help`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "oglogstream-bench",
    about = "Load generator for OgLogStream: drives a running server on the loopback interface and prints a table of throughput, latency and memory",
    after_help = "Example: oglogstream-bench --url http://127.0.0.1:8080 --pid $(pgrep -n oglogstream). \
`make bench` builds the release binary, starts a server on a temporary data directory, runs every phase and stops it."
)]
pub struct Options {
    /// The server, http://HOST:PORT on a loopback address
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The server's process id, to report its peak memory (VmHWM)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Phases to run, comma separated, in order: query (pre-fills to each
    /// size first), loki, alerts, ingest, live, bulk, shippers; and
    /// `tenants` (with `--solo-url`: `make bench-tenants`)
    #[arg(
        long,
        default_value = "query,loki,alerts,ingest,live,bulk,shippers",
        value_delimiter = ','
    )]
    pub phases: Vec<String>,
    /// Seconds each throughput phase (ingest, live, bulk) lasts
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Keep-alive connections for single-log ingest
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Connections for bulk ingest and pre-filling
    #[arg(long, default_value_t = 4)]
    pub bulk_connections: usize,
    /// Logs per bulk (NDJSON) request
    #[arg(long, default_value_t = 1000)]
    pub bulk_size: usize,
    /// Logs per second posted during the live-tail phase
    #[arg(long, default_value_t = 10_000)]
    pub live_rate: u64,
    /// Store sizes (logs) to pre-fill to and query at, comma separated
    #[arg(long, default_value = "1000000,10000000", value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Most requests per query kind and size
    #[arg(long, default_value_t = 200)]
    pub query_count: usize,
    /// Most seconds per query kind and size (at least 3 requests are made)
    #[arg(long, default_value_t = 8)]
    pub query_seconds: u64,
    /// Only the query kinds whose description contains this text (e.g.
    /// `trace_id`); the deep cursor page and the export then do not run
    #[arg(long, value_name = "TEXT")]
    pub queries: Option<String>,
    /// What `--url` is: `all` (one `--role all` process, every log stored
    /// before the phase ends) or `split` (a `--role ingest` instance on NATS:
    /// a 202 means JetStream holds the log; nothing is stored here)
    #[arg(long, value_enum, default_value_t = Topology::All)]
    pub topology: Topology,
    /// A bare actix-web server answering 202 to `POST /log` without parsing
    /// or storing anything (`benches/floor_server.rs`); the `ingest` phase
    /// puts the same load on it, to show this machine's ceiling
    #[arg(long)]
    pub floor_url: Option<String>,
    /// The floor server's process id, for its CPU use
    #[arg(long)]
    pub floor_pid: Option<u32>,
    /// Logs the alerts phase stamps over the last five minutes first
    #[arg(long, default_value_t = 300_000)]
    pub alert_recent_logs: u64,
    /// Seconds the alerts phase measures CPU without rules, and again with
    /// 100 rules (0: skip)
    #[arg(long, default_value_t = 60)]
    pub alert_seconds: u64,
    /// The server's syslog TCP listener (HOST:PORT, loopback), for the
    /// syslog part of the `shippers` phase
    #[arg(long)]
    pub syslog_tcp: Option<String>,
    /// The server's OTLP gRPC listener (HOST:PORT, loopback), for the OTLP
    /// over gRPC part of the `shippers` phase
    #[arg(long)]
    pub otlp_grpc: Option<String>,
    /// Instead of running: write one request body of `--bulk-size` corpus
    /// logs per protocol into this directory (ndjson, otlp.pb, loki.pb.sz,
    /// elasticsearch.ndjson, syslog.frames) and exit, for profiling a
    /// server with them (docs/performance.md, "How the CPU per log was
    /// profiled")
    #[arg(long, value_name = "DIR")]
    pub write_bodies: Option<std::path::PathBuf>,
    /// With `--topology split`: a `--role query` instance reading the store
    /// the process instances write; the bulk phase then waits until every
    /// accepted log is stored there and reports the end-to-end stored rate
    /// (ingest → JetStream → process → store)
    #[arg(long, value_name = "URL")]
    pub stored_url: Option<String>,
    /// With the `tenants` phase: a second server (tenancy on, empty store)
    /// that gets only the small tenant's logs, for comparison
    #[arg(long, value_name = "URL")]
    pub solo_url: Option<String>,
    /// With the `tenants` phase: how many tenants share the store
    #[arg(long, default_value_t = 100)]
    pub tenants: u64,
    /// Describes the setup in the result rows (e.g. "3-node R3 cluster")
    #[arg(long, default_value = "")]
    pub label: String,
    /// Appends `<label><TAB><stored logs/s>` here after an end-to-end bulk
    /// phase, for scripts that compare setups
    #[arg(long, value_name = "FILE")]
    pub result_file: Option<std::path::PathBuf>,
    /// Instead of the phases: a soak run of this many minutes (mixed ingest
    /// over every protocol, queries, live tails, exports, alert rules),
    /// sampling the server's RSS, descriptors and p99s every 10 s
    #[arg(long, value_name = "MINUTES")]
    pub soak_minutes: Option<u64>,
    /// With --soak-minutes: the samples as CSV
    #[arg(long, value_name = "FILE")]
    pub soak_csv: Option<std::path::PathBuf>,
    /// With --soak-minutes: an SVG plot of the samples
    #[arg(long, value_name = "FILE")]
    pub soak_plot: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Topology {
    All,
    Split,
}
