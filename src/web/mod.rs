//! The exporter's own HTTP endpoint: everything between a socket and the [`Exporter`]'s answer.
//!
//! - `server`: binds `--web.listen-address`, serves with TLS, basic authentication and bounds on
//!   every request, and on a signal drains and shuts down.
//! - `routes`: the scrape, `/probe`, `/sd`, the landing page and `/-/healthy`.
//! - `health`: `/-/ready` and the life cycle behind it (serving, draining).
//! - `reload`: watches `--web.config.file` and puts its changes in force while serving.
//! - [`config`]: the `--web.config.file` format (exporter-toolkit's), read into a ready
//!   [`WebConfig`].
//! - [`basic_auth`]: checking passwords against the bcrypt hashes, with a cache.
//!
//! [`Exporter`]: crate::exporter::Exporter

pub mod basic_auth;
pub mod config;
mod health;
mod reload;
mod routes;
mod server;

pub use config::WebConfig;
pub use health::{HEALTH_PATHS, HEALTHY, READY, is_health_path};
pub(crate) use routes::router;
pub use routes::{TEXT_FORMAT, check_external_url, check_telemetry_path};
pub(crate) use server::serve;
pub use server::{MAX_REQUEST_BODY, MAX_REQUEST_HEAD, bind, shutdown_signal};
