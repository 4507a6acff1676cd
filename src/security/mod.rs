//! Who may call what, and how often: what each route needs (`access.rs`,
//! the table of roles), API keys and the roles they grant, per-client rate
//! limits, CORS, and the client address they all key on. Each is a pure
//! piece, tested on its own; `guard.rs` applies them to requests, and the
//! sign-in layer (`auth::gate`) adds sessions on top.

pub mod access;
pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod guard;
pub mod rate_limit;
mod settings;

pub use settings::{RateLimit, RawRateLimit, RawSecurity, SecurityConfig};

pub use access::Access;
