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
//! cost two allocations, and freezing each two more (see [new_head_buf]). A
//! finished message's buffer is left here instead, whether or not something
//! still refers to it (a response's head and body may still be being
//! forwarded), and the next head read on the thread, of a request or a
//! response, takes the newest one nothing refers to any more. A few are
//! kept, not one: on a busy thread several messages finish before the next
//! ones start, and a head being read holds its buffer while it waits.

use super::common::INIT_HEADER_BUF_SIZE;
use bytes::{Bytes, BytesMut};
use std::cell::Cell;

/// How many finished buffers a thread keeps (128 KiB of them at most).
const KEPT: usize = 32;

thread_local! {
    static LEFT: Cell<Vec<Bytes>> = const { Cell::new(Vec::new()) };
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

/// An empty buffer of at least [INIT_HEADER_BUF_SIZE] bytes for a head: the
/// newest one left on this thread that nothing refers to any more and has
/// its usual size (one that grew for a large head is not used again), else
/// a new one. The ones passed over are let go of.
pub(super) fn take_head_buf() -> BytesMut {
    let mut left = LEFT.take();
    let mut found = None;
    while let Some(buf) = left.pop() {
        if let Ok(mut buf) = buf.try_into_mut() {
            if (INIT_HEADER_BUF_SIZE..=2 * INIT_HEADER_BUF_SIZE).contains(&buf.capacity()) {
                buf.clear();
                found = Some(buf);
                break;
            }
        }
    }
    LEFT.set(left);
    found.unwrap_or_else(new_head_buf)
}

/// Leave a finished message's head buffer for [take_head_buf].
pub(super) fn leave_head_buf(buf: Bytes) {
    if buf.is_empty() {
        return;
    }
    let mut left = LEFT.take();
    if left.len() < KEPT {
        left.push(buf);
    }
    LEFT.set(left);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_used_again_only_when_nothing_else_holds_it() {
        let mut buf = take_head_buf();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let frozen = buf.freeze();
        let at = frozen.as_ptr();
        let held = frozen.slice(4..5); // a header value still in use
        leave_head_buf(frozen);
        assert_ne!(take_head_buf().as_ptr(), at, "taken while still held");
        drop(held);
        let mut buf = take_head_buf();
        buf.extend_from_slice(b"x");
        let frozen = buf.freeze();
        let at = frozen.as_ptr();
        leave_head_buf(frozen);
        let next = take_head_buf();
        assert_eq!(next.as_ptr(), at);
        assert!(next.is_empty() && next.capacity() >= INIT_HEADER_BUF_SIZE);
    }

    #[test]
    fn several_finished_buffers_are_kept_and_held_ones_let_go() {
        let made: Vec<Bytes> = (0..3)
            .map(|_| {
                let mut buf = take_head_buf();
                buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
                buf.freeze()
            })
            .collect();
        let at: Vec<_> = made.iter().map(|b| b.as_ptr()).collect();
        let held = made[0].slice(0..4);
        for buf in made {
            leave_head_buf(buf);
        }
        // The last two left come back (newest first); the held one is let go.
        assert_eq!(take_head_buf().as_ptr(), at[2]);
        assert_eq!(take_head_buf().as_ptr(), at[1]);
        let other = BytesMut::with_capacity(INIT_HEADER_BUF_SIZE);
        assert_ne!(take_head_buf().as_ptr(), at[0]);
        drop((held, other));
    }
}
