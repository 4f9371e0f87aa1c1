//! What both database backends share about TLS: the one crypto provider (rustls with ring) and
//! one-line reasons for failed handshakes, so PostgreSQL and MySQL name TLS problems alike.

use rustls::{AlertDescription, CertificateError};

/// ring, installed as the process default: drivers that build their own rustls config
/// (mysql_async) ask for the default, and with two providers compiled in (reqwest brings
/// aws-lc-rs) rustls refuses to guess. Installing twice is harmless.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()))
}

/// The rustls error somewhere in `e`'s source chain (drivers wrap it in `io::Error`s).
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// Why a handshake failed and what to do, in words; `ca` names where the trusted roots came
/// from ("the CA in sslrootcert /path", "a CA the system trusts"), `relax` is the setting that
/// skips the failed check.
pub fn reason(e: &rustls::Error, ca: &str, host: &str, relax: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => format!(
                "certificate not signed by {ca}: give the server's CA certificate, or {relax} to skip verification"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for \"{host}\": connect by a name the certificate lists"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check the clocks)".into()
            }
            other => format!("the server's certificate was refused ({other:?})"),
        },
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown,
        ) => format!(
            "the server refused the client certificate ({e}): check the client certificate and key"
        ),
        other => other.to_string(),
    }
}
