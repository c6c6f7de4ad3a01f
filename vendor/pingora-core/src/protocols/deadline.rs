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

//! Timeouts for reads and writes that cost nothing when the operation
//! completes at once, and a deadline that can be moved for free.
//!
//! [`timeout`] is `pingora_timeout::timeout` with the same output, except
//! that it does no timer work at all, not even the clock-thread check that
//! `pingora_timeout::timeout` does when it is made, unless the operation
//! has to wait: most reads and writes of a busy proxy do not.
//!
//! [`LazyDeadline`] keeps one timer for the life of a connection, for each
//! of its deadlines in turn (say, one per request): a new deadline is only
//! recorded; the timer, set by an earlier deadline, is left where it is if
//! it fires sooner, and when it does fire early it is moved to the deadline
//! in force (once per timeout period at most, not once per request).

use bytes::BytesMut;
use pingora_timeout::fast_timeout::fast_timeout_to_tokio_threshold;
use pingora_timeout::Elapsed;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, Sleep};

type Timer = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// `fut`, cut off with [`Elapsed`] after `limit`; the timer is armed only
/// if `fut` does not complete on its first poll.
pub fn timeout<F: Future>(limit: Duration, fut: F) -> Timeout<F> {
    Timeout {
        fut,
        limit,
        timer: None,
    }
}

/// The future of [`timeout`].
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    fut: F,
    limit: Duration,
    timer: Option<Timer>,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of
        // `self` nor reached other than through this pinned projection, and
        // `Timeout` has no `Drop`; the timer is `Unpin` (boxed).
        let this = unsafe { self.get_unchecked_mut() };
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if let Poll::Ready(out) = fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let limit = this.limit;
        let timer = this.timer.get_or_insert_with(|| new_timer(limit));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Pingora's timer for `limit`: the shared 10 ms wheel, or tokio's for
/// limits past the fast timer's threshold (as `pingora_timeout::timeout`).
fn new_timer(limit: Duration) -> Timer {
    if fast_timeout_to_tokio_threshold().is_some_and(|t| limit > t) {
        Box::pin(tokio::time::sleep(limit))
    } else {
        Box::pin(pingora_timeout::sleep(limit))
    }
}

/// A deadline that can be moved for free, with one lazily armed timer.
#[derive(Debug, Default)]
pub struct LazyDeadline {
    /// The deadline in force: `None` when nothing is timed.
    due: Option<Instant>,
    /// The timer: made on the first wait that has to sleep, then kept.
    /// It may be set earlier than `due`, never later while polled.
    timer: Option<Pin<Box<Sleep>>>,
}

impl LazyDeadline {
    /// From now on, time out at `due` (no clock read, no timer work).
    pub fn set(&mut self, due: Instant) {
        self.due = Some(due);
    }

    /// Nothing is timed until the next [`LazyDeadline::set`].
    pub fn clear(&mut self) {
        self.due = None;
    }

    /// The deadline in force, if any.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Ready when the deadline in force has passed; never ready while none
    /// is set. Registers `cx` to be woken when it passes.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(due) = self.due else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() > due {
            // The deadline moved earlier (a shorter timeout): follow it.
            timer.as_mut().reset(due);
        }
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer was set by an earlier, sooner deadline.
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            timer.as_mut().reset(due);
        }
    }
}

/// The deadline of one phase of an exchange, such as reading a response
/// head: set at the phase's first wait to `limit` from then, and the same
/// for every later read of the phase (one deadline per phase, not a fresh
/// `limit` per read: a peer trickling a head cannot stretch it for ever).
#[derive(Debug, Default)]
pub struct Phase {
    due: Option<Instant>,
    /// The timer when the stream has none of its own (not an l4 stream).
    own: Option<LazyDeadline>,
}

impl Phase {
    /// A new phase begins: no deadline until its first wait.
    pub fn begin(&mut self) {
        self.due = None;
    }

