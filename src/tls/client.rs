//! The client side, for NATS and ClickHouse: which CA to trust (the
//! operator's, or the system's roots), an optional client certificate for
//! mutual TLS, TLS 1.2 and 1.3 only; and, since some clients report a failed
//! handshake only as "TLS error" or "IO error", a record of what the last
//! handshake met ([`CertificateCheck`]: the server's certificate refused, or
//! a client certificate asked for that we do not have) for the error an
//! operator reads.

use super::pem::PemFile;
use super::{PROTOCOL_VERSIONS, provider};
use crate::domain::settings::InvalidSetting;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};

/// A client's TLS settings, validated (files are read by [`client_config`](ClientTls::client_config)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// Trust only the CAs in this file; the system's roots when `None`.
    pub ca: Option<PemFile>,
    /// A certificate (chain) and its key, presented to a server that asks.
    pub identity: Option<(PemFile, PemFile)>,
}

impl ClientTls {
    /// `<section>.tls_ca`, `tls_cert` and `tls_key` as written (each empty
    /// when unset); a certificate without its key, or the reverse, is
    /// refused naming the missing one.
    pub fn from_settings(
        section: &str,
        ca: &str,
        cert: &str,
        key: &str,
    ) -> Result<ClientTls, InvalidSetting> {
        let cert_key = format!("{section}.tls_cert");
        let key_key = format!("{section}.tls_key");
        let identity = match (
            PemFile::optional(&cert_key, cert),
            PemFile::optional(&key_key, key),
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) => {
                return Err(InvalidSetting::new(
                    key_key,
                    format!("{cert_key} is set: give the private key of that certificate too"),
                ));
            }
            (None, Some(_)) => {
                return Err(InvalidSetting::new(
                    cert_key,
                    format!("{key_key} is set: give the certificate it belongs to too"),
                ));
            }
        };
        Ok(ClientTls {
            ca: PemFile::optional(&format!("{section}.tls_ca"), ca),
            identity,
        })
    }

    /// Any TLS setting given (which asks for TLS).
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }

    /// The setting to name when the server's certificate is refused.
    pub fn trust_setting(&self, section: &str) -> String {
        match &self.ca {
            Some(ca) => ca.setting.clone(),
            None => format!("{section}.tls_ca (unset: the system's root certificates)"),
        }
    }

    /// Reads the files and builds the client configuration.
    pub fn client_config(
        &self,
    ) -> Result<(rustls::ClientConfig, CertificateCheck), InvalidSetting> {
        let provider = provider();
        let roots = match &self.ca {
            Some(ca) => ca.roots()?,
            None => system_roots(),
        };
        let check = CertificateCheck::default();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|error| {
                    InvalidSetting::new(
                        self.ca
                            .as_ref()
                            .map_or("tls_ca".to_string(), |ca| ca.setting.clone()),
                        format!("cannot verify servers with it: {error}"),
                    )
                })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|error| InvalidSetting::new("tls", format!("TLS setup failed: {error}")))?
            .dangerous()
            // Still WebPKI verification, only watched: see `Recording`.
            .with_custom_certificate_verifier(Arc::new(Recording {
                inner: verifier,
                check: check.clone(),
            }));
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(cert.certificates()?, key.private_key()?)
                .map_err(|error| {
                    key.invalid(format!(
                        "cannot be used with {}: {error}",
                        cert.path.display()
                    ))
                })?,
        };
        config.client_auth_cert_resolver = Arc::new(WatchedIdentity {
            inner: Arc::clone(&config.client_auth_cert_resolver),
            check: check.clone(),
        });
        Ok((config, check))
    }
}

/// The system's root certificates; none (with a warning) when they cannot
/// be read, so that only an operator's CA would work.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    match rustls_native_certs::load_native_certs() {
        Ok(certificates) => {
            roots.add_parsable_certificates(certificates);
        }
        Err(error) => tracing::warn!(%error, "no system root certificates: set a tls_ca"),
    }
    roots
}

/// What the last handshake met.
#[derive(Clone, Debug, Default)]
pub struct CertificateCheck(Arc<Mutex<Handshake>>);

#[derive(Debug, Default)]
struct Handshake {
    /// Why the server's certificate was refused, if it was.
    refusal: Option<String>,
    /// A server asked for a client certificate and none is configured.
    /// Never reset: TLS 1.3 asks before the server's certificate is
    /// verified, so there is no earlier point that marks a new handshake,
    /// and with the configuration fixed for the process's life, a server
    /// that asked once will ask again.
    identity_missing: bool,
}

impl CertificateCheck {
    pub fn last_refusal(&self) -> Option<String> {
        self.0.lock().ok().and_then(|last| last.refusal.clone())
    }

    /// The server asked for a client certificate we do not have.
    pub fn identity_missing(&self) -> bool {
        self.0.lock().is_ok_and(|last| last.identity_missing)
    }
}

/// The configured client certificate (or none), noting when a server asks
/// for one and there is none.
#[derive(Debug)]
struct WatchedIdentity {
    inner: Arc<dyn ResolvesClientCert>,
    check: CertificateCheck,
}

impl ResolvesClientCert for WatchedIdentity {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let identity = self.inner.resolve(root_hint_subjects, sigschemes);
        if identity.is_none()
            && let Ok(mut last) = self.check.0.lock()
        {
            last.identity_missing = true;
        }
        identity
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// rustls' WebPKI verifier, unchanged, remembering its last verdict.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    check: CertificateCheck,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut last) = self.check.0.lock() {
            last.refusal = verdict.as_ref().err().map(|error| error.to_string());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_identity_is_named_and_nothing_set_is_no_tls() {
        let none = ClientTls::from_settings("nats", "", "", "").unwrap();
        assert!(!none.is_set());
        let error = ClientTls::from_settings("nats", "", "/c.pem", "").unwrap_err();
        assert_eq!(error.key, "nats.tls_key");
        let error = ClientTls::from_settings("nats", "", "", "/k.pem").unwrap_err();
        assert_eq!(error.key, "nats.tls_cert");
        let tls = ClientTls::from_settings("clickhouse", "/ca.pem", "", "").unwrap();
        assert!(tls.is_set());
        assert_eq!(tls.trust_setting("clickhouse"), "clickhouse.tls_ca");
        assert!(
            ClientTls::default()
                .trust_setting("nats")
                .starts_with("nats.tls_ca")
        );
    }

    #[test]
    fn an_unreadable_ca_is_named() {
        let tls = ClientTls::from_settings("nats", "/nonexistent/ca.pem", "", "").unwrap();
        let error = tls.client_config().unwrap_err();
        assert_eq!(error.key, "nats.tls_ca");
    }
}
