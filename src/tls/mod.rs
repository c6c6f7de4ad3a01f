//! Certificates of TLS listeners, chosen per handshake by SNI.
//!
//! Each TLS listener has one [`CertResolver`] for the life of the process,
//! installed with Pingora's `set_cert_resolver`. What it serves is a
//! [`CertSet`] swapped whole: a reload with renewed files (or a new
//! certificate from another source) applies on the next handshake, with no
//! hand-over and no effect on connections already open.

mod load;

pub use load::{from_der, load_pair, rfc3339, Served, Source};

use crate::config::{Config, ListenerSpec};
use arc_swap::ArcSwap;
use log::{error, info};
use pingora_rustls::sign::CertifiedKey;
use pingora_rustls::{ClientHello, ResolvesServerCert};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The certificates one listener serves, indexed by name.
#[derive(Debug, Default)]
pub struct CertSet {
    /// In configuration order; the first is the default.
    served: Vec<Served>,
    /// Exact names (lowercase) → index in `served`.
    exact: HashMap<String, usize>,
    /// `*.suffix` names, by `suffix` (lowercase) → index in `served`.
    wildcard: HashMap<String, usize>,
}

impl CertSet {
    /// A set over `served`; a name given by two certificates goes to the
    /// first.
    pub fn new(served: Vec<Served>) -> Self {
        let mut set = CertSet {
            served,
            ..CertSet::default()
        };
        for (i, s) in set.served.iter().enumerate() {
            for n in &s.names {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix("*.") {
                    Some(suffix) => set.wildcard.entry(suffix.to_string()).or_insert(i),
                    None => set.exact.entry(n).or_insert(i),
                };
            }
        }
        set
    }

    /// The certificate for `sni`: an exact name first, then a `*.suffix`
    /// covering exactly one more label, else the default (the first).
    pub fn pick(&self, sni: Option<&str>) -> Option<&Served> {
        let by_name = sni.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            self.exact.get(&name).copied().or_else(|| {
                let (_, suffix) = name.split_once('.')?;
                self.wildcard.get(suffix).copied()
            })
        });
        self.served.get(by_name.unwrap_or(0))
    }

    /// Every certificate, in order.
    pub fn served(&self) -> &[Served] {
        &self.served
    }
}

/// One listener's certificate chooser (rustls calls it per handshake): the
/// certificates from files, then the one ACME keeps current.
#[derive(Debug)]
pub struct CertResolver {
    set: ArcSwap<CertSet>,
    parts: std::sync::Mutex<(Vec<Served>, Option<Served>)>,
    /// With `challenge: tls-alpn-01`: the ACME storage whose challenge
    /// certificates answer `acme-tls/1` handshakes.
    alpn_storage: Option<std::path::PathBuf>,
}

/// The ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

impl CertResolver {
    /// A resolver serving `files` (and nothing from ACME yet); with
    /// `alpn_storage`, it answers TLS-ALPN-01 validations from there.
    pub fn new(files: Vec<Served>, alpn_storage: Option<std::path::PathBuf>) -> Self {
        CertResolver {
            set: ArcSwap::from_pointee(CertSet::new(files.clone())),
            parts: std::sync::Mutex::new((files, None)),
            alpn_storage,
        }
    }

    /// Whether this listener answers TLS-ALPN-01 validations.
    pub fn answers_tls_alpn(&self) -> bool {
        self.alpn_storage.is_some()
    }

    fn update(&self, f: impl FnOnce(&mut (Vec<Served>, Option<Served>))) {
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut parts);
        let all = parts.0.iter().chain(parts.1.iter()).cloned().collect();
        self.set.store(Arc::new(CertSet::new(all)));
    }

    /// Serve `files` from the next handshake on (a reload).
    pub fn replace_files(&self, files: Vec<Served>) {
        self.update(|p| p.0 = files);
    }

    /// Serve `cert` as the ACME certificate from the next handshake on.
    pub fn set_acme(&self, cert: Served) {
        self.update(|p| p.1 = Some(cert));
    }

    /// What is served now.
    pub fn current(&self) -> Arc<CertSet> {
        self.set.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(dir) = &self.alpn_storage {
            if hello
                .alpn()
                .is_some_and(|mut a| a.any(|p| p == ACME_TLS_ALPN))
            {
                let storage = crate::acme::storage::Storage::new(dir);
                return storage
                    .alpn_certificate(hello.server_name()?)
                    .map(|s| s.key);
            }
        }
        self.set
            .load()
            .pick(hello.server_name())
            .map(|s| s.key.clone())
    }
}

