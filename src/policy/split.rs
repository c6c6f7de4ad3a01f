//! `split`: each request of the route goes to one of several upstreams, in
//! proportion to their weights (canary releases).

use crate::config::Share;

/// The upstream for one request: share `i` with probability
/// `weight[i] / sum`. `shares` is not empty (the validator sees to it).
pub fn pick(shares: &[Share]) -> usize {
    pick_with(shares, crate::pool::selection::fast_random() as u64)
}

fn pick_with(shares: &[Share], random: u64) -> usize {
    let total: u64 = shares.iter().map(|s| u64::from(s.weight)).sum();
    let mut at = random % total.max(1);
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
    fn shares_follow_weights() {
        let shares = [
            Share {
                upstream: 7,
                weight: 5,
            },
            Share {
                upstream: 3,
                weight: 95,
            },
        ];
        let to_7 = (0..100).filter(|r| pick_with(&shares, *r) == 7).count();
        assert_eq!(to_7, 5);
        assert_eq!(pick_with(&shares, 104), 7);
    }
}
