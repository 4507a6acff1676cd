//! A minimal gRPC client over HTTP/2 (h2, which tonic's server already
//! brings): unary calls with prepared message bytes, the answer's status,
//! message and trailers. Like `client.rs` it does no more than a benchmark
//! and the tests need, so the generator stays cheap beside the server: no
//! generated code, no channel, no retries.

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Request};
use std::io;
use tokio::net::TcpStream;

/// The answer to one call.
#[derive(Debug)]
pub struct GrpcAnswer {
    /// `grpc-status` (0 is OK), from the trailers or a trailers-only answer.
    pub code: i32,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// The response message's bytes (empty for an error).
    pub body: Bytes,
    /// The headers and trailers, for `grpc-status-details-bin` and the like.
    pub metadata: HeaderMap,
}

/// One HTTP/2 connection; calls on it may run concurrently (clone it).
#[derive(Clone)]
pub struct GrpcConnection {
    send: SendRequest<Bytes>,
    authority: String,
}

fn other(error: impl std::fmt::Display) -> io::Error {
    io::Error::other(error.to_string())
}

/// A message as a gRPC frame: a compressed flag, its length, the bytes.
pub fn frame(message: &[u8], compressed: bool) -> Bytes {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.extend_from_slice(&[u8::from(compressed)]);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed.freeze()
}

impl GrpcConnection {
    pub async fn connect(address: &str) -> io::Result<GrpcConnection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (send, connection) = h2::client::handshake(stream).await.map_err(other)?;
        // The connection's frames are driven by a task of its own; it ends
        // when every handle is dropped or the server goes away.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(GrpcConnection {
            send,
            authority: address.to_string(),
        })
    }

    /// Calls `path` with a prepared frame (see [`frame`]); `metadata` are
    /// extra headers (keys, `grpc-encoding`).
    pub async fn call(
        &mut self,
        path: &str,
        metadata: &[(&str, &str)],
        framed: Bytes,
    ) -> io::Result<GrpcAnswer> {
        let mut request = Request::post(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in metadata {
            request = request.header(*name, *value);
        }
        let request = request.body(()).map_err(other)?;
        let mut send = self.send.clone().ready().await.map_err(other)?;
        let (response, mut body) = send.send_request(request, false).map_err(other)?;
        body.reserve_capacity(framed.len());
        body.send_data(framed, true).map_err(other)?;
        let response = response.await.map_err(other)?;
        let (head, mut received) = response.into_parts();
        let mut metadata = head.headers;
        let mut data = BytesMut::new();
        while let Some(chunk) = received.data().await {
            let chunk = chunk.map_err(other)?;
            let _ = received.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        if let Some(trailers) = received.trailers().await.map_err(other)? {
            metadata.extend(trailers);
        }
        let text = |name: &str| {
            metadata
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let code = text("grpc-status")
            .parse()
            .map_err(|_| other(format!("no grpc-status in the answer ({})", head.status)))?;
        let message = percent_decode(&text("grpc-message"));
        let mut data = data.freeze();
        // One unary answer: the frame's 5-byte prefix, then the message.
        let body = if data.len() >= 5 {
            data.advance(5);
            data
        } else {
            Bytes::new()
        };
        Ok(GrpcAnswer {
            code,
            message,
            body,
            metadata,
        })
    }
}

/// `grpc-message` is percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_messages() {
        assert_eq!(frame(b"ab", true).as_ref(), &[1, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }
}
