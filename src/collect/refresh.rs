//! Values looked up from Atlas per key (a project, a cluster), each read again once per refresh
//! interval on the collector's clock, however often Prometheus scrapes.
//!
//! A lookup that fails keeps the last good value, is not tried again before the next refresh is
//! due, and is logged once for that refresh: a credential without the role costs one request and
//! one log line per key and interval, not one per scrape. Whoever knows the value another way (a
//! listing made anyway) puts it, and that counts as a refresh.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

use super::watched::lock;
use crate::atlas::AtlasError;
use crate::clock::Clock;

/// How many lookups of one kind are under way at once: far more than requests are let in flight
/// in practice (`max_concurrent_requests`, 8 by default), so the bound never slows them.
const LOOKUPS_IN_FLIGHT: usize = 256;

/// Runs `lookup` on each of `items`, at most [`LOOKUPS_IN_FLIGHT`] at once, and gives back their
/// results in the order they end. Not all at once: a lookup holds some 7 KiB once started, 70 MiB
/// at 10,000 clusters if all were started together, and the client lets only
/// `max_concurrent_requests` of them call Atlas at a time anyway.
pub(super) async fn bounded<T, F, Fut>(
    items: impl IntoIterator<Item = T>,
    lookup: F,
) -> Vec<Fut::Output>
where
    F: FnMut(T) -> Fut,
    Fut: Future,
{
    stream::iter(items)
        .map(lookup)
        .buffer_unordered(LOOKUPS_IN_FLIGHT)
        .collect()
        .await
}

/// One lookup's values by key.
pub(super) struct Refreshed<K, V> {
    /// What is looked up, for the log ("the project's name").
    what: &'static str,
    interval: Duration,
    clock: Clock,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    /// The last value that was read, if one ever was.
    value: Option<V>,
    /// When the value was last read, or last tried; `None`: never.
    tried_at: Option<Instant>,
}

