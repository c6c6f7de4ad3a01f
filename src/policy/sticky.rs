//! `sticky`: an upstream's cookie that keeps a client on one backend. The
//! cookie names the backend by an opaque token (an HMAC-SHA256 of its
//! address keyed by the upstream's name: no address leaks, and every bulb
//! with the same file, before and after a reload, makes the same token). A
//! request with a token goes to that backend while it is usable; otherwise
//! the algorithm picks and the response sets the cookie anew. The pool
//! keeps each member's token and `Set-Cookie` value (`crate::pool::sticky`);
//! this reads the cookie a request sent.

use http::header;
use pingora_http::RequestHeader;

/// The value of cookie `name` in `req`, if sent.
pub fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers.get_all(header::COOKIE).iter().find_map(|v| {
        v.as_bytes().split(|&c| c == b';').find_map(|kv| {
            let kv = kv.trim_ascii();
            let eq = kv.iter().position(|&c| c == b'=')?;
            (kv[..eq].trim_ascii() == name.as_bytes()).then(|| kv[eq + 1..].trim_ascii())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_cookie_is_found() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Cookie", "a=1; BULB=tok ; b=2").unwrap();
        assert_eq!(cookie(&req, "BULB"), Some(&b"tok"[..]));
        assert_eq!(cookie(&req, "B"), None);
    }
}
