//! A local HTTP receiver standing in for Slack, Alertmanager or PagerDuty:
//! it records every request's JSON body and answers as scripted (a status,
//! or never). It runs on its own thread and runtime, so a test's waiting
//! never slows it down.

use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// `429` with `Retry-After: <seconds>`.
    TooManyRequests(u64),
    /// Accept the request and never answer.
    Hang,
}

#[derive(Default)]
struct Log {
    /// Bodies answered 2xx, with when they arrived.
    accepted: Vec<(Instant, Value)>,
    /// Every request, answered or not.
    attempts: Vec<Instant>,
    script: VecDeque<Answer>,
    /// Answer used once the script is spent.
    otherwise: Option<Answer>,
}

pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    /// Answers `script` in order, then `200` to everything.
    pub fn start(script: &[Answer]) -> Receiver {
        Receiver::with(script, None)
    }

    /// Accepts connections and never answers.
    pub fn dead() -> Receiver {
        Receiver::with(&[], Some(Answer::Hang))
    }

    fn with(script: &[Answer], otherwise: Option<Answer>) -> Receiver {
        let log = Arc::new(Mutex::new(Log {
            script: script.iter().copied().collect(),
            otherwise,
            ..Log::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = Arc::clone(&log);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(serve(listener, served, stopped));
        });
        Receiver {
            url: url(address),
            log,
            stop: Some(stop),
        }
    }

    /// Bodies answered 2xx, in arrival order.
    pub fn accepted(&self) -> Vec<Value> {
        self.lock()
            .accepted
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn accepted_at(&self) -> Vec<Instant> {
        self.lock().accepted.iter().map(|(at, _)| *at).collect()
    }

    pub fn attempts(&self) -> Vec<Instant> {
        self.lock().attempts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn url(address: SocketAddr) -> String {
    format!("http://{address}/hook")
}

async fn serve(
    listener: std::net::TcpListener,
    log: Arc<Mutex<Log>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(stream, Arc::clone(&log)));
                }
            }
            _ = &mut stopped => return,
        }
    }
}

/// One request per connection (`Connection: close`).
async fn connection(mut stream: TcpStream, log: Arc<Mutex<Log>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body: Value = serde_json::from_slice(&buffer[head_end..head_end + length])
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&buffer[head_end..]).into()));
    let answer = {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.attempts.push(Instant::now());
        let answer = log
            .script
            .pop_front()
            .or(log.otherwise)
            .unwrap_or(Answer::Status(200));
        if let Answer::Status(200..=299) = answer {
            log.accepted.push((Instant::now(), body));
        }
        answer
    };
    let response = match answer {
        Answer::Hang => {
            // Hold the connection open until the client gives up.
            let _ = stream.read(&mut chunk).await;
            return;
        }
        Answer::Status(status) => format!(
            "HTTP/1.1 {status} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        ),
        Answer::TooManyRequests(seconds) => format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {seconds}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow"
        ),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
