//! The server side: a listener's certificate and key (re-read when their
//! files change, so a renewed certificate needs no restart), optional client
//! certificates signed by a CA of the operator's, TLS 1.2 and 1.3 only.
//! Used by HTTPS (`http/tls.rs`) and syslog over TLS (`ingest/syslog/`).

use super::pem::{FileStamp, PemFile};
use super::{PROTOCOL_VERSIONS, provider};
use crate::domain::settings::InvalidSetting;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{Error, InconsistentKeys};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a handshake may look at the files for a renewal. A renewal
/// is in use within this long after it is written (plus the next
/// handshake), and looking costs two `stat` calls, so a few seconds is
/// both prompt and free.
pub const RECHECK_EVERY: Duration = Duration::from_secs(3);

/// A listener's TLS settings, validated (the files are read when the
/// listener starts, [`ListenerTls::server_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerTls {
    /// The certificate chain, the listener's own certificate first.
    pub cert: PemFile,
    pub key: PemFile,
    /// Client certificates must be signed by this CA (when presented, or
    /// always: see `client_certificates`).
    pub client_ca: Option<PemFile>,
    pub client_certificates: ClientCertificates,
}

/// Whether the handshake itself demands a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertificates {
    /// Asked for and verified when the client sends one; a client without
    /// one still connects, and what needs one is decided per request (the
    /// HTTP listener's ingest paths).
    WhenPresented,
    /// No certificate, no connection.
    Required,
}

impl ListenerTls {
    /// `<section>.tls_cert`, `tls_key` and `tls_client_ca` as written: off
    /// when the certificate and key are both empty; one without the other,
    /// or a client CA without them, is refused with the missing key named.
    pub fn from_settings(
        section: &str,
        cert: &str,
        key: &str,
        client_ca: &str,
        client_certificates: ClientCertificates,
    ) -> Result<Option<ListenerTls>, InvalidSetting> {
        let cert_key = format!("{section}.tls_cert");
        let key_key = format!("{section}.tls_key");
        let ca_key = format!("{section}.tls_client_ca");
        let cert = PemFile::optional(&cert_key, cert);
        let key = PemFile::optional(&key_key, key);
        let client_ca = PemFile::optional(&ca_key, client_ca);
        match (cert, key) {
            (None, None) => match client_ca {
                None => Ok(None),
                Some(_) => Err(InvalidSetting::new(
                    ca_key,
                    format!("client certificates need TLS: set {cert_key} and {key_key} too"),
                )),
            },
            (Some(_), None) => Err(InvalidSetting::new(
                key_key,
                format!("{cert_key} is set: give the private key of that certificate too"),
            )),
            (None, Some(_)) => Err(InvalidSetting::new(
                cert_key,
                format!("{key_key} is set: give the certificate (chain) it belongs to too"),
            )),
            (Some(cert), Some(key)) => Ok(Some(ListenerTls {
                cert,
                key,
                client_ca,
                client_certificates,
            })),
        }
    }

    /// Reads every file and builds the listener's rustls configuration; an
    /// unusable file is refused naming its setting.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, InvalidSetting> {
        let provider = provider();
        let certificate =
            ReloadingCertificate::load(self.cert.clone(), self.key.clone(), Arc::clone(&provider))?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(PROTOCOL_VERSIONS)
            .map_err(|error| self.cert.invalid(format!("TLS setup failed: {error}")))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider);
                let verifier = match self.client_certificates {
                    ClientCertificates::WhenPresented => verifier.allow_unauthenticated(),
                    ClientCertificates::Required => verifier,
                };
                let verifier = verifier.build().map_err(|error| {
                    ca.invalid(format!("cannot verify clients with it: {error}"))
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        Ok(builder.with_cert_resolver(Arc::new(certificate)))
    }
}

