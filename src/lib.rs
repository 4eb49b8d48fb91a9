//! Prometheus exporter for MongoDB Atlas Cloud Backup snapshot export jobs.
//!
//! A scrape flows one way: [`web`] receives it, [`exporter`] shares one collection among the
//! scrapes that arrive together (or, with `collection.interval`, answers from the newest one its
//! background loop finished), [`collect`] plans and runs the Atlas calls through [`atlas`]
//! (authentication, paging, retries) and reduces each cluster's jobs, and [`render`] writes the
//! text format; [`metrics`] holds the exporter's own process-lifetime metrics. [`config`] reads and
//! validates the YAML file, and [`logging`] sets up `tracing`. [`web`] also reads the
//! `--web.config.file` (TLS and users) it guards the endpoint with, and reloads it. [`clock`] is
//! the time the caches read, which tests move by hand. [`check`] is `--atlas.check`: one
//! collection, told back project by project. `yaml` reads YAML so that its errors name the file,
//! line and key, for [`config`] and [`web`] alike. The stand-in Atlas that the tests, the demo
//! and the benchmark run against is the `fake_atlas` crate of this repository, a
//! dev-dependency, so it stays out of the release binary.
//!
//! One entry point: [`build`] takes the config, the credential and the [`Options`] (what is not
//! in the config file: the `--web.*` flags and the clock, each with a default), and the [`App`]
//! it returns serves with [`App::serve`]. The binary, the demo and the tests all start the
//! exporter this way.

pub mod atlas;
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
mod options;
pub mod render;
pub mod web;
pub(crate) mod yaml;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atlas::{AtlasClient, AtlasError};
use collect::Collector;
use config::{Config, Credentials};
use exporter::Exporter;
use metrics::OwnMetrics;
pub use options::{DEFAULT_MAX_REQUESTS, Options};

/// The exporter assembled from a config: the router to serve, and the parts tests look at.
#[derive(Clone)]
pub struct App {
    /// The routes with their state; [`App::serve`] adds the readiness endpoint and the layers
    /// every request goes through.
    pub router: axum::Router,
    pub exporter: Arc<Exporter>,
    options: Options,
    /// `collection.timeout`: a request's deadline when Prometheus sends no timeout header.
    scrape_timeout: Duration,
}

/// Builds the exporter for `config`, signing in to Atlas with `credentials`, served as `options`
/// say.
///
/// With `collection.interval` set, this starts the background collection on the current Tokio
/// runtime; [`App::serve`] ends it when serving ends, or [`Exporter::stop`].
pub fn build(
    config: &Config,
    credentials: Credentials,
    options: Options,
) -> Result<App, AtlasError> {
    let metrics = Arc::new(OwnMetrics::new());
    let clock = &options.clock;
    let requests = metrics.api_requests.clone();
    let client = AtlasClient::new(&config.atlas, credentials, requests, clock.clone())?;
    let collector = Collector::new(config, client, metrics.full_listings.clone(), clock.clone());
    let exporter = Arc::new(Exporter::new(config, collector, metrics, clock.clone()));
    let router = web::router(exporter.clone(), config, &options);
    Ok(App {
        router,
        exporter,
        options,
        scrape_timeout: config.collection.timeout,
    })
}

impl App {
    /// Serves on `listener` (see [`web`]: TLS, basic authentication, bounds, reloads of the web
    /// config) until `shutdown` completes, drains the requests in flight, and then stops the
    /// background collection, if any.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let metrics = self.exporter.metrics().clone();
        let served = web::serve(
            listener,
            self.router,
            &self.options,
            metrics,
            self.scrape_timeout,
            shutdown,
        )
        .await;
        self.exporter.stop().await;
        served
    }
}
