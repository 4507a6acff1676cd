//! Pure domain logic: what a log is, how it is parsed and validated. No I/O.

pub mod attributes;
pub mod audit;
pub mod byte_size;
pub mod flatten;
pub mod id;
pub mod level;
pub mod log;
pub mod logql;
pub mod parse;
pub mod patterns;
pub mod principal;
pub mod query;
pub mod roles;
pub mod settings;
pub mod shippers;
pub mod tenant;
pub mod time;
pub mod view;

pub use attributes::Attributes;
pub use level::{Level, LevelSet};
pub use log::{LogBatch, LogRecord};
pub use tenant::TenantId;
