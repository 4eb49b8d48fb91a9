//! The exporter's own metrics, which live as long as the process: API requests by endpoint and
//! status, build information, and the `process_*` metrics. These go through the `prometheus`
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
    /// Export-job listings that paged through everything when fewer pages could have done, by
    /// `reason`.
    pub full_listings: IntCounterVec,
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
        registry
            .register(Box::new(api_requests.clone()))
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
            full_listings,
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

impl Default for OwnMetrics {
    fn default() -> Self {
        OwnMetrics::new()
    }
}
