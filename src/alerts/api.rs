//! `/api/alerts`: rules with their state, changes to the API's rules and
//! channels, test messages, recent notifications and a live preview of a
//! rule's count. Listing needs the viewer role, changing the editor role
//! (the gate decides, see `security::access`); the config file's rules and
//! channels are read-only (`403`, `field: "id"` or `"name"`). Each change
//! names itself for the audit log (`describe_change`).

use super::counting::{CountError, count_groups};
use super::evaluator::test_notification;
use super::notify::{Notification, group_text};
use super::rule::{Channel, ChannelSpec, Rule, RuleContext, RuleSpec, Source, SpecError};
use super::state::{AlertState, GroupState};
use super::{Alerts, Entry, StoredState};
use crate::domain::audit::names_audit_log;
use crate::domain::principal::Caller;
use crate::domain::query::Expr;
use crate::domain::tenant::{DEFAULT_TENANT, RequestTenants, TenantId};
use crate::domain::time::{Micros, format_rfc3339, now_micros};
use crate::http::audit::describe_change;
use crate::http::error::ApiError;
use crate::store::alert_records::{AlertRecord, RecordKind};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Largest JSON body of a rule or channel.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// A test message waits at most this long for its receiver.
const TEST_WITHIN: Duration = Duration::from_secs(15);
const DEFAULT_NOTIFICATIONS: usize = 50;
const MAX_NOTIFICATIONS: usize = 500;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/alerts", web::get().to(list))
        .route("/api/alerts/preview", web::get().to(preview))
        .route("/api/alerts/notifications", web::get().to(notifications))
        .route("/api/alerts/rules", web::post().to(create_rule))
        .route("/api/alerts/rules/{id}", web::put().to(replace_rule))
        .route("/api/alerts/rules/{id}", web::delete().to(delete_rule))
        .route("/api/alerts/rules/{id}/test", web::post().to(test_rule))
        .route("/api/alerts/channels", web::post().to(create_channel))
        .route(
            "/api/alerts/channels/{name}",
            web::put().to(replace_channel),
        )
        .route(
            "/api/alerts/channels/{name}",
            web::delete().to(delete_channel),
        );
}

impl From<SpecError> for ApiError {
    fn from(error: SpecError) -> ApiError {
        ApiError::bad_request(Some(error.field), error.message)
    }
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(Some("body".into()), format!("the body is not JSON: {e}"))
    })
}

/// `30s`, `5m`, `1h`, `1.5s`.
fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    match duration.as_secs() {
        s if s > 0 && s % 3600 == 0 && duration.subsec_nanos() == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 && duration.subsec_nanos() == 0 => format!("{}m", s / 60),
        _ => format!("{seconds}s"),
    }
}

fn time(micros: Option<Micros>) -> Value {
    micros.map_or(Value::Null, |m| Value::String(format_rfc3339(m)))
}

#[derive(Serialize)]
struct GroupView<'a> {
    labels: &'a BTreeMap<String, String>,
    state: AlertState,
    value: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_since: Option<String>,
}

fn group_view(group: &GroupState) -> GroupView<'_> {
    GroupView {
        labels: &group.labels,
        state: group.state,
        value: group.value,
        active_since: group.active_since.map(format_rfc3339),
    }
}

fn rule_view(entry: &Entry, state: Option<&StoredState>) -> Value {
    let mut view = serde_json::to_value(&entry.spec).unwrap_or_else(|_| json!({}));
    let state = state.map(|s| &s.state);
    let error = match (&entry.rule, state.and_then(|s| s.error.clone())) {
        (Err(invalid), _) => Some(format!("not evaluated: {invalid}")),
        (Ok(_), error) => error,
    };
    if let Value::Object(fields) = &mut view {
        fields.insert("id".into(), json!(entry.id));
        fields.insert("source".into(), json!(entry.source));
        fields.insert("read_only".into(), json!(entry.source == Source::Config));
        fields.insert(
            "state".into(),
            json!(state.map_or(AlertState::Inactive, |s| s.overall())),
        );
        fields.insert("last_value".into(), json!(state.and_then(|s| s.last_value)));
        fields.insert(
            "last_evaluation".into(),
            time(state.and_then(|s| s.last_evaluation)),
        );
        fields.insert(
            "groups".into(),
            json!(
                state
                    .map(|s| s.groups.iter().map(group_view).collect::<Vec<_>>())
                    .unwrap_or_default()
            ),
        );
        fields.insert("error".into(), json!(error));
    }
    view
}

