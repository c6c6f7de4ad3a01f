//! What ACME keeps on disk, shared by every bulb process that names the same
//! `storage`: the account, each certificate with its key (0600), the answers
//! to pending HTTP-01 challenges, and the lock that lets one process order.

use crate::tls::{load_pair, Served, Source};
use instant_acme::AccountCredentials;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A lock older than this was left by a process that died mid-order.
pub const STALE_LOCK: Duration = Duration::from_secs(600);

/// Create `dir` (0700) if needed and prove a file can be written in it.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    write_private(&probe, b"").map_err(|e| format!("`{}` is not writable: {e}", dir.display()))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

/// Write `bytes` to `path` readable by the owner only, replacing it whole
/// (a reader never sees half a file).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// One storage directory.
pub struct Storage {
    dir: PathBuf,
}

/// The order lock, released on drop.
pub struct Lock(PathBuf);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A challenge token as ACME makes them (base64url): nothing else names a file.
fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 256
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Storage {
    /// The storage at `dir`.
    pub fn new(dir: &Path) -> Self {
        Storage {
            dir: dir.to_path_buf(),
        }
    }

    /// The saved account, if any.
    pub fn account(&self) -> Option<AccountCredentials> {
        let text = fs::read(self.dir.join("account.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Save the account (0600).
    pub fn save_account(&self, creds: &AccountCredentials) -> Result<(), String> {
        let text = serde_json::to_vec(creds).map_err(|e| e.to_string())?;
        write_private(&self.dir.join("account.json"), &text).map_err(|e| e.to_string())
    }

    /// Drop the saved account (the server no longer knows it).
    pub fn forget_account(&self) {
        let _ = fs::remove_file(self.dir.join("account.json"));
    }

    fn cert_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.crt.pem")),
            self.dir.join(format!("{name}.key.pem")),
        )
    }

    /// The stored certificate named `name`, when it carries every one of
    /// `domains`.
    pub fn certificate(&self, name: &str, domains: &[String]) -> Option<Served> {
        let (c, k) = self.cert_paths(name);
        if !c.exists() {
            return None;
        }
        let served = load_pair(&c.to_string_lossy(), &k.to_string_lossy(), Source::Acme)
            .map_err(|e| log::error!("ACME storage: {e}"))
            .ok()?;
        domains
            .iter()
            .all(|d| served.names.contains(d))
            .then_some(served)
    }

    /// Store a certificate chain and its key under `name` (key first, so a
    /// reader that finds the new chain finds its key).
    pub fn save_certificate(&self, name: &str, chain: &str, key: &str) -> Result<(), String> {
        let (c, k) = self.cert_paths(name);
        write_private(&k, key.as_bytes()).map_err(|e| e.to_string())?;
        write_private(&c, chain.as_bytes()).map_err(|e| e.to_string())
    }

    fn challenge_path(&self, token: &str) -> Option<PathBuf> {
        valid_token(token).then(|| self.dir.join("http-01").join(token))
    }

    /// Publish the answer to an HTTP-01 challenge for every process.
    pub fn put_challenge(&self, token: &str, key_authorization: &str) -> Result<(), String> {
        let path = self
            .challenge_path(token)
            .ok_or("the server sent a malformed token")?;
        fs::create_dir_all(self.dir.join("http-01")).map_err(|e| e.to_string())?;
        write_private(&path, key_authorization.as_bytes()).map_err(|e| e.to_string())
    }

    /// Withdraw an answer.
    pub fn remove_challenge(&self, token: &str) {
        if let Some(p) = self.challenge_path(token) {
            let _ = fs::remove_file(p);
        }
    }

    /// The answer to the HTTP-01 challenge `token`, if one is pending.
    pub fn challenge(&self, token: &str) -> Option<String> {
        fs::read_to_string(self.challenge_path(token)?).ok()
    }

    fn alpn_paths(&self, domain: &str) -> Option<(PathBuf, PathBuf)> {
        let ok = crate::config::valid_dns_name(domain);
        let d = self.dir.join("tls-alpn-01");
        ok.then(|| {
            (
                d.join(format!("{domain}.crt.pem")),
                d.join(format!("{domain}.key.pem")),
            )
        })
    }

    /// Publish the TLS-ALPN-01 certificate for `domain` for every process.
    pub fn put_alpn(&self, domain: &str, chain: &str, key: &str) -> Result<(), String> {
        let (c, k) = self.alpn_paths(domain).ok_or("not a DNS name")?;
        fs::create_dir_all(self.dir.join("tls-alpn-01")).map_err(|e| e.to_string())?;
        write_private(&k, key.as_bytes()).map_err(|e| e.to_string())?;
        write_private(&c, chain.as_bytes()).map_err(|e| e.to_string())
    }

    /// Withdraw the TLS-ALPN-01 certificate for `domain`.
    pub fn remove_alpn(&self, domain: &str) {
        if let Some((c, k)) = self.alpn_paths(domain) {
            let _ = fs::remove_file(c);
            let _ = fs::remove_file(k);
        }
    }

    /// The pending TLS-ALPN-01 certificate for `domain` (an `acme-tls/1`
    /// handshake naming it).
    pub fn alpn_certificate(&self, domain: &str) -> Option<Served> {
        let (c, k) = self.alpn_paths(&domain.to_ascii_lowercase())?;
        load_pair(&c.to_string_lossy(), &k.to_string_lossy(), Source::Acme).ok()
    }

    /// Take the order lock, unless another process holds it (a lock older
    /// than [`STALE_LOCK`] is taken over).
    pub fn lock(&self) -> Option<Lock> {
        let path = self.dir.join("order.lock");
        for _ in 0..2 {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Some(Lock(path));
                }
                Err(_) => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok());
                    if age.is_some_and(|a| a > STALE_LOCK) {
                        log::warn!("ACME: taking over a stale order lock {}", path.display());
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    return None;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_no_other_file() {
        assert!(valid_token("abc-DEF_123"));
        for t in ["", "../x", "a/b", "a.b", "%2e"] {
            assert!(!valid_token(t), "{t}");
        }
    }

    #[test]
    fn one_lock_at_a_time_and_files_are_private() {
        let dir = std::env::temp_dir().join(format!("bulb-acme-{}", std::process::id()));
        check_writable(&dir).expect("writable");
        let s = Storage::new(&dir);
        let l = s.lock().expect("first");
        assert!(s.lock().is_none(), "held");
        drop(l);
        assert!(s.lock().is_some(), "released");
        s.put_challenge("tok", "tok.thumb").expect("put");
        assert_eq!(s.challenge("tok").as_deref(), Some("tok.thumb"));
        let mode = fs::metadata(dir.join("http-01/tok"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        s.remove_challenge("tok");
        assert!(s.challenge("tok").is_none());
        let _ = fs::remove_dir_all(dir);
    }
}
