//! Split roles over real NATS and ClickHouse (issue 3): the store contract
//! against both stores, and several real processes per role.

pub mod contract;
pub mod deps;
mod topology;
