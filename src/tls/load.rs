//! A certificate chain and key, loaded into what rustls serves, with what
//! `/status` and `/metrics` tell of it (names, expiry).

use pingora_rustls::sign::CertifiedKey;
use pingora_rustls::{CertificateDer, CryptoProvider, PrivateKeyDer};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Where a served certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Files named in the configuration.
    File,
    /// Obtained over ACME (and kept in its storage).
    Acme,
    /// Made by bulb at start for names ACME has not served yet.
    SelfSigned,
}

impl Source {
    /// The word `/status` uses.
    pub fn name(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Acme => "acme",
            Source::SelfSigned => "self-signed",
        }
    }
}

/// One certificate a listener serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// DNS names of the leaf (subject alternative names, else the common
    /// name); `*.suffix` for wildcards.
    pub names: Vec<String>,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Where it came from.
    pub source: Source,
    /// What rustls hands the client.
    pub key: Arc<CertifiedKey>,
    /// A hash of the chain and key, to tell a renewal.
    pub digest: u64,
}

/// Load the PEM chain at `cert` and key at `key`.
pub fn load_pair(cert: &str, key: &str, source: Source) -> Result<Served, String> {
    let (chain, der) = crate::config::certs::listener_pair(cert, key).map_err(|e| e.to_string())?;
    from_der(chain, der, source).map_err(|e| format!("`{cert}` with `{key}`: {e}"))
}

/// A served certificate from DER parts.
pub fn from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    source: Source,
) -> Result<Served, String> {
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, x509) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| e.to_string())?;
    let names = dns_names(&x509);
    let not_after = x509.validity().not_after.timestamp();
    let not_before = x509.validity().not_before.timestamp();
    let digest = {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        chain.iter().for_each(|c| c.as_ref().hash(&mut h));
        key.secret_der().hash(&mut h);
        h.finish()
    };
    pingora_rustls::install_default_crypto_provider();
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider")?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| e.to_string())?;
    let key = Arc::new(CertifiedKey::new(chain, signer));
    Ok(Served {
        names,
        not_before,
        not_after,
        source,
        key,
        digest,
    })
}

/// `secs` since the Unix epoch as an RFC 3339 UTC time
/// (`2027-03-01T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d, rem) = crate::clock::civil(secs);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn dns_names(x509: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = x509
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            x509.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    names
}

#[cfg(test)]
impl Served {
    /// A served entry with `names` and a key nobody can use (selection tests).
    pub fn for_test(names: Vec<String>) -> Self {
        #[derive(Debug)]
        struct NoKey;
        impl pingora_rustls::sign::SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _: &[pingora_rustls::SignatureScheme],
            ) -> Option<Box<dyn pingora_rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ECDSA
            }
        }
        Served {
            names,
            not_before: 0,
            not_after: 0,
            source: Source::File,
            key: Arc::new(CertifiedKey::new(vec![], Arc::new(NoKey))),
            digest: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
    }
}
