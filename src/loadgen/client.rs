//! A deliberately small HTTP/1.1 keep-alive client and WebSocket reader.
//!
//! The load generator shares the machine with the server, so every cycle it
//! spends is a cycle the server does not get. A general-purpose client (awc,
//! hyper) costs several times more per request than writing prepared bytes
//! and parsing the status line and `Content-Length`, which is all a benchmark
//! needs. Chunked answers are understood too, in case a handler streams.

use std::io;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Response {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

struct Head {
    status: u16,
    text: String,
    content_length: Option<usize>,
    chunked: bool,
}

pub struct HttpConnection {
    stream: TcpStream,
    host: String,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already consumed by earlier responses.
    start: usize,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl HttpConnection {
    pub async fn connect(address: &str) -> io::Result<HttpConnection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            host: address.to_string(),
            buffer: Vec::with_capacity(16 * 1024),
            start: 0,
        })
    }

    /// A complete request, ready to write as many times as wanted.
    pub fn post_bytes(host: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        Self::post_bytes_with(host, path, content_type, &[], body)
    }

    /// The same, with more headers (a tenant's `X-Scope-OrgID`).
    pub fn post_bytes_with(
        host: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        request
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub async fn get(&mut self, path_and_query: &str) -> io::Result<Response> {
        self.get_with(path_and_query, &[]).await
    }

    pub async fn get_with(
        &mut self,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Response> {
        let mut request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n",
            self.host
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.send(request.as_bytes()).await
    }

    /// Writes a prepared request and reads its whole response.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.read_response().await
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            // A stream of frames rarely ends on a read boundary: compact.
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        if self.buffer.capacity() - self.buffer.len() < 4096 {
            self.buffer.reserve(16 * 1024);
        }
        let read = self.stream.read_buf(&mut self.buffer).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head = self.read_head().await?;
        let mut body = Vec::new();
        self.read_body(&head, &mut |bytes| body.extend_from_slice(bytes))
            .await?;
        Ok(Response {
            status: head.status,
            head: head.text,
            body,
        })
    }

    /// A GET whose body is handed to `each` piece by piece as it arrives,
    /// never held whole (an export of millions of rows). Returns the head.
    pub async fn get_streamed(
        &mut self,
        path_and_query: &str,
        each: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Response> {
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.host
        );
        self.stream.write_all(request.as_bytes()).await?;
        let head = self.read_head().await?;
        self.read_body(&head, each).await?;
        Ok(Response {
            status: head.status,
            head: head.text,
            body: Vec::new(),
        })
    }

    async fn read_head(&mut self) -> io::Result<Head> {
        let head_end = loop {
            if let Some(position) = find(&self.buffer[self.start..], b"\r\n\r\n") {
                break self.start + position + 4;
            }
            self.fill().await?;
        };
        let text = std::str::from_utf8(&self.buffer[self.start..head_end])
            .map_err(|_| invalid("response head is not UTF-8"))?
            .to_string();
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line in {text:?}")))?;
        let mut content_length = None;
        let mut chunked = false;
        for line in text.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
        self.start = head_end;
        Ok(Head {
            status,
            text,
            content_length,
            chunked,
        })
    }

    async fn read_body(&mut self, head: &Head, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        if !head.chunked {
            let mut left = head.content_length.unwrap_or(0);
            while left > 0 {
                if self.start == self.buffer.len() {
                    self.fill().await?;
                }
                let take = left.min(self.buffer.len() - self.start);
                each(&self.buffer[self.start..self.start + take]);
                self.start += take;
                left -= take;
            }
            return Ok(());
        }
        loop {
            let line_end = loop {
                if let Some(position) = find(&self.buffer[self.start..], b"\r\n") {
                    break self.start + position;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buffer[self.start..line_end])
                .map_err(|_| invalid("bad chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            self.start = line_end + 2;
            let mut left = size;
            while left > 0 {
                if self.start == self.buffer.len() {
                    self.fill().await?;
                }
                let take = left.min(self.buffer.len() - self.start);
                each(&self.buffer[self.start..self.start + take]);
                self.start += take;
                left -= take;
            }
            while self.buffer.len() - self.start < 2 {
                self.fill().await?;
            }
            self.start += 2;
            if size == 0 {
                return Ok(());
            }
        }
    }

    /// Upgrades this connection to a WebSocket on `path`.
    pub async fn websocket(mut self, path: &str) -> io::Result<WebSocket> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.host
        );
        self.stream.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(position) = find(&self.buffer[self.start..], b"\r\n\r\n") {
                break self.start + position + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[self.start..head_end]).to_string();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(invalid(format!("websocket upgrade refused: {head}")));
        }
        self.start = head_end;
        Ok(WebSocket { http: self })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The reading side of a client WebSocket: text frames out, pings answered.
pub struct WebSocket {
    http: HttpConnection,
}

impl WebSocket {
    /// The next text message and when its last byte arrived; `None` when the
    /// server closes.
    pub async fn next_text(&mut self) -> io::Result<Option<(Vec<u8>, Instant)>> {
        let mut message = Vec::new();
        loop {
            let connection = &mut self.http;
            while connection.buffer.len() - connection.start < 2 {
                connection.fill().await?;
            }
            // `fill` may compact the buffer (moving `start` to 0), so
            // offsets are taken from `start` after every wait, never kept
            // across one.
            let first = connection.buffer[connection.start];
            let second = connection.buffer[connection.start + 1];
            let (length, header) = match second & 0x7f {
                126 => {
                    while connection.buffer.len() - connection.start < 4 {
                        connection.fill().await?;
                    }
                    let at = connection.start;
                    let bytes = [connection.buffer[at + 2], connection.buffer[at + 3]];
                    (u16::from_be_bytes(bytes) as usize, 4)
                }
                127 => {
                    while connection.buffer.len() - connection.start < 10 {
                        connection.fill().await?;
                    }
                    let at = connection.start;
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&connection.buffer[at + 2..at + 10]);
                    (u64::from_be_bytes(bytes) as usize, 10)
                }
                small => (small as usize, 2),
            };
            let masked = second & 0x80 != 0;
            let header = header + if masked { 4 } else { 0 };
            while connection.buffer.len() - connection.start < header + length {
                connection.fill().await?;
            }
            let at = connection.start;
            let received = Instant::now();
            let payload = connection.buffer[at + header..at + header + length].to_vec();
            connection.start = at + header + length;
            let fin = first & 0x80 != 0;
            match first & 0x0f {
                0x0 | 0x1 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some((message, received)));
                    }
                }
                0x8 => return Ok(None),
                0x9 => self.send_frame(0xA, &payload).await?,
                _ => {}
            }
        }
    }

    /// Client frames must be masked; a zero mask keeps the payload as is.
    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = vec![0x80 | opcode];
        if payload.len() < 126 {
            frame.push(0x80 | payload.len() as u8);
        } else {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        self.http.stream.write_all(&frame).await
    }

    pub async fn close(mut self) {
        let _ = self.send_frame(0x8, &1000u16.to_be_bytes()).await;
    }
}
