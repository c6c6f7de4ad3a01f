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

//! The place a stream leaves when it is taken out of a session that stays
//! where it is.
//!
//! A session that hands its connection on (`v1::server::HttpSession::reuse`)
//! used to be consumed, moving the whole session (hundreds of bytes) into
//! the future that does it, and often once more into a match; taking the
//! stream out of a session behind `&mut` needs something to leave in its
//! place. [Detached] is that: a zero-sized stream (boxing it allocates
//! nothing) that fails every read and write.

use async_trait::async_trait;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::raw_connect::ProxyDigest;
use super::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};

/// A stream that was taken away: reads and writes fail with `NotConnected`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Detached;

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the stream was taken from this session",
    )
}

impl AsyncRead for Detached {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(gone()))
    }
}

impl AsyncWrite for Detached {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(gone()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Shutdown for Detached {
    async fn shutdown(&mut self) {}
}

impl UniqueID for Detached {
    fn id(&self) -> UniqueIDType {
        0
    }
}

impl Ssl for Detached {}

impl GetTimingDigest for Detached {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        Vec::new()
    }
}

impl GetProxyDigest for Detached {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        None
    }
}

impl GetSocketDigest for Detached {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        None
    }
}

impl Peek for Detached {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::Stream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_detached_stream_fails_reads_and_writes_and_costs_no_allocation() {
        assert_eq!(std::mem::size_of::<Detached>(), 0);
        let mut s: Stream = Box::new(Detached);
        let mut buf = [0u8; 4];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        let e = s.write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(s.as_any().is::<Detached>());
    }
}
