//! The audit log: sign-ins, sign-outs, refusals (`401`, `403`) and changes,
//! kept as ordinary logs of the reserved service [`AUDIT_SERVICE`] so every
//! store and topology keeps them and the explorer, export and alerts work on
//! them. Ingest refuses that service name on every protocol
//! ([`is_reserved_service`]), so what the service holds was written by us.
//! Pure: [`audit_record`] is the one place an event becomes a log record.

use super::attributes::Attributes;
use super::level::Level;
use super::log::LogRecord;
use super::principal::{AccessRole, Principal};
use super::query::{Expr, Matcher, Pattern, Predicate, TextField};
use super::time::Micros;
use std::fmt;
use std::net::IpAddr;

pub use super::log::AUDIT_SERVICE;

/// Why ingest refuses a log of the audit service.
pub const RESERVED_SERVICE_ERROR: &str =
    "service \"oglogstream.audit\" is reserved for the audit log: no ingest path may write it";

/// Whether ingest must refuse this service name. Compared as the query
/// language compares services (case-insensitively), so no spelling of it
/// can pass for the audit log in a search.
pub fn is_reserved_service(service: &str) -> bool {
    service.trim().eq_ignore_ascii_case(AUDIT_SERVICE)
}

/// "Not the audit log", as a condition on logs: what a principal that may
/// not read it gets ANDed to every read (see `principal::may_read_audit`).
pub fn hidden_audit_condition() -> Expr {
    Expr::Not(Box::new(Expr::Is(Predicate::Text {
        field: TextField::Service,
        matcher: Matcher::Equals(Pattern::literal(AUDIT_SERVICE)),
    })))
}

/// Whether a query names the audit log: tests its service with a pattern
/// the audit service matches (`service:"oglogstream.audit"`,
/// `service:oglog*`), or one of its attributes (`audit.*`). Alert rules see
/// the audit log only when they name it, and only an admin may make one
/// that does, so a rule cannot count what its author may not read.
pub fn names_audit_log(expr: &Expr) -> bool {
    let audit = LogRecord {
        id: String::new(),
        timestamp: 0,
        level: Level::Info,
        service: AUDIT_SERVICE.to_string(),
        message: String::new(),
        attributes: Attributes::new(),
        tenant: Default::default(),
        trace_id: None,
        span_id: None,
    };
    let mut names = false;
    expr.for_each_predicate(&mut |predicate| {
        names |= match predicate {
            Predicate::Text {
                field: TextField::Service,
                ..
            } => Expr::Is(predicate.clone()).matches(&audit),
            Predicate::Text {
                field: TextField::Attribute(key),
                ..
            }
            | Predicate::Present { key }
            | Predicate::Compare { key, .. } => key.starts_with("audit."),
            _ => false,
        };
    });
    names
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Tried and failed (a sign-in the provider or our checks refused, a
    /// change answered with an error).
    Failure,
    /// Refused for want of credentials or rights (`401`, `403`).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Actions of the sign-in flow and of refusals; changes name themselves
/// (`alert_rule.create`, ...).
pub mod action {
    pub const SIGN_IN: &str = "sign_in";
    pub const SIGN_IN_FAILED: &str = "sign_in_failed";
    pub const SIGN_OUT: &str = "sign_out";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    /// A state-changing request whose handler named no action of its own.
    pub const CHANGE: &str = "change";
}

/// Who did it: a principal, or for a request without valid credentials,
/// what it presented (a key's fingerprint, never the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    /// `session`, `key`, `anonymous`, or `none` (nothing valid presented).
    pub credential: &'static str,
    pub role: Option<AccessRole>,
}

impl Actor {
    pub fn of(principal: &Principal) -> Actor {
        Actor {
            name: principal.name.clone(),
            credential: principal.credential.as_str(),
            role: Some(principal.role),
        }
    }

    /// A caller without valid credentials; `name` is what it presented.
    pub fn unidentified(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            credential: "none",
            role: None,
        }
    }
}

/// One audited event: who, what, from where, and how it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: String,
    pub outcome: Outcome,
    pub actor: Actor,
    pub client_ip: Option<IpAddr>,
    /// The request, when the event is one.
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    /// What was acted on: a rule's id, a channel's name.
    pub target: Option<String>,
    /// Why it was refused or failed, or what was refused (a `403`'s field).
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

impl AuditEvent {
    pub fn new(action: impl Into<String>, outcome: Outcome, actor: Actor) -> AuditEvent {
        AuditEvent {
            action: action.into(),
            outcome,
            actor,
            client_ip: None,
            method: None,
            path: None,
            status: None,
            target: None,
            reason: None,
            request_id: None,
        }
    }
}

/// Values taken from requests (paths, reasons) are cut to this many bytes,
/// so an audit record stays small whatever a client sends.
const MAX_VALUE_BYTES: usize = 512;

