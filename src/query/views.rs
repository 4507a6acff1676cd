//! `/api/views`: saved views of the Explorer, kept as records of kind
//! `view` in the store's small-records seam, so every query instance sees
//! the same ones and they survive restarts. What a view is and how its JSON
//! is checked: `domain::view`.
//!
//! Anyone who may read logs may list, open and save views (the gate's row
//! for `/api/views` asks the viewer role); changing or deleting one is
//! decided here: its owner, or an editor (`domain::view::may_change`). A
//! view belongs to the tenant it was saved in and is seen only by requests
//! that may read that tenant; to others it does not exist (`404`). Every
//! change names itself for the audit log (`view.create`, `view.replace`,
//! `view.delete`).

use super::state::QueryState;
use crate::domain::principal::{AccessRole, Caller, Principal};
use crate::domain::tenant::{DEFAULT_TENANT, RequestTenants};
use crate::domain::time::{Micros, now_micros};
use crate::domain::view::{ID_ALPHABET, ID_LEN, View, ViewError, ViewSpec, is_view_id, may_change};
use crate::http::audit::describe_change;
use crate::http::error::ApiError;
use crate::store::alert_records::{AlertRecord, RecordKind};
use crate::tenants::TENANT_HEADER;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

/// Largest JSON body of a view (its query is at most 4096 characters).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Views a tenant may keep: every list reads them all, so their number is
/// bounded as every other list a request reads is.
const MAX_VIEWS_PER_TENANT: usize = 1000;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/views", web::get().to(list))
        .route("/api/views", web::post().to(create))
        .route("/api/views/{id}", web::get().to(get))
        .route("/api/views/{id}", web::put().to(replace))
        .route("/api/views/{id}", web::delete().to(delete));
}

impl From<ViewError> for ApiError {
    fn from(error: ViewError) -> ApiError {
        ApiError::bad_request(Some(error.field), error.message).at_position(error.position)
    }
}

