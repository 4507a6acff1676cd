use clap::Parser;
use oglogstream::cli::Cli;
use oglogstream::config::{Config, LogFormat};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Exit code for configuration errors (usage errors, as in sysexits' spirit).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("oglogstream: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_tracing(&config);
    tracing::info!(config = %config.summary(), "starting oglogstream {}", env!("CARGO_PKG_VERSION"));

    let system = actix_web::rt::System::new();
    match system.block_on(oglogstream::app::run(
        config,
        oglogstream::app::termination_signal(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("oglogstream: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    // RUST_LOG, when set, refines the configured level (e.g. per module).
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},actix_server=warn", config.log.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
