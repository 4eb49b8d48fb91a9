//! The exporter's own metrics, which live as long as the process: API requests by endpoint and
//! status, answers of the exporter's own endpoints, web config reloads, the collections as a
//! whole, build information, and the `process_*` metrics. These go through the `prometheus`
//! crate; the per-job families, and the rate limiter's series, are written by `render`.

use prometheus::{
    Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::labels;

/// The git commit the binary was built from, or `unknown`.
pub const REVISION: &str = env!("ATLAS_BACKUP_EXPORTER_REVISION");
/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The process-lifetime metrics and the registry that encodes them.
pub struct OwnMetrics {
    registry: Registry,
    /// One per HTTP attempt to Atlas, by `endpoint` and `code`.
    pub api_requests: IntCounterVec,
    /// One per answer of the exporter's own endpoints, by `handler` (the route, or `other`) and
    /// `code`.
    pub http_requests: IntCounterVec,
    /// The outcome of the last reload of `--web.config.file`, registered once reloading starts.
    pub web_config_reload: WebConfigReload,
    /// Export-job listings that paged through everything when fewer pages could have done, by
    /// `reason`.
    pub full_listings: IntCounterVec,
    /// The collections as a whole: their interval, the newest one, overruns.
    pub collections: CollectionMetrics,
}

/// The unlabelled series that describe the collections as a whole (each cluster's own time is
/// `atlas_backup_export_collection_timestamp_seconds`).
#[derive(Clone)]
pub struct CollectionMetrics {
    interval: Gauge,
    first_pending: IntGauge,
    /// Registered when the first collection finishes: before, there is no newest collection.
    last_timestamp: Gauge,
    last_duration: Gauge,
    overruns: IntCounter,
    registered: std::sync::Arc<std::sync::Once>,
    registry: Registry,
}

impl CollectionMetrics {
    /// Says how collections run: in the background every `interval` (the first one then
    /// pending until it finishes), or on each scrape (`interval` zero).
    pub fn set_interval(&self, interval: std::time::Duration) {
        self.interval.set(interval.as_secs_f64());
        self.first_pending.set(i64::from(!interval.is_zero()));
    }

    /// Records a whole collection that finished at `timestamp` (Unix seconds) after
    /// `duration` seconds.
    pub fn finished(&self, timestamp: f64, duration: f64) {
        self.last_timestamp.set(timestamp);
        self.last_duration.set(duration);
        self.registered.call_once(|| {
            for gauge in [&self.last_timestamp, &self.last_duration] {
                if let Err(error) = self.registry.register(Box::new(gauge.clone())) {
                    tracing::error!(%error, "registering the last collection's metrics");
                }
            }
        });
        self.first_pending.set(0);
    }

    /// Counts a background collection that ran past the time the next one was due.
    pub fn overran(&self) {
        self.overruns.inc();
    }

    /// Background collections that overran so far.
    pub fn overruns(&self) -> u64 {
        self.overruns.get()
    }
}

/// `atlas_backup_exporter_web_config_last_reload_successful` and
/// `..._last_reload_success_timestamp_seconds`: present only with `--web.config.file`.
#[derive(Clone)]
pub struct WebConfigReload {
    successful: IntGauge,
    success_timestamp: Gauge,
    registered: std::sync::Arc<std::sync::Once>,
}

impl WebConfigReload {
    /// Records a load that succeeded: the configuration in use is the file's.
    pub fn succeeded(&self) {
        self.successful.set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        self.success_timestamp.set(now);
    }

    /// Records a load that failed: the last good configuration stays in use.
    pub fn failed(&self) {
        self.successful.set(0);
    }
}

impl OwnMetrics {
    /// Registers the exporter's own metrics (and, on Linux, the process metrics).
    pub fn new() -> OwnMetrics {
        let registry = Registry::new();
        let api_requests = IntCounterVec::new(
            Opts::new(
                "atlas_backup_exporter_api_requests_total",
                "HTTP requests the exporter made to the Atlas Administration API, retries included, by endpoint and final HTTP status of the attempt (error: no answer). Watch 401/403/429.",
            ),
            &[labels::ENDPOINT, labels::CODE],
        )
        .expect("static metric definition");
        let full_listings = IntCounterVec::new(
            Opts::new(
                "atlas_backup_exporter_full_listings_total",
                "Export-job listings that paged through every page of a cluster instead of stopping at the jobs already known, by reason (first, order, count, missing_job, invalid_job, new_jobs).",
            ),
            &[labels::REASON],
        )
        .expect("static metric definition");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "atlas_backup_exporter_build_info",
                "Always 1; the exporter's version and the git revision it was built from.",
            ),
            &[labels::VERSION, labels::REVISION],
        )
        .expect("static metric definition");
        build_info.with_label_values(&[VERSION, REVISION]).set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(
                "atlas_backup_exporter_http_requests_total",
                "Answers of the exporter's own endpoints, by handler (the route; other for any other path) and HTTP status code.",
            ),
            &[labels::HANDLER, labels::CODE],
        )
        .expect("static metric definition");
        let web_config_reload = WebConfigReload {
            successful: IntGauge::new(
                "atlas_backup_exporter_web_config_last_reload_successful",
                "1 if the last load of --web.config.file succeeded, 0 if it failed and the last good configuration is still in use.",
            )
            .expect("static metric definition"),
            success_timestamp: Gauge::new(
                "atlas_backup_exporter_web_config_last_reload_success_timestamp_seconds",
                "When --web.config.file was last loaded successfully, as Unix seconds.",
            )
            .expect("static metric definition"),
            registered: std::sync::Arc::new(std::sync::Once::new()),
        };
        let collections = CollectionMetrics {
            interval: Gauge::new(
                "atlas_backup_exporter_collection_interval_seconds",
                "collection.interval: collections run in the background once per this many seconds; 0 collects on each scrape.",
            )
            .expect("static metric definition"),
            first_pending: IntGauge::new(
                "atlas_backup_exporter_first_collection_pending",
                "1 while the first background collection runs (scrapes then carry no Atlas data), 0 once it finished; always 0 when collecting on each scrape.",
            )
            .expect("static metric definition"),
            last_timestamp: Gauge::new(
                "atlas_backup_exporter_last_collection_timestamp_seconds",
                "When the newest whole collection (every watched cluster) finished, as Unix seconds; absent until one has.",
            )
            .expect("static metric definition"),
            last_duration: Gauge::new(
                "atlas_backup_exporter_last_collection_duration_seconds",
                "Seconds the newest whole collection (every watched cluster) took, from its first Atlas call to its rendered answer; absent until one has finished.",
            )
            .expect("static metric definition"),
            overruns: IntCounter::new(
                "atlas_backup_exporter_collection_overruns_total",
                "Background collections that ran past the time the next one was due; the next then started at once. Raise collection.interval or shard the estate.",
            )
            .expect("static metric definition"),
            registered: std::sync::Arc::new(std::sync::Once::new()),
            registry: registry.clone(),
        };
        // The order is no matter: the registry writes the families sorted by name.
        for metric in [
            Box::new(api_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_requests.clone()),
            Box::new(full_listings.clone()),
            Box::new(build_info),
            Box::new(collections.interval.clone()),
            Box::new(collections.first_pending.clone()),
            Box::new(collections.overruns.clone()),
        ] {
            registry.register(metric).expect("registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");
        OwnMetrics {
            registry,
            api_requests,
            http_requests,
            web_config_reload,
            full_listings,
            collections,
        }
    }

    /// Adds the web config reload gauges to what is exposed (once, whoever asks).
    pub fn expose_web_config_reload(&self) {
        let reload = &self.web_config_reload;
        reload.registered.call_once(|| {
            for gauge in [
                Box::new(reload.successful.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(reload.success_timestamp.clone()),
            ] {
                if let Err(error) = self.registry.register(gauge) {
                    tracing::error!(%error, "registering the web config reload metrics");
                }
            }
        });
    }

    /// The text format of the exporter's own metrics.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "encoding the exporter's own metrics failed");
        }
        out
    }
}

impl std::fmt::Debug for OwnMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnMetrics").finish_non_exhaustive()
    }
}

impl Default for OwnMetrics {
    fn default() -> Self {
        OwnMetrics::new()
    }
}
