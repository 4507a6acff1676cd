use clap::Parser;
use oglogstream::cli::Cli;
use oglogstream::config::Config;
use std::process::ExitCode;

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
    oglogstream::logging::init(&config.log);
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
