//! Reloading `--web.config.file` while serving. Once a second the web config file and the
//! certificate, key and CA files it names are read and digested; when the digest changes, the
//! file is loaded again and, if it is good, put in force: the new certificate for the handshakes
//! that follow, the new users (with an empty cache of verified passwords) for the requests that
//! follow. A change is loaded once the files are seen unchanged on the next look, so a change
//! is in force within about three seconds. A file that became invalid, or a key that no longer
//! matches its certificate, leaves the last good configuration in force and is logged once; it
//! is tried again every second, so a certificate and key written one after the other are taken
//! as soon as both are there.
//!
//! Polling rather than inotify: one small read a second, and it sees files replaced through
//! symbolic links (Kubernetes secrets) the same as files rewritten in place.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;

use super::basic_auth::CurrentUsers;
use super::config::{self, WebConfig, fingerprint};
use crate::metrics::OwnMetrics;

/// How often the files are looked at: a change is in force within this and one load.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What a reload replaces.
pub(super) struct InForce {
    /// The acceptor's certificate, when serving TLS.
    pub tls: Option<RustlsConfig>,
    /// The users basic authentication checks against.
    pub users: Arc<CurrentUsers>,
}

impl InForce {
    /// Whether `web` can replace what is in force: TLS cannot be turned on or off on a listener
    /// that is serving.
    fn accepts(&self, web: &WebConfig) -> Result<(), String> {
        match (self.tls.is_some(), web.tls().is_some()) {
            (true, false) => Err(
                "tls_server_config was removed: turning TLS off needs a restart; still serving TLS"
                    .to_owned(),
            ),
            (false, true) => Err(
                "tls_server_config was added: turning TLS on needs a restart; still serving plain HTTP"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }

    fn replace_with(&self, web: &WebConfig) {
        if let (Some(acceptor), Some(config)) = (&self.tls, web.tls()) {
            acceptor.reload_from_config(config.clone());
        }
        self.users.replace(web.users().cloned());
    }
}

/// The watching task; dropping this stops it.
pub(super) struct Watcher(JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches `path`, from which `initial` (now in force) was loaded, and puts its changes in force.
pub(super) fn watch(
    path: PathBuf,
    initial: Arc<WebConfig>,
    in_force: InForce,
    metrics: Arc<OwnMetrics>,
) -> Watcher {
    metrics.expose_web_config_reload();
    let record = move |succeeded: bool| match succeeded {
        true => metrics.web_config_reload.succeeded(),
        false => metrics.web_config_reload.failed(),
    };
    record(true);
    Watcher(tokio::spawn(async move {
        let mut sources = sources_of(&path, &initial);
        let mut loaded = match initial.fingerprint {
            Some(loaded) => loaded,
            None => digest(sources.clone()).await,
        };
        let mut last_error: Option<String> = None;
        // A change is loaded once the files look the same twice in a row, so a file caught
        // half-written (an editor truncating it first) is not taken for the new configuration.
        let mut settling = None;
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if last_error.is_none() {
                let now = digest(sources.clone()).await;
                if now == loaded {
                    settling = None;
                    continue;
                }
                if settling != Some(now) {
                    settling = Some(now);
                    continue;
                }
            }
            settling = None;
            let attempt = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || config::load(&path))
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|loaded| loaded.map_err(|error| error.to_string()))
            };
            match attempt.and_then(|web| in_force.accepts(&web).map(|()| web)) {
                Ok(web) => {
                    in_force.replace_with(&web);
                    sources = sources_of(&path, &web);
                    loaded = match web.fingerprint {
                        Some(loaded) => loaded,
                        None => digest(sources.clone()).await,
                    };
                    last_error = None;
                    record(true);
                    tracing::info!(web_config = web.describe(), "web config reloaded");
                }
                Err(error) => {
                    record(false);
                    if last_error.as_deref() != Some(error.as_str()) {
                        tracing::error!(
                            %error,
                            "web config reload failed: the last good configuration stays in use"
                        );
                    }
                    last_error = Some(error);
                }
            }
        }
    }))
}

/// The web config file and the files it names.
fn sources_of(path: &Path, web: &WebConfig) -> Vec<PathBuf> {
    std::iter::once(path.to_owned())
        .chain(web.files.iter().cloned())
        .collect()
}

/// The fingerprint of `paths`, read on the blocking pool.
async fn digest(paths: Vec<PathBuf>) -> u128 {
    let read = tokio::task::spawn_blocking(move || fingerprint(paths.iter().map(PathBuf::as_path)));
    // A read that panicked counts as a change, so a load is tried and says what is wrong.
    read.await.unwrap_or(0)
}
