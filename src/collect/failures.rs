//! What a collection logs about the jobs it found: malformed jobs on every scrape, failed jobs
//! once each, and clusters that could not be fetched.

use std::collections::HashSet;
use std::sync::Mutex;

use super::listing::{JobListing, ListingOutcome};
use super::{WatchedCluster, lock};
use crate::atlas::AtlasError;

/// Failed jobs whose failure was logged, remembered so each is logged once; past this many the
/// memory starts over (and a few lines repeat).
const MAX_FAILURES_REMEMBERED: usize = 10_000;

/// The failed jobs already logged, so that each failure is worth one line, not one per scrape.
#[derive(Default)]
pub(super) struct FailureLog {
    logged: Mutex<HashSet<String>>,
}

impl FailureLog {
    /// Logs the malformed jobs of a listing (every time: as long as Atlas sends them) and the
    /// failed jobs not logged yet.
    pub(super) fn log_listing(&self, cluster: &WatchedCluster, listed: &ListingOutcome) {
        log_invalid(cluster, &listed.listing);
        // The failures of an unchanged listing were logged when it was new.
        if !listed.unchanged {
            self.log_failures(cluster, &listed.listing);
        }
    }

    fn log_failures(&self, cluster: &WatchedCluster, listing: &JobListing) {
        let (group_id, cluster_name) = (&cluster.group_id, &cluster.cluster_name);
        let mut logged = lock(&self.logged);
        for job in listing.jobs() {
            let Some(reason) = &job.state_reason else {
                continue;
            };
            // The memory of logged failures is bounded.
            if logged.len() >= MAX_FAILURES_REMEMBERED {
                logged.clear();
            }
            if logged.insert(format!("{group_id}/{cluster_name}/{}", job.id)) {
                tracing::warn!(
                    group_id,
                    cluster_name,
                    export_job_id = %job.id,
                    state = %job.state,
                    error_code = %reason.error_code,
                    detail = %reason.message,
                    "export job reports a failure"
                );
            }
        }
    }
}

fn log_invalid(cluster: &WatchedCluster, listing: &JobListing) {
    for invalid in listing.invalid() {
        tracing::warn!(
            group_id = cluster.group_id.as_str(),
            cluster_name = cluster.cluster_name.as_str(),
            export_job_id = invalid.id.as_deref().unwrap_or("(none)"),
            reason = %invalid.reason,
            "skipping a malformed export job"
        );
    }
}

/// Logs why a cluster could not be fetched.
pub(super) fn log_fetch_error(cluster: &WatchedCluster, error: &AtlasError) {
    if let AtlasError::RateLimited { .. } = error {
        // The client said so once for the window; once per cluster would drown it.
        tracing::debug!(
            group_id = cluster.group_id.as_str(),
            cluster_name = cluster.cluster_name.as_str(),
            %error,
            "collecting export jobs held back"
        );
        return;
    }
    tracing::warn!(
        group_id = cluster.group_id.as_str(),
        cluster_name = cluster.cluster_name.as_str(),
        kind = error.kind(),
        %error,
        "collecting export jobs failed"
    );
}
