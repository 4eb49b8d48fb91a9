//! A cluster the exporter watches, as every step of a collection knows it: its project, name,
//! target labels and what the config expects of it.

use std::sync::{Arc, Mutex, MutexGuard};

use super::expectation::ConfiguredExpectation;

/// Static labels of a target, shared by all its series.
pub type Labels = Arc<[(String, String)]>;

/// A cluster the exporter watches, named in the config or discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedCluster {
    pub group_id: String,
    pub cluster_name: String,
    /// The labels the config gives the cluster's target.
    pub labels: Labels,
    /// `Some`: only these export jobs, fetched one by one (the config's `export_job_ids`).
    /// `None`: every job of the cluster, listed.
    pub job_ids: Option<Arc<[String]>>,
    /// What the config expects of the cluster's exports.
    pub expect: ConfiguredExpectation,
}

impl WatchedCluster {
    /// `(group_id, cluster_name)`: what tells watched clusters apart, and sorts them.
    pub fn key(&self) -> (&str, &str) {
        (&self.group_id, &self.cluster_name)
    }
}

/// Locks what a step keeps per watched cluster or project; the data stays consistent even if a
/// holder panicked.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
