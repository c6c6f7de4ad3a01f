//! Name resolution for backends given as `hostname:port`: every address a
//! name has becomes a backend, names are re-resolved periodically, and a
//! failed lookup keeps the last good answer instead of emptying the pool.

use crate::config::BackendSpec;
use crate::pool::{Pool, Target};
use async_trait::async_trait;
use log::{info, warn};
use pingora_core::protocols::l4::socket::SocketAddr as PSocketAddr;
use pingora_error::Result;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::Backend;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// The last good resolution of every `(host, port)`, shared across reloads
/// so a new config starts with the addresses the old one knew.
#[derive(Default)]
pub struct DnsCache {
    names: Mutex<HashMap<(String, u16), Vec<SocketAddr>>>,
}

impl DnsCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, u16), Vec<SocketAddr>>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The addresses `specs` stand for now: IP entries as they are, names as
    /// last resolved (none yet when a name never resolved).
    pub fn targets(&self, specs: &[BackendSpec]) -> Vec<Target> {
        let names = self.lock();
        let mut out = Vec::new();
        for s in specs {
            let addrs: &[SocketAddr] = match &s.ip {
                Some(a) => std::slice::from_ref(a),
                None => names
                    .get(&(s.host.clone(), s.port))
                    .map_or(&[], |v| v.as_slice()),
            };
            out.extend(addrs.iter().map(|&addr| Target {
                addr,
                weight: s.weight,
                backup: s.backup,
                max_conns: s.max_conns,
                name: s.ip.is_none().then(|| Arc::from(s.host.as_str())),
            }));
        }
        out
    }

    /// Resolve one name through the system resolver; on success remember
    /// the answer. On failure the previous answer stays.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        addrs.sort();
        addrs.dedup();
        if addrs.is_empty() {
            return Err(std::io::Error::other("no addresses"));
        }
        let old = self.lock().insert((host.to_string(), port), addrs.clone());
        if old.as_ref() != Some(&addrs) {
            info!("resolved {host}:{port} to {addrs:?}");
        }
        Ok(addrs)
    }
}

/// Pingora [`ServiceDiscovery`] over one upstream's backend entries: IP
/// entries are static, names are looked up on every call.
pub struct DnsDiscovery {
    specs: Vec<BackendSpec>,
    cache: Arc<DnsCache>,
    upstream: String,
}

impl DnsDiscovery {
    /// Discovery for the entries of `upstream`.
    pub fn new(upstream: &str, specs: Vec<BackendSpec>, cache: Arc<DnsCache>) -> Self {
        DnsDiscovery {
            specs,
            cache,
            upstream: upstream.to_string(),
        }
    }

    /// Resolve every name, then list the targets (names that failed keep
    /// their last good addresses).
    pub async fn targets(&self) -> Vec<Target> {
        for s in self.specs.iter().filter(|s| s.ip.is_none()) {
            if let Err(e) = self.cache.resolve(&s.host, s.port).await {
                warn!(
                    "upstream {}: cannot resolve {}:{} ({e}); keeping its last known addresses and retrying",
                    self.upstream, s.host, s.port
                );
            }
        }
        self.cache.targets(&self.specs)
    }
}

#[async_trait]
impl ServiceDiscovery for DnsDiscovery {
    async fn discover(&self) -> Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut set = BTreeSet::new();
        for t in self.targets().await {
            let mut b = Backend {
                addr: PSocketAddr::Inet(t.addr),
                weight: t.weight as usize,
                ext: Default::default(),
            };
            b.ext.insert(t);
            set.insert(b);
        }
        Ok((set, HashMap::new()))
    }
}

/// Run discovery for `pool` until it is retired: resolve now, then every
/// `discovery_interval`.
pub async fn run(pool: Arc<Pool>, discovery: DnsDiscovery) {
    let rounds = async {
        loop {
            refresh(&pool, &discovery).await;
            tokio::time::sleep(pool.cfg.discovery_interval).await;
        }
    };
    tokio::select! {
        _ = pool.retired() => {}
        _ = rounds => {}
    }
}

/// One discovery round for `pool`.
pub async fn refresh(pool: &Pool, discovery: &DnsDiscovery) {
    match discovery.discover().await {
        Ok((set, _)) => {
            let targets: Vec<Target> = set
                .iter()
                .filter_map(|b| b.ext.get::<Target>().cloned())
                .collect();
            pool.update(&targets);
        }
        Err(e) => warn!("upstream {}: discovery failed: {e}", pool.cfg.name),
    }
}
