//! `oglogstream-bench`: the load generator (see `oglogstream::loadgen`).
//! It runs on one thread, like `wrk -t1`, so it takes at most one core from
//! the server it measures.

use clap::Parser;
use oglogstream::loadgen::{Options, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("oglogstream-bench: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oglogstream-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
