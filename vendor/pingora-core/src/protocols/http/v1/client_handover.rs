// bulb patch (see PATCH.md, "The response head handed over"). Licensed as the
// rest of this crate (Apache-2.0).

//! Reading a response task without copying its head.
//!
//! [`HttpSession::read_response_task`] hands the caller a copy of the
//! response head and keeps the original, so that what it consults later
//! (keep-alive, framing, the status of an informational response) is still
//! there: two header maps cloned and boxed per response, which the proxy
//! then usually grows by a header or two. A proxy forwarding the head needs
//! the original only: [`HttpSession::read_response_task_handover`] gives it
//! away and keeps a copy of the few fields the session still reads.

use super::HttpSession;
use crate::protocols::http::HttpTask;
use http::header;
use pingora_error::Result;
use pingora_http::ResponseHeader;

/// The response headers an [`HttpSession`] reads after the head: keep-alive
/// (`Connection`, `Keep-Alive`), framing (`Transfer-Encoding`,
/// `Content-Length`) and `Upgrade`.
static KEPT: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::HeaderName::from_static("keep-alive"),
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::UPGRADE,
];

/// The status, version and [`KEPT`] headers of `full` (values shared, not
/// copied).
fn framing_copy(full: &ResponseHeader) -> Box<ResponseHeader> {
    // bulb patch (pingora-http PATCH.md, "Recycled heads"): recycled too;
    // room for each kept name once. One pass over the (few) headers present
    // rather than a lookup of each kept name.
    let mut copy = pingora_http::recycle::response_no_case(full.status, Some(KEPT.len()));
    copy.set_version(full.version);
    for (name, value) in full.headers.iter() {
        if KEPT.contains(name) {
            copy.append_header(name.clone(), value.clone())
                .expect("a header that was already parsed");
        }
    }
    copy
}

impl HttpSession {
    /// As [`Self::read_response_task`], but a response head is handed over
    /// rather than copied. Afterwards [`Self::resp_header`] holds only the
    /// status, version and the `Connection`, `Keep-Alive`,
    /// `Transfer-Encoding`, `Content-Length` and `Upgrade` headers: what this
    /// session itself reads later.
    pub async fn read_response_task_handover(&mut self) -> Result<HttpTask> {
        if !self.should_read_resp_header() {
            return self.read_response_task().await;
        }
        self.read_response().await?;
        let full = self
            .response_header
            .take()
            .expect("the response head was just read");
        self.response_header = Some(framing_copy(&full));
        Ok(HttpTask::Header(full, self.is_body_done()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::http::v1::common::INIT_HEADER_BUF_SIZE;
    use tokio_test::io::Builder;

    #[tokio::test]
    async fn the_head_is_handed_over_and_framing_kept() {
        let wire = b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=7\r\nContent-Length: 3\r\n\r\nabc";
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        let HttpTask::Header(head, end) = http.read_response_task_handover().await.unwrap() else {
            panic!("not a head");
        };
        assert!(!end);
        assert_eq!(head.headers.get("server").unwrap(), "x");
        let kept = http.resp_header().unwrap();
        assert_eq!(kept.status, 200);
        assert!(kept.headers.get("server").is_none());
        assert_eq!(kept.headers.get("content-length").unwrap(), "3");
        let HttpTask::Body(Some(body), true) = http.read_response_task_handover().await.unwrap()
        else {
            panic!("not the whole body");
        };
        assert_eq!(&body[..], b"abc");
        http.respect_keepalive();
        assert!(http.will_keepalive());
        assert_eq!(http.get_keepalive_values(), (Some(7), None));

        // bulb patch (PATCH.md, "A body that came with its head"): the body
        // is the bytes right after the head, not a copy of them.
        let raw = http.get_headers_raw_bytes();
        assert_eq!(body.as_ptr(), raw.as_ptr().wrapping_add(raw.len()));
        assert_eq!(http.body_bytes_received(), 3);

        // bulb patch (PATCH.md, "A backend connection's digest kept with
        // it"): the connection's next session has the same digest.
        let made: *const _ = http.digest();
        let (stream, digest) = http.reuse_with_digest().await.expect("kept alive");
        let next = HttpSession::new_with_digest(stream, Some(digest));
        assert!(std::ptr::eq(next.digest(), made));
    }

    // bulb patch (PATCH.md, "A body that came with its head").
    #[tokio::test]
    async fn a_body_held_with_its_head_reads_as_before() {
        // Read by reference (as a caller other than the proxy does): the same
        // bytes and states as a body copied into the body buffer.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        http.read_response().await.unwrap();
        assert!(!http.is_body_done());
        assert_eq!(http.read_body_ref().await.unwrap(), Some(&b"abc"[..]));
        assert!(http.is_body_done());
        assert_eq!(http.read_body_ref().await.unwrap(), None);
        assert_eq!(http.body_bytes_received(), 3);

        // More than the body with the head (a backend that sent too much):
        // not held; the extra bytes still make the connection unusable.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcde";
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        http.read_response_task_handover().await.unwrap();
        let HttpTask::Body(Some(body), true) = http.read_response_task_handover().await.unwrap()
        else {
            panic!("not the whole body");
        };
        assert_eq!(&body[..], b"abc");
        http.respect_keepalive();
        assert!(http.reuse().await.is_none());
    }

    // bulb patch (PATCH.md, "Head read buffers used again").
    #[tokio::test]
    async fn a_response_buffer_is_used_again_once_nothing_holds_it() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        let HttpTask::Header(head, _) = http.read_response_task_handover().await.unwrap() else {
            panic!("not a head");
        };
        let at = http.get_headers_raw_bytes().as_ptr();
        let HttpTask::Body(Some(body), true) = http.read_response_task_handover().await.unwrap()
        else {
            panic!("not the whole body");
        };
        http.respect_keepalive();
        assert!(http.reuse().await.is_some());

        // The next response while the head and body are still forwarded: a
        // new buffer.
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut next = HttpSession::new(Box::new(mock_io));
        next.read_response().await.unwrap();
        assert_ne!(next.get_headers_raw_bytes().as_ptr(), at);
        drop(next);

        drop((head, body));

        // Once they are written and gone, the same buffer.
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        let head = http.read_response_task_handover().await.unwrap();
        let body = http.read_response_task_handover().await.unwrap();
        http.respect_keepalive();
        let at = http.get_headers_raw_bytes().as_ptr();
        assert!(http.reuse().await.is_some());
        drop((head, body));
        // Had the buffer been freed, this would likely take its place.
        let other = bytes::BytesMut::with_capacity(INIT_HEADER_BUF_SIZE);
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut next = HttpSession::new(Box::new(mock_io));
        next.read_response().await.unwrap();
        assert_eq!(next.get_headers_raw_bytes().as_ptr(), at);
        drop(other);
    }

    // bulb patch (PATCH.md, "A kept backend connection released without a
    // future").
    #[tokio::test]
    async fn a_session_not_kept_comes_back_to_be_shut_down() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        http.read_response_task_handover().await.unwrap();
        http.read_response_task_handover().await.unwrap();
        http.respect_keepalive();
        assert!(
            http.try_reuse_with_digest().is_ok(),
            "a finished response: kept"
        );

        // The body not read to its end: the session comes back.
        let mock_io = Builder::new().read(&wire[..]).build();
        let mut http = HttpSession::new(Box::new(mock_io));
        http.read_response_task_handover().await.unwrap();
        http.respect_keepalive();
        let Err(mut back) = http.try_reuse_with_digest() else {
            panic!("kept with its body unread");
        };
        back.shutdown().await;
    }
}
