//! `GET /api/logs/{id}/context`: the log and the logs immediately before and
//! after it, of its own service (`scope=all`: of every service), narrowed by
//! the filters given. Two keyset reads from the log's place, one each way.

use super::client_gone::ClientSocket;
use super::params;
use super::state::{QueryState, decoded, scope_of};
use crate::domain::log::Row;
use crate::domain::query::{Expr, Matcher, Predicate, TextField};
use crate::http::error::ApiError;
use crate::store::Store;
use crate::store::{LogFilter, LogKey, LogQuery, Order};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// The answer, of records or (a read of several tenants) rows saying whose.
#[derive(Serialize)]
struct Context<T> {
    log: T,
    /// Oldest first.
    before: Vec<T>,
    /// Oldest first.
    after: Vec<T>,
}

pub async fn context(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let wanted = params::context_query(&decoded(&request)?, &scope_of(&request))?;
    let id = id.into_inner();
    let by_id = LogQuery {
        filter: LogFilter {
            expr: Expr::Is(Predicate::Text {
                field: TextField::Id,
                matcher: Matcher::Exact(id.clone()),
            }),
            ..LogFilter::default()
        },
        limit: 1,
        offset: 0,
        order: Order::Asc,
        after: None,
    };
    let log = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).logs(&by_id),
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no log with id {id:?}: it may have been removed by retention"
            ))
            .with_field("id")
        })?;
    let with_tenant = wanted.filter.scope.is_multi_tenant();
    let mut filter = wanted.filter;
    if !wanted.all_services {
        let same_service = Expr::Is(Predicate::Text {
            field: TextField::Service,
            matcher: Matcher::Exact(log.service.clone()),
        });
        filter.expr = std::mem::take(&mut filter.expr).and(same_service);
    }
    let around = |order: Order, limit: usize| LogQuery {
        filter: filter.clone(),
        limit,
        offset: 0,
        order,
        after: Some(LogKey::of(&log)),
    };
    let mut before = Vec::new();
    if wanted.before > 0 {
        before = state
            .read(
                ClientSocket::of(&request),
                state
                    .scoped(&request)
                    .logs(&around(Order::Desc, wanted.before)),
            )
            .await?;
        before.reverse();
    }
    let mut after = Vec::new();
    if wanted.after > 0 {
        after = state
            .read(
                ClientSocket::of(&request),
                state
                    .scoped(&request)
                    .logs(&around(Order::Asc, wanted.after)),
            )
            .await?;
    }
    if with_tenant {
        // Several tenants' logs around it, as `/api/logs` rows: whose each is.
        return Ok(HttpResponse::Ok().json(Context {
            log: Row::with_tenant(&log),
            before: before.iter().map(Row::with_tenant).collect(),
            after: after.iter().map(Row::with_tenant).collect(),
        }));
    }
    Ok(HttpResponse::Ok().json(Context { log, before, after }))
}
