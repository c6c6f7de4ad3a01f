//! PEM files for TLS toward backends, loaded into the types Pingora's
//! peers take. Everything is checked here, at `-t` and reload time, so that
//! no connection ever meets a file Pingora would panic on (it unwraps the
//! parse of a certificate and of a client key).

use pingora_core::protocols::tls::CaType;
use pingora_core::utils::tls::{CertKey, WrappedX509};
use pingora_rustls::{ClientConfig, PrivateKeyDer, RootCertStore, ServerConfig};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate or key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file cannot be opened or read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("`{0}` holds no PEM certificate")]
    NoCertificate(String),
    /// A certificate in the file does not parse.
    #[error("`{0}` holds a certificate that does not parse")]
    BadCertificate(String),
    /// The file holds no PEM private key.
    #[error("`{0}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    /// The key does not go with the certificate, or rustls refuses them.
    #[error("client certificate `{cert}` and key `{key}` cannot be used together: {reason}")]
    Mismatch {
        /// Certificate file.
        cert: String,
        /// Key file.
        key: String,
        /// rustls' reason.
        reason: String,
    },
}

fn read(path: &str) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_string(),
        source,
    })
}

/// The DER certificates of a PEM file (at least one), each checked to parse.
fn certificates(path: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let pem = read(path)?;
    let mut out = Vec::new();
    for item in rustls_pemfile::certs(&mut pem.as_slice()) {
        let der = item.map_err(|_| CertError::BadCertificate(path.to_string()))?;
        if X509Certificate::from_der(der.as_ref()).is_err() {
            return Err(CertError::BadCertificate(path.to_string()));
        }
        out.push(der.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(CertError::NoCertificate(path.to_string()));
    }
    Ok(out)
}

/// The roots a backend's certificate is checked against: the platform's
/// (as for every TLS upstream) plus those in `path`.
pub fn load_ca(path: &str) -> Result<Arc<CaType>, CertError> {
    let mut roots: Vec<WrappedX509> = certificates(path)?
        .into_iter()
        .map(|der| WrappedX509::new(der, pingora_core::utils::tls::parse_x509))
        .collect();
    // Platform roots that x509-parser cannot read are left out rather than
    // handed to Pingora, which would panic on them.
    if let Ok(native) = pingora_rustls::load_native_certs() {
        for der in native {
            if X509Certificate::from_der(der.as_ref()).is_ok() {
                roots.push(WrappedX509::new(
                    der.as_ref().to_vec(),
                    pingora_core::utils::tls::parse_x509,
                ));
            }
        }
    }
    Ok(Arc::from(roots.into_boxed_slice()))
}

/// A certificate chain (DER), its private key (DER) and the key parsed.
type ChainAndKey = (Vec<Vec<u8>>, Vec<u8>, PrivateKeyDer<'static>);

/// A certificate chain and its private key from PEM files: the key checked
/// to be one that Pingora can turn back (it unwraps that).
fn chain_and_key(cert: &str, key: &str) -> Result<ChainAndKey, CertError> {
    let chain = certificates(cert)?;
    let pem = read(key)?;
    let der = match rustls_pemfile::private_key(&mut pem.as_slice()) {
        Ok(Some(k)) => k.secret_der().to_vec(),
        _ => return Err(CertError::NoKey(key.to_string())),
    };
    let parsed = PrivateKeyDer::try_from(der.clone()).map_err(|_| CertError::NoKey(key.into()))?;
    pingora_rustls::install_default_crypto_provider();
    Ok((chain, der, parsed))
}

/// A listener's certificate chain and key from PEM files, checked as
/// [`check_listener`] checks them before the key is matched: what a
/// listener's certificate resolver loads.
pub fn listener_pair(
    cert: &str,
    key: &str,
) -> Result<
    (
        Vec<pingora_rustls::CertificateDer<'static>>,
        PrivateKeyDer<'static>,
    ),
    CertError,
> {
    let (chain, _, parsed) = chain_and_key(cert, key)?;
    Ok((rustls_chain(&chain), parsed))
}

fn rustls_chain(chain: &[Vec<u8>]) -> Vec<pingora_rustls::CertificateDer<'static>> {
    chain
        .iter()
        .map(|c| pingora_rustls::CertificateDer::from(c.clone()))
        .collect()
}

fn mismatch(cert: &str, key: &str, e: pingora_rustls::RusTlsError) -> CertError {
    CertError::Mismatch {
        cert: cert.to_string(),
        key: key.to_string(),
        reason: e.to_string(),
    }
}

/// A client certificate chain and its key for mutual TLS, checked to go
/// together.
pub fn load_client(cert: &str, key: &str) -> Result<Arc<CertKey>, CertError> {
    let (chain, der, parsed) = chain_and_key(cert, key)?;
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(rustls_chain(&chain), parsed)
        .map_err(|e| mismatch(cert, key, e))?;
    Ok(Arc::new(CertKey::new(chain, der)))
}

/// A TLS listener's certificate chain and key, checked to parse and to go
/// together. Returns a hash of both files' contents: a reload that finds
/// them changed (a renewed certificate at the same paths) hands over to a
/// new process, which loads them.
pub fn check_listener(cert: &str, key: &str) -> Result<u64, CertError> {
    let (chain, der, parsed) = chain_and_key(cert, key)?;
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(rustls_chain(&chain), parsed)
        .map_err(|e| mismatch(cert, key, e))?;
    Ok(contents_hash(
        chain.iter().map(Vec::as_slice).chain([der.as_slice()]),
    ))
}

/// The key that keeps apart backend connections made under different
/// trusted roots or client certificates: a hash of their contents. Pingora's
/// reuse hash leaves the roots out and takes only the client certificate's
/// serial; the same files reloaded give the same key, so a reload keeps the
/// pooled TLS connections.
pub fn pool_key(ca: Option<&CaType>, client: Option<&CertKey>) -> u64 {
    let roots = ca
        .into_iter()
        .flatten()
        .map(|r| r.borrow_raw_cert().as_slice());
    let client = client.into_iter().flat_map(|c| {
        std::iter::once(c.leaf())
            .chain(c.intermediates())
            .map(|x| x.borrow_raw_cert().as_slice())
            .chain([c.key().as_slice()])
    });
    // A separator between the roots and the client's parts.
    contents_hash(roots.chain([&b""[..]]).chain(client))
}

/// A hash of the contents of certificates and keys (DER), in order: equal
/// for equal files across config loads.
fn contents_hash<'a>(parts: impl Iterator<Item = &'a [u8]>) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}
