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

unsafe extern "C" {
    /// mimalloc's `mi_option_set`; the crate names no constants for the
    /// options set here.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

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
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's option values; any value is valid.
        unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        disable_transparent_huge_pages();
    }
}

/// mimalloc asks the kernel for transparent huge pages (`MADV_HUGEPAGE`) on
/// its arena, so where THP is `madvise` or `always` (most distributions) a
/// 2 MiB page stays resident while any 4 KiB of it is in use, and the
/// pages mimalloc purges inside it stay too. Each thread that allocates
/// logs (HTTP workers, the gRPC and syslog listeners) keeps pages of its
/// own, so the huge pages added up: `make bench`'s shippers phase peaked at
/// 142 and 146 MB with them and 98 and 106 MB without (51 MB of
/// `AnonHugePages`), bulk at 112-116 and 74 MB, at the same CPU per log.
/// mimalloc reads `MIMALLOC_ALLOW_THP` before `main`; its own switch
/// (`allow_thp`, index 43 in v3's `mi_option_e`) is set as well so it stops
/// asking, and `PR_SET_THP_DISABLE` covers what it mapped before `main`.
/// `MIMALLOC_ALLOW_THP=1` keeps them.
fn disable_transparent_huge_pages() {
    const ALLOW_THP: std::ffi::c_int = 43;
    // SAFETY: sets one of mimalloc's option values; any value is valid.
    unsafe { mi_option_set(ALLOW_THP, 0) }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integers and only sets a flag of
    // this process (inherited by its children); it fails harmlessly on
    // kernels without it.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
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
