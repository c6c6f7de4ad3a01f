//! Request-body buffering, as nginx's `proxy_request_buffering`: a body of
//! at most `limits.request_buffer_bytes` is read, and its framing checked,
//! before a backend is chosen, so a malformed body never puts a byte on an
//! upstream connection and a connect failure can be retried elsewhere.
//!
//! The body is kept in Pingora's retry buffer, which the proxy sends for
//! each attempt. That buffer holds 64 KiB
//! ([`crate::config::MAX_REQUEST_BUFFER`]) and is dropped
//! whole when a read overflows it, so no read may: a `Content-Length` body
//! is only buffered when it fits, a chunked HTTP/1 body is read through the
//! connection's read cap ([`crate::guard::Link`]), an HTTP/2 body one frame
//! (at most 16 KiB) at a time. A body that turns out larger streams on.

use super::respond::Outcome;
use crate::guard::Link;
use pingora_error::ErrorType;
use pingora_proxy::Session;
use std::time::Duration;

/// The largest HTTP/2 DATA frame a client may send us (the default
/// SETTINGS_MAX_FRAME_SIZE, which bulb does not raise).
const H2_FRAME: usize = 16 * 1024;

/// What happened to a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffered {
    /// Read whole (this many bytes): it can be sent to any backend.
    Whole(usize),
    /// Larger than the buffer (or buffering is off): it streams.
    Streaming,
}

/// Read the body of `session` whole when it fits in `limit` bytes.
/// `length` is its `Content-Length` (None: chunked or HTTP/2 without one).
pub async fn buffer(
    session: &mut Session,
    length: Option<u64>,
    limit: usize,
    read_timeout: Duration,
) -> Result<Buffered, Outcome> {
    if limit == 0 || length.is_some_and(|n| n > limit as u64) {
        return Ok(Buffered::Streaming);
    }
    let h2 = session.as_downstream().is_http2();
    session.as_downstream_mut().enable_retry_buffering();
    let mut total = 0usize;
    let result = loop {
        if session.as_downstream_mut().is_body_done() {
            break Ok(Buffered::Whole(total));
        }
        if total >= limit || (h2 && length.is_none() && total + H2_FRAME > limit) {
            break Ok(Buffered::Streaming);
        }
        if length.is_none() && !h2 {
            with_link(session, |l| l.set_read_cap(limit - total));
        }
        match tokio::time::timeout(read_timeout, session.read_request_body()).await {
            Err(_) => break Err(Outcome::Status(408)),
            Ok(Err(e)) => {
                let gone = matches!(
                    e.etype(),
                    ErrorType::ConnectionClosed | ErrorType::ReadError
                );
                break Err(if gone {
                    Outcome::ClientGone
                } else {
                    Outcome::Status(400)
                });
            }
            Ok(Ok(None)) => break Ok(Buffered::Whole(total)),
            Ok(Ok(Some(chunk))) => total += chunk.len(),
        }
    };
    with_link(session, |l| l.set_read_cap(usize::MAX));
    result
}

fn with_link(session: &Session, f: impl FnOnce(&Link)) {
    if let Some(l) = crate::guard::link(session.as_downstream()) {
        f(l)
    }
}
