// bulb patch (see PATCH.md, "The upstream keep-alive pool"). Licensed as the
// rest of this crate (Apache-2.0).

//! Idle upstream connections kept for reuse, without a task per connection.
//!
//! Pingora's `ConnectionPool` spawns a task for every connection put back
//! into it: the task holds the stream under a lock, watches it for a close
//! or a timeout, and gives it up when a request picks the connection. On a
//! busy keep-alive backend that is, per request: a task spawned, an
//! `Arc<Mutex<Stream>>` and the pool's bookkeeping allocated, two task
//! switches (the taker waits for the watcher to drop its lock), and a
//! `getpeername` to check that the descriptor still belongs to the peer.
//!
//! This pool owns the idle streams directly, newest last per key. Taking one
//! is a lock and a `pop`; a stream that the server closed, or that sat
//! longer than its idle timeout, is dropped when met instead of used. One
//! sweeper task per pool (one per connector) closes such streams within a
//! second even when nobody asks for them, so the pool never holds closed
//! sockets for long. The size limit drops the oldest idle stream first.

use super::test_reusable_stream;
use crate::protocols::{Digest, Stream};
use crate::utils::coarse_clock;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the sweeper looks for closed or expired idle streams.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Times are [`coarse_clock::monotonic`]: an idle timeout is seconds long,
/// a tick late does not matter, and put and get each read the clock.
/// `order` tells their age apart within one tick (it counts puts).
struct Idle {
    stream: Stream,
    /// The digest the connection's last HTTP/1 session made, for its next.
    digest: Option<Box<Digest>>,
    since: Duration,
    order: u64,
    expires: Option<Duration>,
}