impl<K: Hash + Eq + Clone + std::fmt::Debug, V: Clone> Refreshed<K, V> {
    pub(super) fn new(what: &'static str, interval: Duration, clock: Clock) -> Self {
        Refreshed {
            what,
            interval,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps a value known without a lookup of its own.
    pub(super) fn put(&self, key: K, value: V) {
        let entry = Entry {
            value: Some(value),
            tried_at: Some(self.clock.now()),
        };
        lock(&self.entries).insert(key, entry);
    }

    /// Looks up, concurrently, each of `keys` whose value is due (never read, or read or tried
    /// longer than the interval ago). Each due key is claimed before its lookup starts, so
    /// collections running at once look it up once.
    pub(super) async fn refresh<F, Fut>(&self, keys: &[K], lookup: F)
    where
        F: Fn(K) -> Fut,
        Fut: Future<Output = Result<V, AtlasError>>,
    {
        let now = self.clock.now();
        let due: Vec<K> = {
            let mut entries = lock(&self.entries);
            keys.iter()
                .filter(|key| {
                    let entry = entries.entry((*key).clone()).or_insert(Entry {
                        value: None,
                        tried_at: None,
                    });
                    let due = entry
                        .tried_at
                        .is_none_or(|at| now.saturating_duration_since(at) >= self.interval);
                    if due {
                        entry.tried_at = Some(now);
                    }
                    due
                })
                .cloned()
                .collect()
        };
        let looked_up = bounded(due, |key| {
            let result = lookup(key.clone());
            async move { (key, result.await) }
        })
        .await;
        let mut entries = lock(&self.entries);
        for (key, result) in looked_up {
            match result {
                Ok(value) => {
                    if let Some(entry) = entries.get_mut(&key) {
                        entry.value = Some(value);
                    }
                }
                Err(error) => {
                    let kept = entries.get(&key).is_some_and(|e| e.value.is_some());
                    tracing::warn!(
                        key = ?key,
                        %error,
                        kept_last_value = kept,
                        "looking up {} failed; trying again at the next refresh",
                        self.what
                    );
                }
            }
        }
    }

    /// The last value read for `key`.
    pub(super) fn get(&self, key: &K) -> Option<V> {
        lock(&self.entries).get(key).and_then(|e| e.value.clone())
    }

    /// Forgets every key `keep` refuses (a project or cluster no longer watched).
    pub(super) fn retain(&self, keep: impl Fn(&K) -> bool) {
        lock(&self.entries).retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    fn failure() -> AtlasError {
        AtlasError::Status {
            call: "getting project x".into(),
            status: 403,
            error_code: None,
            detail: None,
            content_type: None,
        }
    }

    #[tokio::test]
    async fn at_most_lookups_in_flight_are_under_way_at_once() {
        let clock = ManualClock::new();
        let names = Refreshed::new("the project's name", Duration::from_secs(60), clock.clock());
        let keys: Vec<u32> = (0..600).collect();
        let running = AtomicU32::new(0);
        let most = AtomicU32::new(0);
        names
            .refresh(&keys, |key| {
                let (running, most) = (&running, &most);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(key * 2)
                }
            })
            .await;
        assert_eq!(most.load(Ordering::SeqCst), LOOKUPS_IN_FLIGHT as u32);
        assert_eq!(names.get(&599), Some(1198), "every key was still looked up");
    }

    #[tokio::test]
    async fn a_value_is_read_once_per_interval_and_a_failure_keeps_the_last_good_one() {
        let clock = ManualClock::new();
        let names = Refreshed::new(
            "the project's name",
            Duration::from_secs(3600),
            clock.clock(),
        );
        let calls = AtomicU32::new(0);
        let fail = std::sync::atomic::AtomicBool::new(false);
        let lookup = |key: &'static str| {
            calls.fetch_add(1, Ordering::Relaxed);
            let failing = fail.load(Ordering::Relaxed);
            async move {
                if failing {
                    Err(failure())
                } else {
                    Ok(format!("name of {key}"))
                }
            }
        };
        for _ in 0..5 {
            names.refresh(&["a", "b"], lookup).await;
        }
        assert_eq!(
            calls.load(Ordering::Relaxed),
            2,
            "one per key, not per scrape"
        );
        assert_eq!(names.get(&"a").as_deref(), Some("name of a"));

        fail.store(true, Ordering::Relaxed);
        clock.advance(Duration::from_secs(3599));
        names.refresh(&["a", "b"], lookup).await;
        assert_eq!(calls.load(Ordering::Relaxed), 2, "not due yet");
        clock.advance(Duration::from_secs(1));
        for _ in 0..5 {
            names.refresh(&["a", "b"], lookup).await;
        }
        assert_eq!(
            calls.load(Ordering::Relaxed),
            4,
            "a failure is not retried per scrape"
        );
        assert_eq!(
            names.get(&"a").as_deref(),
            Some("name of a"),
            "last good value"
        );

        fail.store(false, Ordering::Relaxed);
        clock.advance(Duration::from_secs(3600));
        names.refresh(&["a"], lookup).await;
        assert_eq!(calls.load(Ordering::Relaxed), 5);
        names.retain(|k| *k != "b");
        assert_eq!(names.get(&"b"), None, "gone with its project");
    }

    #[tokio::test]
    async fn a_value_put_by_a_listing_is_not_looked_up_again_within_the_interval() {
        let clock = ManualClock::new();
        let names = Refreshed::new("the project's name", Duration::from_secs(60), clock.clock());
        names.put("a", "listed".to_owned());
        let calls = AtomicU32::new(0);
        let lookup = |_: &'static str| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok("looked up".to_owned()) }
        };
        names.refresh(&["a"], lookup).await;
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        clock.advance(Duration::from_secs(60));
        names.refresh(&["a"], lookup).await;
        assert_eq!(names.get(&"a").as_deref(), Some("looked up"));
    }
}
