//! Integration tests: one test binary, each test starting its own real
//! `oglogstream` process (see `support`).

mod support;

mod config_and_lifecycle;
mod deployment;
mod ingest_rules;
mod live_tail;
mod query_api;