    /// Read from `stream` into `buf` (`AsyncReadExt::read_buf`) within
    /// this phase's deadline, `limit` from its first wait. The timer is the
    /// one an l4 stream keeps for its life (a pooled backend connection
    /// moves it once per `limit`, not once per request), else the phase's;
    /// it is lent to this read and handed back after it.
    pub async fn read_buf(
        &mut self,
        stream: &mut super::Stream,
        buf: &mut BytesMut,
        limit: Duration,
    ) -> Result<io::Result<usize>, Elapsed> {
        let mut timer = match stream_timer(stream) {
            Some(t) => std::mem::take(t),
            None => self.own.take().unwrap_or_default(),
        };
        let due = &mut self.due;
        let read = {
            let mut read = std::pin::pin!(stream.read_buf(buf));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(read) = read.as_mut().poll(cx) {
                    return Poll::Ready(Ok(read));
                }
                // bulb patch (PATCH.md, "Clocks read at the kernel's
                // tick"): a deadline seconds away, a tick either way.
                timer.set(*due.get_or_insert_with(|| {
                    Instant::from_std(crate::utils::coarse_clock::instant()) + limit
                }));
                timer.poll_expired(cx).map(|()| Err(Elapsed))
            })
            .await
        };
        match stream_timer(stream) {
            Some(t) => *t = timer,
            None => self.own = Some(timer),
        }
        read
    }
}

/// The timer an l4 stream keeps for its life.
fn stream_timer(stream: &mut super::Stream) -> Option<&mut LazyDeadline> {
    let l4 = stream
        .as_any_mut()
        .downcast_mut::<super::l4::stream::Stream>()?;
    Some(&mut l4.deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expired(d: &mut LazyDeadline) {
        std::future::poll_fn(|cx| d.poll_expired(cx)).await
    }

    #[tokio::test(start_paused = true)]
    async fn lazy_deadline_fires_at_the_deadline_in_force_not_an_earlier_one() {
        let mut d = LazyDeadline::default();
        let start = Instant::now();
        d.set(start + Duration::from_secs(5));
        // The timer is armed for 5 s by a first wait...
        let first = tokio::time::timeout(Duration::from_secs(1), expired(&mut d));
        assert!(first.await.is_err());
        // ...then the deadline moves later: the early timer must not end it.
        d.set(start + Duration::from_secs(30));
        expired(&mut d).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn lazy_deadline_follows_a_deadline_moved_earlier() {
        let mut d = LazyDeadline::default();
        let start = Instant::now();
        d.set(start + Duration::from_secs(60));
        let first = tokio::time::timeout(Duration::from_secs(1), expired(&mut d));
        assert!(first.await.is_err());
        d.set(start + Duration::from_secs(10));
        expired(&mut d).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn lazy_deadline_never_fires_while_cleared() {
        let mut d = LazyDeadline::default();
        d.set(Instant::now() + Duration::from_secs(1));
        d.clear();
        let wait = tokio::time::timeout(Duration::from_secs(3600), expired(&mut d));
        assert!(wait.await.is_err());
    }

    #[tokio::test]
    async fn timeout_of_a_ready_operation_arms_no_timer() {
        let mut t = Box::pin(timeout(Duration::from_millis(1), async { 7 }));
        let out = std::future::poll_fn(|cx| t.as_mut().poll(cx)).await;
        assert_eq!(out.unwrap(), 7);
        assert!(t.timer.is_none());
    }

    #[tokio::test]
    async fn timeout_of_a_waiting_operation_elapses() {
        let never = std::future::pending::<()>();
        let started = std::time::Instant::now();
        assert!(timeout(Duration::from_millis(50), never).await.is_err());
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[tokio::test]
    async fn timeout_lets_a_slower_operation_finish_in_time() {
        let slow = tokio::time::sleep(Duration::from_millis(20));
        assert!(timeout(Duration::from_secs(5), slow).await.is_ok());
    }
}
