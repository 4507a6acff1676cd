//! The notifier's HTTP client: awc over rustls (ring provider) trusting the
//! operating system's root certificates, since Slack and PagerDuty are
//! HTTPS. awc is not `Send`: the client lives on the thread that delivers.

use std::sync::Arc;
use std::time::Duration;

pub fn http_client(request_timeout: Duration) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    match rustls_native_certs::load_native_certs() {
        Ok(certificates) => {
            let (added, ignored) = roots.add_parsable_certificates(certificates);
            tracing::debug!(added, ignored, "root certificates for alert notifications");
        }
        Err(error) => {
            tracing::warn!(%error, "no system root certificates: https receivers will fail")
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let connector = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => {
            let mut config = builder.with_root_certificates(roots).with_no_client_auth();
            // HTTP/1.1 only: receivers are webhooks, one request at a time.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            awc::Connector::new().rustls_0_23(Arc::new(config))
        }
        Err(error) => {
            tracing::warn!(%error, "tls unavailable: https receivers will fail");
            awc::Connector::new()
        }
    };
    awc::Client::builder()
        .connector(connector.timeout(Duration::from_secs(5)))
        .timeout(request_timeout)
        .disable_redirects()
        .add_default_header((
            "User-Agent",
            concat!("oglogstream/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}