fn channel_view(channel: &Channel) -> Value {
    json!({
        "name": channel.name,
        "kind": channel.kind,
        "url": channel.redacted_url(),
        "source": channel.source,
        "read_only": channel.source == Source::Config,
    })
}

/// `GET /api/alerts`
async fn list(request: HttpRequest, alerts: web::Data<Alerts>) -> Result<HttpResponse, ApiError> {
    let channels = alerts.channels().await?;
    let mut entries = alerts.entries(&channels).await?;
    // With tenants on, a team sees its own tenants' rules.
    if let Some(tenants) = request.extensions().get::<RequestTenants>() {
        entries.retain(|entry| {
            let tenant = entry.spec.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
            tenants.0.iter().any(|t| t.as_str() == tenant)
        });
    }
    let states = alerts.states().await?;
    let rules: Vec<Value> = entries
        .iter()
        .map(|entry| rule_view(entry, states.get(&entry.id)))
        .collect();
    let firing = entries
        .iter()
        .filter_map(|entry| states.get(&entry.id))
        .map(|s| s.state.firing_groups())
        .sum::<usize>();
    Ok(HttpResponse::Ok().json(json!({
        "rules": rules,
        "channels": channels.iter().map(channel_view).collect::<Vec<_>>(),
        "firing": firing,
        "evaluation_interval": duration_text(alerts.config.evaluation_interval),
    })))
}

fn find<'a>(entries: &'a [Entry], id: &str) -> Result<&'a Entry, ApiError> {
    entries
        .iter()
        .find(|entry| entry.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no alert rule with id {id:?}")))
}

fn writable(entry: &Entry) -> Result<(), ApiError> {
    if entry.source == Source::Config {
        return Err(ApiError::forbidden_field(
            "id",
            "this rule comes from the config file ([[alerts.rules]]): change it there",
        ));
    }
    Ok(())
}

/// Only a caller who may read the audit log may count it: a query naming
/// it (see `names_audit_log`) is refused to anyone else (`403`, `query`).
fn may_count(request: &HttpRequest, expr: &Expr) -> Result<(), ApiError> {
    let may_read_audit = request
        .extensions()
        .get::<Caller>()
        .is_some_and(Caller::may_read_audit);
    if names_audit_log(expr) && !may_read_audit {
        return Err(ApiError::forbidden_field(
            "query",
            "only an admin may count the audit log (service oglogstream.audit, audit.* attributes)",
        ));
    }
    Ok(())
}

/// The tenant a rule written through the API counts: the one it names, if
/// the request may act for it, else the request's one tenant.
fn rule_tenant(request: &HttpRequest, named: Option<&str>) -> Result<Option<String>, ApiError> {
    let extensions = request.extensions();
    let Some(tenants) = extensions.get::<RequestTenants>() else {
        return match named {
            None => Ok(None),
            Some(tenant) if tenant == DEFAULT_TENANT => Ok(None),
            Some(_) => Err(ApiError::bad_request(
                Some("tenant".into()),
                "tenants are off (tenants.enabled): a rule counts every log",
            )),
        };
    };
    match (named, tenants.0.as_slice()) {
        (Some(tenant), allowed) => {
            if allowed.iter().any(|t| t.as_str() == tenant) {
                Ok(Some(tenant.to_string()))
            } else {
                Err(ApiError::forbidden_field(
                    "tenant",
                    format!("this request may not act for tenant {tenant:?}"),
                ))
            }
        }
        (None, [one]) => Ok(Some(one.to_string())),
        (None, _) => Err(ApiError::bad_request(
            Some("tenant".into()),
            "the request acts for several tenants: name the rule's tenant",
        )),
    }
}

