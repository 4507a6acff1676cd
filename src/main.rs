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

/// mimalloc v3 gives freed memory back to the system a second after the
/// last block of a page is freed (`purge_delay`, 1000 ms). Queued logs are
/// allocated on the HTTP and gRPC threads and freed on the writer's, in
/// bursts, so a second held every burst's pages: `make bench` peaked at
/// 156 MB. At 100 ms the same run peaks lower at the same CPU per log; at
/// 0 it cost 31% more CPU per log, at 10 ms a few percent. The
/// `MIMALLOC_PURGE_DELAY` environment variable still decides when set.
fn tune_allocator() {
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v3, as
    /// libmimalloc-sys builds it); the crate names no constant for it.
    const PURGE_DELAY: std::ffi::c_int = 15;
    const PURGE_DELAY_MS: std::ffi::c_long = 100;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's option values; any value is valid.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

/// Exit code for configuration errors (usage errors, as in sysexits' spirit).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    tune_allocator();
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
