//! An upstream's transport: `protocol`, `tls` and `max_h2_streams`, and
//! how they bind health checks and tcp listeners.

use super::Validator;
use crate::config::file::{UpstreamFile, UpstreamTlsFile};
use crate::config::model::*;
use crate::config::{certs, defaults};

/// The most concurrent streams allowed on one backend connection.
const MAX_H2_STREAMS: usize = 10_000;

impl Validator {
    /// The transport of upstream `p` (whose backends are `backends`).
    pub(super) fn transport(
        &mut self,
        p: &str,
        u: &UpstreamFile,
        backends: &[BackendSpec],
    ) -> TransportSpec {
        let protocol = match u.protocol.as_deref() {
            None | Some("http1") => UpstreamProtocol::Http1,
            Some("h2") => UpstreamProtocol::H2,
            Some("h2c") => UpstreamProtocol::H2c,
            Some(other) => {
                self.err(
                    &format!("{p}.protocol"),
                    format!("unknown upstream protocol `{other}`: use http1, h2 or h2c"),
                );
                UpstreamProtocol::Http1
            }
        };
        match (protocol, &u.tls) {
            (UpstreamProtocol::H2, None) => self.err(
                &format!("{p}.protocol"),
                "protocol h2 is HTTP/2 over TLS: add `tls:` (`tls: {}` for the defaults), or use h2c for cleartext",
            ),
            (UpstreamProtocol::H2c, Some(_)) => self.err(
                &format!("{p}.tls"),
                "protocol h2c is cleartext HTTP/2: remove `tls`, or use protocol h2",
            ),
            _ => {}
        }
        let max_h2_streams = match u.max_h2_streams {
            None => defaults::MAX_H2_STREAMS,
            Some(_) if protocol == UpstreamProtocol::Http1 => {
                self.err(
                    &format!("{p}.max_h2_streams"),
                    "max_h2_streams applies only to protocol h2 or h2c",
                );
                defaults::MAX_H2_STREAMS
            }
            Some(n) if !(1..=MAX_H2_STREAMS).contains(&n) => {
                self.err(
                    &format!("{p}.max_h2_streams"),
                    format!("max_h2_streams {n} is out of range: must be 1 to {MAX_H2_STREAMS}"),
                );
                defaults::MAX_H2_STREAMS
            }
            Some(n) => n,
        };
        let tls = u
            .tls
            .as_ref()
            .map(|t| self.upstream_tls(&format!("{p}.tls"), t, backends));
        TransportSpec {
            protocol,
            tls,
            max_h2_streams,
        }
    }

    fn upstream_tls(
        &mut self,
        p: &str,
        t: &UpstreamTlsFile,
        backends: &[BackendSpec],
    ) -> UpstreamTls {
        let verify = t.verify.unwrap_or(true);
        let sni = t.sni.clone().filter(|s| {
            let ok = !s.is_empty() && super::valid_hostname(s);
            if !ok {
                self.err(&format!("{p}.sni"), format!("sni `{s}` is not a hostname"));
            }
            ok
        });
        // Pingora skips verification when the SNI is empty: an IP backend
        // has no name to send, so verification needs an explicit one.
        if verify && t.sni.is_none() {
            if let Some(b) = backends.iter().find(|b| b.ip.is_some()) {
                self.err(
                    p,
                    format!(
                        "backend `{}:{}` is an IP address, so it has no name to verify its certificate against: set `sni: NAME` (the name in its certificate), or `verify: false`",
                        b.host, b.port
                    ),
                );
            }
        }
        let ca = t.ca.as_ref().and_then(|path| match certs::load_ca(path) {
            Ok(ca) => Some(ca),
            Err(e) => {
                self.err(&format!("{p}.ca"), e.to_string());
                None
            }
        });
        let client = match (&t.cert, &t.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => match certs::load_client(cert, key) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.err(&format!("{p}.cert"), e.to_string());
                    None
                }
            },
            (Some(_), None) => {
                self.err(&format!("{p}.cert"), "a client `cert` needs its `key`");
                None
            }
            (None, Some(_)) => {
                self.err(&format!("{p}.key"), "a client `key` needs its `cert`");
                None
            }
        };
        UpstreamTls {
            sni,
            verify,
            pool_key: certs::pool_key(ca.as_deref(), client.as_deref()),
            ca,
            client,
        }
    }

    /// Checks across an upstream's settings: a gRPC probe needs HTTP/2.
    pub(super) fn transport_and_health(&mut self, p: &str, u: &UpstreamSpec) {
        let grpc = matches!(
            u.health_check.as_ref().map(|h| &h.kind),
            Some(ProbeKind::Grpc { .. })
        );
        if grpc && u.transport.protocol == UpstreamProtocol::Http1 {
            self.err(
                &format!("{p}.health_check.kind"),
                "a grpc health check needs HTTP/2: set the upstream's `protocol` to h2 or h2c",
            );
        }
    }

    /// A tcp listener relays bytes: its upstream must not expect bulb to
    /// speak TLS or HTTP/2 to the backends.
    pub(super) fn tcp_transport(&mut self, p: &str, u: &UpstreamSpec) {
        let t = &u.transport;
        if t.protocol != UpstreamProtocol::Http1 || t.tls.is_some() {
            self.err(
                p,
                format!(
                    "upstream `{}` speaks {}{} to its backends, but a tcp listener relays bytes as they come: use an upstream without `protocol`/`tls`",
                    u.name,
                    t.protocol.name(),
                    if t.tls.is_some() { " over TLS" } else { "" }
                ),
            );
        }
    }
}
