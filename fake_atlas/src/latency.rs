//! Latency served when asked, not a millisecond later.
//!
//! tokio's timer counts in whole milliseconds and fires on the tick after a deadline, so a
//! `sleep` of 20 ms ends after about 21 ms, and every sleep that ends within the same tick
//! ends together. The benchmark measures the exporter's wall time against the stand-in's
//! latency; a stand-in that answers 5% late, in bunches, would be counted against the exporter.
//! So the stand-in's latency is kept by one thread of its own, which sleeps to the next
//! deadline with the operating system's finer timer and wakes each waiting request at its own
//! time. A request never answers before its latency has passed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Waits `latency` from now.
pub(crate) async fn wait(latency: Duration) {
    let (wake, woken) = oneshot::channel();
    timer().add(Instant::now() + latency, wake);
    // The timer thread sends to every waiter once due, and lives as long as the process.
    let _ = woken.await;
}

/// Who is waiting, soonest first.
struct Timer {
    waiting: Mutex<BinaryHeap<Reverse<Waiter>>>,
    changed: Condvar,
}

/// One request waiting, ordered by when it is due (waiters due at the same instant in any order).
struct Waiter {
    at: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl Timer {
    fn add(&self, at: Instant, wake: oneshot::Sender<()>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.push(Reverse(Waiter { at, wake }));
        self.changed.notify_one();
    }

    /// The timer thread: wakes every waiter whose time has come, then sleeps until the next.
    fn run(&self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while waiting.peek().is_some_and(|Reverse(next)| next.at <= now) {
                if let Some(Reverse(due)) = waiting.pop() {
                    // A request whose client went away no longer listens.
                    let _ = due.wake.send(());
                }
            }
            waiting = match waiting.peek() {
                Some(Reverse(next)) => {
                    let left = next.at.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(waiting, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The one timer of the process, started on first use.
fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            waiting: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("fake-atlas-latency".into())
            .spawn(move || timer.run())
            .expect("a thread for the stand-in's latency");
        timer
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_waiter_is_woken_early_and_a_sooner_one_is_not_held_behind_a_later_one() {
        // The later waiter is first in line: the timer thread sleeps towards its deadline when
        // the sooner one arrives, and must wake for it.
        let started = Instant::now();
        let later = tokio::spawn(async move {
            wait(Duration::from_millis(300)).await;
            started.elapsed()
        });
        tokio::task::yield_now().await;
        let waits: Vec<_> = (1..=20u64)
            .map(|step| {
                let latency = Duration::from_millis(step * 3);
                tokio::spawn(async move {
                    let asked = Instant::now();
                    wait(latency).await;
                    (latency, asked.elapsed())
                })
            })
            .collect();
        for waited in waits {
            let (latency, took) = waited.await.unwrap();
            assert!(took >= latency, "{took:?} < {latency:?}");
        }
        let sooner_done = started.elapsed();
        assert!(
            sooner_done < Duration::from_millis(300),
            "the waits of 3 to 60 ms ended after {sooner_done:?}, behind the 300 ms one"
        );
        assert!(later.await.unwrap() >= Duration::from_millis(300));
    }
}
