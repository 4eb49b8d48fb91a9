//! A scrape's answer: one collection shared by every scrape that arrives while it runs, reused for
//! `collection.cache_ttl`, rendered once and handed to each of them.
//!
//! A collection's age is read from the exporter's [`Clock`]; whether it finished after a
//! scrape arrived is read from a count of finished collections, so that holds on a test's
//! clock that stands still too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::atlas::Deadline;
use crate::clock::Clock;
use crate::collect::{Collection, Collector};
use crate::config::Config;
use crate::metrics::OwnMetrics;
use crate::render::render;

/// The shortest deadline a collection gets, however small Prometheus's timeout.
const MIN_DEADLINE: Duration = Duration::from_millis(100);

/// Answers scrapes.
pub struct Exporter {
    collector: Arc<Collector>,
    metrics: Arc<OwnMetrics>,
    /// The last collection; its lock is held while a collection runs, so scrapes queue on it.
    last: Arc<Mutex<Option<Snapshot>>>,
    timeout: Duration,
    timeout_offset: Duration,
    cache_ttl: Duration,
    on_metrics: bool,
    /// What `cache_ttl` is measured on.
    clock: Clock,
    /// Collections finished so far; a snapshot's `number` is its place in this count.
    finished: Arc<AtomicU64>,
}

/// A finished collection, rendered.
#[derive(Clone)]
struct Snapshot {
    /// When it finished, on the exporter's clock.
    finished: Instant,
    /// The count of finished collections with it.
    number: u64,
    text: Bytes,
}

/// The body of a scrape: the collection's text, shared, then the exporter's own metrics.
pub struct ScrapeText {
    pub collection: Bytes,
    pub own: Bytes,
}

impl ScrapeText {
    /// Both parts as one string (for tests and small answers).
    pub fn to_text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.collection).into_owned();
        text.push_str(&String::from_utf8_lossy(&self.own));
        text
    }
}

impl Exporter {
    /// An exporter for `config`, collecting with `collector`.
    pub fn new(config: &Config, collector: Collector, metrics: Arc<OwnMetrics>) -> Exporter {
        Exporter {
            collector: Arc::new(collector),
            metrics,
            last: Arc::new(Mutex::new(None)),
            timeout: config.collection.timeout,
            timeout_offset: config.collection.timeout_offset,
            cache_ttl: config.collection.cache_ttl,
            on_metrics: config.collection.on_metrics,
            clock: Clock::real(),
            finished: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This exporter, aging its cached collection on `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Exporter {
        self.clock = clock;
        self
    }

    /// The answer to a `/metrics` scrape. `scrape_timeout` is Prometheus's
    /// `X-Prometheus-Scrape-Timeout-Seconds`, if it sent one.
    pub async fn scrape(&self, scrape_timeout: Option<Duration>) -> ScrapeText {
        let collection = if self.on_metrics {
            self.collection_text(scrape_timeout).await
        } else {
            // The clusters are probed one by one; the discoveries behind `/sd` and the project
            // names and buckets the probes read still belong here.
            let discoveries = Collection {
                discoveries: self.collector.last_discoveries(),
                metadata: self.collector.last_project_metadata(),
                access: self.collector.last_access(),
                ..Collection::default()
            };
            let mut text = String::new();
            render(&discoveries, &mut text);
            Bytes::from(text)
        };
        ScrapeText {
            collection,
            own: Bytes::from(self.metrics.encode()),
        }
    }

    /// The exporter's own metrics as they are now, without joining or starting a collection.
    pub fn own_metrics(&self) -> Bytes {
        Bytes::from(self.metrics.encode())
    }

    /// The deadline of a collection started now.
    pub fn deadline(&self, scrape_timeout: Option<Duration>) -> Deadline {
        let budget = match scrape_timeout {
            Some(timeout) if timeout > self.timeout_offset => timeout - self.timeout_offset,
            Some(timeout) => timeout / 2,
            None => self.timeout,
        };
        Deadline::after(budget.max(MIN_DEADLINE))
    }

    async fn collection_text(&self, scrape_timeout: Option<Duration>) -> Bytes {
        let arrived = self.finished.load(Ordering::SeqCst);
        // Scrapes queue here while a collection runs; when they get the lock, the collection
        // that finished after they arrived is theirs too.
        let mut last = self.last.clone().lock_owned().await;
        if let Some(snapshot) = last.as_ref()
            && (snapshot.number > arrived || self.clock.since(snapshot.finished) < self.cache_ttl)
        {
            return snapshot.text.clone();
        }
        // No scrape queued behind this one can use the old text either, so free it before
        // building the next: holding both doubled the peak, and the allocator then kept the
        // freed buffers resident (peak RSS about twice as high: BENCHMARKS.md).
        *last = None;
        let deadline = self.deadline(scrape_timeout);
        let collector = self.collector.clone();
        let (clock, finished) = (self.clock.clone(), self.finished.clone());
        // A task of its own that keeps the lock until the snapshot is stored: a scraper that
        // hangs up (its handler is dropped) cancels neither the collection nor the answer the
        // queued scrapes are waiting for, which would make the next of them collect again.
        let collecting = tokio::spawn(async move {
            let collection = tokio::spawn(async move { collector.collect(deadline).await })
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "a collection panicked; answering without Atlas data");
                    Collection::default()
                });
            let mut text = String::with_capacity(estimate(&collection));
            render(&collection, &mut text);
            // Counted under the lock, so a scrape queued on it sees the count move.
            let snapshot = Snapshot {
                finished: clock.now(),
                number: finished.fetch_add(1, Ordering::SeqCst) + 1,
                text: Bytes::from(text),
            };
            *last = Some(snapshot.clone());
            snapshot.text
        });
        collecting.await.unwrap_or_else(|error| {
            tracing::error!(%error, "rendering a collection failed; answering without Atlas data");
            Bytes::new()
        })
    }

    /// The collector, for `/probe` and the landing page.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// The exporter's own metrics.
    pub fn metrics(&self) -> &Arc<OwnMetrics> {
        &self.metrics
    }
}

/// About how many bytes a collection's text takes, so the buffer grows once.
fn estimate(collection: &Collection) -> usize {
    let jobs: usize = collection
        .clusters
        .iter()
        .filter_map(|c| c.jobs.as_ref())
        .map(|j| j.shown.len())
        .sum();
    8192 + collection.clusters.len() * 1500 + jobs * 1600
}
