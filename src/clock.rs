//! The clock that the exporter's caches read: when an OAuth token is due for renewal, how old
//! the last collection is against `collection.cache_ttl`, and how old a discovered cluster
//! list is against `discovery.interval`.
//!
//! Time is an input. The binary runs on [`Clock::real`], the monotonic clock; a test builds the
//! app with a [`ManualClock`]'s handle (see [`crate::build_with_clock`]), which stands still
//! until the test moves it with [`ManualClock::advance`], so a token's renewal or a cache's
//! expiry happens exactly when the test says and never because the machine was slow.
//!
//! Two things stay on real time on purpose. A scrape's [`crate::atlas::Deadline`] is kept by
//! tokio's timers around real network IO, so it is measured on the clock those timers run on.
//! And "did this happen after that" (a token fetched after a request asked for one, a
//! collection finished after a scrape arrived) is decided by counters, not by comparing times,
//! so it holds on a clock that stands still too.
//!
//! Discovery's `discovery.interval` is measured on the Atlas client's clock
//! ([`crate::atlas::AtlasClient::clock`]), the same one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of "now", cheap to clone: the real monotonic clock, or a [`ManualClock`]'s.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<Instant>>>,
}

impl Clock {
    /// The monotonic clock of the machine (`std::time::Instant::now`).
    pub fn real() -> Clock {
        Clock::default()
    }

    /// Now, on this clock.
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(now) => *now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// How long ago `earlier` was on this clock (zero if it is not in the past).
    pub fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// A clock that moves only when told to, for tests: give [`ManualClock::clock`] to the app,
/// then [`ManualClock::advance`] it past a token's renewal or a cache's expiry.
#[derive(Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock standing at the real clock's now.
    pub fn new() -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// A handle on this clock, for the code under test.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.now.clone()),
        }
    }

    /// Moves this clock, and every handle on it, `by` forward.
    pub fn advance(&self, by: Duration) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start, "real time does not move it");
        manual.advance(Duration::from_secs(90));
        assert_eq!(clock.since(start), Duration::from_secs(90));
        assert_eq!(manual.clock().now(), clock.now(), "every handle moves");
    }

    #[test]
    fn the_real_clock_moves_on_its_own() {
        let clock = Clock::real();
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.since(start) >= Duration::from_millis(5));
    }
}
