//! Builds the dashboard (web/ -> web/dist) when it is missing or older than
//! its sources, so a fresh clone needs nothing but `cargo build` (and Node 20
//! with npm). The assets are then embedded by rust-embed (src/query/dashboard.rs).
//!
//! Escape hatch for packagers who build the assets themselves (or have no
//! Node): OGLOGSTREAM_SKIP_WEB_BUILD=1. Without Node and without web/dist, the
//! binary still builds and serves a page explaining how to build the dashboard.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

const SOURCES: &[&str] = &[
    "web/src",
    "web/index.html",
    "web/package.json",
    "web/package-lock.json",
    "web/vite.config.ts",
    "web/tailwind.config.js",
    "web/postcss.config.js",
    "web/tsconfig.json",
    "web/public",
];

fn main() {
    println!("cargo:rerun-if-env-changed=OGLOGSTREAM_SKIP_WEB_BUILD");
    for source in SOURCES {
        println!("cargo:rerun-if-changed={source}");
    }
    let web = PathBuf::from("web");
    let dist_index = web.join("dist/index.html");
    if std::env::var_os("OGLOGSTREAM_SKIP_WEB_BUILD").is_some() {
        ensure_placeholder(
            &dist_index,
            "the build skipped it (OGLOGSTREAM_SKIP_WEB_BUILD)",
        );
        return;
    }
    let newest_source = SOURCES
        .iter()
        .filter_map(|s| newest_mtime(Path::new(s)))
        .max();
    let built = modified(&dist_index);
    let fresh = matches!((built, newest_source), (Some(built), Some(source)) if built >= source)
        && !is_placeholder(&dist_index);
    if fresh || !web.join("package.json").exists() {
        ensure_placeholder(&dist_index, "web/package.json is missing");
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !web.join("node_modules").exists() && !run(npm, &["ci", "--no-audit", "--no-fund"], &web) {
        ensure_placeholder(
            &dist_index,
            "npm ci failed or npm is missing (Node 20+ is needed)",
        );
        return;
    }
    if !run(npm, &["run", "build"], &web) {
        ensure_placeholder(&dist_index, "npm run build failed");
    }
}

fn run(program: &str, args: &[&str], dir: &Path) -> bool {
    match Command::new(program).args(args).current_dir(dir).status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            println!(
                "cargo:warning={program} {} exited with {status}",
                args.join(" ")
            );
            false
        }
        Err(error) => {
            println!("cargo:warning=could not run {program}: {error}");
            false
        }
    }
}

const PLACEHOLDER_MARK: &str = "<!-- oglogstream placeholder -->";

fn is_placeholder(index: &Path) -> bool {
    std::fs::read_to_string(index).is_ok_and(|text| text.contains(PLACEHOLDER_MARK))
}

/// Keeps the binary buildable without Node: a page that says what to do.
fn ensure_placeholder(index: &Path, reason: &str) {
    if index.exists() {
        return;
    }
    println!("cargo:warning=dashboard not built: {reason}; serving a placeholder page");
    let page = format!(
        "<!doctype html>{PLACEHOLDER_MARK}<meta charset=utf-8><title>OgLogStream</title>\
         <p>The dashboard was not built ({reason}). Install Node 20+ and run <code>cargo build</code> \
         again, or <code>npm --prefix web ci && npm --prefix web run build</code>. The API works: \
         see <code>/api/logs</code>.</p>"
    );
    if let Some(dir) = index.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(index, page);
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if metadata.is_file() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_mtime(&entry.path()))
        .max()
}
