//! Listeners (addresses, protocols: http, tcp; TLS and h2c; the upstream a tcp listener names) and the access log.

use super::*;

impl Validator {
    /// `accept_proxy_protocol` needs `trusted_proxies`: with none, every
    /// connection would be closed.
    pub(super) fn accept_proxy(&mut self, ls: &[ListenerFile], trusted: &[String]) {
        for (i, l) in ls.iter().enumerate() {
            if l.accept_proxy_protocol == Some(true) && trusted.is_empty() {
                self.err(
                    &format!("listeners[{i}].accept_proxy_protocol"),
                    "accept_proxy_protocol needs `trusted_proxies` (the L4 tier's addresses; others are closed)",
                );
            }
        }
    }

    pub(super) fn listeners(&mut self, ls: &[ListenerFile]) -> Vec<ListenerSpec> {
        if ls.is_empty() {
            let pos = self.loc.key("listeners");
            self.err_at(pos, "at least one entry under `listeners` is required");
        }
        let mut out: Vec<ListenerSpec> = Vec::new();
        for (i, l) in ls.iter().enumerate() {
            let path = format!("listeners[{i}].address");
            let Some(address) = self.socket_addr(&path, &l.address) else {
                continue;
            };
            if out.iter().any(|o| o.address == address) {
                self.err(&path, format!("listener {address} is given twice"));
            }
            let tls = l.tls.as_ref().map(|t| self.listener_tls(i, t));
            let tcp = self.listener_protocol(i, l);
            if tcp.is_some() && tls.is_some() {
                self.err(
                    &format!("listeners[{i}].tls"),
                    "a tcp listener passes TLS through as bytes: remove `tls` (termination is for http listeners)",
                );
            }
            let h2c = l.h2c.unwrap_or(false);
            if h2c && (tcp.is_some() || tls.is_some()) {
                self.err(
                    &format!("listeners[{i}].h2c"),
                    if tcp.is_some() {
                        "h2c applies only to http listeners"
                    } else {
                        "a TLS listener already offers HTTP/2 through ALPN: remove `h2c` (it is for cleartext listeners)"
                    },
                );
            }
            let redirect_https = l.redirect_https.unwrap_or(false);
            if redirect_https && (tcp.is_some() || tls.is_some()) {
                self.err(
                    &format!("listeners[{i}].redirect_https"),
                    "redirect_https is for plain http listeners (it sends their clients to a TLS listener)",
                );
            }
            let accept_proxy = l.accept_proxy_protocol.unwrap_or(false);
            out.push(ListenerSpec {
                address,
                tls,
                tcp,
                h2c,
                redirect_https,
                accept_proxy,
            });
        }
        out
    }

    /// `tls`: exactly one of `cert` + `key` and `certs`, each pair checked
    /// (parses, key matches).
    fn listener_tls(&mut self, i: usize, t: &TlsFile) -> TlsFiles {
        let p = format!("listeners[{i}].tls");
        let mut pairs: Vec<(String, &str, &str)> = Vec::new();
        match (&t.cert, &t.key, &t.certs) {
            (Some(c), Some(k), None) => pairs.push((format!("{p}.cert"), c, k)),
            (None, None, Some(list)) if !list.is_empty() => {
                for (j, c) in list.iter().enumerate() {
                    pairs.push((format!("{p}.certs[{j}].cert"), &c.cert, &c.key));
                }
            }
            (None, None, Some(_)) => self.err(&format!("{p}.certs"), "give at least one certificate"),
            (_, _, Some(_)) => self.err(
                &p,
                "give either `cert` and `key` (one certificate) or `certs` (several, chosen by SNI), not both",
            ),
            (Some(_), None, None) => self.err(&p, "`cert` needs its `key`"),
            (None, Some(_), None) => self.err(&p, "`key` needs its `cert`"),
            (None, None, None) => {
                if t.acme.is_none() {
                    self.err(&p, "give `cert` and `key`, `certs`, or `acme`");
                }
            }
        }
        let acme = t.acme.as_ref().map(|a| self.acme(&format!("{p}.acme"), a));
        let certs = pairs
            .into_iter()
            .map(|(at, cert, key)| {
                let contents =
                    crate::config::certs::check_listener(cert, key).unwrap_or_else(|e| {
                        self.err(&at, e.to_string());
                        0
                    });
                CertFiles {
                    cert: cert.to_string(),
                    key: key.to_string(),
                    contents,
                }
            })
            .collect();
        TlsFiles { certs, acme }
    }