/// The log record of an event. Every audit record is built here, so a new
/// field of `LogRecord` is filled in one place.
pub fn audit_record(event: &AuditEvent, id: String, timestamp: Micros) -> LogRecord {
    let mut attributes = Attributes::new();
    let mut put = |key: &str, value: &str| {
        attributes.insert(format!("audit.{key}"), cut(value).to_string());
    };
    put("action", &event.action);
    put("outcome", event.outcome.as_str());
    put("actor", &event.actor.name);
    put("credential", event.actor.credential);
    if let Some(role) = event.actor.role {
        put("role", role.as_str());
    }
    if let Some(ip) = event.client_ip {
        put("client_ip", &ip.to_string());
    }
    for (key, value) in [
        ("method", &event.method),
        ("path", &event.path),
        ("target", &event.target),
        ("reason", &event.reason),
        ("request_id", &event.request_id),
    ] {
        if let Some(value) = value {
            put(key, value);
        }
    }
    if let Some(status) = event.status {
        put("status", &status.to_string());
    }
    let mut message = format!("{} by {}", event.action, cut(&event.actor.name));
    if let Some(target) = &event.target {
        message.push_str(&format!(" on {}", cut(target)));
    } else if let (Some(method), Some(path)) = (&event.method, &event.path) {
        message.push_str(&format!(" ({method} {})", cut(path)));
    }
    message.push_str(&format!(": {}", event.outcome));
    if let Some(reason) = &event.reason {
        message.push_str(&format!(" ({})", cut(reason)));
    }
    LogRecord {
        id,
        timestamp,
        level: match event.outcome {
            Outcome::Success => Level::Info,
            Outcome::Failure | Outcome::Denied => Level::Warn,
        },
        service: AUDIT_SERVICE.to_string(),
        message,
        attributes,
        // The deployment's own log: kept under the default tenant, read by
        // admins (whatever tenant they name: `Scope::audit`).
        tenant: Default::default(),
        trace_id: None,
        span_id: None,
    }
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_VALUE_BYTES {
        return text;
    }
    let mut end = MAX_VALUE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::principal::{Credential, Principal};

    #[test]
    fn reserved_in_every_spelling_the_query_language_would_match() {
        assert!(is_reserved_service("oglogstream.audit"));
        assert!(is_reserved_service(" OGLogStream.Audit "));
        assert!(!is_reserved_service("oglogstream.audit2"));
        assert!(!is_reserved_service("oglogstream"));
        let hidden = hidden_audit_condition();
        let mut record = audit_record(
            &AuditEvent::new("x", Outcome::Success, Actor::unidentified("k")),
            "id".into(),
            0,
        );
        assert!(!hidden.matches(&record));
        record.service = "OGLOGSTREAM.AUDIT".into();
        assert!(!hidden.matches(&record), "hidden in any case");
        record.service = "web".into();
        assert!(hidden.matches(&record));
    }

    #[test]
    fn queries_that_name_the_audit_log() {
        let names = |text: &str| names_audit_log(&crate::domain::query::parse(text).unwrap());
        assert!(names("service:\"oglogstream.audit\""));
        assert!(names("service:OGLOG* level:warn"));
        assert!(names("audit.action:forbidden"));
        assert!(names("audit.status:>=400"));
        assert!(names("level:error OR service:oglogstream.audit"));
        assert!(!names("level:warn"));
        assert!(!names("service:web"));
        assert!(!names("auditor:x"));
        assert!(!names(""));
    }

    #[test]
    fn a_record_says_who_what_where_and_how_it_went() {
        let principal = Principal {
            name: "alice".into(),
            role: AccessRole::Editor,
            credential: Credential::Session,
            tenants: None,
        };
        let mut event =
            AuditEvent::new("alert_rule.create", Outcome::Success, Actor::of(&principal));
        event.client_ip = Some("198.51.100.7".parse().unwrap());
        event.method = Some("POST".into());
        event.path = Some("/api/alerts/rules".into());
        event.status = Some(201);
        event.target = Some("rule-1".into());
        let record = audit_record(&event, "id-1".into(), 42);
        assert_eq!(record.service, AUDIT_SERVICE);
        assert_eq!(record.level, Level::Info);
        assert_eq!(record.timestamp, 42);
        assert_eq!(
            record.message,
            "alert_rule.create by alice on rule-1: success"
        );
        let attribute = |key: &str| record.attributes.get(key).map(String::as_str);
        assert_eq!(attribute("audit.actor"), Some("alice"));
        assert_eq!(attribute("audit.credential"), Some("session"));
        assert_eq!(attribute("audit.role"), Some("editor"));
        assert_eq!(attribute("audit.client_ip"), Some("198.51.100.7"));
        assert_eq!(attribute("audit.status"), Some("201"));
        assert_eq!(attribute("audit.outcome"), Some("success"));

        let mut denied = AuditEvent::new(
            action::UNAUTHORIZED,
            Outcome::Denied,
            Actor::unidentified("key:sha256:0123456789abcdef"),
        );
        denied.method = Some("GET".into());
        denied.path = Some(format!("/api/logs/{}", "é".repeat(600)));
        let record = audit_record(&denied, "id-2".into(), 1);
        assert_eq!(record.level, Level::Warn);
        assert!(record.attributes["audit.path"].len() <= MAX_VALUE_BYTES);
        assert!(
            record
                .message
                .starts_with("unauthorized by key:sha256:0123456789abcdef (GET /api/logs/")
        );
        assert_eq!(record.attributes.get("audit.role"), None);
    }
}
