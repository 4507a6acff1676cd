//! How this process signs in to NATS, one of the ways `nats-server`
//! deployments ask for: a user and password, a token, a user nkey (the
//! server lists its public key), or a user JWT with its nkey seed (a
//! `.creds` file, for servers run in operator mode with accounts).
//! Secrets come from the configuration, the environment or a file
//! (`*_file`), are read once at start, and never appear in a log line or an
//! error (see `Secret`). Credentials written in `nats.url` are taken out of
//! the servers' addresses too ([`take_from_urls`]): the client library
//! prints those addresses in its debug log.

use crate::domain::settings::{InvalidSetting, Secret};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NatsCredentials {
    /// None of our own (a server without authorization, or credentials in
    /// `nats.url`).
    #[default]
    None,
    UserPassword {
        user: String,
        password: Secret,
        /// `nats.password` or `nats.password_file`.
        from: &'static str,
    },
    Token {
        token: Secret,
        /// `nats.token` or `nats.token_file`.
        from: &'static str,
    },
    /// A user nkey's seed (`SU…`).
    Nkey(Secret),
    /// A `.creds` file's text: the user JWT and the seed that signs for it.
    Jwt(Secret),
}

/// The credential settings as written (paths empty when unset).
pub struct CredentialSettings<'a> {
    pub user: &'a str,
    pub password: &'a Secret,
    pub password_file: &'a str,
    pub token: &'a Secret,
    pub token_file: &'a str,
    pub nkey_seed_file: &'a str,
    pub creds_file: &'a str,
}

impl NatsCredentials {
    /// Reads the files named and checks that one way at most is given.
    pub fn from_settings(raw: &CredentialSettings<'_>) -> Result<NatsCredentials, InvalidSetting> {
        let password = secret_or_file(
            ("nats.password", raw.password),
            ("nats.password_file", raw.password_file),
        )?;
        let token = secret_or_file(
            ("nats.token", raw.token),
            ("nats.token_file", raw.token_file),
        )?;
        let user = raw.user.trim();
        let mut given: Vec<(&'static str, NatsCredentials)> = Vec::new();
        match (user.is_empty(), password) {
            (true, None) => {}
            (false, Some((password, from))) => given.push((
                "nats.user",
                NatsCredentials::UserPassword {
                    user: user.to_string(),
                    password,
                    from,
                },
            )),
            (false, None) => {
                return Err(InvalidSetting::new(
                    "nats.password",
                    "nats.user is set: give its password too (or nats.password_file)",
                ));
            }
            (true, Some((_, from))) => {
                return Err(InvalidSetting::new(
                    "nats.user",
                    format!("{from} is set: give the user it belongs to too"),
                ));
            }
        }
        if let Some((token, from)) = token {
            given.push((from, NatsCredentials::Token { token, from }));
        }
        if let Some(path) = non_empty(raw.nkey_seed_file) {
            let text = read_file("nats.nkey_seed_file", path)?;
            given.push((
                "nats.nkey_seed_file",
                NatsCredentials::Nkey(nkey_seed(path, &text)?),
            ));
        }
        if let Some(path) = non_empty(raw.creds_file) {
            let text = read_file("nats.creds_file", path)?;
            for marker in ["BEGIN NATS USER JWT", "BEGIN USER NKEY SEED"] {
                if !text.contains(marker) {
                    return Err(InvalidSetting::new(
                        "nats.creds_file",
                        format!(
                            "{path} is not a NATS credentials file: no -----{marker}----- section (nsc writes these)"
                        ),
                    ));
                }
            }
            given.push(("nats.creds_file", NatsCredentials::Jwt(Secret::new(text))));
        }
        match given.len() {
            0 => Ok(NatsCredentials::None),
            1 => Ok(given.remove(0).1),
            _ => Err(InvalidSetting::new(
                given[1].0,
                format!(
                    "{} is set too: give one way of signing in to NATS",
                    given[0].0
                ),
            )),
        }
    }

    /// The settings that hold these credentials, for an error that says
    /// what to fix.
    pub fn settings(&self) -> String {
        match self {
            NatsCredentials::None => "none set: nats.user and nats.password, nats.token, nats.nkey_seed_file or nats.creds_file".to_string(),
            NatsCredentials::UserPassword { from, .. } if *from == URL => URL.to_string(),
            NatsCredentials::UserPassword { from, .. } => format!("nats.user and {from}"),
            NatsCredentials::Token { from, .. } => from.to_string(),
            NatsCredentials::Nkey(_) => "nats.nkey_seed_file".to_string(),
            NatsCredentials::Jwt(_) => "nats.creds_file".to_string(),
        }
    }
}

const URL: &str = "nats.url";

/// Takes credentials out of the servers' addresses (`nats://user:password@host`
/// or `nats://token@host`, %-escapes decoded), leaving the addresses bare.
/// Every server that carries some must carry the same.
pub fn take_from_urls(servers: &mut [String]) -> Result<NatsCredentials, InvalidSetting> {
    let mut found: Option<(String, Option<String>)> = None;
    for server in servers.iter_mut() {
        let (scheme, rest) = match server.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, server.as_str()),
        };
        let Some((userinfo, host)) = rest.rsplit_once('@') else {
            continue;
        };
        let credentials = match userinfo.split_once(':') {
            Some((user, password)) => (percent_decode(user)?, Some(percent_decode(password)?)),
            None => (percent_decode(userinfo)?, None),
        };
        if found.as_ref().is_some_and(|first| *first != credentials) {
            return Err(InvalidSetting::new(
                URL,
                "the servers carry different credentials: give one set (or use nats.user and nats.password)",
            ));
        }
        found = Some(credentials);
        let bare = match scheme {
            Some(scheme) => format!("{scheme}://{host}"),
            None => host.to_string(),
        };
        *server = bare;
    }
    Ok(match found {
        None => NatsCredentials::None,
        Some((user, Some(password))) => NatsCredentials::UserPassword {
            user,
            password: Secret::new(password),
            from: URL,
        },
        Some((token, None)) => NatsCredentials::Token {
            token: Secret::new(token),
            from: URL,
        },
    })
}

