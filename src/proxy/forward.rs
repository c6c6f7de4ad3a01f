//! Forwarding headers, both directions: hop-by-hop headers never cross
//! bulb (one list, requests and responses alike), `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Real-IP` are set on the way up.

use crate::config::Cidr;
use http::header::{self, HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader, StaticHeader};
use std::net::IpAddr;

const HOP_BY_HOP_COUNT: usize = 7;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1,
/// plus the non-standard `Proxy-Connection` and `Keep-Alive`). Framing
/// (`Transfer-Encoding`, `Content-Length`) is Pingora's to rewrite.
pub static HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

// Names known when compiling: inserting them allocates nothing for the name
// (vendor/pingora-http/PATCH.md; a `&str` or `HeaderName` is copied and
// parsed again).
const XFF: StaticHeader = StaticHeader(&X_FORWARDED_FOR, "X-Forwarded-For");
const XFP: StaticHeader = StaticHeader(&X_FORWARDED_PROTO, "X-Forwarded-Proto");
const XRI: StaticHeader = StaticHeader(&X_REAL_IP, "X-Real-IP");

/// An address as text, formatted on the stack (no allocation).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> Self {
        use std::io::Write;
        let mut t = IpText {
            buf: [0; 48],
            len: 0,
        };
        let mut w = &mut t.buf[..];
        // The longest address text (IPv4-mapped IPv6) has 45 bytes.
        let _ = write!(w, "{ip}");
        t.len = 48 - w.len();
        t
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn value(&self) -> Option<HeaderValue> {
        HeaderValue::from_bytes(self.as_bytes()).ok()
    }
}

/// `ip` as a header value whose clones share one buffer (a value made by
/// copying would copy again on its first clone).
pub fn shared_ip_value(ip: IpAddr) -> Option<HeaderValue> {
    struct Owned(IpText);
    impl AsRef<[u8]> for Owned {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(Owned(IpText::new(ip)))).ok()
}

/// The hop-by-hop headers present in a message: the names its
/// `Connection` lists (rarely any: `close` and `keep-alive` are not names)
/// and which of [`HOP_BY_HOP`] it has, kept without allocating.
struct HopByHop {
    named: Vec<HeaderName>,
    fixed: [bool; HOP_BY_HOP_COUNT],
}

impl HopByHop {
    /// `switching`: a protocol switch (WebSocket), where `Upgrade` and
    /// `Connection: upgrade` must reach the other side.
    fn of(headers: &http::HeaderMap, switching: bool) -> Self {
        // One pass over the names present (a request has a handful) instead
        // of a hashed lookup per hop-by-hop name, most of which find nothing.
        let mut fixed = [false; HOP_BY_HOP_COUNT];
        let mut connection = false;
        for name in headers.keys() {
            connection |= *name == header::CONNECTION;
            if let Some(i) = HOP_BY_HOP.iter().position(|n| n == name) {
                let kept = switching && (*name == header::CONNECTION || *name == header::UPGRADE);
                fixed[i] = !kept;
            }
        }
        let mut named: Vec<HeaderName> = Vec::new();
        if connection {
            for v in headers.get_all(header::CONNECTION) {
                for token in v.as_bytes().split(|&c| c == b',') {
                    let t = token.trim_ascii();
                    if t.is_empty()
                        || t.eq_ignore_ascii_case(b"close")
                        || t.eq_ignore_ascii_case(b"keep-alive")
                        || (switching && t.eq_ignore_ascii_case(b"upgrade"))
                    {
                        continue;
                    }
                    if let Ok(n) = HeaderName::from_bytes(t) {
                        named.push(n);
                    }
                }
            }
        }
        HopByHop { named, fixed }
    }

    /// Every name to remove.
    fn names(&self) -> impl Iterator<Item = &HeaderName> {
        let fixed = HOP_BY_HOP.iter().zip(self.fixed).filter(|(_, f)| *f);
        self.named.iter().chain(fixed.map(|(n, _)| n))
    }
}

