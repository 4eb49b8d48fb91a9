//! Prometheus exporter for MongoDB Atlas Cloud Backup snapshot export jobs.
//!
//! A scrape flows one way: [`server`] receives it, [`exporter`] shares one collection among the
//! scrapes that arrive together (or, with `collection.interval`, answers from the newest one its
//! background loop finished), [`collect`] plans and runs the Atlas calls through [`atlas`]
//! (authentication, paging, retries) and reduces each cluster's jobs, and [`render`] writes the
//! text format; [`metrics`] holds the exporter's own process-lifetime metrics. [`config`] reads and
//! validates the YAML file, and [`logging`] sets up `tracing`. The stand-in Atlas that the tests,
//! the demo and the benchmark run against is the `fake_atlas` crate of this repository, a
//! dev-dependency, so it stays out of the release binary. [`web_config`] reads the
//! `--web.config.file` (TLS and users) that [`server`] guards its endpoint with, checking
//! passwords through [`basic_auth`]. [`clock`] is the time the caches read, which tests move
//! by hand. [`check`] is `--atlas.check`: one collection, told back project by project. `yaml`
//! reads YAML so that its errors name the file, line and key, for [`config`] and [`web_config`] alike.

pub mod atlas;
pub mod basic_auth;
pub mod check;
pub mod clock;
pub mod collect;
pub mod config;
pub mod exporter;
pub mod labels;
// Unit tests reach the stand-in (a dev-dependency) as `crate::fake_atlas`.
#[cfg(test)]
extern crate fake_atlas;
pub mod logging;
pub mod metrics;
pub mod render;
pub mod server;
pub mod web_config;
pub(crate) mod yaml;

use std::sync::Arc;

use atlas::{AtlasClient, AtlasError};
use clock::Clock;
use collect::Collector;
use config::{Config, Credentials};
use exporter::Exporter;
use metrics::OwnMetrics;

/// The exporter assembled from a config: the router to serve and the parts tests look at.
pub struct App {
    pub router: axum::Router,
    pub exporter: Arc<Exporter>,
}

/// Builds the exporter for `config`, authenticating with `credentials`, answering scrapes on
/// `telemetry_path`.
pub fn build(
    config: &Config,
    credentials: Credentials,
    telemetry_path: &str,
) -> Result<App, AtlasError> {
    let options = server::WebOptions {
        telemetry_path: telemetry_path.to_owned(),
        ..server::WebOptions::default()
    };
    build_with(config, credentials, &options)
}

/// [`build`] with every web option.
pub fn build_with(
    config: &Config,
    credentials: Credentials,
    options: &server::WebOptions,
) -> Result<App, AtlasError> {
    build_with_clock(config, credentials, options, Clock::real())
}

/// [`build_with`] on `clock`: tests give it a [`clock::ManualClock`]'s handle to move token
/// renewals, the scrape cache's expiry and the background collection's turns themselves.
///
/// With `collection.interval` set, this starts the background collection on the current Tokio
/// runtime; [`Exporter::stop`] ends it.
pub fn build_with_clock(
    config: &Config,
    credentials: Credentials,
    options: &server::WebOptions,
    clock: Clock,
) -> Result<App, AtlasError> {
    let metrics = Arc::new(OwnMetrics::new());
    let client = AtlasClient::with_clock(
        &config.atlas,
        credentials,
        metrics.api_requests.clone(),
        clock.clone(),
    )?;
    metrics.expose(client.rate_limit_metrics());
    let collector = Collector::new(config, client, metrics.full_listings.clone());
    let exporter = Arc::new(Exporter::new(config, collector, metrics, clock));
    let router = server::router(exporter.clone(), config, options);
    Ok(App { router, exporter })
}