/// The certificate a listener presents, re-read from its files when they
/// change. Looking happens in the handshake itself, at most every
/// [`RECHECK_EVERY`]: no task to start or stop, and a listener nobody
/// connects to has nobody to present a stale certificate to. A renewal
/// that cannot be used (a key written after its certificate, a broken
/// file) keeps the previous certificate in service, with a warning, until
/// the files change again.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert: PemFile,
    key: PemFile,
    provider: Arc<CryptoProvider>,
    state: Mutex<Presented>,
}

#[derive(Debug)]
struct Presented {
    certified: Arc<CertifiedKey>,
    /// The files as they were when last read (successfully or not).
    stamps: (Option<FileStamp>, Option<FileStamp>),
    looked_at: Instant,
}

impl ReloadingCertificate {
    pub fn load(
        cert: PemFile,
        key: PemFile,
        provider: Arc<CryptoProvider>,
    ) -> Result<ReloadingCertificate, InvalidSetting> {
        let stamps = (cert.stamp(), key.stamp());
        let certified = read_pair(&cert, &key, &provider)?;
        Ok(ReloadingCertificate {
            cert,
            key,
            provider,
            state: Mutex::new(Presented {
                certified,
                stamps,
                looked_at: Instant::now(),
            }),
        })
    }

    /// The certificate to present now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // A panic while holding the lock left a whole `Presented` behind:
        // keep using it.
        let mut presented = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if presented.looked_at.elapsed() >= RECHECK_EVERY {
            presented.looked_at = Instant::now();
            let stamps = (self.cert.stamp(), self.key.stamp());
            if stamps != presented.stamps {
                presented.stamps = stamps;
                match read_pair(&self.cert, &self.key, &self.provider) {
                    Ok(certified) => {
                        presented.certified = certified;
                        tracing::info!(cert = %self.cert.path.display(), "TLS certificate reloaded");
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        "the TLS certificate's files changed but cannot be used; still presenting the previous certificate"
                    ),
                }
            }
        }
        Arc::clone(&presented.certified)
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The chain and its key, checked to belong together.
fn read_pair(
    cert: &PemFile,
    key: &PemFile,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, InvalidSetting> {
    let chain = cert.certificates()?;
    let private_key = key.private_key()?;
    match CertifiedKey::from_der(chain, private_key, provider) {
        Ok(certified) => Ok(Arc::new(certified)),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(key.invalid(format!(
            "is not the key of the certificate in {}",
            cert.path.display()
        ))),
        Err(error) => Err(key.invalid(format!("cannot be used: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: &str, key: &str, ca: &str) -> Result<Option<ListenerTls>, InvalidSetting> {
        ListenerTls::from_settings("server", cert, key, ca, ClientCertificates::WhenPresented)
    }

    #[test]
    fn off_unless_both_files_are_given_and_a_half_is_named() {
        assert_eq!(settings("", " ", ""), Ok(None));
        let error = settings("/c.pem", "", "").unwrap_err();
        assert_eq!(error.key, "server.tls_key");
        let error = settings("", "/k.pem", "").unwrap_err();
        assert_eq!(error.key, "server.tls_cert");
        let error = settings("", "", "/ca.pem").unwrap_err();
        assert_eq!(error.key, "server.tls_client_ca");
        let tls = settings("/c.pem", "/k.pem", "/ca.pem").unwrap().unwrap();
        assert_eq!(tls.cert, PemFile::new("server.tls_cert", "/c.pem"));
        assert_eq!(
            tls.client_ca,
            Some(PemFile::new("server.tls_client_ca", "/ca.pem"))
        );
    }

    #[test]
    fn a_missing_file_stops_the_listener_naming_its_setting() {
        let tls = settings("/nonexistent/c.pem", "/nonexistent/k.pem", "")
            .unwrap()
            .unwrap();
        let error = tls.server_config().unwrap_err();
        assert_eq!(error.key, "server.tls_cert");
        assert!(error.problem.contains("/nonexistent/c.pem"), "{error}");
    }
}
