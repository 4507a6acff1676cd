//! OgLogStream: log collection and analytics in one binary.
//!
//! Map of the crate (see ARCHITECTURE.md for the picture):
//! - `domain`: what a log is; parsing and validation. Pure, no I/O.
//! - `bus`: the seam between ingest and the rest (work queue + live feed).
//! - `store`: the seam between process (writes) and query (reads).
//! - `ingest`, `process`, `query`: one module per role. Roles depend on
//!   `domain`, `bus` and `store`, never on each other.
//! - `alerts`: rules evaluated by the query role (the instance holding the
//!   `alerts` lease), notifications to Slack, webhooks and PagerDuty.
//! - `http`: the error shape, body limits, health, telemetry, `[server]`.
//! - `security`: what each route needs (the roles' table), API keys, rate
//!   limits, CORS, client addresses.
//! - `auth`: sign-in with an OpenID Connect provider, sessions, the gate
//!   every request passes (keys, sessions, roles, CSRF) and the audit of
//!   sign-ins, refusals and changes.
//! - `metrics`: the counters and gauges `/metrics` renders; `logging`: the
//!   process's own logs.
//! - `config`, `cli`: configuration layers, composing the settings each
//!   component owns; `app`: wiring and lifecycle.
//! - `loadgen`: the load generator behind `oglogstream-bench` (a client of
//!   the HTTP API only; no role depends on it).
//!
//! Invariants: only `app` chooses implementations; role modules see the
//! `Bus` and `Store` traits only; each module imports only the layers below
//! it (ARCHITECTURE.md lists them; `tests/it/architecture.rs` checks).

pub mod alerts;
pub mod app;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod loadgen;
pub mod logging;
pub mod metrics;
pub mod process;
pub mod query;
pub mod security;
pub mod store;
pub mod tenants;
pub mod tls;
