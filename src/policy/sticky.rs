//! `sticky`: an upstream's cookie that keeps a client on one backend. The
//! cookie names the backend by an opaque token (an HMAC-SHA256 of its
//! address keyed by the upstream's name: no address leaks, and every bulb
//! with the same file, before and after a reload, makes the same token). A
//! request with a token goes to that backend while it is usable; otherwise
//! the algorithm picks and the response sets the cookie anew.

use crate::config::StickySpec;
use http::header::{self, HeaderValue};
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

/// The `Set-Cookie` value naming `token`.
pub fn set_cookie(spec: &StickySpec, token: &str) -> Option<HeaderValue> {
    let mut v = format!("{}={token}; Path=/", spec.cookie);
    if let Some(age) = spec.max_age {
        v.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if spec.secure {
        v.push_str("; Secure");
    }
    if spec.http_only {
        v.push_str("; HttpOnly");
    }
    HeaderValue::from_str(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::sticky::token;
    use std::net::SocketAddr;
    use std::time::Duration;

    #[test]
    fn tokens_are_stable_opaque_and_per_upstream() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let t = token("web", a);
        assert_eq!(t.len(), 24);
        assert_eq!(t, token("web", a));
        assert_ne!(t, token("api", a));
        assert!(!t.contains("127"));
        let spec = StickySpec {
            cookie: "BULB".into(),
            max_age: Some(Duration::from_secs(3600)),
            secure: true,
            http_only: true,
        };
        assert_eq!(
            set_cookie(&spec, &t).unwrap(),
            format!("BULB={t}; Path=/; Max-Age=3600; Secure; HttpOnly").as_str()
        );
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Cookie", "a=1; BULB=tok ; b=2").unwrap();
        assert_eq!(cookie(&req, "BULB"), Some(&b"tok"[..]));
        assert_eq!(cookie(&req, "B"), None);
    }
}
