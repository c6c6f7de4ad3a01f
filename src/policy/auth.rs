//! `basic_auth`: `Authorization: Basic …` checked against the route's
//! htpasswd users (bcrypt). Missing, malformed or wrong credentials get 401
//! with `WWW-Authenticate`, and nothing reaches a backend.

use crate::config::BasicAuth;
use base64::Engine;
use http::header;
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::sync::Arc;

/// Verified pairs kept per users file before the cache starts over.
const CACHE_MAX: usize = 10_000;

/// `user` and `password` from a `Basic` `Authorization` header.
pub fn credentials(req: &RequestHeader) -> Option<(String, String)> {
    let v = req.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn digest(user: &str, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(b"\0");
    ctx.update(password.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether `req` carries the right password of a user of `auth`. bcrypt
/// runs on a blocking thread (it is slow by design); a pair once verified
/// is remembered (as a SHA-256 digest) for the life of this config.
pub async fn verified(auth: &Arc<BasicAuth>, req: &RequestHeader) -> bool {
    let Some((user, password)) = credentials(req) else {
        return false;
    };
    let key = digest(&user, &password);
    if auth.verified.lock().is_ok_and(|s| s.contains(&key)) {
        return true;
    }
    // An unknown user costs a bcrypt run too (against another user's hash,
    // whatever its result), so that timing does not tell which names exist.
    let known = auth.users.contains_key(&user);
    let Some(hash) = auth
        .users
        .get(&user)
        .or_else(|| auth.users.values().next())
        .cloned()
    else {
        return false;
    };
    let verify = move || bcrypt::verify(password, &hash).unwrap_or(false);
    let matched = tokio::task::spawn_blocking(verify).await.unwrap_or(false);
    let ok = known && matched;
    if ok {
        if let Ok(mut s) = auth.verified.lock() {
            if s.len() >= CACHE_MAX {
                s.clear();
            }
            s.insert(key);
        }
    }
    ok
}

/// Answer 401 with the route's challenge.
pub async fn challenge(session: &mut Session, auth: &BasicAuth, request_id: &[u8]) -> Result<bool> {
    let mut resp = ResponseHeader::build(401, Some(4))?;
    let value = format!("Basic realm=\"{}\", charset=\"UTF-8\"", auth.realm);
    resp.insert_header(header::WWW_AUTHENTICATE, value)?;
    resp.insert_header(header::CONTENT_LENGTH, 0)?;
    resp.insert_header(super::request_id::NAME_STR, request_id)?;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_or_refused() {
        let req = |v: &str| {
            let mut r = RequestHeader::build("GET", b"/", None).unwrap();
            r.append_header("Authorization", v).unwrap();
            r
        };
        // "alice:se:cret"
        assert_eq!(
            credentials(&req("Basic YWxpY2U6c2U6Y3JldA==")),
            Some(("alice".into(), "se:cret".into()))
        );
        assert_eq!(
            credentials(&req("basic YWxpY2U6c2U6Y3JldA==")).map(|c| c.0),
            Some("alice".into())
        );
        assert_eq!(credentials(&req("Bearer abc")), None);
        assert_eq!(credentials(&req("Basic !!!")), None);
        assert_eq!(credentials(&req("Basic YWxpY2U=")), None); // no colon
        assert_eq!(credentials(&req("Basic")), None);
    }
}
