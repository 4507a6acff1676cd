//! Integration tests: one test binary, each test starting its own real
//! `oglogstream` process (see `support`).

mod support;

mod alerts;
mod architecture;
mod auth;
mod cluster;
mod config_and_lifecycle;
mod dashboard_assets;
mod deployment;
mod docs;
mod durability;
mod facet_blocks;
mod fuzz_corpus;
mod ingest_rules;
mod live_tail;
mod loki;
mod operations;
mod query_api;
mod query_language;
mod search_blocks;
mod shippers;
mod split;
mod tenants;
mod tls;
mod ui_settings;
mod views;
