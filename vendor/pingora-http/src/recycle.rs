// bulb patch (see PATCH.md, "Recycled heads"). Licensed as the rest of this
// crate (Apache-2.0).

//! Request and response heads reused within a thread.
//!
//! A proxied HTTP/1 request makes three heads (the client's request, its copy
//! for the backend, the backend's response), and each has two header maps
//! (values, and the names' original case) of two allocations each, plus its
//! box. A finished head put back with [`recycle_request`] or
//! [`recycle_response`] keeps its maps' room, and the next head made on the
//! same thread with [`request`], [`clone_request`] or [`response`] reuses it:
//! no allocation once the pool is warm. The pool holds at most [`KEPT`] heads
//! of each kind per thread, and no head whose maps grew past
//! [`MAX_KEPT_HEADERS`].

use super::{RawTarget, RequestHeader, ResponseHeader};
use http::{Method, StatusCode, Uri, Version};
use pingora_error::{ErrorType::InvalidHTTPHeader, OrErr, Result};
use std::cell::RefCell;

/// Heads of each kind kept per thread.
pub const KEPT: usize = 128;

/// A head whose maps have room for more headers than this is dropped, not
/// kept (a rare large request should not pin its memory).
pub const MAX_KEPT_HEADERS: usize = 64;

thread_local! {
    static REQUESTS: RefCell<Vec<Box<RequestHeader>>> = const { RefCell::new(Vec::new()) };
    static RESPONSES: RefCell<Vec<Box<ResponseHeader>>> = const { RefCell::new(Vec::new()) };
    /// Response heads without the case map.
    static RESPONSES_NO_CASE: RefCell<Vec<Box<ResponseHeader>>> =
        const { RefCell::new(Vec::new()) };
}

type Pool<T> = std::thread::LocalKey<RefCell<Vec<Box<T>>>>;

fn take<T>(pool: &'static Pool<T>) -> Option<Box<T>> {
    pool.try_with(|p| p.borrow_mut().pop()).ok().flatten()
}

fn keep<T>(pool: &'static Pool<T>, head: Box<T>) {
    let _ = pool.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < KEPT {
            p.push(head);
        }
    });
}

/// A request head as [`RequestHeader::build`] makes it (original case kept),
/// boxed, reusing a recycled one when this thread has one.
pub fn request(method: &[u8], path: &[u8], size_hint: Option<usize>) -> Result<Box<RequestHeader>> {
    let mut head = request_no_target(method, size_hint)?;
    head.set_raw_path(path)?;
    Ok(head)
}

/// As [`request`], the target left empty, to be set with
/// [`RequestHeader::set_raw_path_in`] once the read buffer it is part of is
/// frozen (bulb patch, PATCH.md: the target is then not copied).
pub fn request_no_target(method: &[u8], size_hint: Option<usize>) -> Result<Box<RequestHeader>> {
    let Some(mut head) = take(&REQUESTS) else {
        return Ok(Box::new(RequestHeader::build(method, b"", size_hint)?));
    };
    head.base.method =
        Method::from_bytes(method).explain_err(InvalidHTTPHeader, |_| "invalid method")?;
    Ok(head)
}

/// A copy of `src` (method, target, version, headers with their case,
/// extensions), reusing a recycled head when this thread has one. The
/// copy's maps keep the recycled head's room, so headers added to it
/// afterwards do not grow them.
pub fn clone_request(src: &RequestHeader) -> Box<RequestHeader> {
    let Some(mut head) = take(&REQUESTS) else {
        return Box::new(src.clone());
    };
    head.base.method = src.base.method.clone();
    head.base.uri = src.base.uri.clone();
    head.base.version = src.base.version;
    head.base.extensions = src.base.extensions.clone();
    head.raw_target = src.raw_target.clone();
    head.send_end_stream = src.send_end_stream;
    for (name, value) in src.base.headers.iter() {
        head.base.headers.append(name.clone(), value.clone());
    }
    match (&src.header_name_map, head.header_name_map.as_mut()) {
        (Some(from), Some(to)) => to.copy_from(from),
        (from, _) => head.header_name_map = from.clone(),
    }
    head
}

/// Put `head` back for reuse on this thread (or drop it).
pub fn recycle_request(mut head: Box<RequestHeader>) {
    let Some(case) = head.header_name_map.as_mut() else {
        return;
    };
    if head.base.headers.capacity() > MAX_KEPT_HEADERS || case.capacity() > MAX_KEPT_HEADERS {
        return;
    }
    case.clear();
    head.base.headers.clear();
    head.base.extensions.clear();
    head.base.method = Method::GET;
    head.base.uri = Uri::default();
    head.base.version = Version::HTTP_11;
    head.raw_target = RawTarget::FromUri;
    head.send_end_stream = true;
    keep(&REQUESTS, head);
}

