//! `--atlas.check`: one real collection against Atlas, as the exporter makes it (the same
//! collector, client, rate limiter and retries, everything the config asks for), told back as
//! one line per project and per cluster: `ok` and what was found, or what failed and the fix.
//!
//! The client tells a [`CallLog`] how each call ended; `diagnosis` turns each ending into
//! an operator's terms, by Atlas's `errorCode`; `report` puts them on the lines of the
//! projects and clusters they were about.

mod diagnosis;
mod report;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use diagnosis::{CredentialKind, Note, Problem, Verdict, diagnose};
pub use report::{Line, Record, Report, Status};

use crate::atlas::{AtlasClient, AtlasError, CallObserver, CallOutcome, Deadline};
use crate::clock::Clock;
use crate::collect::Collector;
use crate::config::{Config, Credentials};
use crate::metrics::OwnMetrics;

/// The longest time kept back from `collection.timeout` for the collection to reduce what it
/// read and the report to be written: a quarter of the timeout, at most this.
const MAX_MARGIN: Duration = Duration::from_secs(1);

/// Makes one collection of everything `config` asks for with `credentials`, and reports how
/// each project and cluster went. Ends within `collection.timeout`.
pub async fn run(config: &Config, credentials: Credentials) -> Result<Report, AtlasError> {
    let timeout = config.collection.timeout;
    let started = tokio::time::Instant::now();
    let kind = match &credentials {
        Credentials::ApiKey { .. } => CredentialKind::ApiKey,
        Credentials::ServiceAccount { .. } => CredentialKind::ServiceAccount,
    };
    let metrics = OwnMetrics::new();
    let requests = metrics.api_requests.clone();
    let clock = Clock::real();
    let client = AtlasClient::new(&config.atlas, credentials, requests, clock.clone())?;
    let calls = Arc::new(CallLog::new(kind));
    // A client just built has no observer yet.
    let _ = client.set_observer(calls.clone());
    let collector = Arc::new(Collector::new(config, client, metrics.full_listings, clock));
    // The calls end by the deadline; the margin after it is for the collection to reduce
    // what it read, and the bound after that holds whatever happens.
    let margin = (timeout / 4).min(MAX_MARGIN);
    let deadline = Deadline::after(timeout - margin);
    let collection = tokio::time::timeout_at(started + timeout, collector.collect(deadline))
        .await
        .ok();
    Ok(Report::build(config, collection.as_ref(), &calls.records()))
}

/// How each call of a collection ended, diagnosed as it ends.
pub struct CallLog {
    credential: CredentialKind,
    records: Mutex<Vec<Record>>,
}

impl CallLog {
    pub fn new(credential: CredentialKind) -> CallLog {
        CallLog {
            credential,
            records: Mutex::default(),
        }
    }

    /// The calls that have ended so far, in the order they ended.
    pub fn records(&self) -> Vec<Record> {
        lock(&self.records).clone()
    }
}

impl CallObserver for CallLog {
    fn observe(&self, call: CallOutcome<'_>) {
        let verdict = diagnose(call.path, call.result, self.credential);
        lock(&self.records).push(Record {
            endpoint: call.path.endpoint(),
            group_id: call.path.group_id().map(str::to_owned),
            cluster: call.path.cluster().map(str::to_owned),
            verdict,
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
