//! Upstream choice: the request's host for routing, the consistent-hash
//! key, and what a request that admission refused is answered.

use crate::admission::Refused;
use crate::config::HashKey;
use http::header;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use std::net::IpAddr;

/// The request's host: the URI authority (HTTP/2) or `Host` (HTTP/1, where
/// an absolute-form target was already turned into `Host`).
pub fn request_host(req: &RequestHeader) -> &[u8] {
    match req.uri.authority() {
        Some(a) => a.as_str().as_bytes(),
        None => req.headers.get(header::HOST).map_or(b"", |h| h.as_bytes()),
    }
}

/// The consistent-hash key for this request, written into `buf` when it is
/// the client IP. A missing header or cookie falls back to the client IP.
pub fn hash_key<'a>(
    key: &HashKey,
    req: &'a RequestHeader,
    ip: Option<IpAddr>,
    buf: &'a mut [u8; 16],
) -> &'a [u8] {
    let found: Option<&[u8]> = match key {
        HashKey::ClientIp => None,
        HashKey::Uri => Some(
            req.uri
                .path_and_query()
                .map_or(b"/", |pq| pq.as_str().as_bytes()),
        ),
        HashKey::Path => Some(req.uri.path().as_bytes()),
        HashKey::Header(n) => req.headers.get(n).map(|v| v.as_bytes()),
        HashKey::Cookie(n) => crate::policy::sticky::cookie(req, n),
    };
    match found {
        Some(k) => k,
        None => crate::client::ip_key(ip, buf),
    }
}

/// The error for a request that [`admission::lease`](crate::admission::lease)
/// refused: 502 after failed tries, 503 when nothing was usable or the
/// queue said no; a client that left the queue closed its own connection.
pub fn refused(r: Refused) -> Box<Error> {
    let status = match r {
        Refused::ClientLeft => {
            return Error::explain(ErrorType::ConnectionClosed, r.reason()).into_down()
        }
        Refused::NoBackend { tried_any: true } => 502,
        _ => 503,
    };
    Error::explain(ErrorType::HTTPStatus(status), r.reason())
}

/// Completes when the client goes away while its request waits in a queue:
/// with the request body fully read, any read that ends is the client leaving.
/// Never completes while a body is still to be read.
pub async fn client_gone(session: &mut Session) {
    let downstream = session.as_downstream_mut();
    if downstream.is_body_done() {
        let _ = downstream.read_body_or_idle(true).await;
    } else {
        std::future::pending::<()>().await
    }
}
