//! Noticing that a client went away while its query runs.
//!
//! actix-web keeps running a handler after its client disconnects (it only
//! finds out when it writes the answer; actix/actix-web#3462), so a slow
//! query would run on for nobody. Each connection's socket is remembered
//! when it opens ([`remember_socket`]), and reads race [`gone`], which asks
//! the kernel every `CHECK_EVERY` whether the peer hung up. While a request
//! is in flight actix holds the connection, so the descriptor stays ours.

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use std::any::Any;
use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The raw socket of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ClientSocket(#[cfg(unix)] std::os::fd::RawFd);

/// For `HttpServer::on_connect`: keeps the socket of TCP connections, the
/// one under TLS too.
pub fn remember_socket(connection: &dyn Any, extensions: &mut Extensions) {
    #[cfg(unix)]
    if let Some(stream) = crate::http::tls::tcp_stream(connection) {
        use std::os::fd::AsRawFd;
        extensions.insert(ClientSocket(stream.as_raw_fd()));
    }
    #[cfg(not(unix))]
    let _ = (connection, extensions);
}

impl ClientSocket {
    pub fn of(request: &HttpRequest) -> Option<ClientSocket> {
        request.conn_data::<ClientSocket>().copied()
    }

    /// Whether the peer closed the connection (or it broke).
    #[cfg(target_os = "linux")]
    fn hung_up(self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.0,
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait; the descriptor is open while
        // the request is in flight (see the module comment).
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
    }

    #[cfg(not(target_os = "linux"))]
    fn hung_up(self) -> bool {
        false
    }
}

/// Resolves once the client behind `socket` has gone; never without one.
pub async fn gone(socket: Option<ClientSocket>) {
    let Some(socket) = socket else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if socket.hung_up() {
            return;
        }
    }
}
