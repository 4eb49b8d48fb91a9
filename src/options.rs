//! [`Options`]: everything about the exporter that is not in the config file, in one struct with
//! defaults, so a caller sets the fields it cares about and [`crate::build`] takes the rest as
//! the binary does.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::web::config::WebConfig;

/// `--web.max-requests`'s default, node_exporter's.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

/// How the exporter is reached and served, and the clock it runs on: the command line's `--web.*`
/// flags, and what tests set besides them.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--web.telemetry-path`: where scrapes are answered.
    pub telemetry_path: String,
    /// `--web.external-url`: the URL Prometheus reaches the exporter at, for `/sd`; `None`: the
    /// request's `Host`.
    pub external_url: Option<String>,
    /// `--web.max-requests`: scrapes of the telemetry path served at once; past it, 503 at once.
    /// 0 is no limit. `/probe` is not capped: its concurrency is Prometheus's own in sharded
    /// set-ups.
    pub max_requests: usize,
    /// TLS and basic authentication, from `--web.config.file`; `None` is plain HTTP for anyone.
    /// When it was loaded from a file, that file and the files it names are watched, and a
    /// change is put in force for new connections and requests.
    pub web_config: Option<Arc<WebConfig>>,
    /// `--web.read-header-timeout`: how long a client may take over the TLS handshake and over
    /// each request's headers (slowloris). hyper runs this timer while a keep-alive connection
    /// waits for its next request too, so it is also how long an idle connection stays open.
    pub header_read_timeout: Duration,
    /// Added to a request's scrape deadline (Prometheus's timeout header, else
    /// `collection.timeout`) to bound the whole request, authentication included. A scrape ends
    /// inside its deadline by itself: this is the backstop that answers 503 if something hangs.
    pub request_timeout_margin: Duration,
    /// How long shutdown waits for requests in flight before closing their connections.
    pub shutdown_grace: Duration,
    /// The time token renewals, the caches and the background collection's turns are measured
    /// on: tests give a [`crate::clock::ManualClock`]'s handle and move it themselves.
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            telemetry_path: "/metrics".to_owned(),
            external_url: None,
            max_requests: DEFAULT_MAX_REQUESTS,
            web_config: None,
            // Prometheus scraping more often than this keeps its connection; a client trickling
            // its headers holds one for no longer than this.
            header_read_timeout: Duration::from_secs(30),
            request_timeout_margin: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            clock: Clock::real(),
        }
    }
}
