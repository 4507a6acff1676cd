//! The client's connect options (TLS, credentials) and the connection's
//! events, turned into what `/health` and the log say while the client
//! cannot connect. async-nats reports a failed attempt by its kind only
//! ("authorization violation", "IO error"), so the words that name the
//! setting to fix are added here.

use super::credentials::NatsCredentials;
use super::settings::NatsConfig;
use crate::bus::BusError;
use crate::tls::client::{CertificateCheck, ClientTls};
use async_nats::{ClientError, ConnectOptions, Event, ServerError};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// What the connection's events update, read by `Shared`.
#[derive(Clone, Default)]
pub(super) struct Link {
    /// Since when the client has been disconnected after having been
    /// connected (`None` while connected, or before the first connection).
    pub(super) disconnected_since: Arc<Mutex<Option<Instant>>>,
    /// Why the last attempt to connect failed, naming the setting to fix;
    /// `None` once connected, or when the reason is only "unreachable".
    pub(super) problem: Arc<Mutex<Option<String>>>,
}

/// The options for `config`'s servers, TLS and credentials. Fails only for
/// files that cannot be used (named by their setting).
pub(super) fn connect_options(
    config: &NatsConfig,
    client_name: &str,
    link: &Link,
) -> Result<ConnectOptions, BusError> {
    let mut options = ConnectOptions::new().name(client_name);
    let wants_tls = config.tls.is_set()
        || config
            .servers
            .iter()
            .any(|server| server.starts_with("tls://"));
    let check = if wants_tls {
        let (tls, check) = config
            .tls
            .client_config()
            .map_err(|error| BusError::Unavailable(error.to_string()))?;
        // With our settings TLS is required: a server that offers none is
        // refused rather than sent credentials in clear text.
        options = options
            .tls_client_config(tls)
            .require_tls(config.tls.is_set());
        Some(check)
    } else {
        None
    };
    options = match &config.credentials {
        NatsCredentials::None => options,
        NatsCredentials::UserPassword { user, password, .. } => {
            options.user_and_password(user.clone(), password.expose().to_string())
        }
        NatsCredentials::Token { token, .. } => options.token(token.expose().to_string()),
        NatsCredentials::Nkey(seed) => options.nkey(seed.expose().to_string()),
        NatsCredentials::Jwt(creds) => options.credentials(creds.expose()).map_err(|error| {
            BusError::Unavailable(format!("nats.creds_file: cannot be used: {error}"))
        })?,
    };
    let explainer = Explainer {
        credentials: config.credentials.clone(),
        tls: config.tls.clone(),
        check,
    };
    let link = link.clone();
    Ok(options.event_callback(move |event| {
        let link = link.clone();
        let problem = explainer.explain(&event);
        async move {
            if let Ok(mut since) = link.disconnected_since.lock() {
                match event {
                    Event::Disconnected => {
                        since.get_or_insert_with(Instant::now);
                    }
                    Event::Connected => *since = None,
                    _ => {}
                }
            }
            if let Ok(mut last) = link.problem.lock() {
                match (event, problem) {
                    (Event::Connected, _) => *last = None,
                    (_, Some(problem)) => {
                        if last.as_deref() != Some(problem.as_str()) {
                            // An operator must act: the client retries, but
                            // the same refusal will come back.
                            tracing::error!(%problem, "cannot connect to NATS");
                        }
                        *last = Some(problem);
                    }
                    _ => {}
                }
            }
        }
    }))
}

struct Explainer {
    credentials: NatsCredentials,
    tls: ClientTls,
    check: Option<CertificateCheck>,
}

impl Explainer {
    /// What an event means for the operator, naming settings; `None` for
    /// events that need no explaining (connected, a server simply down).
    fn explain(&self, event: &Event) -> Option<String> {
        let refused_credentials = || {
            Some(match self.credentials {
                NatsCredentials::None => format!(
                    "NATS requires credentials ({}) (authorization violation)",
                    self.credentials.settings()
                ),
                _ => format!(
                    "NATS refused the credentials in {} (authorization violation)",
                    self.credentials.settings()
                ),
            })
        };
        match event {
            Event::ServerError(ServerError::AuthorizationViolation) => refused_credentials(),
            Event::ServerError(ServerError::Other(text))
                if text.contains("expired") || text.contains("authentication") =>
            {
                Some(format!(
                    "NATS refused the credentials in {}: {text}",
                    self.credentials.settings()
                ))
            }
            Event::ClientError(ClientError::Other(kind)) => {
                if kind.contains("authorization violation") {
                    return refused_credentials();
                }
                if kind.contains("signing nonce") {
                    return Some(format!(
                        "cannot sign NATS's challenge with {}: is it a user nkey seed?",
                        self.credentials.settings()
                    ));
                }
                if let Some(refusal) = self.check.as_ref().and_then(CertificateCheck::last_refusal)
                {
                    return Some(format!(
                        "NATS's TLS certificate is not trusted ({}): {refusal}",
                        self.tls.trust_setting("nats")
                    ));
                }
                if self
                    .check
                    .as_ref()
                    .is_some_and(CertificateCheck::identity_missing)
                {
                    return Some(
                        "NATS asks for a client certificate: set nats.tls_cert and nats.tls_key"
                            .to_string(),
                    );
                }
                if kind.contains("TLS") {
                    return Some(format!(
                        "TLS with NATS failed ({kind}): check that the server has TLS, and nats.tls_ca, nats.tls_cert and nats.tls_key"
                    ));
                }
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::settings::Secret;

    fn explainer(credentials: NatsCredentials) -> Explainer {
        Explainer {
            credentials,
            tls: ClientTls::default(),
            check: None,
        }
    }

    #[test]
    fn refusals_name_the_settings_to_fix() {
        let other = |text: &str| Event::ClientError(ClientError::Other(text.to_string()));
        let password = explainer(NatsCredentials::UserPassword {
            user: "app".into(),
            password: Secret::new("hunter2"),
            from: "nats.password_file",
        });
        let said = password.explain(&other("authorization violation")).unwrap();
        assert!(said.contains("nats.user and nats.password_file"), "{said}");
        assert!(!said.contains("hunter2"));
        let said = explainer(NatsCredentials::None)
            .explain(&Event::ServerError(ServerError::AuthorizationViolation))
            .unwrap();
        assert!(
            said.contains("requires credentials") && said.contains("nats.token"),
            "{said}"
        );
        let said = explainer(NatsCredentials::Nkey(Secret::new("SU")))
            .explain(&other("failed signing nonce"))
            .unwrap();
        assert!(said.contains("nats.nkey_seed_file"), "{said}");
        let said = password.explain(&other("TLS error")).unwrap();
        assert!(said.contains("nats.tls_ca"), "{said}");
        assert_eq!(password.explain(&other("IO error")), None);
        assert_eq!(password.explain(&Event::Connected), None);
    }
}
