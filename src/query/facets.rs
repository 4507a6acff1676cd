//! `GET /api/facets` (values of fields with counts, for the sidebar) and
//! `GET /api/fields` (attribute keys with counts, for autocomplete).
//!
//! Asked for no fields in particular, `/api/facets` leaves out the fields
//! whose values are nearly all different (request ids, user ids: a facet
//! of hundreds of values counted once each says nothing) and lists them
//! apart, in `id_like`; named in `fields=`, such a field is answered as any
//! other.

use super::client_gone::ClientSocket;
use super::params;
use super::state::{QueryState, decoded, scope_of};
use crate::http::error::ApiError;
use crate::store::Store;
use crate::store::facets::FieldFacet;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

#[derive(Serialize)]
struct FacetsBody {
    total: u64,
    approximate: bool,
    facets: Vec<FacetBody>,
    /// Left out of `facets` for their values nearly all differ (always
    /// empty when `fields=` names the fields).
    id_like: Vec<IdLikeBody>,
}

#[derive(Serialize)]
struct IdLikeBody {
    field: String,
    distinct: u64,
}

/// A field is id-like when its distinct values are at least this share
/// (in tenths) of the logs having it...
const ID_LIKE_TENTHS: u64 = 9;
/// ...and at least this many logs have it (on a handful, every field looks
/// unique).
const ID_LIKE_MIN_LOGS: u64 = 20;

/// Whether a facet's values are nearly all different.
fn is_id_like(facet: &FieldFacet) -> bool {
    let having: u64 = facet.values.iter().map(|(_, count)| count).sum::<u64>() + facet.other;
    having >= ID_LIKE_MIN_LOGS && facet.distinct.saturating_mul(10) >= having * ID_LIKE_TENTHS
}

#[derive(Serialize)]
struct FacetBody {
    /// As `fields=` names it: `@level` for an attribute named like a field.
    field: String,
    values: Vec<ValueBody>,
    other: u64,
    distinct: u64,
}

#[derive(Serialize)]
struct ValueBody {
    value: String,
    count: u64,
}

impl From<FieldFacet> for FacetBody {
    fn from(facet: FieldFacet) -> FacetBody {
        FacetBody {
            field: facet.field.reference(),
            values: facet
                .values
                .into_iter()
                .map(|(value, count)| ValueBody { value, count })
                .collect(),
            other: facet.other,
            distinct: facet.distinct,
        }
    }
}

pub async fn facets(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let query = params::facet_query(&decoded(&request)?, &scope_of(&request))?;
    let facets = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).facets(&query),
        )
        .await?;
    let (id_like, fields): (Vec<FieldFacet>, Vec<FieldFacet>) = match query.fields {
        Some(_) => (Vec::new(), facets.fields),
        None => facets.fields.into_iter().partition(is_id_like),
    };
    Ok(HttpResponse::Ok().json(FacetsBody {
        total: facets.total,
        approximate: facets.approximate,
        facets: fields.into_iter().map(FacetBody::from).collect(),
        id_like: id_like
            .into_iter()
            .map(|facet| IdLikeBody {
                field: facet.field.reference(),
                distinct: facet.distinct,
            })
            .collect(),
    }))
}

#[derive(Serialize)]
struct FieldBody {
    field: String,
    count: u64,
}

pub async fn fields(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let filter = params::filter_only(&decoded(&request)?, &scope_of(&request))?;
    let keys = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).attribute_keys(&filter),
        )
        .await?;
    Ok(HttpResponse::Ok().json(
        keys.into_iter()
            .map(|key| FieldBody {
                field: crate::domain::query::FieldName::Text(
                    crate::domain::query::TextField::Attribute(key.key),
                )
                .reference(),
                count: key.count,
            })
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query::{FieldName, TextField};

    fn facet(values: &[u64], other: u64, distinct: u64) -> FieldFacet {
        FieldFacet {
            field: FieldName::Text(TextField::Attribute("request_id".into())),
            values: values
                .iter()
                .enumerate()
                .map(|(n, count)| (format!("v{n}"), *count))
                .collect(),
            other,
            distinct,
        }
    }

    #[test]
    fn nearly_all_different_values_on_enough_logs_are_id_like() {
        // 300 logs, each its own id.
        assert!(is_id_like(&facet(&[1; 10], 290, 300)));
        // 90% distinct is enough; 89% is not.
        assert!(is_id_like(&facet(&[2; 10], 80, 90)));
        assert!(!is_id_like(&facet(&[2; 10], 80, 89)));
        // Fewer than 20 logs having it: not judged.
        assert!(!is_id_like(&facet(&[1; 10], 9, 19)));
        assert!(is_id_like(&facet(&[1; 10], 10, 20)));
        // A few values over many logs: a facet.
        assert!(!is_id_like(&facet(&[100, 100, 100], 0, 3)));
        assert!(!is_id_like(&facet(&[], 0, 0)));
    }
}
