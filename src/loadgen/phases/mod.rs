//! The benchmark's phases, one file each; every phase is a method of
//! [`Bench`](super::bench::Bench) that adds its rows to the table.

mod alerts;
mod bulk;
mod ingest;
mod live;
mod loki;
mod query;
mod shippers;
mod tenants;
