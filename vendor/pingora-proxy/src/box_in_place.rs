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

//! Boxing a large future where it is made.
//!
//! `Box::pin(fut)` (what `async_trait` does) builds the future on the
//! stack, then allocates and copies all of it: for the per-request future
//! of `process_new_http` (~8.7 KB, most of it the room of states not yet
//! reached) that is an 8.7 KB `memcpy` per request. Allocating first and
//! making the future straight into the allocation lets the compiler write
//! only the few fields of its first state there.

use std::future::Future;
use std::pin::Pin;

/// `Box::pin(make())`, with the box allocated before `make` runs, so that
/// the future it returns can be written into the box directly.
#[inline(always)]
pub(crate) fn box_in_place<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    let mut boxed = Box::<F>::new_uninit();
    boxed.write(make());
    // SAFETY: written just above.
    Box::into_pin(unsafe { boxed.assume_init() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_boxed_future_runs_to_its_output() {
        let big = [7u8; 4096];
        let fut = box_in_place(|| async move { big.iter().map(|b| *b as u32).sum::<u32>() });
        assert_eq!(fut.await, 7 * 4096);
    }
}
