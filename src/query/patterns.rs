//! `GET /api/patterns?query=…&from=…&to=…&limit=…`: the matching logs'
//! messages grouped into templates (`domain::patterns`, the miner behind
//! Loki's `patterns` too), most frequent first, each with its level and
//! service mix, first and last time seen, an example log's id and a
//! sparkline of counts over the range. The newest `MAX_LINES` logs of the
//! range are mined (counts are exact below that); `"truncated": true` says
//! when there were more.

use super::client_gone::ClientSocket;
use super::params;
use super::state::{QueryState, decoded, scope_of};
use crate::domain::patterns::{MinerOptions, PatternMiner, PatternSummary, SampleGrid};
use crate::domain::time::{MAX_MICROS, now_micros};
use crate::http::error::ApiError;
use crate::store::Store;
use crate::store::{LogKey, LogQuery, Order, RawLog, StoreError};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Logs mined at most per request, newest first.
pub const MAX_LINES: usize = 200_000;
const PAGE: usize = 5000;
/// Points of each pattern's sparkline.
const SPARKLINE_POINTS: i64 = 60;
const DAY: i64 = 86_400_000_000;

#[derive(Serialize)]
struct PatternsBody {
    patterns: Vec<PatternSummary>,
    /// Logs mined.
    logs: u64,
    /// More logs matched than were mined (the newest were).
    truncated: bool,
    /// The sparklines' step, in milliseconds.
    step_ms: i64,
}

pub async fn patterns(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let (mut filter, limit) = params::patterns_query(&decoded(&request)?, &scope_of(&request))?;
    // Like the histogram: the last 24 hours unless told otherwise.
    let to = filter.to.unwrap_or(now_micros().min(MAX_MICROS - 1) + 1);
    let from = filter.from.unwrap_or((to - DAY).max(0));
    filter.from = Some(from);
    filter.to = Some(to);
    let step = (params::ceil_div(to - from, SPARKLINE_POINTS)).max(1_000_000);
    let grid = SampleGrid {
        start_micros: from,
        step_micros: step,
    };
    let store = &state.scoped(&request);
    let (patterns, logs, truncated) = state
        .read(ClientSocket::of(&request), async {
            let mut miner = PatternMiner::new(MinerOptions {
                samples: Some(grid),
                ..MinerOptions::default()
            });
            let mut mined = 0usize;
            let mut after: Option<LogKey> = None;
            let truncated = loop {
                let rows = store
                    .raw_logs(&LogQuery {
                        filter: filter.clone(),
                        limit: PAGE,
                        offset: 0,
                        order: Order::Desc,
                        after: after.clone(),
                    })
                    .await?;
                for row in &rows {
                    if mined == MAX_LINES {
                        break;
                    }
                    miner.add_message(
                        row.timestamp,
                        row.level,
                        &row.service,
                        &row.id,
                        &row.message,
                    );
                    mined += 1;
                }
                if rows.len() < PAGE {
                    break false;
                }
                if mined == MAX_LINES {
                    break true;
                }
                after = rows.last().map(RawLog::key);
            };
            Ok::<_, StoreError>((miner.finish(), mined as u64, truncated))
        })
        .await?;
    Ok(HttpResponse::Ok().json(PatternsBody {
        patterns: patterns.into_iter().take(limit).collect(),
        logs,
        truncated,
        step_ms: step / 1000,
    }))
}
