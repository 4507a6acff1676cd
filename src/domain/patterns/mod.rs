//! Patterns: log messages grouped into templates, with `<_>` where they
//! vary (numbers, ids, UUIDs, hex, IPs, durations, sizes, emails, URLs,
//! quoted values, and words found to vary), for Loki's `patterns` endpoint,
//! Logs Drilldown's Patterns tab and our `/api/patterns`. Pure.
//!
//! - `tokens.rs`: a message as words and separators; which words vary.
//! - `miner.rs`: [`PatternMiner`], Drain-like grouping with counts per
//!   level, service and step, in one pass and bounded memory.
//! - `template.rs`: [`Template`], a pattern as a filter (`<_>` any run of
//!   characters), which the query language's `pattern:"…"` and LogQL's
//!   `|>`/`!>` use, and its store-neutral `Expr`.
//!
//! Every message the miner puts in a pattern matches that pattern's
//! [`Template`], so filtering by a pattern finds its logs.
//!
//! ```text
//! let mut miner = PatternMiner::new(MinerOptions { max_patterns: 5000, samples: Some(grid) });
//! for row in rows { miner.add(&row) }
//! let patterns = miner.finish();          // most frequent first
//! ```

mod miner;
mod template;
mod tokens;

pub use miner::{MinerOptions, OTHER_SERVICES, PatternMiner, PatternSummary, SampleGrid};
pub use template::{PLACEHOLDER, Template};
pub use tokens::is_variable;

#[cfg(test)]
mod tests;
