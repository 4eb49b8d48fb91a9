//! The clock that the exporter's caches read: when an OAuth token is due for renewal, how old
//! the last collection is against `collection.cache_ttl`, and how old a discovered cluster
//! list is against `discovery.interval`.
//!
//! Time is an input. The binary runs on [`Clock::real`], the monotonic clock; a test builds the
//! app with a [`ManualClock`]'s handle (see [`crate::Options::clock`]), which stands still
//! until the test moves it with [`ManualClock::advance`], so a token's renewal or a cache's
//! expiry happens exactly when the test says and never because the machine was slow.
//!
//! Two things stay on real time on purpose. A scrape's [`crate::atlas::Deadline`] is kept by
//! tokio's timers around real network IO, so it is measured on the clock those timers run on.
//! And "did this happen after that" (a token fetched after a request asked for one, a
//! collection finished after a scrape arrived) is decided by counters, not by comparing times,
//! so it holds on a clock that stands still too.
//!
//! Discovery's `discovery.interval` and `metadata.refresh_interval` are measured on the clock
//! [`crate::collect::Collector::new`] is given, the same one. So is `collection.interval`: the
//! background collection waits for its next turn with [`Clock::sleep_until`], which on a
//! [`ManualClock`] wakes when the test moves the clock past it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A source of "now", cheap to clone: the real monotonic clock, or a [`ManualClock`]'s.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// A manual clock's time; a channel, so that sleepers wake when it moves.
    manual: Option<Arc<watch::Sender<Instant>>>,
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
            Some(now) => *now.borrow(),
        }
    }

    /// Waits until this clock reads `deadline` or later: a tokio timer on the real clock, the
    /// test's next [`ManualClock::advance`] past it on a manual one.
    pub async fn sleep_until(&self, deadline: Instant) {
        match &self.manual {
            None => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
            Some(now) => {
                // The sender lives in this handle, so the channel cannot close while this waits.
                let _ = now.subscribe().wait_for(|now| *now >= deadline).await;
            }
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
    now: Arc<watch::Sender<Instant>>,
}

impl ManualClock {
    /// A clock standing at the real clock's now.
    pub fn new() -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(Instant::now())),
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
        self.now.send_modify(|now| *now += by);
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

    #[tokio::test]
    async fn a_sleeper_on_a_manual_clock_wakes_when_the_clock_passes_its_deadline() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let deadline = clock.now() + Duration::from_secs(60);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(deadline).await }
        });
        manual.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "59 s is not 60 s");
        manual.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        // A deadline already passed returns at once.
        clock.sleep_until(deadline).await;
    }

    #[test]
    fn the_real_clock_moves_on_its_own() {
        let clock = Clock::real();
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(clock.since(start) >= Duration::from_millis(5));
    }
}