    /// `protocol` and the keys that go with it: `upstream`,
    /// `proxy_protocol` and `idle_timeout` belong to tcp listeners only.
    pub(super) fn listener_protocol(&mut self, i: usize, l: &ListenerFile) -> Option<TcpSpec> {
        let p = format!("listeners[{i}]");
        let tcp = match l.protocol.as_deref() {
            None | Some("http") => false,
            Some("tcp") => true,
            Some(other) => {
                self.err(
                    &format!("{p}.protocol"),
                    format!("unknown protocol `{other}`: use http or tcp"),
                );
                false
            }
        };
        if !tcp {
            let keys = [
                ("upstream", l.upstream.is_some()),
                ("proxy_protocol", l.proxy_protocol.is_some()),
                ("idle_timeout", l.idle_timeout.is_some()),
            ];
            let why = "a listener with `protocol: tcp` (http listeners use routes)";
            self.only_for(&p, &keys, why);
            return None;
        }
        let Some(upstream) = l.upstream.clone() else {
            self.err(
                &p,
                "a tcp listener needs `upstream: NAME`, the pool for its connections",
            );
            return None;
        };
        let proxy_protocol = match l.proxy_protocol.as_deref() {
            None => None,
            Some("v1") => Some(ProxyProtocol::V1),
            Some("v2") => Some(ProxyProtocol::V2),
            Some(other) => {
                self.err(
                    &format!("{p}.proxy_protocol"),
                    format!("unknown PROXY protocol version `{other}`: use v1 or v2"),
                );
                None
            }
        };
        let idle_timeout = self.duration(
            &format!("{p}.idle_timeout"),
            &l.idle_timeout,
            defaults::TCP_IDLE_TIMEOUT,
        );
        Some(TcpSpec {
            upstream,
            proxy_protocol,
            idle_timeout,
        })
    }

    /// Every tcp listener names a defined upstream whose hash key, if any,
    /// is the client address (a TCP session has no URI, header or cookie).
    pub(super) fn tcp_upstreams(&mut self, listeners: &[ListenerSpec], upstreams: &[UpstreamSpec]) {
        for (i, l) in listeners.iter().enumerate() {
            let Some(t) = &l.tcp else { continue };
            let p = format!("listeners[{i}].upstream");
            match upstreams.iter().find(|u| u.name == t.upstream) {
                None => self.err(
                    &p,
                    format!("tcp listener names upstream `{}`, which is not defined", t.upstream),
                ),
                Some(u)
                    if u.algorithm == Algorithm::ConsistentHash
                        && u.hash_key != HashKey::ClientIp =>
                {
                    self.err(
                        &p,
                        format!(
                            "upstream `{}` hashes on something other than client_ip, which a tcp listener cannot provide",
                            u.name
                        ),
                    )
                }
                Some(u) => self.tcp_transport(&p, u),
            }
        }
    }

    /// `access_log`: where, and in which format.
    pub(super) fn access_log(&mut self, f: &Option<AccessLogFile>) -> (AccessLogSpec, LogFormat) {
        let (path, format) = match f {
            None | Some(AccessLogFile::Flag(true)) => (Some("stdout"), None),
            Some(AccessLogFile::Flag(false)) => (Some("off"), None),
            Some(AccessLogFile::Target(s)) => (Some(s.as_str()), None),
            Some(AccessLogFile::Table(t)) => (t.path.as_deref(), t.format.as_deref()),
        };
        let target = match path.unwrap_or("stdout") {
            "stdout" | "-" => AccessLogSpec::Stdout,
            "off" => AccessLogSpec::Off,
            "" => {
                self.err(
                    "access_log",
                    "access_log must be stdout, off or a file path",
                );
                AccessLogSpec::Off
            }
            p => AccessLogSpec::File(p.to_string()),
        };
        let format = match format.unwrap_or("combined") {
            "combined" => LogFormat::Combined,
            "json" => LogFormat::Json,
            other => {
                self.err(
                    "access_log.format",
                    format!("unknown access_log format `{other}`: use combined or json"),
                );
                LogFormat::Combined
            }
        };
        (target, format)
    }
}