/// The resolvers of every TLS listener, by address (fixed at start: a new
/// listener comes with a hand-over to a new process).
#[derive(Debug, Default)]
pub struct Listeners {
    by_addr: HashMap<SocketAddr, Arc<CertResolver>>,
}

impl Listeners {
    /// Load the certificates of every TLS listener of `cfg`. Files were
    /// checked by the validator; one that fails now (changed in between)
    /// is an error for the caller to report.
    pub fn load(cfg: &Config) -> Result<Self, String> {
        let mut by_addr = HashMap::new();
        for l in cfg.listeners.iter().filter(|l| l.tls.is_some()) {
            let acme = l.tls.as_ref().and_then(|t| t.acme.as_ref());
            let alpn = acme
                .filter(|a| a.challenge == crate::config::Challenge::TlsAlpn01)
                .map(|a| a.storage.clone());
            let r = CertResolver::new(file_certs(l)?, alpn);
            if let Some(acme) = acme {
                r.set_acme(crate::acme::initial(acme)?);
            }
            by_addr.insert(l.address, Arc::new(r));
        }
        Ok(Listeners { by_addr })
    }

    /// The resolver of the listener at `addr`.
    pub fn resolver(&self, addr: SocketAddr) -> Option<Arc<CertResolver>> {
        self.by_addr.get(&addr).cloned()
    }

    /// After a reload: serve the certificates `cfg` names. A listener whose
    /// files no longer load keeps what it serves (logged).
    pub fn apply(&self, cfg: &Config) {
        for l in cfg.listeners.iter().filter(|l| l.tls.is_some()) {
            let Some(r) = self.by_addr.get(&l.address) else {
                continue;
            };
            match file_certs(l) {
                Ok(files) => {
                    let old = r.current();
                    let old_files = old.served.iter().filter(|s| s.source == Source::File);
                    if files
                        .iter()
                        .map(|s| s.digest)
                        .ne(old_files.map(|s| s.digest))
                    {
                        info!("listener {}: serving new certificates", l.address);
                    }
                    r.replace_files(files)
                }
                Err(e) => error!(
                    "listener {}: {e}; the certificates it serves stay",
                    l.address
                ),
            }
        }
    }

    /// Every listener's certificates now, for `/status` and `/metrics`.
    pub fn each(&self) -> impl Iterator<Item = (SocketAddr, Arc<CertSet>)> + '_ {
        let mut addrs: Vec<_> = self.by_addr.keys().copied().collect();
        addrs.sort();
        addrs.into_iter().map(|a| (a, self.by_addr[&a].current()))
    }
}

impl Listeners {
    /// `/status` `certificates`: one entry per certificate of each listener.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for (addr, set) in self.each() {
            for s in set.served() {
                out.push(serde_json::json!({
                    "names": s.names,
                    "not_after": load::rfc3339(s.not_after),
                    "source": s.source.name(),
                    "listener": addr.to_string(),
                }));
            }
        }
        out
    }

    /// The end of validity of each name served (the earliest, where two
    /// listeners serve one name), for `bulb_certificate_expiry_timestamp_seconds`.
    pub fn expiry_by_name(&self) -> Vec<(String, i64)> {
        let mut by: std::collections::BTreeMap<String, i64> = Default::default();
        for (_, set) in self.each() {
            for s in set.served() {
                for n in &s.names {
                    let e = by.entry(n.clone()).or_insert(s.not_after);
                    *e = (*e).min(s.not_after);
                }
            }
        }
        by.into_iter().collect()
    }
}

fn file_certs(l: &ListenerSpec) -> Result<Vec<Served>, String> {
    let tls = l.tls.as_ref().ok_or("not a TLS listener")?;
    tls.certs
        .iter()
        .map(|c| load_pair(&c.cert, &c.key, Source::File))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(names: &[&str]) -> Served {
        Served::for_test(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn exact_then_one_label_wildcard_then_default() {
        let set = CertSet::new(vec![
            served(&["a.example.com"]),
            served(&["b.example.com"]),
            served(&["*.example.com"]),
        ]);
        let pick = |sni: Option<&str>| set.pick(sni).map(|s| s.names[0].as_str());
        assert_eq!(pick(Some("a.example.com")), Some("a.example.com"));
        assert_eq!(pick(Some("B.Example.COM.")), Some("b.example.com"));
        assert_eq!(pick(Some("c.example.com")), Some("*.example.com"));
        assert_eq!(pick(Some("example.com")), Some("a.example.com"));
        assert_eq!(pick(Some("x.c.example.com")), Some("a.example.com"));
        assert_eq!(pick(None), Some("a.example.com"));
        assert!(CertSet::new(vec![]).pick(Some("a")).is_none());
    }
}
