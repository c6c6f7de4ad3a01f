//! TLS termination on a listener: certificate files chosen by SNI, and
//! certificates obtained over ACME.

use std::path::PathBuf;
use std::time::Duration;

/// TLS termination on a listener: the certificates it serves, chosen by SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificates from files; the first serves clients that send no SNI
    /// or an unknown name.
    pub certs: Vec<CertFiles>,
    /// Certificates bulb obtains and renews itself.
    pub acme: Option<AcmeSpec>,
}

/// A certificate chain and its private key, as PEM file paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// Certificate chain.
    pub cert: String,
    /// Private key.
    pub key: String,
    /// A hash of both files' contents when the config was loaded: renewed
    /// files at the same paths are a change (`--diff` shows it; a reload
    /// loads them into the running listener).
    pub contents: u64,
}

/// `tls.acme`: one certificate for `domains`, ordered and renewed by bulb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSpec {
    /// The ACME directory URL.
    pub directory: String,
    /// Contact address, if any.
    pub email: Option<String>,
    /// The names on the certificate (lowercase); the first names its files.
    pub domains: Vec<String>,
    /// How the server validates control of the names.
    pub challenge: Challenge,
    /// Account key, certificates, challenge answers and the order lock.
    pub storage: PathBuf,
    /// Renew when this much validity is left; `None`: a third of the lifetime.
    pub renew_before: Option<Duration>,
    /// PEM roots that the directory's TLS chains to (else the system's).
    pub ca: Option<String>,
}

/// An ACME challenge type bulb answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A file under `/.well-known/acme-challenge/` on plain HTTP listeners.
    Http01,
    /// A certificate for `acme-tls/1` handshakes on the TLS listener.
    TlsAlpn01,
}

impl Challenge {
    /// The name the file uses.
    pub fn name(self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::TlsAlpn01 => "tls-alpn-01",
        }
    }
}
