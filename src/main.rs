use clap::Parser;
use oglogstream::cli::Cli;
use oglogstream::config::Config;
use std::process::ExitCode;

/// Exit code for configuration errors (usage errors, as in sysexits' spirit).
const EXIT_CONFIG: u8 = 2;

/// Bounds what glibc's allocator keeps after it is freed (issue 24's
/// memory target). A heap profile of the shippers phase (heaptrack) peaked
/// at 55 MB of live heap while the process's RSS reached 141 MB: request
/// bodies and decoded batches freed on other threads stayed in glibc's
/// per-thread arenas. Four arenas instead of eight per core keep fewer
/// partly used heaps around. (A fixed 256 KiB mmap threshold was tried as
/// well and taken out: it also fixes the trim threshold, and the batcher's
/// thread then spent its time in `_int_free` and `malloc_consolidate`
/// freeing each stored batch — bulk ingest fell from ~270k to ~70k logs/s,
/// found with perf on the batcher thread.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_allocator_retention() {
    // SAFETY: mallopt only sets the allocator's parameters; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator_retention() {}

fn main() -> ExitCode {
    bound_allocator_retention();
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
