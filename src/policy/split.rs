//! `split`: each request of the route goes to one of several upstreams, in
//! proportion to their weights (canary releases). The picks follow a Weyl
//! sequence (request n takes the point n × φ mod 1 of the line the weights
//! divide): every stretch of requests gets its shares within a request or
//! two, and the minority upstream's requests are spread out rather than
//! bunched. Each process, and each config generation, counts on its own.

use crate::config::{Share, Split};
use std::sync::atomic::Ordering::Relaxed;

/// 2^64 / φ, the golden ratio's step on a 64-bit circle.
const STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// The upstream for the next request of `split`.
pub fn pick(split: &Split) -> usize {
    let n = split.picks.fetch_add(1, Relaxed);
    pick_at(&split.shares, n.wrapping_mul(STEP))
}

/// The upstream at point `x` (a fraction of 2^64) of the line the weights divide.
fn pick_at(shares: &[Share], x: u64) -> usize {
    let total: u64 = shares.iter().map(|s| u64::from(s.weight)).sum();
    let mut at = ((u128::from(x) * u128::from(total)) >> 64) as u64;
    for s in shares {
        let w = u64::from(s.weight);
        if at < w {
            return s.upstream;
        }
        at -= w;
    }
    shares.last().map_or(0, |s| s.upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stretch_gets_its_share() {
        let split = Split {
            shares: vec![
                Share {
                    upstream: 7,
                    weight: 5,
                },
                Share {
                    upstream: 3,
                    weight: 95,
                },
            ],
            picks: Default::default(),
        };
        let picks: Vec<usize> = (0..4000).map(|_| pick(&split)).collect();
        for window in [100, 1000, 4000] {
            for chunk in picks.chunks(window) {
                let canary = chunk.iter().filter(|&&u| u == 7).count() as f64;
                let want = chunk.len() as f64 * 0.05;
                assert!(
                    (canary - want).abs() <= 2.0,
                    "{canary} of {} (want {want})",
                    chunk.len()
                );
            }
        }
        // Spread out: no two canary picks in a row.
        assert!(!picks.windows(2).any(|w| w == [7, 7]));
    }
}