/// Validates a rule body against the current channels and the other rules.
async fn validated(
    request: &HttpRequest,
    alerts: &Alerts,
    body: &[u8],
    id: &str,
) -> Result<(Rule, Vec<Entry>), ApiError> {
    let mut spec = RuleSpec::from_json(&json_body(body)?)?;
    spec.tenant = rule_tenant(request, spec.tenant.as_deref())?;
    let channels = alerts.channels().await?;
    let rule = spec.validate(
        id,
        Source::Api,
        &RuleContext {
            channels: &channels,
            evaluation_interval: alerts.config.evaluation_interval,
        },
    )?;
    may_count(request, &rule.expr)?;
    let entries = alerts.entries(&channels).await?;
    if entries
        .iter()
        .any(|e| e.id != id && e.spec.name.trim() == rule.spec.name)
    {
        return Err(SpecError::new("name", "another rule has this name").into());
    }
    Ok((rule, entries))
}

async fn save_rule(alerts: &Alerts, rule: &Rule) -> Result<(), ApiError> {
    let record = AlertRecord {
        kind: RecordKind::Rule,
        id: rule.id.clone(),
        body: Some(serde_json::to_string(&rule.spec).map_err(ApiError::internal)?),
        updated: now_micros(),
    };
    Ok(alerts.records.put_alert_records(&[record]).await?)
}

/// `POST /api/alerts/rules`
async fn create_rule(
    request: HttpRequest,
    alerts: web::Data<Alerts>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = alerts.new_id();
    let (rule, _) = validated(&request, &alerts, &body, &id).await?;
    save_rule(&alerts, &rule).await?;
    tracing::info!(rule = %rule.spec.name, %id, "alert rule created");
    let mut response = HttpResponse::Created().json(json!({"id": id}));
    describe_change(&mut response, "alert_rule.create", Some(&id));
    Ok(response)
}

/// `PUT /api/alerts/rules/{id}`: replaces the whole rule.
async fn replace_rule(
    request: HttpRequest,
    alerts: web::Data<Alerts>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let channels = alerts.channels().await?;
    writable(find(&alerts.entries(&channels).await?, &id)?)?;
    let (rule, _) = validated(&request, &alerts, &body, &id).await?;
    save_rule(&alerts, &rule).await?;
    tracing::info!(rule = %rule.spec.name, id = %id.as_str(), "alert rule replaced");
    let mut response = HttpResponse::Ok().json(json!({"id": id.as_str()}));
    describe_change(&mut response, "alert_rule.replace", Some(&id));
    Ok(response)
}

/// `DELETE /api/alerts/rules/{id}`: its firing alerts resolve at the next
/// evaluation.
async fn delete_rule(
    alerts: web::Data<Alerts>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channels = alerts.channels().await?;
    writable(find(&alerts.entries(&channels).await?, &id)?)?;
    alerts
        .records
        .put_alert_records(&[AlertRecord {
            kind: RecordKind::Rule,
            id: id.to_string(),
            body: None,
            updated: now_micros(),
        }])
        .await?;
    tracing::info!(id = %id.as_str(), "alert rule deleted");
    let mut response = HttpResponse::NoContent().finish();
    describe_change(&mut response, "alert_rule.delete", Some(&id));
    Ok(response)
}

