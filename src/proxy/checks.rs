//! Request checks, first phase of the request path: is the head one that
//! every parser after bulb reads the same way? Framing (RFC 9112 §6, RFC
//! 9110 §8.6), the request target and `Host` (RFC 9112 §3), `Expect` (RFC
//! 9110 §10.1.1) and the header size limit. The request line's bytes and
//! line endings were already checked by the (patched) parser.
//!
//! [`check`] either refuses a head with a status or returns a [`Plan`]:
//! what [`normalise`] must rewrite before the request goes anywhere (one
//! `Content-Length` for a list of equal ones; origin-form and `Host` for an
//! absolute-form target; no `Expect`), and what the body looks like.

use http::header::{self, HeaderValue};
use http::{Method, Version};
use pingora_error::Result;
use pingora_http::RequestHeader;
use std::net::Ipv6Addr;

/// Why a request is refused, as the status to answer with.
pub type Refusal = u16;

/// What a request that passed [`check`] needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The body length when framed by `Content-Length`.
    pub content_length: Option<u64>,
    /// `Content-Length` came as a list or repeated (all equal): send one.
    pub collapse_length: bool,
    /// The body is chunked.
    pub chunked: bool,
    /// Absolute-form target: its authority becomes `Host`, its path and
    /// query the target (RFC 9112 §3.2.2).
    pub absolute: Option<(String, String)>,
    /// `Expect: 100-continue` on HTTP/1.1: bulb answers it.
    pub expect_continue: bool,
    /// An `Expect` header to drop before forwarding.
    pub strip_expect: bool,
}

impl Plan {
    /// Whether the request has a body to read.
    pub fn has_body(&self) -> bool {
        self.chunked || self.content_length.is_some_and(|n| n > 0)
    }
}

/// Check a parsed request head. `raw_cl_with_te`: the raw head had a
/// `Content-Length` beside `Transfer-Encoding` (Pingora drops the former).
pub fn check(
    req: &RequestHeader,
    raw_cl_with_te: bool,
    max_header_bytes: usize,
) -> std::result::Result<Plan, Refusal> {
    if header_bytes(req) > max_header_bytes {
        return Err(431);
    }
    let h1 = matches!(req.version, Version::HTTP_10 | Version::HTTP_11);
    let mut plan = Plan::default();
    if h1 {
        plan.absolute = target(req)?;
        host(req, plan.absolute.is_some())?;
    }
    let (len, repeated) = content_length(req)?;
    plan.content_length = len;
    plan.collapse_length = repeated;
    plan.chunked = transfer_encoding(req, len.is_some() || raw_cl_with_te)?;
    if plan.chunked {
        plan.content_length = None;
    }
    (plan.expect_continue, plan.strip_expect) = expect(req)?;
    Ok(plan)
}

/// Rewrite `req` as `plan` says.
pub fn normalise(req: &mut RequestHeader, plan: &Plan) -> Result<()> {
    if plan.collapse_length {
        if let Some(n) = plan.content_length {
            req.insert_header(header::CONTENT_LENGTH, n)?;
        }
    }
    if let Some((authority, path)) = &plan.absolute {
        req.set_raw_path(path.as_bytes())?;
        req.insert_header(header::HOST, authority.as_str())?;
    }
    if plan.strip_expect {
        req.remove_header(&header::EXPECT);
    }
    Ok(())
}

/// Size of the head as the limit counts it: target plus `name: value\r\n`.
fn header_bytes(req: &RequestHeader) -> usize {
    let mut total = req.raw_path().len();
    for (k, v) in &req.headers {
        total += k.as_str().len() + v.len() + 4;
    }
    total
}

/// The request target's form (RFC 9112 §3.2): origin-form, asterisk-form
/// for OPTIONS, or absolute-form with an `http`/`https` scheme. Returns the
/// authority and origin-form target of an absolute-form one.
fn target(req: &RequestHeader) -> std::result::Result<Option<(String, String)>, Refusal> {
    let raw = req.raw_path();
    match raw.first() {
        Some(b'/') => return Ok(None),
        Some(b'*') if raw.len() == 1 && req.method == Method::OPTIONS => return Ok(None),
        _ => {}
    }
    let rest = strip_prefix_ci(raw, b"http://")
        .or_else(|| strip_prefix_ci(raw, b"https://"))
        .ok_or(400u16)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !valid_host(authority) {
        return Err(400);
    }
    let path = match path.first() {
        None => "/".to_string(),
        Some(b'?') => format!("/{}", String::from_utf8_lossy(path)),
        Some(_) => String::from_utf8_lossy(path).into_owned(),
    };
    Ok(Some((
        String::from_utf8_lossy(authority).into_owned(),
        path,
    )))
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// `Host` (RFC 9112 §3.2): HTTP/1.1 needs exactly one, even with an
/// absolute-form target ("any HTTP/1.1 request message that lacks a Host
/// header field"), HTTP/1.0 at most one; a present one must be a valid host
/// with an optional port. With an absolute-form target the header is
/// replaced by the target's authority, but must still not repeat.
fn host(req: &RequestHeader, absolute: bool) -> std::result::Result<(), Refusal> {
    let mut hosts = req.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (_, Some(_)) => Err(400),
        (None, None) if req.version == Version::HTTP_11 => Err(400),
        (Some(h), None) if !absolute && !valid_host(h.as_bytes()) => Err(400),
        _ => Ok(()),
    }
}

