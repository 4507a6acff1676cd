//! The `live` phase: a `/ws/live` subscriber while single logs are posted
//! at a fixed rate; latency from each `202` to the frame carrying that id.

use crate::loadgen::bench::{Bench, Latencies, Row, latency_text, thousands};
use crate::loadgen::client::HttpConnection;
use crate::loadgen::corpus::Corpus;
use futures_util::future::join_all;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

impl Bench {
    pub(crate) async fn live_tail(&mut self) -> anyhow::Result<()> {
        let rate = self.options.live_rate.max(1);
        let seconds = self.options.seconds;
        eprintln!("live: /ws/live while posting {rate} logs/s for {seconds} s");
        let socket = self.connect().await?.websocket("/ws/live").await?;
        let mut corpus = Corpus::new(2);
        let requests: Vec<Vec<u8>> = (0..4096)
            .map(|_| {
                let mut body = Vec::new();
                corpus.log_json(None, &mut body);
                HttpConnection::post_bytes(&self.address, "/log", "application/json", &body)
            })
            .collect();
        // id -> when its 202 arrived, and id -> when its frame arrived.
        let accepted: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();
        let streamed: Rc<RefCell<HashMap<String, Instant>>> = Rc::default();
        let connections = 16;
        let mut pool = Vec::with_capacity(connections);
        for _ in 0..connections {
            pool.push(self.connect().await?);
        }
        let sample = self.machine.sample();
        let started = tokio::time::Instant::now();
        let total = rate * seconds;
        let next = Rc::new(Cell::new(0u64));
        let senders = pool.into_iter().map(|mut connection| {
            let accepted = Rc::clone(&accepted);
            let next = Rc::clone(&next);
            let requests = &requests;
            async move {
                let mut failures = 0u64;
                loop {
                    let k = next.get();
                    if k >= total {
                        break;
                    }
                    next.set(k + 1);
                    let due = started + Duration::from_secs_f64(k as f64 / rate as f64);
                    tokio::time::sleep_until(due).await;
                    match connection
                        .send(&requests[k as usize % requests.len()])
                        .await
                    {
                        Ok(response) if response.status == 202 => {
                            let now = Instant::now();
                            if let Some(id) = accepted_id(&response.body) {
                                accepted.borrow_mut().insert(id, now);
                            }
                        }
                        Ok(_) => failures += 1,
                        Err(_) => {
                            failures += 1;
                            break;
                        }
                    }
                }
                failures
            }
        });
        let sending_ended: Rc<Cell<Option<Instant>>> = Rc::default();
        let receiver = {
            let streamed = Rc::clone(&streamed);
            let accepted = Rc::clone(&accepted);
            let sending_ended = Rc::clone(&sending_ended);
            async move {
                let mut socket = socket;
                loop {
                    if let Some(ended) = sending_ended.get() {
                        // Every frame is in, or stragglers had 2 s to arrive.
                        if streamed.borrow().len() >= accepted.borrow().len()
                            || ended.elapsed() > Duration::from_secs(2)
                        {
                            break;
                        }
                    }
                    // Reading a frame is cancel-safe: bytes stay buffered.
                    match tokio::time::timeout(Duration::from_millis(50), socket.next_text()).await
                    {
                        Ok(Ok(Some((frame, at)))) => {
                            if let Some(id) = frame_id(&frame) {
                                streamed.borrow_mut().insert(id, at);
                            }
                        }
                        Ok(Ok(None)) | Ok(Err(_)) => break,
                        Err(_) => {}
                    }
                }
                socket.close().await;
            }
        };
        let senders = async {
            let failures: u64 = join_all(senders).await.into_iter().sum();
            sending_ended.set(Some(Instant::now()));
            failures
        };
        let (failures, ()) = tokio::join!(senders, receiver);
        let elapsed = started.elapsed();
        self.note_machine("live", &sample);
        let accepted = accepted.borrow();
        let streamed = streamed.borrow();
        let mut latencies = Latencies::default();
        let mut early = 0u64;
        for (id, accepted_at) in accepted.iter() {
            if let Some(streamed_at) = streamed.get(id) {
                if streamed_at < accepted_at {
                    early += 1;
                }
                latencies.0.push(
                    streamed_at
                        .saturating_duration_since(*accepted_at)
                        .as_micros()
                        .min(u32::MAX as u128) as u32,
                );
            }
        }
        let missing = accepted.len() - latencies.0.len();
        let summary = latencies.summary();
        let (_, _, p99, _) = summary;
        let achieved = accepted.len() as f64 / elapsed.as_secs_f64();
        self.rows.push(Row {
            what: format!("live tail: `/ws/live` while posting {} logs/s, {seconds} s", thousands(rate as f64)),
            result: format!(
                "{} logs/s posted, {} frames received, {} missing, {} failed posts ({} frames arrived before their 202)",
                thousands(achieved),
                thousands(latencies.0.len() as f64),
                missing,
                failures,
                early
            ),
            latency: format!("202 → frame: {}", latency_text(summary)),
            target: "p99 < 20 ms".into(),
            met: Some(p99 < 20.0 && missing == 0),
        });
        Ok(())
    }
}

fn accepted_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Accepted {
        id: String,
    }
    serde_json::from_slice::<Accepted>(body).ok().map(|a| a.id)
}

fn frame_id(frame: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        id: &'a str,
    }
    serde_json::from_slice::<Frame>(frame)
        .ok()
        .map(|f| f.id.to_string())
}
