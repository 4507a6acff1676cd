//! `GET /ws/live`: every accepted log matching the client's filters, one JSON
//! text frame per log, straight from the bus's live feed.
//!
//! Each connection has its own broadcast receiver, so a slow client only ever
//! falls behind itself: when it lags past the feed's backlog, or a frame
//! cannot be sent within `SEND_TIMEOUT`, it is closed with a reason and can
//! reconnect. Ingestion never waits for it.

use super::params;
use super::state::{QueryState, decoded, scope_of};
use crate::domain::log::Row;
use crate::http::error::ApiError;
use crate::metrics::Metrics;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, interval, timeout};

const PING_EVERY: Duration = Duration::from_secs(15);
const PONG_GRACE: Duration = Duration::from_secs(45);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn stream(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    // `api_key` and `tenant` are read by the security gate (browsers cannot
    // set headers on a WebSocket).
    let filter = params::live_filter(
        &decoded(&request)?,
        &["api_key", "tenant"],
        &scope_of(&request),
    )?;
    // Held while the stream is open: the tenants' live tails at once.
    let slot = match &state.tenant_limits {
        Some(limits) => Some(
            limits
                .open_live(filter.scope.tenants())
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
    let (response, mut session, mut messages) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::bad_request(None, format!("WebSocket handshake failed: {e}")))?;
    // A tail of several tenants says whose each log is, as `/api/logs` does.
    let with_tenant = filter.scope.is_multi_tenant();
    let mut feed = state.bus.subscribe_live();
    // The upgrade answers once the feed runs: a log sent after it is shown.
    state.bus.live_ready().await;
    let mut stopping = state.stopping.clone();
    let metrics = std::sync::Arc::clone(&state.metrics);
    Metrics::add(&metrics.live_clients, 1);

    actix_web::rt::spawn(async move {
        let _slot = slot;
        let mut ping = interval(PING_EVERY);
        let mut last_pong = Instant::now();
        let close: Option<CloseReason> = loop {
            tokio::select! {
                received = feed.recv() => match received {
                    Ok(batch) => {
                        let mut failed = None;
                        for record in batch.iter().filter(|r| filter.matches(r)) {
                            let frame = if with_tenant {
                                serde_json::to_string(&Row::with_tenant(record))
                            } else {
                                serde_json::to_string(record)
                            };
                            let Ok(frame) = frame else { continue };
                            match timeout(SEND_TIMEOUT, session.text(frame)).await {
                                Ok(Ok(())) => {}
                                Ok(Err(_closed)) => { failed = Some(None); break; }
                                Err(_) => {
                                    failed = Some(Some(reason(CloseCode::Policy, "client too slow: reconnect")));
                                    break;
                                }
                            }
                        }
                        if let Some(close) = failed {
                            Metrics::add(&metrics.live_clients_cut_off, 1);
                            break close;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        Metrics::add(&metrics.live_clients_cut_off, 1);
                        break Some(reason(
                            CloseCode::Policy,
                            &format!("client too slow: {missed} batches behind; reconnect"),
                        ));
                    }
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
        metrics
            .live_clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(response)
}

fn reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_string()),
    }
}