/// `host [":" port]` where host is a DNS name or IPv4 address (letters,
/// digits, `-`, `_`, dots between non-empty labels, one trailing dot) or a
/// bracketed IPv6 address, and port is 1 to 5 digits.
pub fn valid_host(h: &[u8]) -> bool {
    let (name, port) = if let Some(rest) = h.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let ip = std::str::from_utf8(&rest[..close]).ok();
        if ip.and_then(|s| s.parse::<Ipv6Addr>().ok()).is_none() {
            return false;
        }
        (&b""[..], &rest[close + 1..])
    } else {
        match h.iter().position(|&b| b == b':') {
            Some(i) => (&h[..i], &h[i..]),
            None => (h, &b""[..]),
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            (1..=5).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits)
                    .ok()
                    .and_then(|p| p.parse::<u16>().ok())
                    .is_some()
        }
        _ => false,
    };
    let name_ok = h.first() == Some(&b'[') || {
        let name = name.strip_suffix(b".").unwrap_or(name);
        !name.is_empty()
            && name.split(|&b| b == b'.').all(|label| {
                !label.is_empty()
                    && label
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    port_ok && name_ok
}

/// All `Content-Length` values (headers and list elements) must be the same
/// number (RFC 9110 §8.6). Returns it, and whether there was more than one.
fn content_length(req: &RequestHeader) -> std::result::Result<(Option<u64>, bool), Refusal> {
    let mut len: Option<u64> = None;
    let mut count = 0;
    for v in req.headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&c| c == b',') {
            let p = part.trim_ascii();
            if p.is_empty() || p.len() > 19 || !p.iter().all(u8::is_ascii_digit) {
                return Err(400);
            }
            let n = std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(400u16)?;
            if len.is_some_and(|l| l != n) {
                return Err(400);
            }
            len = Some(n);
            count += 1;
        }
    }
    Ok((len, count > 1))
}

