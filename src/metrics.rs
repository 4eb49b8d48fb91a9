//! The exporter's own metrics, which live as long as the process: API requests by endpoint and
//! status, answers of the exporter's own endpoints, web config reloads, build information, and
//! the `process_*` metrics. These go through the `prometheus`
//! crate; the per-job families are written by `render`.

use prometheus::{
    Encoder, Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

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
            &["endpoint", "code"],
        )
        .expect("static metric definition");
        let full_listings = IntCounterVec::new(
            Opts::new(
                "atlas_backup_exporter_full_listings_total",
                "Export-job listings that paged through every page of a cluster instead of stopping at the jobs already known, by reason (first, order, count, missing_job, invalid_job, new_jobs).",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "atlas_backup_exporter_build_info",
                "Always 1; the exporter's version and the git revision it was built from.",
            ),
            &["version", "revision"],
        )
        .expect("static metric definition");
        build_info.with_label_values(&[VERSION, REVISION]).set(1);
        let http_requests = IntCounterVec::new(
            Opts::new(
                "atlas_backup_exporter_http_requests_total",
                "Answers of the exporter's own endpoints, by handler (the route; other for any other path) and HTTP status code.",
            ),
            &["handler", "code"],
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
        registry
            .register(Box::new(api_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(full_listings.clone()))
            .expect("registered once");
        registry
            .register(Box::new(build_info))
            .expect("registered once");
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

    /// Adds metrics another part keeps (the Atlas client's rate limits) to what is exposed.
    pub fn expose(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::error!(%error, "registering metrics");
        }
    }

    /// The text format of the exporter's own metrics.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
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
