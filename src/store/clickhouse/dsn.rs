//! `clickhouse://user:password@host:9000/database`, the seed's DSN form.
//! `tcp://` is accepted as a synonym; user, password and database are
//! optional (`default`, empty, `default`); `%XX` escapes are decoded in the
//! user and password. Of the options after `?` (the seed's Go driver had
//! several), `secure=true` asks for TLS, as clickhouse-go's does, and
//! `skip_verify=true` is refused (give the CA instead); the rest do not
//! apply to the native protocol client used here and are ignored.

use std::fmt;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

#[derive(Clone)]
pub struct Dsn {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Checked to be a plain identifier, so it can be written into SQL.
    pub database: String,
    /// `secure=` as written (`None` when absent).
    pub secure: Option<bool>,
    /// TLS for every connection (decided from `secure` and the settings
    /// when the store opens); plain TCP when `None`.
    pub tls: Option<Tls>,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clickhouse://{}@{}:{}/{}{}",
            self.user,
            self.host,
            self.port,
            self.database,
            if self.tls.is_some() {
                "?secure=true"
            } else {
                ""
            }
        )
    }
}

impl Dsn {
    pub fn parse(text: &str) -> Result<Dsn, String> {
        let rest = text
            .strip_prefix("clickhouse://")
            .or_else(|| text.strip_prefix("tcp://"))
            .ok_or_else(|| "expected clickhouse://user:password@host:9000/database".to_string())?;
        let (rest, query) = match rest.split('#').next().unwrap_or("").split_once('?') {
            Some((rest, query)) => (rest, query),
            None => (rest.split('#').next().unwrap_or(""), ""),
        };
        let secure = secure_option(query)?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, address) = match authority.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, authority),
        };
        let (user, password) = match credentials {
            None => ("default".to_string(), String::new()),
            Some(credentials) => {
                let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
                let user = percent_decode(user)?;
                (
                    if user.is_empty() {
                        "default".into()
                    } else {
                        user
                    },
                    percent_decode(password)?,
                )
            }
        };
        let (host, port) = split_host_port(address)?;
        let database = match path.trim_end_matches('/') {
            "" => "default".to_string(),
            name => name.to_string(),
        };
        if !is_identifier(&database) {
            return Err(format!(
                "database name {database:?}: use letters, digits and '_' (not starting with a digit)"
            ));
        }
        Ok(Dsn {
            host,
            port,
            user,
            password,
            database,
            secure,
            tls: None,
        })
    }
}

/// TLS to the server (its secure port, `tcp_port_secure`): the rustls
/// client configuration and the setting to name when the server's
/// certificate is refused.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub trust_setting: String,
}

impl Tls {
    pub fn new(config: tokio_rustls::rustls::ClientConfig, trust_setting: String) -> Tls {
        Tls {
            connector: TlsConnector::from(Arc::new(config)),
            trust_setting,
        }
    }
}

/// `secure=` from the query string; `skip_verify=true` refused.
fn secure_option(query: &str) -> Result<Option<bool>, String> {
    let mut secure = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, "true"));
        let flag = || match value.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{name}={value:?}: expected true or false")),
        };
        match name {
            "secure" => secure = Some(flag()?),
            "skip_verify" if flag()? => {
                return Err("skip_verify=true is not supported: trust the server's CA with clickhouse.tls_ca instead".into());
            }
            _ => {}
        }
    }
    Ok(secure)
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in host {address:?}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        None | Some("") => 9000,
        Some(port) => port
            .parse()
            .map_err(|_| format!("port {port:?} is not a number from 1 to 65535"))?,
    };
    Ok((host.to_string(), port))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad %-escape in the credentials".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8 once %-decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_form_and_defaults() {
        let dsn = Dsn::parse("clickhouse://default:@clickhouse:9000/default").unwrap();
        assert_eq!(
            (
                dsn.host.as_str(),
                dsn.port,
                dsn.user.as_str(),
                dsn.password.as_str(),
                dsn.database.as_str()
            ),
            ("clickhouse", 9000, "default", "", "default")
        );
        let dsn = Dsn::parse("clickhouse://u:p%40ss@127.0.0.1:19000/logs?dial_timeout=1s").unwrap();
        assert_eq!((dsn.user.as_str(), dsn.password.as_str()), ("u", "p@ss"));
        assert_eq!((dsn.port, dsn.database.as_str()), (19000, "logs"));
        let dsn = Dsn::parse("tcp://[::1]").unwrap();
        assert_eq!(
            (dsn.host.as_str(), dsn.port, dsn.database.as_str()),
            ("::1", 9000, "default")
        );
        assert!(!format!("{dsn:?}").contains("p@ss"));
        assert_eq!(dsn.secure, None);
    }

    #[test]
    fn secure_and_skip_verify() {
        let dsn = Dsn::parse("clickhouse://u:p@h:9440/db?secure=true&dial_timeout=1s").unwrap();
        assert_eq!((dsn.secure, dsn.database.as_str()), (Some(true), "db"));
        let dsn = Dsn::parse("clickhouse://h?secure=false").unwrap();
        assert_eq!(
            (dsn.secure, dsn.database.as_str()),
            (Some(false), "default")
        );
        assert!(Dsn::parse("clickhouse://h/db?secure=maybe").is_err());
        let error = Dsn::parse("clickhouse://h/db?secure=true&skip_verify=true").unwrap_err();
        assert!(error.contains("clickhouse.tls_ca"), "{error}");
        assert!(Dsn::parse("clickhouse://h/db?skip_verify=false").is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_use_safely() {
        assert!(Dsn::parse("http://h:8123/db").is_err());
        assert!(Dsn::parse("clickhouse://h:9000/bad-name").is_err());
        assert!(Dsn::parse("clickhouse://h:9000/x`; DROP").is_err());
        assert!(Dsn::parse("clickhouse://h:port/db").is_err());
        assert!(Dsn::parse("clickhouse://u:%zz@h/db").is_err());
        assert!(Dsn::parse("clickhouse:///db").is_err());
    }
}