/// `%XX` escapes of a URL's user part; never quotes the text (a secret).
fn percent_decode(text: &str) -> Result<String, InvalidSetting> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let byte = text
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| InvalidSetting::new(URL, "a bad %-escape in the credentials"))?;
            out.push(byte);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| InvalidSetting::new(URL, "the credentials are not UTF-8 once %-decoded"))
}

fn non_empty(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

/// A secret given inline or as a file, not both; with the setting it came from.
fn secret_or_file(
    (key, inline): (&'static str, &Secret),
    (file_key, path): (&'static str, &str),
) -> Result<Option<(Secret, &'static str)>, InvalidSetting> {
    match (inline.is_empty(), non_empty(path)) {
        (true, None) => Ok(None),
        (false, None) => Ok(Some((inline.clone(), key))),
        (true, Some(path)) => {
            let text = read_file(file_key, path)?;
            Ok(Some((
                Secret::from_file_text(file_key, path, &text)?,
                file_key,
            )))
        }
        (false, Some(_)) => Err(InvalidSetting::new(
            file_key,
            format!("{key} is set too: give the secret one way"),
        )),
    }
}

fn read_file(key: &str, path: &str) -> Result<String, InvalidSetting> {
    std::fs::read_to_string(path)
        .map_err(|error| InvalidSetting::new(key, format!("{path}: cannot read it: {error}")))
}

/// The seed in an nkey file (as `nk -gen user` or nsc write it): the word
/// that starts with `SU`. Never quotes the file, which holds a secret.
fn nkey_seed(path: &str, text: &str) -> Result<Secret, InvalidSetting> {
    text.split_whitespace()
        .find(|word| word.starts_with("SU") && word.len() == 58)
        .map(Secret::new)
        .ok_or_else(|| {
            InvalidSetting::new(
                "nats.nkey_seed_file",
                format!("{path} holds no user nkey seed (a 58-character word starting with SU, as `nk -gen user` writes)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU";

    fn settings<'a>(
        user: &'a str,
        password: &'a Secret,
        token: &'a Secret,
        files: [&'a str; 4],
    ) -> CredentialSettings<'a> {
        CredentialSettings {
            user,
            password,
            password_file: files[0],
            token,
            token_file: files[1],
            nkey_seed_file: files[2],
            creds_file: files[3],
        }
    }

    #[test]
    fn each_way_alone_and_none() {
        let none = Secret::default();
        let pw = Secret::new("pw");
        let credentials =
            NatsCredentials::from_settings(&settings("app", &pw, &none, [""; 4])).unwrap();
        assert_eq!(credentials.settings(), "nats.user and nats.password");
        assert_eq!(
            NatsCredentials::from_settings(&settings("", &none, &none, [""; 4])).unwrap(),
            NatsCredentials::None
        );
        let dir = tempfile::tempdir().unwrap();
        let seed_file = dir.path().join("user.nk");
        std::fs::write(&seed_file, format!("{SEED}\n")).unwrap();
        let seed_path = seed_file.to_str().unwrap();
        let credentials =
            NatsCredentials::from_settings(&settings("", &none, &none, ["", "", seed_path, ""]))
                .unwrap();
        assert_eq!(credentials, NatsCredentials::Nkey(Secret::new(SEED)));
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "t0k3n\n").unwrap();
        let credentials = NatsCredentials::from_settings(&settings(
            "",
            &none,
            &none,
            ["", token_file.to_str().unwrap(), "", ""],
        ))
        .unwrap();
        assert_eq!(credentials.settings(), "nats.token_file");
        assert!(!format!("{credentials:?}").contains("t0k3n"));
    }

    #[test]
    fn credentials_leave_the_urls() {
        let mut servers = vec![
            "nats://app:p%40ss@10.0.0.1:4222".to_string(),
            "10.0.0.2:4222".to_string(),
            "nats://app:p%40ss@10.0.0.3:4222".to_string(),
        ];
        let credentials = take_from_urls(&mut servers).unwrap();
        assert_eq!(
            servers,
            [
                "nats://10.0.0.1:4222",
                "10.0.0.2:4222",
                "nats://10.0.0.3:4222"
            ]
        );
        assert_eq!(
            credentials,
            NatsCredentials::UserPassword {
                user: "app".into(),
                password: Secret::new("p@ss"),
                from: URL
            }
        );
        assert_eq!(credentials.settings(), "nats.url");
        let mut servers = vec!["tls://t0k3n@h:4222".to_string()];
        let token = take_from_urls(&mut servers).unwrap();
        assert_eq!(servers, ["tls://h:4222"]);
        assert!(matches!(token, NatsCredentials::Token { .. }));
        let mut servers = vec!["nats://a:1@h1".to_string(), "nats://b:2@h2".to_string()];
        let error = take_from_urls(&mut servers).unwrap_err();
        assert!(
            !error.problem.contains('1') && !error.problem.contains('2'),
            "{error}"
        );
    }

    #[test]
    fn halves_doubles_and_bad_files_are_named() {
        let none = Secret::default();
        let pw = Secret::new("pw");
        let error = |user, password, token, files| {
            NatsCredentials::from_settings(&settings(user, password, token, files))
                .unwrap_err()
                .key
        };
        assert_eq!(error("app", &none, &none, [""; 4]), "nats.password");
        assert_eq!(error("", &pw, &none, [""; 4]), "nats.user");
        assert_eq!(error("app", &pw, &pw, [""; 4]), "nats.token");
        assert_eq!(
            error("app", &pw, &none, ["/p", "", "", ""]),
            "nats.password_file"
        );
        assert_eq!(
            error("", &none, &none, ["", "", "/nonexistent/seed", ""]),
            "nats.nkey_seed_file"
        );
        let dir = tempfile::tempdir().unwrap();
        let not_creds = dir.path().join("x.creds");
        std::fs::write(&not_creds, "SUsecretsecret\n").unwrap();
        let path = not_creds.to_str().unwrap();
        let refusal =
            NatsCredentials::from_settings(&settings("", &none, &none, ["", "", path, ""]))
                .unwrap_err();
        assert_eq!(refusal.key, "nats.nkey_seed_file");
        assert!(!refusal.problem.contains("SUsecret"), "{refusal}");
        assert_eq!(
            error("", &none, &none, ["", "", "", path]),
            "nats.creds_file"
        );
    }
}
