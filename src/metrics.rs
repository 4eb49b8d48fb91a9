//! The exporter's own metrics, which live as long as the process: API requests by endpoint and
//! status, answers of the exporter's own endpoints, build information, and the `process_*`
//! metrics. These go through the `prometheus`
//! crate; the per-job families are written by `render`.

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

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
        registry
            .register(Box::new(api_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_requests.clone()))
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
