//! The moment a scrape must have its answer by, which every request, retry and wait of the
//! client ends before.

use std::time::{Duration, Instant};

/// The moment by which a scrape must have its answer; every request and retry ends before it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// A deadline this far from now.
    pub fn after(duration: Duration) -> Deadline {
        Deadline(Instant::now() + duration)
    }

    /// The time left, `None` once it has run out.
    pub(super) fn remaining(self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
}
