//! Route policies, one small unit each, applied in this order (SPEC "Route
//! policies"):
//!
//! 1. [`access`] — `allow`/`deny` on the client address → 403;
//! 2. [`auth`] — `basic_auth` → 401;
//! 3. [`answer`] — `return` (bulb answers, nothing goes upstream);
//! 4. [`rewrite`] — `strip_prefix`;
//! 5. [`headers`] — `request_headers` (with [`request_id`] on every route);
//! 6. upstream choice: [`sticky`] cookie, then [`split`], then the pool's
//!    algorithm;
//! 7. [`headers`] — `response_headers`;
//! 8. [`compress`].
//!
//! A route's policies are built into its model when the config is read
//! (`config::RouteSpec`); a route without any pays nothing per request.

pub mod access;
pub mod answer;
pub mod auth;
pub mod compress;
pub mod headers;
pub mod request_id;
pub mod rewrite;
pub mod split;
pub mod sticky;

use crate::config::{Piece, Template, Var};
use http::header::HeaderValue;
use std::net::IpAddr;

/// What the variables of a [`Template`] stand for in one request.
pub struct Vars<'a> {
    /// `$client_ip`.
    pub client_ip: Option<IpAddr>,
    /// `$host`, as sent (lowercased and without port when expanded).
    pub host: &'a [u8],
    /// `$scheme` is `https`.
    pub tls: bool,
    /// `$request_uri`.
    pub request_uri: &'a str,
    /// `$request_id`.
    pub request_id: &'a [u8],
}

impl Vars<'_> {
    fn write(&self, var: Var, out: &mut Vec<u8>) {
        match var {
            Var::ClientIp => {
                if let Some(ip) = self.client_ip {
                    use std::io::Write;
                    let _ = write!(out, "{ip}");
                }
            }
            Var::Host => out.extend(
                crate::runtime::strip_port(self.host)
                    .iter()
                    .map(u8::to_ascii_lowercase),
            ),
            Var::Scheme => out.extend_from_slice(if self.tls { b"https" } else { b"http" }),
            Var::RequestUri => out.extend_from_slice(self.request_uri.as_bytes()),
            Var::RequestId => out.extend_from_slice(self.request_id),
        }
    }

    /// `t` with its variables replaced; `None` when the result is not a
    /// valid header value.
    pub fn expand(&self, t: &Template) -> Option<HeaderValue> {
        if let [Piece::Text(s)] = t.0.as_slice() {
            return HeaderValue::from_str(s).ok();
        }
        let mut out = Vec::with_capacity(64);
        for piece in &t.0 {
            match piece {
                Piece::Text(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Var(v) => self.write(*v, &mut out),
            }
        }
        HeaderValue::from_bytes(&out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand() {
        let v = Vars {
            client_ip: Some("::1".parse().unwrap()),
            host: b"Shop.Example.COM:8443",
            tls: true,
            request_uri: "/api/x?q=1",
            request_id: b"abc",
        };
        let t = Template::parse("$scheme://$host$request_uri $client_ip $request_id").unwrap();
        assert_eq!(
            v.expand(&t).unwrap(),
            "https://shop.example.com/api/x?q=1 ::1 abc"
        );
    }
}
