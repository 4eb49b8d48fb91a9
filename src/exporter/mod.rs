//! A scrape's answer, in one of two modes.
//!
//! On each scrape (the default): one collection shared by every scrape that arrives while it
//! runs, reused for `collection.cache_ttl`, and written anew, chunk by chunk, into each answer.
//!
//! In the background (`collection.interval`, see [`background`]): a loop collects once per
//! interval, and scrapes, `/probe` and `/sd` answer at once from the newest finished collection,
//! never calling Atlas themselves.
//!
//! A collection's age is read from the exporter's [`Clock`]; whether it finished after a
//! scrape arrived is read from a count of finished collections, so that holds on a test's
//! clock that stands still too.

pub mod background;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::atlas::Deadline;
use crate::clock::Clock;
use crate::collect::{Collection, Collector, WatchedCluster, unix_now};
use crate::config::Config;
use crate::metrics::OwnMetrics;
use crate::render::{Chunks, render};
use background::{Background, BackgroundOptions};

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
    /// The loop that collects once per `collection.interval`; `None`: collect on each scrape.
    background: Option<Background>,
}

/// A finished collection, kept whole and written anew for each scrape: the text of a large
/// estate is many times the size of the collection it is written from.
#[derive(Clone)]
struct Snapshot {
    /// When it finished, on the exporter's clock.
    finished: Instant,
    /// The count of finished collections with it.
    number: u64,
    collection: Arc<Collection>,
}

/// The body of a scrape or a probe: the collection (shared by the scrapes that answer from it)
/// to write as text, then the exporter's own metrics (none on a probe). The text format is
/// written here only.
pub struct ScrapeText {
    pub collection: Option<Arc<Collection>>,
    pub own: Bytes,
}

impl ScrapeText {
    /// The body in chunks of about [`crate::render::CHUNK_SIZE`] bytes, each written when it is
    /// asked for, so an answer never holds its whole text.
    pub fn into_chunks(self) -> impl Iterator<Item = Bytes> + Send + 'static {
        let collection = self.collection.into_iter().flat_map(Chunks::new);
        collection.chain(std::iter::once(self.own))
    }

    /// The whole body as one string (for tests and small answers).
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(collection) = &self.collection {
            render(collection, &mut text);
        }
        text.push_str(&String::from_utf8_lossy(&self.own));
        text
    }
}

impl Exporter {
    /// An exporter for `config`, collecting with `collector` and reading time (the cache's
    /// age, the background interval) on `clock`. With `collection.interval` set, the background
    /// loop starts here, on the current Tokio runtime.
    pub fn new(
        config: &Config,
        collector: Collector,
        metrics: Arc<OwnMetrics>,
        clock: Clock,
    ) -> Exporter {
        let collector = Arc::new(collector);
        let collection = &config.collection;
        metrics.collections.set_interval(collection.interval);
        let background = collection.in_background().then(|| {
            let options = BackgroundOptions {
                interval: collection.interval,
                timeout: collection.background_timeout(),
                on_metrics: collection.on_metrics,
                clock: clock.clone(),
            };
            Background::start(collector.clone(), metrics.clone(), options)
        });
        Exporter {
            collector,
            metrics,
            last: Arc::new(Mutex::new(None)),
            timeout: collection.timeout,
            timeout_offset: collection.timeout_offset,
            cache_ttl: collection.cache_ttl,
            on_metrics: collection.on_metrics,
            clock,
            finished: Arc::new(AtomicU64::new(0)),
            background,
        }
    }

    /// The answer to a `/metrics` scrape. `scrape_timeout` is Prometheus's
    /// `X-Prometheus-Scrape-Timeout-Seconds`, if it sent one.
    pub async fn scrape(&self, scrape_timeout: Option<Duration>) -> ScrapeText {
        let collection = if let (Some(background), true) = (&self.background, self.on_metrics) {
            // At once: the newest finished collection, or nothing before the first.
            background
                .newest()
                .map(|finished| finished.collection.clone())
        } else if self.on_metrics {
            Some(self.collection(scrape_timeout).await)
        } else {
            // The clusters are probed one by one; the discoveries behind `/sd` and the project
            // names and buckets the probes read still belong here.
            Some(Arc::new(Collection {
                discoveries: self.collector.last_discoveries(),
                metadata: self.collector.last_project_metadata(),
                access: self.collector.last_access(),
                ..Collection::default()
            }))
        };
        ScrapeText {
            collection,
            own: self.own_metrics(),
        }
    }

