//! Random 64-bit numbers for ids (request ids, trace and span ids):
//! SplitMix64 per thread, seeded from the OS's random hash keys. Not for
//! secrets.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(
        std::collections::hash_map::RandomState::new().build_hasher().finish(),
    );
}

/// The next number of this thread's sequence.
pub fn u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A number that is not zero (ids where zero means "none").
pub fn nonzero_u64() -> u64 {
    loop {
        let x = u64();
        if x != 0 {
            return x;
        }
    }
}
