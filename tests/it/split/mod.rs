//! Split roles over real NATS and ClickHouse (issue 3): the store contract
//! against both stores, and several real processes per role.

mod clickhouse_cluster;
mod clickhouse_store;
pub mod contract;
pub mod deps;
mod modern_clickhouse;
pub mod topology;
