//! Certificates bulb obtains and renews itself over ACME (`tls.acme`).
//!
//! One background task per distinct `acme` section (storage and names) keeps
//! its certificate current: it serves what the storage holds (from this
//! process or another sharing the storage), orders when none is there or
//! renewal is due (one process at a time, under the storage's lock), and
//! after a failure keeps serving what it has and tries again with backoff.
//! HTTP-01 answers are files in the storage, served by every plain listener
//! of every process before routing ([`answer_http01`]).

mod order;
pub mod storage;

use crate::config::{AcmeSpec, Config};
use crate::state::Shared;
use crate::tls::{from_der, Served, Source};
use log::{error, info};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use storage::Storage;

/// First retry after a failed order; each failure doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Retries are at least hourly.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// How often the storage is looked at for a certificate another process
/// ordered (and, while one orders, for its result).
const STORAGE_POLL: Duration = Duration::from_secs(5);

/// What a listener with `acme` serves at start: the stored certificate, or
/// a self-signed one for its names until the first order succeeds.
pub fn initial(spec: &AcmeSpec) -> Result<Served, String> {
    if let Some(s) = Storage::new(&spec.storage).certificate(&spec.domains[0], &spec.domains) {
        return Ok(s);
    }
    let ck = rcgen::generate_simple_self_signed(spec.domains.clone())
        .map_err(|e| format!("cannot make a placeholder certificate: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    from_der(vec![ck.cert.der().clone()], key, Source::SelfSigned)
}

/// The answer to an HTTP-01 challenge for `token`, from the storage of any
/// `acme` section of `cfg`.
pub fn answer_http01(cfg: &Config, token: &str) -> Option<String> {
    specs(cfg).find_map(|s| Storage::new(&s.storage).challenge(token))
}

fn specs(cfg: &Config) -> impl Iterator<Item = &AcmeSpec> {
    cfg.listeners
        .iter()
        .filter_map(|l| l.tls.as_ref()?.acme.as_ref())
}

/// Which certificate a task keeps: its storage and names.
type Key = (std::path::PathBuf, Vec<String>);

fn key(s: &AcmeSpec) -> Key {
    (s.storage.clone(), s.domains.clone())
}

/// The tasks running in this process, by key.
static RUNNING: std::sync::Mutex<Vec<Key>> = std::sync::Mutex::new(Vec::new());

/// Start one task per distinct `acme` section of the running config that
/// has none yet (at start, and after each reload). A task whose section
/// left the config ends; one whose section changed in other keys (URL,
/// contact, renewal) reads them anew before each order.
pub fn spawn(shared: &Arc<Shared>) {
    let rt = shared.runtime.load();
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    for s in specs(&rt.config) {
        let k = key(s);
        if !running.contains(&k) {
            running.push(k.clone());
            tokio::spawn(run(shared.clone(), k));
        }
    }
}

/// The current `acme` section for `k`, or `None` when it left the config.
fn current(shared: &Shared, k: &Key) -> Option<AcmeSpec> {
    let rt = shared.runtime.load();
    let spec = specs(&rt.config).find(|s| key(s) == *k).cloned();
    if spec.is_none() {
        RUNNING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r != k);
    }
    spec
}

/// When the certificate `s` should be renewed: `renew_before` ahead of its
/// end, or with a third of its lifetime left.
fn renew_at(s: &Served, spec: &AcmeSpec) -> i64 {
    let ahead = spec
        .renew_before
        .map_or((s.not_after - s.not_before) / 3, |d| d.as_secs() as i64);
    s.not_after - ahead
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Serve `cert` on every TLS listener whose `acme` section is `spec`.
fn install(shared: &Shared, spec: &AcmeSpec, cert: &Served) {
    let rt = shared.runtime.load();
    for l in &rt.config.listeners {
        let same = l
            .tls
            .as_ref()
            .and_then(|t| t.acme.as_ref())
            .is_some_and(|a| a.storage == spec.storage && a.domains == spec.domains);
        if let (true, Some(r)) = (same, shared.tls.resolver(l.address)) {
            let current = r.current();
            let served = current.served().iter().any(|s| s.digest == cert.digest);
            if !served {
                info!(
                    "ACME: listener {} serves the certificate for {} (valid until {})",
                    l.address,
                    spec.domains.join(", "),
                    crate::tls::rfc3339(cert.not_after)
                );
                r.set_acme(cert.clone());
            }
        }
    }
}

async fn run(shared: Arc<Shared>, k: Key) {
    let storage = Storage::new(&k.0);
    let name = k.1[0].clone();
    let mut retry = FIRST_RETRY;
    while let Some(spec) = current(&shared, &k) {
        let stored = storage.certificate(&name, &spec.domains);
        if let Some(s) = &stored {
            install(&shared, &spec, s);
        }
        let due_in = stored.as_ref().map_or(0, |s| renew_at(s, &spec) - now());
        if due_in > 0 {
            let wait = Duration::from_secs(due_in as u64).min(STORAGE_POLL);
            tokio::time::sleep(wait).await;
            continue;
        }
        let Some(lock) = storage.lock() else {
            // Another process orders; its result shows in the storage.
            tokio::time::sleep(STORAGE_POLL).await;
            continue;
        };
        // Another process may have finished an order just before the lock.
        if let Some(s) = storage.certificate(&name, &spec.domains) {
            if renew_at(&s, &spec) > now() {
                continue;
            }
        }
        info!(
            "ACME: ordering a certificate for {}",
            spec.domains.join(", ")
        );
        let result = order::order(&spec, &storage).await;
        drop(lock);
        match result {
            Ok(()) => {
                shared.metrics.acme_orders_ok.fetch_add(1, Relaxed);
                retry = FIRST_RETRY;
            }
            Err(e) => {
                shared.metrics.acme_orders_err.fetch_add(1, Relaxed);
                let serving = if stored.is_some() {
                    "the current certificate"
                } else {
                    "a placeholder certificate"
                };
                error!(
                    "ACME: the order for {} failed: {e}; {serving} keeps serving, next try in {}s",
                    spec.domains.join(", "),
                    retry.as_secs()
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Challenge;

    #[test]
    fn renewal_is_due_with_a_third_left_or_renew_before_ahead() {
        let mut served = Served::for_test(vec!["a.test".into()]);
        (served.not_before, served.not_after) = (0, 90 * 86_400);
        let mut spec = AcmeSpec {
            directory: "https://x/dir".into(),
            email: None,
            domains: vec!["a.test".into()],
            challenge: Challenge::Http01,
            storage: "/nonexistent".into(),
            renew_before: None,
            ca: None,
        };
        assert_eq!(renew_at(&served, &spec), 60 * 86_400);
        spec.renew_before = Some(Duration::from_secs(30 * 86_400));
        assert_eq!(renew_at(&served, &spec), 60 * 86_400);
        spec.renew_before = Some(Duration::from_secs(7 * 86_400));
        assert_eq!(renew_at(&served, &spec), 83 * 86_400);
    }
}
