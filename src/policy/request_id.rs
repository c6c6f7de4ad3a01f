//! `X-Request-Id` on every request: a valid one from the client (1 to 128
//! characters of `A-Z a-z 0-9 - _ . :`) is kept, otherwise bulb makes one
//! (32 hex digits, 128 random bits). It goes upstream, comes back in the
//! response and is in the access log.

use http::header::{HeaderName, HeaderValue};
use pingora_error::Result;
use pingora_http::{RequestHeader, StaticHeader};

/// The header.
pub static NAME: HeaderName = HeaderName::from_static("x-request-id");
/// The header's name for Pingora's `insert_header`, which then allocates
/// nothing for it (vendor/pingora-http/PATCH.md).
pub const NAME_STR: StaticHeader = StaticHeader(&NAME, "X-Request-Id");

/// Whether `v` is an id bulb keeps.
pub fn valid(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// A new id: 32 lower-case hex digits.
pub fn generate() -> HeaderValue {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&crate::random::u64().to_be_bytes());
    id[8..].copy_from_slice(&crate::random::u64().to_be_bytes());
    let mut buf = [0u8; 32];
    crate::random::hex_into(&id, &mut buf);
    // Owned in place: the id is shared by the request, the response and the
    // log without copying (a `Vec`-backed value allocates again when first
    // cloned).
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .expect("hex is a valid header value")
}

/// The request's id: the client's when valid (other copies dropped), else
/// a new one put in its place.
pub fn ensure(req: &mut RequestHeader) -> Result<HeaderValue> {
    let mut all = req.headers.get_all(&NAME).iter();
    let first = all.next();
    let single = all.next().is_none();
    match first {
        Some(v) if single && valid(v.as_bytes()) => Ok(v.clone()),
        Some(v) if valid(v.as_bytes()) => {
            let v = v.clone();
            req.insert_header(NAME_STR, v.clone())?;
            Ok(v)
        }
        _ => {
            let v = generate();
            req.insert_header(NAME_STR, v.clone())?;
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_are_kept_others_replaced() {
        assert!(valid(b"a-Z_0.9:x"));
        assert!(!valid(b""));
        assert!(!valid(b"has space"));
        assert!(!valid(&[b'a'; 129]));
        let id = generate();
        assert_eq!(id.len(), 32);
        assert_ne!(id, generate());
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Request-Id", "mine-1").unwrap();
        assert_eq!(ensure(&mut req).unwrap(), "mine-1");
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Request-Id", "bad id").unwrap();
        let made = ensure(&mut req).unwrap();
        assert_eq!(made.len(), 32);
        assert_eq!(req.headers.get_all("x-request-id").iter().count(), 1);
    }
}
