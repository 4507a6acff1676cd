//! TLS for every hop, in one place: PEM files read with errors that name the
//! setting they came from (`pem.rs`), the server side (`server.rs`: a
//! certificate re-read when its files change, optional client certificates)
//! for HTTPS and syslog over TLS, and the client side (`client.rs`: a CA to
//! trust, an optional client certificate) for NATS and ClickHouse.
//!
//! Always rustls with the ring provider (already in the tree for the alert
//! notifier's HTTPS client; aws-lc would need cmake and a C build), and
//! always TLS 1.2 and 1.3 only: 1.0 and 1.1 are deprecated (RFC 8996) and
//! rustls does not implement them anyway, so the list below is also the
//! documentation of what a client may negotiate.
//!
//! This layer knows no component: each passes its own setting names in
//! (`server.tls_cert`, `nats.tls_ca`, …), so an error reads like any other
//! configuration error.

pub mod client;
pub mod pem;
pub mod server;

use rustls::crypto::CryptoProvider;
use std::sync::Arc;

/// The protocol versions every listener and client here accepts.
pub static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The ring provider, explicitly: never whatever a dependency may have
/// installed as the process default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