/// `POST /api/alerts/rules/{id}/test`: one message to each of the rule's
/// channels, answered with how each went.
async fn test_rule(
    alerts: web::Data<Alerts>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let channels = alerts.channels().await?;
    let entries = alerts.entries(&channels).await?;
    let entry = find(&entries, &id)?;
    let rule = entry.rule.as_ref().map_err(|e| {
        ApiError::bad_request(Some(e.field.clone()), format!("the rule is not valid: {e}"))
    })?;
    if rule.spec.channels.is_empty() {
        return Err(SpecError::new("channels", "the rule has no channels to test").into());
    }
    let states = alerts.states().await?;
    let state = states.get(&rule.id).map(|s| &s.state);
    let alerts = &alerts;
    let sends = rule.spec.channels.iter().filter_map(|name| {
        let channel = channels.iter().find(|c| &c.name == name)?;
        let notification = test_notification(alerts, rule, channel, state);
        Some(async move {
            let delivery = alerts
                .notifier
                .test(notification, channel.clone(), TEST_WITHIN)
                .await;
            json!({
                "channel": channel.name,
                "kind": channel.kind,
                "delivery": delivery.state,
                "attempts": delivery.attempts,
                "error": delivery.last_error,
            })
        })
    });
    let results = futures_util::future::join_all(sends).await;
    let mut response = HttpResponse::Ok().json(json!({"results": results}));
    describe_change(&mut response, "alert_rule.test", Some(&rule.id));
    Ok(response)
}

fn notification_view(notification: &Notification) -> Value {
    json!({
        "id": notification.id,
        "created": format_rfc3339(notification.created),
        "rule_id": notification.rule_id,
        "rule_name": notification.rule_name,
        "channel": notification.channel,
        "status": notification.status,
        "change": notification.change,
        "test": notification.is_test(),
        "group": notification.group,
        "group_text": group_text(&notification.group),
        "value": notification.value,
        "threshold": notification.threshold,
        "delivery": notification.delivery.state,
        "attempts": notification.delivery.attempts,
        "error": notification.delivery.last_error,
        "delivered_at": time(notification.delivery.finished),
    })
}

fn query_pairs(request: &HttpRequest) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
        .map_err(|e| ApiError::bad_request(None, format!("unreadable query string: {e}")))?;
    Ok(pairs.into_iter().collect())
}

/// `GET /api/alerts/notifications?limit=50`: newest first.
async fn notifications(
    request: HttpRequest,
    alerts: web::Data<Alerts>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&request)?;
    let limit = match pairs.get("limit") {
        None => DEFAULT_NOTIFICATIONS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_NOTIFICATIONS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_parameter("limit", format!("use 1 to {MAX_NOTIFICATIONS}"))
            })?,
    };
    let list = alerts.notifications(limit).await?;
    Ok(HttpResponse::Ok().json(json!({
        "notifications": list.iter().map(notification_view).collect::<Vec<_>>()
    })))
}

/// `GET /api/alerts/preview?query=...&window=5m&group_by=service`: what the
/// rule would count now, for the dashboard's form (`tenant=` as the rule's
/// `tenant` when the request acts for several).
async fn preview(
    request: HttpRequest,
    alerts: web::Data<Alerts>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&request)?;
    let group_by: Vec<String> = pairs
        .get("group_by")
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let rule = RuleSpec::counting_only(
        pairs.get("query").map_or("", String::as_str),
        pairs.get("window").map_or("5m", String::as_str),
        group_by,
    )
    .map_err(|e| ApiError::bad_parameter(&e.field, e.message))?;
    let mut rule = rule;
    // The tenant the rule would count, chosen as creating it would: a
    // request of several tenants names one (`tenant=`).
    if let Some(tenant) = rule_tenant(&request, pairs.get("tenant").map(String::as_str))? {
        rule.tenant = TenantId::parse(&tenant)
            .map_err(|error| ApiError::bad_parameter("tenant", error.to_string()))?;
    }
    may_count(&request, &rule.expr)?;
    let to = now_micros();
    let from = to - rule.window.as_micros() as Micros;
    let mut groups = count_groups(&*alerts.store, &rule, from, to, alerts.read_timeout)
        .await
        .map_err(|error| match error {
            CountError::Store(error) => ApiError::from(error),
            CountError::TooManyLogs => ApiError::bad_parameter("group_by", error),
            CountError::TimedOut(_) => ApiError::unavailable(error.to_string(), 1),
        })?;
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: u64 = groups.iter().map(|(_, n)| n).sum();
    let largest = groups.first().map_or(0, |(_, n)| *n);
    groups.truncate(super::rule::MAX_GROUPS);
    Ok(HttpResponse::Ok().json(json!({
        "from": format_rfc3339(from),
        "to": format_rfc3339(to),
        "count": total,
        "largest_group": largest,
        "groups": groups
            .iter()
            .map(|(labels, value)| json!({"labels": labels, "value": value}))
            .collect::<Vec<_>>(),
    })))
}

