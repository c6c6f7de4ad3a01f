//! [`LazyDeadline`]: one timer for the life of a client connection, for
//! each of its deadlines in turn (the keep-alive wait, then the request
//! head), moved in the timer wheel only when it would fire late.
//!
//! A keep-alive connection waits for a request once per request: arming a
//! new timer for each wait (an allocation, a clock read and two trips to
//! the runtime's timer wheel, taking its lock) cost about 0.3 µs of every
//! request. Here a wait only records when it ends; the timer, set by an
//! earlier wait, is left where it is if it fires sooner, and when it does
//! fire early it is moved to the deadline in force (once per timeout
//! period at most, not once per request).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn expired(d: &mut LazyDeadline) {
        std::future::poll_fn(|cx| d.poll_expired(cx)).await
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_in_force_not_an_earlier_one() {
        let mut d = LazyDeadline::default();
        let start = Instant::now();
        d.set(start + Duration::from_secs(5));
        // The timer is armed for 5 s by a first wait...
        assert!(
            tokio::time::timeout(Duration::from_secs(1), expired(&mut d))
                .await
                .is_err()
        );
        // ...then the deadline moves later: the early timer must not end it.
        d.set(start + Duration::from_secs(30));
        expired(&mut d).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn follows_a_deadline_moved_earlier() {
        let mut d = LazyDeadline::default();
        let start = Instant::now();
        d.set(start + Duration::from_secs(60));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), expired(&mut d))
                .await
                .is_err()
        );
        d.set(start + Duration::from_secs(10));
        expired(&mut d).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn never_fires_while_cleared() {
        let mut d = LazyDeadline::default();
        d.set(Instant::now() + Duration::from_secs(1));
        d.clear();
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), expired(&mut d))
                .await
                .is_err()
        );
    }
}
