//! How fast a backend answers, for `least_time`: an exponentially decaying
//! average of the measured time, restarted whenever the backend becomes
//! usable again.

use crate::clock::{coarse_us, now_us};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// An exponentially decaying average: `sample` taken `dt` seconds after
/// the last one weighs `1 - e^(-dt/tau)` against `prev`.
pub fn ewma(prev: f64, sample: f64, dt: f64, tau: f64) -> f64 {
    let w = 1.0 - (-dt / tau.max(1e-3)).exp();
    prev + w * (sample - prev)
}

/// The decaying average of one backend's time samples.
#[derive(Default)]
pub struct Timing {
    /// In seconds (f64 bits).
    avg_secs: AtomicU64,
    /// When the average last took a sample ([`now_us`]; 0: never).
    avg_at_us: AtomicU64,
    /// Samples taken since the backend became usable.
    avg_samples: AtomicU64,
    /// The time constant of the last sample, in microseconds.
    decay_us: AtomicU64,
    /// The floor the selector last judged this average against (f64 bits).
    floor: AtomicU64,
}

impl Timing {
    /// Take a time sample into an exponentially decaying average with time
    /// constant `decay`: a sample `dt` after the last one weighs
    /// `1 - e^(-dt/decay)`. The first sample since the backend became usable
    /// (at `since`, on the [`now_us`] clock) replaces what came before, and
    /// for one `decay` after that each sample weighs at least `1/n` (a plain
    /// mean), so that one slow first answer (a cold connection) does not
    /// stand for the whole time constant.
    pub fn record(&self, sample: Duration, decay: Duration, since: u64) {
        // When, not how long: a tick off does not change the weights of a
        // decay that is seconds long (never before `since`, which is past).
        let now = coarse_us().max(since);
        let s = sample.as_secs_f64();
        let at = self.avg_at_us.load(Relaxed);
        let avg = if at == 0 || at < since {
            self.avg_samples.store(1, Relaxed);
            s
        } else {
            let dt = now.saturating_sub(at) as f64 / 1e6;
            let prev = f64::from_bits(self.avg_secs.load(Relaxed));
            let n = self.avg_samples.fetch_add(1, Relaxed) + 1;
            let warming = now.saturating_sub(since) < decay.as_micros() as u64;
            let decayed = ewma(prev, s, dt, decay.as_secs_f64());
            if warming {
                let mean = prev + (s - prev) / n as f64;
                // The larger step of the two: the mean's or the decay's.
                if (mean - prev).abs() > (decayed - prev).abs() {
                    mean
                } else {
                    decayed
                }
            } else {
                decayed
            }
        };
        self.avg_secs.store(avg.to_bits(), Relaxed);
        self.avg_at_us.store(now.max(1), Relaxed);
        self.decay_us.store(decay.as_micros() as u64, Relaxed);
    }

    /// The average as a selector judges it, in seconds: as its last sample
    /// ages it drifts toward `floor` (the pool's lowest average) with the
    /// same time constant. A backend that was slow gets no traffic, so no
    /// sample would ever tell that it is fast again; this way it is tried
    /// again within about one time constant (and, if still slow, its next
    /// sample pushes it back).
    pub fn judged(&self, since: u64, floor: f64) -> Option<f64> {
        let avg = self.average(since)?.as_secs_f64();
        self.floor.store(floor.to_bits(), Relaxed);
        Some(self.drifted(avg, now_us()))
    }

    /// `avg` drifted toward the last judged floor by the age of its last
    /// sample at `now`. Half the time constant: a probe costs one request, a
    /// backend kept out for a whole constant after it recovered costs its share.
    fn drifted(&self, avg: f64, now: u64) -> f64 {
        let floor = f64::from_bits(self.floor.load(Relaxed));
        // 0: never judged (not a least_time pool): the plain average.
        if floor == 0.0 || avg <= floor {
            return avg;
        }
        let age = now.saturating_sub(self.avg_at_us.load(Relaxed)) as f64 / 1e6;
        let tau = (self.decay_us.load(Relaxed) as f64 / 2e6).max(1e-3);
        floor + (avg - floor) * (-age / tau).exp()
    }

    /// The average, if there is a sample since `since` (when the backend
    /// last became usable).
    pub fn average(&self, since: u64) -> Option<Duration> {
        let at = self.avg_at_us.load(Relaxed);
        (at != 0 && at >= since)
            .then(|| Duration::from_secs_f64(f64::from_bits(self.avg_secs.load(Relaxed))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_average_drifts_toward_the_floor() {
        let t = Timing::default();
        t.record(Duration::from_millis(50), Duration::from_millis(20), 0);
        let fresh = t.judged(0, 0.001).expect("sampled");
        assert!(fresh > 0.045, "{fresh}");
        std::thread::sleep(Duration::from_millis(100));
        let old = t.judged(0, 0.001).expect("sampled");
        assert!(old < 0.002, "ten time constants later: {old}");
        // Below the floor nothing changes; the plain average is untouched.
        assert_eq!(t.judged(0, 0.060), Some(0.050));
        assert_eq!(t.average(0), Some(Duration::from_millis(50)));
    }

    #[test]
    fn the_average_decays_with_its_time_constant() {
        // After one time constant a new level has 63 % of its weight.
        let v = ewma(0.100, 0.001, 10.0, 10.0);
        assert!((v - (0.100 - 0.099 * 0.632)).abs() < 1e-3, "{v}");
        // Samples close together move it little, far apart almost fully.
        assert!((ewma(0.1, 0.0, 0.01, 10.0) - 0.1).abs() < 1e-3);
        assert!(ewma(0.1, 0.0, 100.0, 10.0) < 1e-5);
        let t = Timing::default();
        let since = now_us();
        assert!(t.average(since).is_none());
        t.record(Duration::from_millis(50), Duration::from_secs(10), since);
        assert_eq!(t.average(since), Some(Duration::from_millis(50)));
        // A backend usable again (later `since`) starts over.
        assert!(t.average(now_us() + 1_000_000).is_none());
    }
}
