//! What each route needs: nothing, an ingest key, or an access role. One
//! table, [`ROLE_RULES`], holds every route that changes something (or
//! needs more than reading); a new such route adds its row there (the
//! tenants' pages have theirs already). A change under `/api/` that no row
//! names needs `admin`, so a route added without a row is closed, not open.
//!
//! Saved views are the one change every reader may make (their own views):
//! the gate lets any viewer through, and the handler decides who may change
//! or delete a given view (its owner or an editor: `domain::view`).

use crate::domain::principal::AccessRole;
use crate::domain::view::CHANGES_EVERY_VIEW;
use crate::metrics::Protocol;
use actix_web::http::Method;

/// What a request touches, which decides the credentials and the rate
/// limit it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `/health`, the dashboard's files, the sign-in flow's pages.
    Open,
    /// `/log`, `/log/bulk` and the shippers' paths: an ingest key.
    Ingest,
    /// At least `role`; `what` names the refused permission in a `403`'s
    /// `field` (`logs.read`, `alerts.write`, ...).
    Role {
        role: AccessRole,
        what: &'static str,
    },
}

/// Which methods a rule covers.
#[derive(Clone, Copy, Debug)]
pub enum Methods {
    /// Every method.
    Any,
    /// The state-changing ones: all but `GET`, `HEAD` and `OPTIONS`.
    Changes,
}

/// One row of the table: requests to `path` (the path itself or anything
/// below it) with these methods need `role`.
#[derive(Clone, Copy, Debug)]
pub struct RoleRule {
    pub methods: Methods,
    pub path: &'static str,
    pub role: AccessRole,
    pub what: &'static str,
}

/// Routes that change something, or need more than `viewer`. Checked in
/// order; the first match wins.
pub const ROLE_RULES: &[RoleRule] = &[
    RoleRule {
        methods: Methods::Changes,
        path: "/api/alerts",
        role: AccessRole::Editor,
        what: "alerts.write",
    },
    // Anyone who may read saves views; whose view one may change, the
    // handler decides (`query/views.rs`).
    RoleRule {
        methods: Methods::Changes,
        path: "/api/views",
        role: AccessRole::Viewer,
        what: "views.write",
    },
    RoleRule {
        methods: Methods::Any,
        path: "/api/tenants",
        role: AccessRole::Admin,
        what: "tenants",
    },
    RoleRule {
        methods: Methods::Any,
        path: "/api/audit",
        role: AccessRole::Admin,
        what: "audit.read",
    },
];

/// Permissions a handler decides rather than the gate, listed by
/// `/auth/me` beside the table's so the dashboard knows what to offer:
/// changing or deleting a saved view someone else owns.
pub const HANDLER_PERMISSIONS: &[(&str, AccessRole)] = &[("views.manage", CHANGES_EVERY_VIEW)];

/// Reading logs: every read endpoint, live tail, export, `/metrics`, the
/// Loki query API.
pub const READ: Access = Access::Role {
    role: AccessRole::Viewer,
    what: "logs.read",
};

/// A change no row of [`ROLE_RULES`] names.
const UNLISTED_CHANGE: Access = Access::Role {
    role: AccessRole::Admin,
    what: "admin",
};

/// Whether the method changes state (and so, with a session cookie, needs
/// the session's CSRF token).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `path` is `prefix` or below it (`/api/alerts/rules` is below
/// `/api/alerts`, `/api/alertsx` is not).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Access {
    pub fn of(method: &Method, path: &str) -> Access {
        let changes = changes_state(method);
        if let Some(rule) = ROLE_RULES.iter().find(|rule| {
            under(path, rule.path)
                && match rule.methods {
                    Methods::Any => true,
                    Methods::Changes => changes,
                }
        }) {
            return Access::Role {
                role: rule.role,
                what: rule.what,
            };
        }
        if Protocol::of_path(path).is_some() {
            return Access::Ingest;
        }
        // Loki's query endpoints take POST as well as GET; none changes anything.
        if under(path, "/loki/api/v1") {
            return READ;
        }
        if under(path, "/api") {
            return if changes { UNLISTED_CHANGE } else { READ };
        }
        if under(path, "/ws") || path == "/metrics" {
            return READ;
        }
        Access::Open
    }

    /// Whether the request counts against the query rate limit (reads,
    /// changes, and the sign-in flow, which calls the provider).
    pub fn counts_as_query(self, path: &str) -> bool {
        matches!(self, Access::Role { .. }) || under(path, "/auth")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(role: AccessRole, what: &'static str) -> Access {
        Access::Role { role, what }
    }

    #[test]
    fn paths_are_classified() {
        let get = |path| Access::of(&Method::GET, path);
        let post = |path| Access::of(&Method::POST, path);
        assert_eq!(post("/log"), Access::Ingest);
        assert_eq!(post("/log/bulk"), Access::Ingest);
        assert_eq!(post("/v1/logs"), Access::Ingest);
        assert_eq!(post("/loki/api/v1/push"), Access::Ingest);
        assert_eq!(post("/_bulk"), Access::Ingest);
        assert_eq!(post("/my-index/_bulk"), Access::Ingest);
        for open in [
            "/",
            "/logs",
            "/explorer",
            "/health",
            "/auth/login",
            "/assets/app.js",
        ] {
            assert_eq!(get(open), Access::Open, "{open}");
        }
        for read in [
            "/api/stats",
            "/api/logs",
            "/ws/live",
            "/metrics",
            "/api/alerts",
        ] {
            assert_eq!(get(read), READ, "{read}");
        }
        assert_eq!(get("/loki/api/v1/query_range"), READ);
        assert_eq!(post("/loki/api/v1/query_range"), READ);
        assert_eq!(get("/loki/api/v1/labels"), READ);
        let alerts = role(AccessRole::Editor, "alerts.write");
        assert_eq!(post("/api/alerts/rules"), alerts);
        assert_eq!(Access::of(&Method::PUT, "/api/alerts/rules/x"), alerts);
        assert_eq!(
            Access::of(&Method::DELETE, "/api/alerts/channels/x"),
            alerts
        );
        // Any reader saves views; the handler decides whose it may change.
        let views = role(AccessRole::Viewer, "views.write");
        assert_eq!(post("/api/views"), views);
        assert_eq!(Access::of(&Method::PUT, "/api/views/k3x9q2mw7h"), views);
        assert_eq!(Access::of(&Method::DELETE, "/api/views/k3x9q2mw7h"), views);
        assert_eq!(get("/api/views"), READ);
        assert_eq!(get("/api/views/k3x9q2mw7h"), READ);
        assert_eq!(get("/api/ui"), READ);
        // The short link of a view is the dashboard's page.
        assert_eq!(get("/v/k3x9q2mw7h"), Access::Open);
        assert_ne!(post("/api/viewsx"), views, "a path beside it is not it");
        assert_eq!(
            get("/api/tenants/usage"),
            role(AccessRole::Admin, "tenants")
        );
        // A change nobody listed is closed, not open.
        assert_eq!(post("/api/alertsx"), UNLISTED_CHANGE);
        assert_eq!(post("/api/logs"), UNLISTED_CHANGE);
        assert_eq!(
            Access::of(&Method::DELETE, "/api/whatever"),
            UNLISTED_CHANGE
        );
    }

    #[test]
    fn rate_limit_classes() {
        assert!(READ.counts_as_query("/api/logs"));
        assert!(Access::Open.counts_as_query("/auth/callback"));
        assert!(!Access::Open.counts_as_query("/health"));
        assert!(!Access::Ingest.counts_as_query("/log"));
    }
}