/// A response head as [`ResponseHeader::build`] makes it (original case
/// kept), boxed, reusing a recycled one when this thread has one.
pub fn response(status: u16, size_hint: Option<usize>) -> Result<Box<ResponseHeader>> {
    let Some(mut head) = take(&RESPONSES) else {
        return Ok(Box::new(ResponseHeader::build(status, size_hint)?));
    };
    head.base.status =
        StatusCode::from_u16(status).explain_err(InvalidHTTPHeader, |_| "invalid status")?;
    Ok(head)
}

/// A response head as [`ResponseHeader::build_no_case`] makes it, boxed,
/// reusing a recycled one when this thread has one.
pub fn response_no_case(status: StatusCode, size_hint: Option<usize>) -> Box<ResponseHeader> {
    let Some(mut head) = take(&RESPONSES_NO_CASE) else {
        let mut head =
            ResponseHeader::build_no_case(StatusCode::OK, size_hint).expect("a valid status");
        head.base.status = status;
        return Box::new(head);
    };
    head.base.status = status;
    head
}

/// Put `head` back for reuse on this thread (or drop it).
pub fn recycle_response(mut head: Box<ResponseHeader>) {
    let case_room = head.header_name_map.as_ref().map_or(0, |c| c.capacity());
    if head.base.headers.capacity() > MAX_KEPT_HEADERS || case_room > MAX_KEPT_HEADERS {
        return;
    }
    let pool = match head.header_name_map.as_mut() {
        Some(case) => {
            case.clear();
            &RESPONSES
        }
        None => &RESPONSES_NO_CASE,
    };
    head.base.headers.clear();
    head.base.extensions.clear();
    head.base.status = StatusCode::OK;
    head.base.version = Version::HTTP_11;
    head.reason_phrase = None;
    keep(pool, head);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_request_head_comes_back_empty_and_roomy() {
        let mut first = request(b"POST", b"/a?b", Some(4)).unwrap();
        first.append_header("X-Case", "1").unwrap();
        first.append_header("x-case", "2").unwrap();
        first.set_version(Version::HTTP_10);
        let room = first.headers.capacity();
        recycle_request(first);
        let second = request(b"GET", b"/c", None).unwrap();
        assert_eq!(second.method, Method::GET);
        assert_eq!(second.raw_path(), b"/c");
        assert_eq!(second.version, Version::HTTP_11);
        assert!(second.headers.is_empty());
        assert_eq!(second.case_header_iter().count(), 0);
        assert!(second.headers.capacity() >= room);
    }

    #[test]
    fn a_clone_into_a_recycled_head_keeps_case_order_and_target() {
        let mut src = RequestHeader::build("GET", b"http://h/p?q", None).unwrap();
        src.append_header("Host", "h").unwrap();
        src.append_header("X-Two", "a").unwrap();
        src.append_header("x-TWO", "b").unwrap();
        recycle_request(Box::new(
            RequestHeader::build("PUT", b"/old", Some(8)).unwrap(),
        ));
        let copy = clone_request(&src);
        let mut wire = Vec::new();
        copy.header_to_h1_wire(&mut wire);
        let mut want = Vec::new();
        src.header_to_h1_wire(&mut want);
        assert_eq!(wire, want);
        assert_eq!(copy.raw_path(), src.raw_path());
        assert_eq!(copy.uri, src.uri);
    }

    #[test]
    fn a_recycled_response_head_is_reset() {
        let mut first = response(404, None).unwrap();
        first.append_header("Server", "x").unwrap();
        first.set_reason_phrase(Some("Gone Fishing")).unwrap();
        recycle_response(first);
        let second = response(200, None).unwrap();
        assert_eq!(second.status, 200);
        assert!(second.headers.is_empty());
        assert_eq!(second.get_reason_phrase(), Some("OK"));
        assert!(second.has_case());
    }

    #[test]
    fn heads_without_case_are_recycled_apart() {
        let mut first = response_no_case(StatusCode::NOT_FOUND, Some(2));
        first.append_header("content-length", "0").unwrap();
        assert!(!first.has_case());
        recycle_response(first);
        let second = response_no_case(StatusCode::OK, None);
        assert!(!second.has_case());
        assert!(second.headers.is_empty());
        assert!(second.headers.capacity() >= 2);
        assert!(response(200, None).unwrap().has_case());
    }
}
