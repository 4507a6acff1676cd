//! `GET /loki/api/v1/tail` (WebSocket): the newest `limit` lines since
//! `start` from the store, then every new line matching the query as it
//! arrives on the bus's live feed (the feed `/ws/live` reads), one frame
//! per batch: `{"streams":[…],"dropped_entries":null}`.
//!
//! The pushed-down part of the query is tested on each live log in memory
//! (`LogFilter::matches`, the definition the stores agree with), the rest
//! of the pipeline runs as for any log query. Like `/ws/live`, a client
//! that falls behind the feed is cut off with a reason, never waited for.

use super::error::LokiError;
use super::execute::{KeyResolver, LogRun, ReadStats, micros_from_start_end, names_to_resolve};
use super::params::{LokiParams, NANOS_PER_SECOND};
use super::request::{bounded, now_nanos};
use crate::domain::LogRecord;
use crate::domain::logql::json::StreamsResult;
use crate::domain::logql::{
    self, LabelModel, LogQueryEvaluator, LogQueryOptions, MAX_ENTRIES, Query, Stage, Stream,
};
use crate::http::error::ApiError;
use crate::metrics::Metrics;
use crate::query::QueryState;
use crate::query::scope::ReadScope;
use crate::store::Store;
use crate::store::{LogFilter, Order};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, interval, timeout};

const PING_EVERY: Duration = Duration::from_secs(15);
const PONG_GRACE: Duration = Duration::from_secs(45);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Loki's default and largest `delay_for`, in seconds.
const MAX_DELAY_SECONDS: u64 = 5;

pub async fn tail(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::from_query_string(request.query_string())?;
    let store: &dyn Store = &state.scoped(&request);
    let Query::Log(log) = logql::parse(params.query()?)? else {
        return Err(LokiError::bad_request(
            "tail takes a log query, not a metric query",
        ));
    };
    let limit = params.limit(100)?;
    if limit > MAX_ENTRIES {
        return Err(LokiError::bad_request(format!(
            "max entries limit per query exceeded, limit > max_entries_limit ({limit} > {MAX_ENTRIES})"
        )));
    }
    let now = now_nanos();
    let start = params.time("start", now - 3600 * NANOS_PER_SECOND)?;
    let delay = match params.one("delay_for") {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|seconds| *seconds <= MAX_DELAY_SECONDS)
            .ok_or_else(|| {
                LokiError::bad_parameter(
                    "delay_for",
                    format!("expected 0 to {MAX_DELAY_SECONDS} seconds, got {text:?}"),
                )
            })?,
    };
    let model = state
        .loki
        .label_model()
        .with_tenant_label(ReadScope::of(&request).scope().is_multi_tenant());
    // Subscribed before the store is read: nothing stored meanwhile is
    // missed (what both hold is sent once).
    // Held while the tail is open: the tenants' live tails at once.
    let slot = match &state.tenant_limits {
        Some(limits) => Some(
            limits
                .open_live(ReadScope::of(&request).scope().tenants())
                .map_err(|exceeded| {
                    state
                        .metrics
                        .tenants
                        .limited_by(&exceeded.tenant, exceeded.limit);
                    ApiError::tenant_limit(
                        exceeded.limit,
                        exceeded.to_string(),
                        exceeded.retry_after,
                    )
                })?,
        ),
        None => None,
    };
    let feed = state.bus.subscribe_live();
    state.bus.live_ready().await;
    let (from, to) = micros_from_start_end(start, now.max(start));
    let query = Query::Log(log.clone());
    let (history, resolver) = bounded(&state, &request, async {
        let resolver = KeyResolver::for_names(store, &names_to_resolve(&query), from, to).await?;
        let streams = LogRun {
            store,
            model: &model,
            resolver: &resolver,
        }
        .streams(
            &log,
            LogQueryOptions {
                limit,
                categorize_labels: false,
            },
            (start, now.max(start)),
            Order::Desc,
            &mut ReadStats::default(),
        )
        .await?;
        Ok((streams, resolver))
    })
    .await?;
    let plan = log.push_down(&|label| resolver.keys_for(label));
    let follow = Follow {
        // The live feed is filtered here, not by a store: the caller's
        // scope applies to it as to the history above.
        filter: ReadScope::of(&request).applied(LogFilter {
            expr: plan.expr,
            text: plan.text_hint,
            ..Default::default()
        }),
        residual: plan.residual,
        model,
        delay: Duration::from_secs(delay),
        sent: history
            .iter()
            .flat_map(|stream| stream.entries.iter())
            .map(|entry| (entry.timestamp_nanos, entry.line.clone()))
            .collect(),
    };
    let (response, session, messages) = actix_ws::handle(&request, body)
        .map_err(|e| LokiError::bad_request(format!("WebSocket handshake failed: {e}")))?;
    let metrics = std::sync::Arc::clone(&state.metrics);
    let stopping = state.stopping.clone();
    Metrics::add(&metrics.live_clients, 1);
    actix_web::rt::spawn(async move {
        let _slot = slot;
        follow.run(history, feed, session, messages, stopping).await;
        metrics
            .live_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(response)
}

/// A tail connection after its history was read.
struct Follow {
    filter: LogFilter,
    residual: Vec<Stage>,
    model: LabelModel,
    delay: Duration,
    /// (timestamp, line) of the history sent, so a log both read and fed
    /// live goes out once.
    sent: HashSet<(i64, String)>,
}

fn frame(streams: &[Stream]) -> Option<String> {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        streams: StreamsResult<'a>,
        dropped_entries: Option<()>,
    }
    serde_json::to_string(&Frame {
        streams: StreamsResult {
            streams,
            categorize_labels: false,
        },
        dropped_entries: None,
    })
    .ok()
}

