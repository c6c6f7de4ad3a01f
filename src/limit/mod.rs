//! Per-client request rate limits: token buckets in a fixed table of
//! atomics, so memory stays bounded (1 MiB) whatever an attacker does with
//! source addresses or header values. Keys are hashed into the table with a
//! per-process random seed; two clients that share a slot share a limit (with
//! 131 072 slots, rare for honest traffic; an attacker cycling keys only
//! spreads its own requests). With `limits.rate.store`, the bucket lives in
//! Redis ([`store`]) and this table decides only when the store does not
//! answer in time.

pub mod store;

use crate::config::RateSpec;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Slots in the table.
const SLOTS: usize = 128 * 1024;
/// Tokens are counted in thousandths.
const MILLI: u64 = 1000;

/// The token buckets of every client.
pub struct RateLimiter {
    /// Per slot: milli-tokens (high 32 bits) and the last refill time in
    /// milliseconds (low 32 bits, wrapping); 0 is a fresh, full bucket.
    slots: Box<[AtomicU64]>,
    seed: std::collections::hash_map::RandomState,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seed: Default::default(),
        }
    }
}

impl RateLimiter {
    /// Take one token from `key`'s bucket: `Err(wait)` when it is empty,
    /// with the time until the next token.
    pub fn take(&self, key: &[u8], spec: &RateSpec) -> Result<(), Duration> {
        let mut h = self.seed.build_hasher();
        h.write(key);
        let slot = &self.slots[(h.finish() as usize) % SLOTS];
        let full = u64::from(spec.burst) * MILLI;
        // milli-tokens per millisecond = requests per second
        let rate = spec.per_second;
        let now = (crate::clock::now_ms() as u32).max(1);
        let mut cur = slot.load(Relaxed);
        loop {
            let (tokens, at) = if cur == 0 {
                (full, now)
            } else {
                ((cur >> 32).min(full), cur as u32)
            };
            let elapsed = f64::from(now.wrapping_sub(at));
            let refilled = (tokens as f64 + elapsed * rate).min(full as f64) as u64;
            let (left, result) = if refilled >= MILLI {
                (refilled - MILLI, Ok(()))
            } else {
                let wait_ms = ((MILLI - refilled) as f64 / rate).ceil() as u64;
                (refilled, Err(Duration::from_millis(wait_ms.max(1))))
            };
            let next = (left << 32) | u64::from(now);
            match slot.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => return result,
                Err(seen) => cur = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateKey;

    #[test]
    fn burst_then_refused_with_a_wait() {
        let l = RateLimiter::default();
        let spec = RateSpec {
            key: RateKey::ClientIp,
            per_second: 10.0,
            burst: 5,
            store: None,
            store_timeout: std::time::Duration::from_millis(5),
        };
        for i in 0..5 {
            assert_eq!(l.take(b"a", &spec), Ok(()), "{i}");
        }
        let wait = l.take(b"a", &spec).expect_err("empty");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        assert_eq!(
            l.take(b"b", &spec),
            Ok(()),
            "another key has its own bucket"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(l.take(b"a", &spec), Ok(()), "refilled");
    }
}