impl Idle {
    fn expired(&self, now: Duration) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

#[derive(Default)]
struct Idles {
    by_key: HashMap<u64, VecDeque<Idle>>,
    count: usize,
    puts: u64,
}

/// What a dropped idle stream reports: how long it sat idle.
pub(crate) type OnDrop = Option<super::PoolCallback>;

/// The idle streams of one connector, by peer reuse key.
pub(crate) struct IdlePool {
    idles: Mutex<Idles>,
    capacity: usize,
    sweeping: AtomicBool,
    unexpected_data: Arc<AtomicU64>,
    on_drop: OnDrop,
}

impl IdlePool {
    /// A pool of at most `capacity` idle streams.
    pub(crate) fn new(capacity: usize, unexpected_data: Arc<AtomicU64>, on_drop: OnDrop) -> Self {
        IdlePool {
            idles: Mutex::new(Idles::default()),
            capacity,
            sweeping: AtomicBool::new(false),
            unexpected_data,
            on_drop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idles> {
        // Nothing panics while holding the lock; a poisoned pool is still consistent.
        self.idles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep `stream` (and the `digest` its sessions share) for reuse by
    /// peers with `key` for at most `timeout`.
    pub(crate) fn put(
        self: &Arc<Self>,
        key: u64,
        stream: Stream,
        digest: Option<Box<Digest>>,
        timeout: Option<Duration>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let now = coarse_clock::monotonic();
        let mut idle = Idle {
            stream,
            digest,
            since: now,
            order: 0,
            expires: timeout.map(|t| now + t),
        };
        let evicted = {
            let mut idles = self.lock();
            idles.puts += 1;
            idle.order = idles.puts;
            idles.by_key.entry(key).or_default().push_back(idle);
            idles.count += 1;
            if idles.count > self.capacity {
                idles.pop_oldest()
            } else {
                None
            }
        };
        if let Some(old) = evicted {
            self.dropped(old);
        }
        self.start_sweeper();
    }

    /// The newest idle stream for `key` that is still usable and that
    /// `fits` (the peer's check that the connection goes where it asks).
    /// With it, the digest it was put with.
    pub(crate) fn get(
        &self,
        key: u64,
        fits: impl Fn(&Stream) -> bool,
    ) -> Option<(Stream, Option<Box<Digest>>)> {
        let now = coarse_clock::monotonic();
        let mut stale = Vec::new();
        let found = {
            let mut idles = self.lock();
            let mut found = None;
            while let Some(mut idle) = idles.pop_newest(key) {
                // A server that closed (or wrote, which it never should on an
                // idle HTTP/1 connection) makes the stream unusable.
                if idle.expired(now)
                    || !test_reusable_stream(&mut idle.stream, &self.unexpected_data)
                    || !fits(&idle.stream)
                {
                    stale.push(idle);
                    continue;
                }
                found = Some((idle.stream, idle.digest));
                break;
            }
            found
        };
        for idle in stale {
            self.dropped(idle);
        }
        found
    }

    /// Drop every closed or expired idle stream.
    fn sweep(&self) {
        let now = coarse_clock::monotonic();
        let stale: Vec<Idle> = {
            let mut idles = self.lock();
            let mut stale = Vec::new();
            for queue in idles.by_key.values_mut() {
                let mut i = 0;
                while i < queue.len() {
                    let idle = &mut queue[i];
                    if idle.expired(now)
                        || !test_reusable_stream(&mut idle.stream, &self.unexpected_data)
                    {
                        stale.extend(queue.remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            idles.by_key.retain(|_, q| !q.is_empty());
            idles.count -= stale.len();
            stale
        };
        for idle in stale {
            self.dropped(idle);
        }
    }

    fn dropped(&self, idle: Idle) {
        if let Some(cb) = &self.on_drop {
            cb(coarse_clock::monotonic().saturating_sub(idle.since));
        }
    }

    /// One sweeper per pool, started with the first idle stream; it ends
    /// with the pool.
    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool: Weak<IdlePool> = Arc::downgrade(self);
        pingora_runtime::current_handle().spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match pool.upgrade() {
                    Some(p) => p.sweep(),
                    None => break,
                }
            }
        });
    }

    /// Idle streams held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().count
    }
}

impl Idles {
    fn pop_newest(&mut self, key: u64) -> Option<Idle> {
        let queue = self.by_key.get_mut(&key)?;
        let idle = queue.pop_back();
        if queue.is_empty() {
            self.by_key.remove(&key);
        }
        if idle.is_some() {
            self.count -= 1;
        }
        idle
    }

    /// The stream idle longest, over all keys.
    fn pop_oldest(&mut self) -> Option<Idle> {
        let key = *self
            .by_key
            .iter()
            .filter_map(|(k, q)| q.front().map(|i| (k, i.order)))
            .min_by_key(|(_, order)| *order)?
            .0;
        let queue = self.by_key.get_mut(&key)?;
        let idle = queue.pop_front();
        if queue.is_empty() {
            self.by_key.remove(&key);
        }
        if idle.is_some() {
            self.count -= 1;
        }
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair(l: &TcpListener) -> (Stream, TcpStream) {
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let stream: Stream = Box::new(crate::protocols::l4::stream::Stream::from(client));
        (stream, server)
    }

    fn pool(capacity: usize) -> Arc<IdlePool> {
        Arc::new(IdlePool::new(capacity, Arc::new(AtomicU64::new(0)), None))
    }

    #[tokio::test]
    async fn newest_first_by_key_and_bounded() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = pool(2);
        let (a, _sa) = pair(&l).await;
        let (b, _sb) = pair(&l).await;
        let (c, _sc) = pair(&l).await;
        let (ida, idb, idc) = (a.id(), b.id(), c.id());
        p.put(1, a, None, None);
        p.put(1, b, None, None);
        assert!(p.get(2, |_| true).is_none(), "another key");
        p.put(2, c, None, None); // over capacity: `a`, the oldest, goes
        assert_eq!(p.len(), 2);
        assert_eq!(p.get(1, |_| true).map(|(s, _)| s.id()), Some(idb));
        assert!(p.get(1, |_| true).is_none(), "{ida} was evicted");
        assert_eq!(p.get(2, |_| true).map(|(s, _)| s.id()), Some(idc));
    }

    #[tokio::test]
    async fn closed_and_expired_streams_are_never_handed_out() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = pool(8);
        let (a, sa) = pair(&l).await;
        let (b, _sb) = pair(&l).await;
        let (c, mut sc) = pair(&l).await;
        p.put(1, a, None, None);
        drop(sa); // the server closes `a`
        p.put(1, b, None, Some(Duration::from_millis(1)));
        p.put(1, c, None, None);
        sc.write_all(b"x").await.unwrap(); // unexpected data on `c`
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(p.get(1, |_| true).is_none());
        assert_eq!(p.len(), 0);
    }

    #[tokio::test]
    async fn a_stream_comes_back_with_its_digest() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = pool(8);
        let (a, _sa) = pair(&l).await;
        let digest = Box::new(Digest::default());
        let at: *const Digest = &*digest;
        p.put(1, a, Some(digest), None);
        let (_, back) = p.get(1, |_| true).unwrap();
        assert!(std::ptr::eq(&*back.unwrap(), at));
    }

    #[tokio::test]
    async fn a_stream_the_peer_refuses_is_dropped() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = pool(8);
        let (a, _sa) = pair(&l).await;
        p.put(1, a, None, None);
        assert!(p.get(1, |_| false).is_none());
        assert_eq!(p.len(), 0);
    }

    #[tokio::test]
    async fn the_sweeper_closes_what_the_server_closed() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = pool(8);
        let (a, sa) = pair(&l).await;
        p.put(1, a, None, None);
        drop(sa);
        let t = Instant::now();
        while p.len() > 0 && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(p.len(), 0);
    }
}
