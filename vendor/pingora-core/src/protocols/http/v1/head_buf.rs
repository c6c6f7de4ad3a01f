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

//! One buffer per thread to serialize message heads into.
//!
//! Each request head written to a backend and each response head written
//! to a client was serialized into a new buffer (512 bytes and 4 KiB), freed
//! once written. Here heads are written into a per-thread buffer and handed
//! out as [Bytes] sharing it; once the head is written and dropped, the next
//! head reuses the same room (`BytesMut::reserve` reclaims a buffer nobody
//! else holds). A head still held elsewhere (a task waiting to write it) is
//! left alone: the next head then gets a new buffer, as before.

use bytes::{Bytes, BytesMut};
use std::cell::Cell;

thread_local! {
    static BUF: Cell<BytesMut> = Cell::new(BytesMut::new());
}

/// What `write` puts into an empty buffer with at least `room` bytes of
/// room, as [Bytes]; `write`'s error if it fails.
pub(super) fn serialize<E>(
    room: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, E> {
    let mut buf = BUF.take();
    buf.clear();
    buf.reserve(room);
    let written = write(&mut buf);
    let head = buf.split().freeze();
    BUF.set(buf);
    written.map(|()| head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn head(text: &'static [u8]) -> Bytes {
        serialize::<()>(64, |b| {
            b.put_slice(text);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn heads_come_out_whole_and_reuse_the_room_once_dropped() {
        let a = head(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(&a[..], b"HTTP/1.1 200 OK\r\n\r\n");
        let at = a.as_ptr();
        drop(a);
        // Dropped: the next head is written from the start of the same room.
        let b = head(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(b.as_ptr(), at);
        // Still held: the next head does not overwrite it.
        let c = head(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(&b[..], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(&c[..], b"HTTP/1.1 204 No Content\r\n\r\n");
        // A failed write hands back its error.
        assert_eq!(serialize::<&str>(64, |_| Err("no")), Err("no"));
    }
}
