//! Certificates of TLS listeners, chosen per handshake by SNI.
//!
//! Each TLS listener has one [`CertResolver`] for the life of the process,
//! installed with Pingora's `set_cert_resolver`. What it serves is a
//! [`CertSet`] swapped whole: a reload with renewed files (or a new
//! certificate from another source) applies on the next handshake, with no
//! hand-over and no effect on connections already open.

mod load;

pub use load::{load_pair, Served, Source};

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

/// One listener's certificate chooser (rustls calls it per handshake).
#[derive(Debug)]
pub struct CertResolver {
    set: ArcSwap<CertSet>,
}

impl CertResolver {
    /// A resolver serving `set`.
    pub fn new(set: CertSet) -> Self {
        CertResolver {
            set: ArcSwap::from_pointee(set),
        }
    }

    /// Serve `set` from the next handshake on.
    pub fn replace(&self, set: CertSet) {
        self.set.store(Arc::new(set));
    }

    /// What is served now.
    pub fn current(&self) -> Arc<CertSet> {
        self.set.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
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
            by_addr.insert(l.address, Arc::new(CertResolver::new(cert_set(l)?)));
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
            match cert_set(l) {
                Ok(set) => {
                    if set.served.iter().map(|s| s.digest).ne(r
                        .current()
                        .served
                        .iter()
                        .map(|s| s.digest))
                    {
                        info!("listener {}: serving new certificates", l.address);
                    }
                    r.replace(set)
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

fn cert_set(l: &ListenerSpec) -> Result<CertSet, String> {
    let tls = l.tls.as_ref().ok_or("not a TLS listener")?;
    let served = tls
        .certs
        .iter()
        .map(|c| load_pair(&c.cert, &c.key, Source::File).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CertSet::new(served))
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