/// `GET /api/views`: the views the caller may read, by name (ignoring
/// case), then id.
async fn list(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let mut views = visible_views(&request, &state).await?;
    views.sort_by(|a, b| {
        a.spec
            .name
            .to_lowercase()
            .cmp(&b.spec.name.to_lowercase())
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(HttpResponse::Ok().json(ViewList { views }))
}

#[derive(Serialize)]
struct ViewList {
    views: Vec<View>,
}

/// `POST /api/views`: saved in the caller's tenant, owned by the caller.
async fn create(
    request: HttpRequest,
    state: web::Data<QueryState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let spec = ViewSpec::from_json(&json_body(&body)?)?;
    let tenant = saving_tenant(&request)?;
    let stored = stored_views(&request, &state).await?;
    if stored.iter().filter(|view| view.tenant == tenant).count() >= MAX_VIEWS_PER_TENANT {
        return Err(ApiError::bad_request(
            Some("views".into()),
            format!(
                "tenant {tenant} keeps {MAX_VIEWS_PER_TENANT} saved views, the most it may: delete one first"
            ),
        ));
    }
    let taken: Vec<String> = stored.into_iter().map(|view| view.id).collect();
    let id = new_id(&taken)?;
    let now = now_micros();
    let view = View {
        id: id.clone(),
        spec,
        owner: principal(&request).name,
        tenant,
        created: now,
        updated: now,
    };
    save(&state, &view).await?;
    tracing::info!(%id, "view saved");
    let mut response = HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/views/{id}")))
        .json(&view);
    describe_change(&mut response, "view.create", Some(&id));
    Ok(response)
}

/// `GET /api/views/{id}`
async fn get(
    request: HttpRequest,
    state: web::Data<QueryState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&request, &state, &id).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/views/{id}`: replaces what the client chooses; the id, owner,
/// tenant and creation time stay.
async fn replace(
    request: HttpRequest,
    state: web::Data<QueryState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let old = find(&request, &state, &id).await?;
    changeable(&request, &old)?;
    let spec = ViewSpec::from_json(&json_body(&body)?)?;
    let view = View {
        spec,
        updated: later_than(old.updated),
        ..old
    };
    save(&state, &view).await?;
    tracing::info!(id = %view.id, "view replaced");
    let mut response = HttpResponse::Ok().json(&view);
    describe_change(&mut response, "view.replace", Some(&view.id));
    Ok(response)
}

/// `DELETE /api/views/{id}`
async fn delete(
    request: HttpRequest,
    state: web::Data<QueryState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = find(&request, &state, &id).await?;
    changeable(&request, &view)?;
    let record = AlertRecord {
        kind: RecordKind::View,
        id: view.id.clone(),
        body: None,
        updated: later_than(view.updated),
    };
    write(&state, record).await?;
    tracing::info!(id = %view.id, "view deleted");
    let mut response = HttpResponse::NoContent().finish();
    describe_change(&mut response, "view.delete", Some(&view.id));
    Ok(response)
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(Some("body".into()), format!("the body is not JSON: {e}"))
    })
}

/// Who is asking, as the gate left it. The gate admits nobody to these
/// routes without a principal; should one be missing, the caller gets the
/// least: an anonymous viewer, who owns nothing.
fn principal(request: &HttpRequest) -> Principal {
    request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.principal.clone())
        .unwrap_or_else(|| Principal::anonymous(AccessRole::Viewer))
}

/// The tenants the request may read; `None` with tenants off (every view
/// is everyone's then).
fn readable_tenants(request: &HttpRequest) -> Option<Vec<String>> {
    request
        .extensions()
        .get::<RequestTenants>()
        .map(|tenants| tenants.0.iter().map(|t| t.as_str().to_string()).collect())
}

/// The tenant a new view is saved in: the request's one tenant.
fn saving_tenant(request: &HttpRequest) -> Result<String, ApiError> {
    match readable_tenants(request).as_deref() {
        None => Ok(DEFAULT_TENANT.to_string()),
        Some([one]) => Ok(one.clone()),
        Some(_) => Err(ApiError::bad_request(
            Some(TENANT_HEADER.into()),
            format!("a view is saved in one tenant: name one in {TENANT_HEADER}"),
        )),
    }
}

/// Every stored view, whoever may read it. A record that is not a view (an
/// older or damaged body) is left out and logged, so one bad record does
/// not hide the others.
async fn stored_views(request: &HttpRequest, state: &QueryState) -> Result<Vec<View>, ApiError> {
    let records = state
        .read(
            super::client_gone::ClientSocket::of(request),
            state.records.alert_records(RecordKind::View, None),
        )
        .await?;
    Ok(records
        .into_iter()
        .filter_map(|record| {
            let body = record.body?;
            match serde_json::from_str::<View>(&body) {
                Ok(view) => Some(view),
                Err(error) => {
                    tracing::warn!(id = %record.id, %error, "a stored view cannot be read: left out");
                    None
                }
            }
        })
        .collect())
}

/// The views of the tenants the request may read.
async fn visible_views(request: &HttpRequest, state: &QueryState) -> Result<Vec<View>, ApiError> {
    let tenants = readable_tenants(request);
    let mut views = stored_views(request, state).await?;
    if let Some(tenants) = tenants {
        views.retain(|view| tenants.contains(&view.tenant));
    }
    Ok(views)
}

/// The view `id` if the request may read it; a view of another tenant is
/// answered like one that does not exist.
async fn find(request: &HttpRequest, state: &QueryState, id: &str) -> Result<View, ApiError> {
    let not_found = || {
        let shown: String = id.chars().take(40).collect();
        ApiError::not_found(format!("no view {shown}")).with_field("id")
    };
    if !is_view_id(id) {
        return Err(not_found());
    }
    visible_views(request, state)
        .await?
        .into_iter()
        .find(|view| view.id == id)
        .ok_or_else(not_found)
}

fn changeable(request: &HttpRequest, view: &View) -> Result<(), ApiError> {
    let principal = principal(request);
    if may_change(&principal, view) {
        return Ok(());
    }
    Err(ApiError::forbidden_field(
        "owner",
        format!(
            "this view belongs to {}: only its owner or an editor may change or delete it ({} is a {}); save a copy with POST /api/views instead",
            view.owner, principal.name, principal.role
        ),
    ))
}

async fn save(state: &QueryState, view: &View) -> Result<(), ApiError> {
    let record = AlertRecord {
        kind: RecordKind::View,
        id: view.id.clone(),
        body: Some(serde_json::to_string(view).map_err(ApiError::internal)?),
        updated: view.updated,
    };
    write(state, record).await
}

/// One record written, bounded by `query.timeout` like every store call of
/// the query role (and not abandoned when the client goes: a change is
/// finished).
async fn write(state: &QueryState, record: AlertRecord) -> Result<(), ApiError> {
    state
        .read(None, state.records.put_alert_records(&[record]))
        .await
}

/// Now, or just after `previous` when this instance's clock is behind the
/// one that wrote it: the store keeps the later of two writes of a record.
fn later_than(previous: Micros) -> Micros {
    now_micros().max(previous.saturating_add(1))
}

/// A fresh id: ten characters drawn from the system's randomness (36^10,
/// about 3.7e15 ids, so a short link cannot be guessed from another's),
/// different from every id taken.
fn new_id(taken: &[String]) -> Result<String, ApiError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let random = SystemRandom::new();
    loop {
        let mut id = String::with_capacity(ID_LEN);
        while id.len() < ID_LEN {
            let mut bytes = [0u8; 16];
            random
                .fill(&mut bytes)
                .map_err(|_| ApiError::internal("the system's randomness failed"))?;
            // 252 = 7 × 36: taking only bytes below it keeps every
            // character equally likely.
            for byte in bytes.into_iter().filter(|b| *b < 252) {
                if id.len() < ID_LEN {
                    id.push(char::from(ID_ALPHABET[usize::from(byte % 36)]));
                }
            }
        }
        if !taken.contains(&id) {
            return Ok(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_view_ids_and_not_taken() {
        let taken: Vec<String> = (0..200).map(|_| new_id(&[]).unwrap()).collect();
        assert!(taken.iter().all(|id| is_view_id(id)), "{taken:?}");
        let mut unique = taken.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), taken.len());
        let fresh = new_id(&taken).unwrap();
        assert!(!taken.contains(&fresh));
    }

    #[test]
    fn a_write_is_never_older_than_the_one_it_replaces() {
        let future = now_micros() + 60_000_000;
        assert_eq!(later_than(future), future + 1);
        assert!(later_than(0) > 0);
    }
}
