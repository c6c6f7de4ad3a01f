// Copyright 2026 bulb contributors (patch to Cloudflare's Pingora 0.9.1)
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//! Buffers that HTTP/1 heads are read into, kept per thread and used again.
//!
//! A head is read into a 4 KiB buffer that then becomes the [Bytes] its
//! header values (and, on a backend connection, a body read with the head)
//! are slices of. Allocating one per request head and one per response head
//! cost two allocations, and freezing each two more (see [new_head_buf]). A finished message's buffer is kept
//! here instead and handed to the next head read on the thread once nothing
//! refers to it any more. A few are kept, not one: on a busy thread several
//! messages finish before the next ones start, and a head being read holds
//! its buffer while it waits for bytes.

use super::common::INIT_HEADER_BUF_SIZE;
use bytes::{Bytes, BytesMut};
use std::cell::Cell;

/// How many finished buffers of each kind a thread keeps (64 KiB each way).
const KEPT: usize = 16;

thread_local! {
    // Request heads' buffers, given back when nothing else held them.
    static REQUEST_BUFS: Cell<Vec<BytesMut>> = const { Cell::new(Vec::new()) };
    // Response heads' buffers, left when the backend session ended; what
    // was forwarded from them may still hold them then.
    static RESPONSE_BUFS: Cell<Vec<Bytes>> = const { Cell::new(Vec::new()) };
}

/// A new head buffer. It is made shared (the `bytes` crate's reference
/// counted form) at once: a buffer still in its first form (a plain vector)
/// allocates a shared header each time it is frozen while partly filled, one
/// that is shared already does not, and keeps its form when it comes back.
fn new_head_buf() -> BytesMut {
    let mut buf = BytesMut::with_capacity(INIT_HEADER_BUF_SIZE);
    drop(buf.split_to(0));
    buf
}

/// Whether `buf` has the size of a head buffer made here (one that grew for
/// a large head is not kept).
fn usual(buf: &BytesMut) -> bool {
    (INIT_HEADER_BUF_SIZE..=2 * INIT_HEADER_BUF_SIZE).contains(&buf.capacity())
}

/// An empty buffer of [INIT_HEADER_BUF_SIZE] bytes for a request head: one
/// a finished request gave back on this thread when there is one.
pub(super) fn request_read_buf() -> BytesMut {
    let mut kept = REQUEST_BUFS.take();
    let buf = kept.pop();
    REQUEST_BUFS.set(kept);
    buf.unwrap_or_else(new_head_buf)
}

/// Give a finished request's read buffer back for [request_read_buf], if
/// nothing else refers to it any more and it has its usual size.
pub(super) fn give_back_request_buf(buf: Bytes) {
    let Ok(mut buf) = buf.try_into_mut() else {
        return;
    };
    buf.clear();
    let mut kept = REQUEST_BUFS.take();
    if usual(&buf) && kept.len() < KEPT {
        kept.push(buf);
    }
    REQUEST_BUFS.set(kept);
}

/// An empty buffer of at least [INIT_HEADER_BUF_SIZE] bytes for a response
/// head: one a finished response left on this thread that nothing refers to
/// any more (the head and body forwarded from it are written and gone); the
/// ones still held are let go of.
pub(super) fn response_read_buf() -> BytesMut {
    let mut kept = RESPONSE_BUFS.take();
    let mut found = None;
    while let Some(buf) = kept.pop() {
        if let Ok(mut buf) = buf.try_into_mut() {
            if usual(&buf) {
                buf.clear();
                found = Some(buf);
                break;
            }
        }
    }
    RESPONSE_BUFS.set(kept);
    found.unwrap_or_else(new_head_buf)
}

/// Leave a finished response's read buffer for [response_read_buf].
pub(super) fn leave_response_buf(buf: Bytes) {
    if buf.is_empty() {
        return;
    }
    let mut kept = RESPONSE_BUFS.take();
    if kept.len() < KEPT {
        kept.push(buf);
    }
    RESPONSE_BUFS.set(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_buffer_is_used_again_only_when_nothing_else_holds_it() {
        let mut buf = request_read_buf();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let frozen = buf.freeze();
        let at = frozen.as_ptr();
        let held = frozen.slice(4..5); // a header value still in use
        give_back_request_buf(frozen);
        assert_ne!(request_read_buf().as_ptr(), at, "taken while still held");
        drop(held);
        let mut buf = request_read_buf();
        buf.extend_from_slice(b"x");
        let frozen = buf.freeze();
        let at = frozen.as_ptr();
        give_back_request_buf(frozen);
        let next = request_read_buf();
        assert_eq!(next.as_ptr(), at);
        assert!(next.is_empty() && next.capacity() >= INIT_HEADER_BUF_SIZE);
    }

    #[test]
    fn several_finished_buffers_are_kept_and_held_ones_let_go() {
        let made: Vec<Bytes> = (0..3)
            .map(|_| {
                let mut buf = response_read_buf();
                buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
                buf.freeze()
            })
            .collect();
        let at: Vec<_> = made.iter().map(|b| b.as_ptr()).collect();
        let held = made[0].slice(0..4);
        for buf in made {
            leave_response_buf(buf);
        }
        // The last two left come back (newest first); the held one is let go.
        assert_eq!(response_read_buf().as_ptr(), at[2]);
        assert_eq!(response_read_buf().as_ptr(), at[1]);
        let other = BytesMut::with_capacity(INIT_HEADER_BUF_SIZE);
        assert_ne!(response_read_buf().as_ptr(), at[0]);
        drop((held, other));
    }
}