/// Validates a channel body; `name` from the path must match when given.
fn channel_from(body: &[u8]) -> Result<(ChannelSpec, Channel), ApiError> {
    let spec = ChannelSpec::from_json(&json_body(body)?)?;
    let channel = spec.validate(Source::Api)?;
    Ok((spec, channel))
}

async fn save_channel(alerts: &Alerts, spec: &ChannelSpec, name: &str) -> Result<(), ApiError> {
    let spec = ChannelSpec {
        name: name.to_string(),
        ..spec.clone()
    };
    let record = AlertRecord {
        kind: RecordKind::Channel,
        id: name.to_string(),
        body: Some(serde_json::to_string(&spec).map_err(ApiError::internal)?),
        updated: now_micros(),
    };
    Ok(alerts.records.put_alert_records(&[record]).await?)
}

fn config_channel(alerts: &Alerts, name: &str) -> Result<(), ApiError> {
    if alerts.config.channels.iter().any(|c| c.name == name) {
        return Err(ApiError::forbidden_field(
            "name",
            "this channel comes from the config file ([[alerts.channels]]): change it there",
        ));
    }
    Ok(())
}

/// `POST /api/alerts/channels`
async fn create_channel(
    alerts: web::Data<Alerts>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (spec, channel) = channel_from(&body)?;
    if alerts
        .channels()
        .await?
        .iter()
        .any(|c| c.name == channel.name)
    {
        return Err(
            SpecError::new("name", "a channel with this name exists: PUT to change it").into(),
        );
    }
    save_channel(&alerts, &spec, &channel.name).await?;
    let mut response = HttpResponse::Created().json(json!({"name": channel.name}));
    describe_change(&mut response, "alert_channel.create", Some(&channel.name));
    Ok(response)
}

/// `PUT /api/alerts/channels/{name}`
async fn replace_channel(
    alerts: web::Data<Alerts>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    config_channel(&alerts, &name)?;
    let (spec, channel) = channel_from(&body)?;
    if channel.name != *name {
        return Err(SpecError::new(
            "name",
            "the name in the body differs from the one in the path",
        )
        .into());
    }
    if !alerts
        .channels()
        .await?
        .iter()
        .any(|c| c.name == channel.name)
    {
        return Err(ApiError::not_found(format!(
            "no channel named {:?}",
            name.as_str()
        )));
    }
    save_channel(&alerts, &spec, &name).await?;
    let mut response = HttpResponse::Ok().json(json!({"name": name.as_str()}));
    describe_change(&mut response, "alert_channel.replace", Some(&name));
    Ok(response)
}

/// `DELETE /api/alerts/channels/{name}`: refused while a rule uses it.
async fn delete_channel(
    alerts: web::Data<Alerts>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    config_channel(&alerts, &name)?;
    let channels = alerts.channels().await?;
    if !channels.iter().any(|c| c.name == *name) {
        return Err(ApiError::not_found(format!(
            "no channel named {:?}",
            name.as_str()
        )));
    }
    let users: Vec<String> = alerts
        .entries(&channels)
        .await?
        .iter()
        .filter(|e| e.spec.channels.iter().any(|c| c == name.as_str()))
        .map(|e| e.spec.name.clone())
        .collect();
    if !users.is_empty() {
        return Err(SpecError::new(
            "name",
            format!("the channel is used by the rules {}", users.join(", ")),
        )
        .into());
    }
    alerts
        .records
        .put_alert_records(&[AlertRecord {
            kind: RecordKind::Channel,
            id: name.to_string(),
            body: None,
            updated: now_micros(),
        }])
        .await?;
    let mut response = HttpResponse::build(StatusCode::NO_CONTENT).finish();
    describe_change(&mut response, "alert_channel.delete", Some(&name));
    Ok(response)
}