    /// `/probe`'s answer for one cluster, its series only: `None` if the exporter does not
    /// watch it. In the background mode it is the cluster's part of the newest collection,
    /// without calling Atlas (empty for a cluster that collection did not reach yet, so no
    /// `up 0` before the first finished).
    pub async fn probe(
        &self,
        group_id: &str,
        cluster_name: &str,
        scrape_timeout: Option<Duration>,
    ) -> Option<ScrapeText> {
        let watched = || {
            let clusters = self.collector.watched_clusters();
            clusters.iter().any(|c| c.key() == (group_id, cluster_name))
        };
        let collection = match &self.background {
            None => {
                let deadline = self.deadline(scrape_timeout);
                let collecting = self
                    .collector
                    .collect_cluster(group_id, cluster_name, deadline);
                collecting.await?
            }
            Some(background) => {
                let newest = background.newest();
                match newest.and_then(|f| f.collection.of_cluster(group_id, cluster_name)) {
                    Some(found) => found,
                    None if watched() => Collection::default(),
                    None => return None,
                }
            }
        };
        Some(ScrapeText {
            collection: Some(Arc::new(collection)),
            own: Bytes::new(),
        })
    }

    /// The clusters `/sd` hands out: in the background mode as the last discovery found them,
    /// without calling Atlas; otherwise discovered again when due.
    pub async fn service_discovery(&self) -> Vec<WatchedCluster> {
        match &self.background {
            Some(_) => self.collector.watched_clusters(),
            None => {
                let deadline = self.deadline(None);
                self.collector.discover_clusters(deadline).await
            }
        }
    }

    /// The background loop, when `collection.interval` is set.
    pub fn background(&self) -> Option<&Background> {
        self.background.as_ref()
    }

    /// Stops the background loop, if there is one (when the server has stopped).
    pub async fn stop(&self) {
        if let Some(background) = &self.background {
            background.stop().await;
        }
    }

    /// The exporter's own metrics as they are now, the rate limiter's included, without joining
    /// or starting a collection.
    pub fn own_metrics(&self) -> Bytes {
        let mut text = self.metrics.encode();
        crate::render::rate_limits(&self.collector.rate_limits(), &mut text);
        Bytes::from(text)
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

    async fn collection(&self, scrape_timeout: Option<Duration>) -> Arc<Collection> {
        let arrived = self.finished.load(Ordering::SeqCst);
        // Scrapes queue here while a collection runs; when they get the lock, the collection
        // that finished after they arrived is theirs too.
        let mut last = self.last.clone().lock_owned().await;
        if let Some(snapshot) = last.as_ref()
            && (snapshot.number > arrived || self.clock.since(snapshot.finished) < self.cache_ttl)
        {
            return snapshot.collection.clone();
        }
        // No scrape queued behind this one can use the old collection either, so let it go
        // before building the next (scrapes still streaming it keep it until they finish).
        *last = None;
        let deadline = self.deadline(scrape_timeout);
        let collector = self.collector.clone();
        let (clock, finished) = (self.clock.clone(), self.finished.clone());
        let metrics = self.metrics.clone();
        // A task of its own that keeps the lock until the snapshot is stored: a scraper that
        // hangs up (its handler is dropped) cancels neither the collection nor the answer the
        // queued scrapes are waiting for, which would make the next of them collect again.
        let collecting = tokio::spawn(async move {
            let started = clock.now();
            let collection = tokio::spawn(async move { collector.collect(deadline).await })
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "a collection panicked; answering without Atlas data");
                    Collection::default()
                });
            let collection = Arc::new(collection);
            let took = clock.since(started);
            metrics.collections.finished(unix_now(), took.as_secs_f64());
            // Counted under the lock, so a scrape queued on it sees the count move.
            let snapshot = Snapshot {
                finished: clock.now(),
                number: finished.fetch_add(1, Ordering::SeqCst) + 1,
                collection,
            };
            *last = Some(snapshot.clone());
            snapshot.collection
        });
        collecting.await.unwrap_or_else(|error| {
            tracing::error!(%error, "a collection failed; answering without Atlas data");
            Arc::new(Collection::default())
        })
    }

    /// The collector: what the exporter watches and how it calls Atlas.
    pub fn collector(&self) -> &Arc<Collector> {
        &self.collector
    }

    /// The exporter's own metrics.
    pub fn metrics(&self) -> &Arc<OwnMetrics> {
        &self.metrics
    }
}
