use clap::Parser;
use oglogstream::cli::Cli;
use oglogstream::config::Config;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc. The HTTP workers allocate each log
/// (its strings, its attributes' map) and the batcher's thread frees it once
/// stored. glibc made those cross-thread frees the pipeline's bottleneck:
/// perf on a bulk load showed the batcher's thread 80% busy in `_int_free`
/// and `malloc_consolidate` dropping stored batches (bulk stuck near 95k
/// logs/s on a quiet machine, whatever `M_ARENA_MAX`); with mimalloc the same
/// thread is 5% busy. mimalloc also returns freed memory to the system on
/// its own (the reason glibc had been tuned here before).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
