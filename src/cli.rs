//! Command-line flags: the last and strongest configuration layer.

use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Default, Parser)]
#[command(
    name = "oglogstream",
    version,
    about = "Log collection and analytics: ingest, process, query and live-tail logs from one binary",
    after_help = "Every setting can also come from config/oglogstream.toml (or --config FILE) and from \
environment variables: OGLOGSTREAM_<SECTION>__<KEY> (for example OGLOGSTREAM_PROCESS__BATCH_SIZE=5000), \
or the seed's names HTTP_PORT, NATS_URL, CLICKHOUSE_DSN, BATCH_SIZE, FLUSH_TIMEOUT, MAX_RETRIES, \
SHUTDOWN_TIMEOUT, LOG_LEVEL. Precedence: defaults < file < environment < flags."
)]
pub struct Cli {
    /// Roles to run: all, ingest, process, query, or a comma list such as ingest,query
    /// [env: OGLOGSTREAM_ROLE] [default: all]
    #[arg(long, value_name = "ROLES")]
    pub role: Option<String>,

    /// Configuration file [default: config/oglogstream.toml when it exists]
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to serve HTTP on, HOST:PORT (port 0 picks a free one)
    /// [env: HTTP_PORT sets the port] [default: 0.0.0.0:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for the embedded store and dead letters
    /// [env: OGLOGSTREAM_STORAGE__DATA_DIR] [default: data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Testing only: stop the batcher after its first store write, before it
    /// acknowledges, so a fault test can kill the process in between.
    #[arg(long, hide = true)]
    pub stall_after_store: bool,
}