impl Follow {
    /// The lines of a live batch that the query keeps, as streams.
    fn streams_of(&mut self, batch: &[LogRecord]) -> Vec<Stream> {
        let options = LogQueryOptions {
            limit: MAX_ENTRIES,
            categorize_labels: false,
        };
        let Ok(mut evaluator) = LogQueryEvaluator::new(&self.residual, &self.model, options) else {
            return Vec::new();
        };
        for record in batch.iter().filter(|record| self.filter.matches(record)) {
            evaluator.push(record);
        }
        let mut streams = evaluator.finish();
        if !self.sent.is_empty() {
            for stream in &mut streams {
                stream.entries.retain(|entry| {
                    !self
                        .sent
                        .remove(&(entry.timestamp_nanos, entry.line.clone()))
                });
            }
            streams.retain(|stream| !stream.entries.is_empty());
        }
        streams
    }

    async fn run(
        mut self,
        mut history: Vec<Stream>,
        mut feed: tokio::sync::broadcast::Receiver<crate::domain::LogBatch>,
        mut session: Session,
        mut messages: actix_ws::MessageStream,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        // History goes out oldest first, as Loki's tailer sends it.
        for stream in &mut history {
            stream.entries.reverse();
        }
        if !history.is_empty()
            && let Some(text) = frame(&history)
            && session.text(text).await.is_err()
        {
            return;
        }
        let mut ping = interval(PING_EVERY);
        let mut last_pong = Instant::now();
        let close: Option<CloseReason> = loop {
            tokio::select! {
                received = feed.recv() => match received {
                    Ok(batch) => {
                        let streams = self.streams_of(&batch);
                        if streams.is_empty() {
                            continue;
                        }
                        if !self.delay.is_zero() {
                            tokio::time::sleep(self.delay).await;
                        }
                        let Some(text) = frame(&streams) else { continue };
                        match timeout(SEND_TIMEOUT, session.text(text)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_closed)) => break None,
                            Err(_) => break Some(reason(CloseCode::Policy, "client too slow: reconnect")),
                        }
                    }
                    Err(RecvError::Lagged(missed)) => break Some(reason(
                        CloseCode::Policy,
                        &format!("client too slow: {missed} batches behind; reconnect"),
                    )),
                    Err(RecvError::Closed) => break Some(reason(CloseCode::Restart, "server stopping")),
                },
                message = messages.recv() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() { break None; }
                    }
                    Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if last_pong.elapsed() > PONG_GRACE {
                        break Some(reason(CloseCode::Away, "no pong: connection presumed dead"));
                    }
                    if session.ping(b"").await.is_err() { break None; }
                }
                _ = stopping.changed() => break Some(reason(CloseCode::Restart, "server stopping")),
            }
        };
        let _ = session.close(close).await;
    }
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_string()),
    }
}
