//! `GET /api/facets` (values of fields with counts, for the sidebar) and
//! `GET /api/fields` (attribute keys with counts, for autocomplete).

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
    Ok(HttpResponse::Ok().json(FacetsBody {
        total: facets.total,
        approximate: facets.approximate,
        facets: facets.fields.into_iter().map(FacetBody::from).collect(),
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
