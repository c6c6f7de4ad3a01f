//! Load generators: sequential tallies and background client threads.

use super::client::get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Send `n` sequential requests; count answers by body (backend name).
pub fn tally(addr: SocketAddr, path: &str, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        let r = get(addr, path).expect("request");
        assert_eq!(r.status, 200, "status {} body {}", r.status, r.body);
        *m.entry(r.body).or_default() += 1;
    }
    m
}

/// Results of a load run.
#[derive(Default, Debug)]
pub struct LoadStats {
    pub ok: u64,
    pub non2xx: u64,
    pub errors: u64,
    pub by_body: HashMap<String, u64>,
    pub statuses: HashMap<u16, u64>,
}

/// Background load: `threads` clients sending requests (new connection each)
/// until stopped; bounded by `max` duration.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    handles: Vec<thread::JoinHandle<LoadStats>>,
}

impl Load {
    pub fn start(addr: SocketAddr, threads: usize, max: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let handles = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                let answered = answered.clone();
                thread::spawn(move || {
                    let mut st = LoadStats::default();
                    let t = Instant::now();
                    while !stop.load(Ordering::SeqCst) && t.elapsed() < max {
                        match get(addr, "/") {
                            Ok(r) => {
                                *st.statuses.entry(r.status).or_default() += 1;
                                if (200..300).contains(&r.status) {
                                    st.ok += 1;
                                    *st.by_body.entry(r.body).or_default() += 1;
                                } else {
                                    st.non2xx += 1;
                                }
                            }
                            Err(_) => st.errors += 1,
                        }
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    st
                })
            })
            .collect();
        Load {
            stop,
            answered,
            handles,
        }
    }

    /// Requests finished so far, whatever their outcome.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// Wait (up to 10 s) until `n` more requests have finished: the load is
    /// flowing (before an event), or went on flowing (after one).
    pub fn flows(&self, n: u64) {
        let want = self.answered() + n;
        let flowed = super::wait_for(Duration::from_secs(10), || self.answered() >= want);
        assert!(
            flowed.is_some(),
            "the load stalled at {} requests",
            self.answered()
        );
    }

    pub fn finish(self) -> LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = LoadStats::default();
        for h in self.handles {
            let s = h.join().expect("load thread");
            total.ok += s.ok;
            total.non2xx += s.non2xx;
            total.errors += s.errors;
            for (k, v) in s.by_body {
                *total.by_body.entry(k).or_default() += v;
            }
            for (k, v) in s.statuses {
                *total.statuses.entry(k).or_default() += v;
            }
        }
        total
    }
}
