//! HTTPS on the binary's own listener, as actix-web sees it: the rustls
//! configuration for `bind_rustls_0_23` (the certificate re-read when its
//! files change, see `tls::server`), and what a connection's TLS says about
//! its client, kept with the connection when it opens (`on_connect`) for
//! the requests that need it: the TCP socket underneath (`query::client_gone`
//! watches it) and whether the client presented a certificate our CA signed.
//!
//! Plain HTTP/1.1 and HTTP/2 (ALPN) both work over it, and `/ws/live`
//! upgrades as over plain HTTP: browsers open WebSockets on an HTTP/1.1
//! connection of their own.

use super::server::ServerConfig;
use crate::domain::settings::InvalidSetting;
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use std::any::Any;

/// The rustls configuration of `[server]`, files read and checked; `None`
/// for plain HTTP.
pub fn rustls_config(
    server: &ServerConfig,
) -> Result<Option<rustls::ServerConfig>, InvalidSetting> {
    server
        .tls
        .as_ref()
        .map(|tls| tls.server_config())
        .transpose()
}

/// Marks a connection whose client presented a certificate in the
/// handshake. rustls has verified it against `server.tls_client_ca` by
/// then (a certificate it cannot verify fails the handshake), so its
/// presence is the proof.
#[derive(Clone, Copy, Debug)]
pub struct ClientCertificate;

/// The TCP stream under a connection, plain or TLS.
pub fn tcp_stream(connection: &dyn Any) -> Option<&TcpStream> {
    connection.downcast_ref::<TcpStream>().or_else(|| {
        connection
            .downcast_ref::<TlsStream<TcpStream>>()
            .map(|tls| tls.get_ref().0)
    })
}

/// For `HttpServer::on_connect`: remembers a verified client certificate.
pub fn remember_client_certificate(connection: &dyn Any, extensions: &mut Extensions) {
    let presented = connection
        .downcast_ref::<TlsStream<TcpStream>>()
        .and_then(|tls| tls.get_ref().1.peer_certificates())
        .is_some_and(|chain| !chain.is_empty());
    if presented {
        extensions.insert(ClientCertificate);
    }
}
