//! `tls.acme`: directory URL, contact, names, challenge, storage, renewal.

use super::*;

/// Whether `name` is a DNS name a certificate can carry (no wildcard:
/// HTTP-01 and TLS-ALPN-01 cannot prove one).
pub fn valid_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Validator {
    pub(super) fn acme(&mut self, p: &str, a: &AcmeFile) -> AcmeSpec {
        let dir = a.directory.trim();
        let ok_url = dir
            .strip_prefix("https://")
            .or_else(|| dir.strip_prefix("http://"))
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !ok_url {
            self.err(
                &format!("{p}.directory"),
                format!("`{dir}` is not an http(s) URL of an ACME directory"),
            );
        }
        if let Some(e) = &a.email {
            let (user, host) = e.split_once('@').unwrap_or(("", ""));
            if user.is_empty() || !valid_dns_name(host) {
                self.err(
                    &format!("{p}.email"),
                    format!("`{e}` is not an email address"),
                );
            }
        }
        let domains: Vec<String> = a
            .domains
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, d)| {
                let d = d.trim().to_ascii_lowercase();
                if valid_dns_name(&d) {
                    Some(d)
                } else {
                    self.err(
                        &format!("{p}.domains[{i}]"),
                        format!("`{d}` is not a DNS name a certificate can be ordered for (letters, digits, hyphens; no wildcard)"),
                    );
                    None
                }
            })
            .collect();
        let challenge = match a.challenge.as_deref() {
            None | Some("http-01") => Challenge::Http01,
            Some("tls-alpn-01") => Challenge::TlsAlpn01,
            Some(c) => {
                self.err(
                    &format!("{p}.challenge"),
                    format!("`{c}` is not a challenge bulb answers: http-01 or tls-alpn-01"),
                );
                Challenge::Http01
            }
        };
        let storage = std::path::PathBuf::from(&a.storage);
        if let Err(e) = crate::acme::storage::check_writable(&storage) {
            self.err(&format!("{p}.storage"), e);
        }
        let renew_before = a.renew_before.is_some().then(|| {
            self.duration(
                &format!("{p}.renew_before"),
                &a.renew_before,
                Duration::ZERO,
            )
        });
        if let Some(ca) = &a.ca {
            if let Err(e) = crate::config::certs::load_ca(ca) {
                self.err(&format!("{p}.ca"), e.to_string());
            }
        }
        AcmeSpec {
            directory: dir.to_string(),
            email: a.email.clone(),
            domains,
            challenge,
            storage,
            renew_before,
            ca: a.ca.clone(),
        }
    }

    /// `acme.domains` left out: every exact `host` of the routes.
    pub(super) fn acme_domains(&mut self, listeners: &mut [ListenerSpec], routes: &[RouteSpec]) {
        for (i, l) in listeners.iter_mut().enumerate() {
            let Some(acme) = l.tls.as_mut().and_then(|t| t.acme.as_mut()) else {
                continue;
            };
            if !acme.domains.is_empty() {
                continue;
            }
            for r in routes {
                if let Some(HostMatch::Exact(h)) = &r.host {
                    if valid_dns_name(h) && !acme.domains.contains(h) {
                        acme.domains.push(h.clone());
                    }
                }
            }
            if acme.domains.is_empty() {
                self.err(
                    &format!("listeners[{i}].tls.acme"),
                    "no names to order: give `domains`, or routes with an exact `host`",
                );
            }
        }
    }
}
