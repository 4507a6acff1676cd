//! The Loki query API (issue 21) as Grafana uses it: each request the
//! data source, Explore and Logs Drilldown send (listed in docs/grafana.md),
//! replayed against the real binary; a differential test of LogQL against
//! a reference evaluator written here; patterns; tail; and every query
//! string checked against Grafana's own grammar.

mod differential;
mod drilldown;
mod grafana;
mod grammar;
mod patterns;
mod reference;
pub mod support;
mod tail;
