//! Background collection (`collection.interval`): a task of its own collects every watched
//! cluster once per interval and keeps the newest finished collection, which scrapes, `/probe`
//! and `/sd` answer from without calling Atlas.
//!
//! Collections never overlap: the loop starts one, waits for it, keeps it, and only then waits
//! for the next turn. One that ends after the next was due (an overrun) is counted and followed
//! by the next at once. Each is bounded by `collection.timeout` when the file sets it, else by
//! the interval; every call in it by `atlas.request_timeout`, as always.
//!
//! Turns and durations are read on the exporter's [`Clock`], so a test moves time to start the
//! next collection rather than sleeping. A collection's deadline is kept on real time, like a
//! scrape's ([`crate::clock`] says why).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::atlas::Deadline;
use crate::clock::Clock;
use crate::collect::{Collection, Collector, unix_now};
use crate::metrics::OwnMetrics;

/// The running loop, and the newest collection it finished.
pub struct Background {
    newest: watch::Receiver<Option<Arc<Finished>>>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A finished background collection.
#[derive(Debug)]
pub struct Finished {
    /// Its place in the count of finished collections, from 1.
    pub number: u64,
    /// What it found, for `/probe` and (written anew for each scrape) for `/metrics`.
    pub collection: Arc<Collection>,
}

/// How the loop runs, from the config.
#[derive(Clone, Debug)]
pub struct BackgroundOptions {
    /// `collection.interval`: one collection starts this long after the previous one started.
    pub interval: Duration,
    /// The bound of one collection.
    pub timeout: Duration,
    /// Whether `/metrics` serves the collection (else only `/probe` does, and no text is kept).
    pub on_metrics: bool,
    /// What the interval is measured on.
    pub clock: Clock,
}

impl Background {
    /// Starts the loop on the current Tokio runtime; the first collection starts at once.
    pub fn start(
        collector: Arc<Collector>,
        metrics: Arc<OwnMetrics>,
        options: BackgroundOptions,
    ) -> Background {
        let (publish, newest) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let turns = Turns {
            collector,
            metrics,
            options,
            publish,
            stopped,
        };
        Background {
            newest,
            stop,
            task: Mutex::new(Some(tokio::spawn(turns.run()))),
        }
    }

    /// The newest finished collection; `None` while the first one runs.
    pub fn newest(&self) -> Option<Arc<Finished>> {
        self.newest.borrow().clone()
    }

    /// Waits until `number` collections have finished (returns at once if the loop stopped).
    pub async fn finished(&self, number: u64) {
        let mut newest = self.newest.clone();
        let _ = newest
            .wait_for(|f| f.as_ref().is_some_and(|f| f.number >= number))
            .await;
    }

    /// Stops the loop, abandoning a collection that is running, and waits until it has stopped.
    pub async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task
            && let Err(error) = task.await
            && error.is_panic()
        {
            tracing::error!(%error, "the background collection loop panicked");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

/// The loop's side: what it collects with and where it puts the result.
struct Turns {
    collector: Arc<Collector>,
    metrics: Arc<OwnMetrics>,
    options: BackgroundOptions,
    publish: watch::Sender<Option<Arc<Finished>>>,
    stopped: watch::Receiver<bool>,
}

impl Turns {
    async fn run(mut self) {
        let clock = self.options.clock.clone();
        let interval = self.options.interval;
        tracing::info!(
            interval = %crate::config::format_duration(interval),
            timeout = %crate::config::format_duration(self.options.timeout),
            "collecting in the background"
        );
        let mut due = clock.now();
        let mut number = 0;
        loop {
            tokio::select! {
                biased;
                _ = self.stopped.wait_for(|stop| *stop) => break,
                () = clock.sleep_until(due) => {}
            }
            let started = clock.now();
            let deadline = Deadline::after(self.options.timeout);
            let collector = self.collector.clone();
            // A task of its own, so that a panic in a collection costs that collection only;
            // aborted if the loop stops (or is dropped) while it runs.
            let mut collecting = AbortOnDrop(tokio::spawn(async move {
                Arc::new(collector.collect(deadline).await)
            }));
            let outcome = tokio::select! {
                biased;
                _ = self.stopped.wait_for(|stop| *stop) => break,
                outcome = &mut collecting.0 => outcome,
            };
            let took = clock.since(started);
            match outcome {
                Ok(collection) => {
                    number += 1;
                    let failed = collection.clusters.iter().filter(|c| c.jobs.is_none());
                    tracing::debug!(
                        number,
                        clusters = collection.clusters.len(),
                        failed = failed.count(),
                        seconds = took.as_secs_f64(),
                        "background collection finished"
                    );
                    self.publish
                        .send_replace(Some(Arc::new(Finished { number, collection })));
                    self.metrics
                        .collections
                        .finished(unix_now(), took.as_secs_f64());
                }
                Err(error) => {
                    tracing::error!(%error, "a background collection panicked; the previous one still answers");
                }
            }
            due = started + interval;
            let now = clock.now();
            if now > due {
                self.metrics.collections.overran();
                tracing::warn!(
                    took = %crate::config::format_duration(took),
                    interval = %crate::config::format_duration(interval),
                    "a background collection took longer than collection.interval; the next starts now"
                );
                due = now;
            }
        }
        tracing::info!("background collection stopped");
    }
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
