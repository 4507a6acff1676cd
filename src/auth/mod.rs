//! Sign-in with an OpenID Connect provider, sessions, and the gate every
//! request passes (keys, sessions, roles, CSRF), with the audit of
//! sign-ins, refusals and changes.
//!
//! - `settings.rs`: `[auth]`, `[auth.oidc]`.
//! - `jose.rs` (pure): ID tokens verified with ring against a JWK set;
//!   `jwks.rs`: the provider's keys cached, refetched (rate-limited) when a
//!   token names a key the cache lacks.
//! - `provider.rs`: discovery, the code exchange, userinfo, sign-out URLs.
//! - `claims.rs` (pure): claims to a name, a role and tenants.
//! - `seal.rs`: AEAD-sealed cookies and CSRF tokens; `session.rs`: the
//!   session cookie, the login-state cookie, revocation on the bus's
//!   coordination.
//! - `gate.rs`, `middleware.rs`: who a request acts as and whether it may;
//!   `routes.rs`: `/auth/login`, `/auth/callback`, `/auth/logout`, `/auth/me`.

pub mod claims;
pub mod gate;
pub mod jose;
pub mod jwks;
pub mod middleware;
pub mod provider;
pub mod routes;
pub mod seal;
pub mod session;
mod settings;

pub use settings::{AuthConfig, OidcConfig, RawAuth, RawOidc, RawRoles, Secret};
