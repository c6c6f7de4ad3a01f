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

        // bulb patch (PATCH.md, "A backend connection's digest kept with
        // it"): the connection's next session has the same digest.
        let made: *const _ = http.digest();
        let (stream, digest) = http.reuse_with_digest().await.expect("kept alive");
        let next = HttpSession::new_with_digest(stream, Some(digest));
        assert!(std::ptr::eq(next.digest(), made));
    }
}
