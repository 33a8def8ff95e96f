//! The one outbound HTTP client for everything that talks to Salesforce: rustls, gzip,
//! timeouts, and optionally an extra root CA (the simulator's in dev and tests, a
//! TLS-inspecting proxy's at a customer).

use std::time::Duration;

use crate::settings::Settings;

/// Building the client failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("cannot read extra CA file {path}: {source}")]
    ReadCa { path: String, source: std::io::Error },
    #[error("extra CA file {path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Builds the HTTP client from settings.
pub fn build(settings: &Settings) -> Result<reqwest::Client, HttpClientError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("forcelink/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10).min(settings.http_timeout))
        .timeout(settings.http_timeout)
        .pool_idle_timeout(Duration::from_secs(50))
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true);
    if let Some(path) = &settings.extra_ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| HttpClientError::ReadCa { path: shown.clone(), source })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| HttpClientError::NoCertificate { path: shown.clone() })?;
        if certs.is_empty() {
            return Err(HttpClientError::NoCertificate { path: shown });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}