/// Whether the client said it accepts trailers (`TE: trailers`), as gRPC
/// clients do.
pub fn accepts_trailers(req: &RequestHeader) -> bool {
    req.headers.get_all(header::TE).iter().any(|v| {
        v.as_bytes()
            .split(|&c| c == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"))
    })
}

/// The forwarding edits made to every request before it goes upstream:
/// drop hop-by-hop headers (`Upgrade` stays for a protocol switch), append
/// the peer to `X-Forwarded-For`, set `X-Real-IP` and `X-Forwarded-Proto`.
/// `X-Real-IP` is `client`: the peer, or what [`real_client`] found behind a
/// trusted proxy. `peer_text`: the peer as a header value, if the caller
/// has it made already (else it is formatted here).
pub fn edit_request_headers(
    req: &mut RequestHeader,
    peer: Option<IpAddr>,
    peer_text: Option<HeaderValue>,
    client: Option<IpAddr>,
    upgrade: bool,
    tls: bool,
) -> Result<()> {
    for n in HopByHop::of(&req.headers, upgrade).names() {
        req.remove_header(n);
    }
    if let Some(peer) = peer {
        let ip = peer_text.or_else(|| shared_ip_value(peer));
        let xff = match req.headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes()) {
            Some(prev) if !prev.is_empty() => {
                let ip = ip.as_ref().map_or(&b""[..], |v| v.as_bytes());
                let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
                v.extend_from_slice(prev);
                v.extend_from_slice(b", ");
                v.extend_from_slice(ip);
                HeaderValue::from_bytes(&v).ok()
            }
            _ => ip.clone(),
        };
        if let Some(xff) = xff {
            req.insert_header(XFF, xff)?;
        }
        let real = match client {
            Some(c) if c == peer => ip,
            Some(c) => IpText::new(c).value(),
            None => None,
        };
        if let Some(real) = real {
            req.insert_header(XRI, real)?;
        }
    }
    let proto = if tls { "https" } else { "http" };
    req.insert_header(XFP, HeaderValue::from_static(proto))?;
    Ok(())
}

/// The edits made to every response before it goes to the client: drop
/// hop-by-hop headers, except what a `101 Switching Protocols` needs.
pub fn edit_response_headers(resp: &mut ResponseHeader) {
    let switching = resp.status.as_u16() == 101;
    for n in HopByHop::of(&resp.headers, switching).names() {
        resp.remove_header(n);
    }
}

/// The client address: the peer, unless the peer is a trusted proxy, in
/// which case the rightmost `X-Forwarded-For` entry that is not itself
/// trusted (an unparsable entry ends the walk: the peer's view stands).
pub fn real_client(peer: IpAddr, xff: Option<&[u8]>, trusted: &[Cidr]) -> Option<IpAddr> {
    if trusted.is_empty() || !trusted.iter().any(|c| c.contains(peer)) {
        return Some(peer);
    }
    let Some(xff) = xff.and_then(|x| std::str::from_utf8(x).ok()) else {
        return Some(peer);
    };
    let mut last = peer;
    for part in xff.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.iter().any(|c| c.contains(ip)) => last = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

/// The `X-Forwarded-For` a request arrived with.
pub fn forwarded_for(req: &RequestHeader) -> Option<&[u8]> {
    req.headers.get(&X_FORWARDED_FOR).map(|v| v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_list_both_ways() {
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        for (k, v) in [
            ("Connection", "close, X-Foo"),
            ("X-Foo", "1"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("X-Keep", "1"),
        ] {
            req.append_header(k, v).expect("header");
        }
        edit_request_headers(&mut req, None, None, None, false, false).expect("edit");
        let names: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-keep", "x-forwarded-proto"]);

        let mut resp = ResponseHeader::build(200, None).expect("resp");
        for (k, v) in [
            ("Connection", "X-Bar"),
            ("X-Bar", "1"),
            ("Upgrade", "x"),
            ("TE", "y"),
        ] {
            resp.append_header(k, v).expect("header");
        }
        edit_response_headers(&mut resp);
        assert!(resp.headers.is_empty(), "{:?}", resp.headers);

        let mut switch = ResponseHeader::build(101, None).expect("resp");
        switch
            .append_header("Connection", "upgrade")
            .expect("header");
        switch
            .append_header("Upgrade", "websocket")
            .expect("header");
        edit_response_headers(&mut switch);
        assert_eq!(switch.headers.len(), 2);
    }

    #[test]
    fn forwarding_headers_name_the_peer_and_the_client() {
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        req.append_header("X-Forwarded-For", "10.0.0.1")
            .expect("header");
        edit_request_headers(&mut req, Some(peer), None, Some(longest), false, true).expect("edit");
        let get =
            |r: &RequestHeader, n: &str| r.headers.get(n).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            get(&req, "x-forwarded-for").as_deref(),
            Some("10.0.0.1, 127.0.0.2")
        );
        assert_eq!(get(&req, "x-real-ip"), Some(longest.to_string()));
        assert_eq!(get(&req, "x-forwarded-proto").as_deref(), Some("https"));
        let mut req = RequestHeader::build("GET", b"/", None).expect("req");
        edit_request_headers(&mut req, Some(v6), None, Some(v6), false, false).expect("edit");
        assert_eq!(get(&req, "x-forwarded-for").as_deref(), Some("::1"));
        assert_eq!(get(&req, "x-real-ip").as_deref(), Some("::1"));
        assert_eq!(get(&req, "x-forwarded-proto").as_deref(), Some("http"));
    }
}