/// `Transfer-Encoding` (RFC 9112 §6.1): refused beside `Content-Length` or
/// on HTTP/1.0 (400); a coding list that does not end in `chunked` cannot be
/// framed (400); anything but exactly one `chunked` is a coding bulb does
/// not implement (501), never silently rewritten. True when chunked.
fn transfer_encoding(req: &RequestHeader, has_length: bool) -> std::result::Result<bool, Refusal> {
    let mut values = req.headers.get_all(header::TRANSFER_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(false);
    };
    if has_length || req.version == Version::HTTP_10 {
        return Err(400);
    }
    let codings: Vec<&[u8]> = std::iter::once(first)
        .chain(values)
        .flat_map(|v| v.as_bytes().split(|&c| c == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let is_chunked = |t: &[u8]| t.eq_ignore_ascii_case(b"chunked");
    if !codings.last().is_some_and(|t| is_chunked(t)) {
        return Err(400);
    }
    if codings.len() != 1
        || req
            .headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .count()
            != 1
    {
        return Err(501);
    }
    Ok(true)
}

/// `Expect` (RFC 9110 §10.1.1): only `100-continue` is known (417 for
/// anything else). Ignored on HTTP/1.0. Returns (answer 100 ourselves,
/// drop the header).
fn expect(req: &RequestHeader) -> std::result::Result<(bool, bool), Refusal> {
    let mut values = req.headers.get_all(header::EXPECT).iter().peekable();
    if values.peek().is_none() {
        return Ok((false, false));
    }
    if req.version == Version::HTTP_10 {
        return Ok((false, true));
    }
    let continue_only = values.all(|v: &HeaderValue| {
        v.as_bytes()
            .split(|&c| c == b',')
            .all(|t| t.trim_ascii().eq_ignore_ascii_case(b"100-continue"))
    });
    if !continue_only {
        return Err(417);
    }
    Ok((true, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(
        method: &str,
        target: &[u8],
        version: Version,
        headers: &[(&str, &str)],
    ) -> RequestHeader {
        let mut r = RequestHeader::build(method, target, None).expect("build");
        r.set_version(version);
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).expect("header");
        }
        r
    }

    fn check11(target: &[u8], headers: &[(&str, &str)]) -> std::result::Result<Plan, Refusal> {
        check(
            &req("POST", target, Version::HTTP_11, headers),
            false,
            16384,
        )
    }

    #[test]
    fn content_length_lists_collapse_or_refuse() {
        let p = check11(b"/", &[("Host", "a"), ("Content-Length", "5, 5")]).expect("ok");
        assert_eq!((p.content_length, p.collapse_length), (Some(5), true));
        let p = check11(
            b"/",
            &[
                ("Host", "a"),
                ("Content-Length", "5"),
                ("Content-Length", "5"),
            ],
        )
        .expect("ok");
        assert!(p.collapse_length);
        let mut r = req(
            "POST",
            b"/",
            Version::HTTP_11,
            &[("Host", "a"), ("Content-Length", "5, 5")],
        );
        normalise(&mut r, &p).expect("normalise");
        let v: Vec<_> = r.headers.get_all("content-length").iter().collect();
        assert_eq!(v, vec!["5"]);
        for bad in ["5, 6", "", "+5", "0x5", "5,", "99999999999999999999"] {
            assert_eq!(
                check11(b"/", &[("Host", "a"), ("Content-Length", bad)]),
                Err(400),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_a_single_chunked_is_accepted() {
        assert!(
            check11(b"/", &[("Host", "a"), ("Transfer-Encoding", "Chunked")])
                .expect("ok")
                .chunked
        );
        for (te, status) in [
            ("gzip, chunked", 501),
            ("identity, chunked", 501),
            ("chunked, chunked", 501),
            ("gzip", 400),
            ("chunked, gzip", 400),
        ] {
            assert_eq!(
                check11(b"/", &[("Host", "a"), ("Transfer-Encoding", te)]),
                Err(status),
                "{te}"
            );
        }
        let two = [
            ("Host", "a"),
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked"),
        ];
        assert_eq!(check11(b"/", &two), Err(501));
        let with_cl = [
            ("Host", "a"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "3"),
        ];
        assert_eq!(check11(b"/", &with_cl), Err(400));
        let r = req(
            "POST",
            b"/",
            Version::HTTP_11,
            &[("Host", "a"), ("Transfer-Encoding", "chunked")],
        );
        assert_eq!(
            check(&r, true, 16384),
            Err(400),
            "raw Content-Length beside TE"
        );
        let r = req(
            "POST",
            b"/",
            Version::HTTP_10,
            &[("Transfer-Encoding", "chunked")],
        );
        assert_eq!(check(&r, false, 16384), Err(400));
    }

    #[test]
    fn targets_and_hosts() {
        assert_eq!(check11(b"/", &[]), Err(400), "HTTP/1.1 without Host");
        assert!(check(&req("GET", b"/", Version::HTTP_10, &[]), false, 16384).is_ok());
        for bad in [
            "", "a b", "a/b", "a..b", "[::1", "[zz]", "a:", "a:99999", "a:1:2", "a@b", ".", "-a%",
        ] {
            assert_eq!(check11(b"/", &[("Host", bad)]), Err(400), "Host {bad:?}");
        }
        for good in [
            "a",
            "a.example.com.",
            "a:80",
            "[::1]:8080",
            "10.0.0.1",
            "my_host-1",
        ] {
            assert!(check11(b"/", &[("Host", good)]).is_ok(), "Host {good:?}");
        }
        assert_eq!(check11(b"/", &[("Host", "a"), ("Host", "a")]), Err(400));
        let abs = check11(b"HTTP://b.example:81?q=1", &[("Host", "a")]).expect("ok");
        assert_eq!(abs.absolute, Some(("b.example:81".into(), "/?q=1".into())));
        assert_eq!(
            check11(b"http://b.example/", &[]),
            Err(400),
            "absolute-form HTTP/1.1 without Host"
        );
        let r = req("GET", b"http://b.example/", Version::HTTP_10, &[]);
        assert!(check(&r, false, 16384).is_ok(), "HTTP/1.0 needs no Host");
        assert_eq!(check11(b"ftp://b/", &[("Host", "a")]), Err(400));
        assert_eq!(check11(b"http://u@b/", &[("Host", "a")]), Err(400));
        assert_eq!(check11(b"*", &[("Host", "a")]), Err(400), "* needs OPTIONS");
        let r = req("OPTIONS", b"*", Version::HTTP_11, &[("Host", "a")]);
        assert!(check(&r, false, 16384).is_ok());
    }

    #[test]
    fn expectations() {
        let p = check11(b"/", &[("Host", "a"), ("Expect", "100-Continue")]).expect("ok");
        assert!(p.expect_continue && p.strip_expect);
        assert_eq!(
            check11(b"/", &[("Host", "a"), ("Expect", "200-ok")]),
            Err(417)
        );
        let r = req("GET", b"/", Version::HTTP_10, &[("Expect", "200-ok")]);
        assert_eq!(check(&r, false, 16384).map(|p| p.strip_expect), Ok(true));
    }

    #[test]
    fn oversized_heads() {
        let big = "x".repeat(20_000);
        assert_eq!(check11(b"/", &[("Host", "a"), ("X-Big", &big)]), Err(431));
    }
}
