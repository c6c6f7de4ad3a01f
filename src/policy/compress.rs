//! `compress`: responses the backend sent uncompressed are compressed with
//! the first of the route's encodings the client accepts (`q` > 0), when
//! they are text-like (`text/*`, JSON, JavaScript, XML, SVG), 2xx but not a
//! 204 or a 206 range, over 1 KiB
//! (or of unknown length), have no `Content-Encoding` and do not say
//! `Cache-Control: no-transform`. A response that could be compressed
//! carries `Vary: Accept-Encoding`, whatever this client accepts. The
//! encoders are Pingora's (`pingora_core::protocols::http::compression`).
//! HTTP/1.0 clients are left alone (no chunked framing for them: nginx's
//! `gzip_http_version 1.1` default).

use crate::config::Encoding;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Version;
use pingora_core::protocols::http::compression::{Algorithm, Encode};
use pingora_error::Result;
use pingora_http::{RequestHeader, ResponseHeader};

/// Responses shorter than this are sent as they are.
pub const MIN_BYTES: u64 = 1024;

/// A response body's encoder.
pub type Encoder = Box<dyn Encode + Send + Sync>;

/// The client's weight for `token` in its `Accept-Encoding` (`*` stands in
/// for tokens not named; absent: 0).
fn quality(req: &RequestHeader, token: &str) -> f32 {
    let mut star = None;
    for v in req.headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| v.trim().parse::<f32>().ok())?
                })
                .unwrap_or(1.0);
            if name.eq_ignore_ascii_case(token) {
                return q;
            }
            if name == "*" {
                star = Some(q);
            }
        }
    }
    star.unwrap_or(0.0)
}

/// Whether `content_type` is worth compressing.
fn text_like(content_type: &[u8]) -> bool {
    let ct = std::str::from_utf8(content_type).unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
                | "image/svg+xml"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// Whether `resp` (to a request with `method`) could be compressed.
fn candidate(req: &RequestHeader, resp: &ResponseHeader) -> bool {
    let status = resp.status.as_u16();
    let h = &resp.headers;
    let long_enough = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_none_or(|n| n >= MIN_BYTES);
    let no_transform = h.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.as_bytes()
            .split(|&c| c == b',')
            .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
    });
    req.method != http::Method::HEAD
        && (200..300).contains(&status)
        && status != 204
        && status != 206 // a range of the uncompressed bytes
        && !h.contains_key(header::CONTENT_ENCODING)
        && h.get(header::CONTENT_TYPE)
            .is_some_and(|v| text_like(v.as_bytes()))
        && long_enough
        && !no_transform
}

/// Append `Vary: Accept-Encoding` unless the response already varies on it.
fn vary(resp: &mut ResponseHeader) -> Result<()> {
    let present = resp.headers.get_all(header::VARY).iter().any(|v| {
        v.as_bytes().split(|&c| c == b',').any(|t| {
            let t = t.trim_ascii();
            t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding")
        })
    });
    if !present {
        resp.append_header(header::VARY, "Accept-Encoding")?;
    }
    Ok(())
}

fn algorithm(e: Encoding) -> (Algorithm, u32) {
    match e {
        Encoding::Zstd => (Algorithm::Zstd, 3),
        Encoding::Br => (Algorithm::Brotli, 4),
        Encoding::Gzip => (Algorithm::Gzip, 5),
    }
}

/// Decide for `resp`: when it is compressed, its head is changed
/// (`Content-Encoding`, no `Content-Length` or `Accept-Ranges`, a strong
/// `ETag` made weak) and the encoder for its body is returned.
pub fn start(
    encodings: &[Encoding],
    req: &RequestHeader,
    resp: &mut ResponseHeader,
) -> Result<Option<Encoder>> {
    if !candidate(req, resp) {
        return Ok(None);
    }
    vary(resp)?;
    if req.version < Version::HTTP_11 {
        return Ok(None);
    }
    let Some(e) = encodings.iter().find(|e| quality(req, e.token()) > 0.0) else {
        return Ok(None);
    };
    let (alg, level) = algorithm(*e);
    let Some(encoder) = alg.compressor(level) else {
        return Ok(None);
    };
    resp.insert_header(header::CONTENT_ENCODING, e.token())?;
    resp.remove_header(&header::CONTENT_LENGTH);
    resp.remove_header(&header::ACCEPT_RANGES);
    if let Some(tag) = resp.headers.get(header::ETAG) {
        let t = tag.as_bytes();
        if t.starts_with(b"\"") {
            let weak = HeaderValue::from_bytes(&[b"W/", t].concat());
            if let Ok(weak) = weak {
                resp.insert_header(header::ETAG, weak)?;
            }
        } else if !t.starts_with(b"W/") {
            resp.remove_header(&header::ETAG);
        }
    }
    Ok(Some(encoder))
}

/// Compress one piece of the body (`end`: the last one).
pub fn body(encoder: &mut Encoder, body: &mut Option<Bytes>, end: bool) -> Result<()> {
    let input = body.as_deref().unwrap_or(&[]);
    *body = Some(encoder.encode(input, end)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ae: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.append_header("Accept-Encoding", ae).unwrap();
        r
    }

    fn resp(ct: &str, len: Option<usize>) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.append_header("Content-Type", ct).unwrap();
        if let Some(n) = len {
            r.append_header("Content-Length", n).unwrap();
        }
        r
    }

    #[test]
    fn the_routes_order_among_what_the_client_accepts() {
        let all = [Encoding::Zstd, Encoding::Br, Encoding::Gzip];
        let pick = |ae: &str| {
            let mut r = resp("text/html; charset=utf-8", Some(5000));
            start(&all, &req(ae), &mut r)
                .unwrap()
                .map(|_| r.headers["content-encoding"].to_str().unwrap().to_string())
        };
        assert_eq!(pick("gzip, br").as_deref(), Some("br"));
        assert_eq!(pick("gzip, zstd;q=0").as_deref(), Some("gzip"));
        assert_eq!(pick("identity").as_deref(), None);
        assert_eq!(pick("*").as_deref(), Some("zstd"));
        assert_eq!(pick("deflate").as_deref(), None);
    }

    #[test]
    fn small_binary_or_encoded_responses_are_left_alone() {
        let g = [Encoding::Gzip];
        let r = req("gzip");
        assert!(start(&g, &r, &mut resp("text/plain", Some(100)))
            .unwrap()
            .is_none());
        assert!(start(&g, &r, &mut resp("image/png", Some(5000)))
            .unwrap()
            .is_none());
        let mut enc = resp("application/json", Some(5000));
        enc.append_header("Content-Encoding", "br").unwrap();
        assert!(start(&g, &r, &mut enc).unwrap().is_none());
        let mut ok = resp("application/json", None);
        ok.append_header("ETag", "\"v1\"").unwrap();
        assert!(start(&g, &r, &mut ok).unwrap().is_some());
        assert_eq!(ok.headers["etag"], "W/\"v1\"");
        assert_eq!(ok.headers["vary"], "Accept-Encoding");
        // No Accept-Encoding: not compressed, but the answer varies on it.
        let mut range = resp("text/css", Some(5000));
        range.set_status(206).unwrap();
        assert!(start(&g, &r, &mut range).unwrap().is_none());
        let mut plain = resp("text/css", Some(5000));
        let none = RequestHeader::build("GET", b"/", None).unwrap();
        assert!(start(&g, &none, &mut plain).unwrap().is_none());
        assert_eq!(plain.headers["vary"], "Accept-Encoding");
        assert_eq!(plain.headers["content-length"], "5000");
    }
}
