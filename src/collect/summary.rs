//! The reduce step: what the metrics show of one cluster's listing.

use std::sync::Arc;
use std::time::Duration;

use super::listing::JobListing;
pub use super::tally::StateCounts;
use crate::atlas::model::ExportJob;

/// What the metrics show of a cluster's jobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSummary {
    /// Jobs that get per-job series, newest first.
    pub shown: Vec<Arc<ExportJob>>,
    /// Jobs per state over every job fetched.
    pub counts: StateCounts,
    /// The largest `finishedAt` among successful jobs.
    pub last_success: Option<f64>,
    /// The newest successful job (largest `finishedAt`) to each export bucket, a job without
    /// `exportBucketId` under its own entry; one per bucket, so few.
    pub newest_successes: Vec<Arc<ExportJob>>,
    /// Jobs skipped because they were malformed.
    pub invalid: u64,
}

impl JobSummary {
    /// The newest successful job of the cluster; to `bucket` only when one is given.
    pub fn newest_success(&self, bucket: Option<&str>) -> Option<&Arc<ExportJob>> {
        let candidates = self.newest_successes.iter();
        let mut to_bucket = candidates.filter(|j| match bucket {
            None => true,
            Some(bucket) => j.export_bucket_id.as_ref().is_some_and(|id| *id == *bucket),
        });
        let first = to_bucket.next()?;
        Some(to_bucket.fold(first, |newest, j| {
            if j.finished_at > newest.finished_at {
                j
            } else {
                newest
            }
        }))
    }
}

/// Which jobs keep per-job series besides the ones that always do.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Jobs created within this keep their series; zero means no age limit.
    pub max_age: Duration,
    /// At most this many of those, newest first; zero means no cap.
    pub max_per_cluster: usize,
}

/// Reduces a cluster's listing to counts per state, the last success, and the jobs that keep
/// per-job series: every job still running (so a stuck job never drops out), the newest job,
/// the jobs named in the config (`pinned`), and the newest `max_per_cluster` of those created
/// within `max_age`. Pure: the same listing at the same `now` gives the same summary.
pub fn summarize(
    listing: &JobListing,
    pinned: &[String],
    now: f64,
    retention: Retention,
) -> JobSummary {
    let jobs = listing.jobs();
    // What does not depend on the time is tallied once per listing (an unchanged listing is
    // the same one, kept): only the choice of recent jobs below runs at every scrape.
    let tally = listing.tally();
    let mut shown: Vec<usize> = Vec::with_capacity(1 + tally.running.len());
    shown.extend(jobs.first().map(|_| 0));
    shown.extend(&tally.running);
    let is_pinned = |job: &ExportJob| pinned.iter().any(|id| job.id == **id);
    if !pinned.is_empty() {
        shown.extend((0..jobs.len()).filter(|&i| is_pinned(&jobs[i])));
    }
    // Newest first, the jobs created within max_age are the first ones.
    let oldest_recent = now - retention.max_age.as_secs_f64();
    let cap = match retention.max_per_cluster {
        0 => usize::MAX,
        cap => cap,
    };
    let recent = (1..jobs.len())
        .take_while(|&i| retention.max_age.is_zero() || jobs[i].created_at >= oldest_recent)
        .filter(|&i| jobs[i].is_terminal() && !is_pinned(&jobs[i]))
        .take(cap);
    shown.extend(recent);
    shown.sort_unstable();
    shown.dedup();

    JobSummary {
        shown: shown.into_iter().map(|i| Arc::clone(&jobs[i])).collect(),
        counts: tally.counts.clone(),
        last_success: tally.last_success,
        newest_successes: tally.newest_successes.clone(),
        invalid: listing.invalid().len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlas::model::{InvalidJob, JobState};

    fn job(id: &str, state: &str, created: f64, finished: Option<f64>) -> Arc<ExportJob> {
        Arc::new(ExportJob {
            id: id.into(),
            state: state.into(),
            created_at: created,
            finished_at: finished,
            snapshot_id: None,
            export_bucket_id: None,
            components: 0,
            state_reason: None,
        })
    }

    const DAY: f64 = 86_400.0;
    const NOW: f64 = 1_800_000_000.0;

    fn ids(jobs: &JobSummary) -> Vec<String> {
        jobs.shown.iter().map(|j| j.id.to_string()).collect()
    }

    #[test]
    fn max_age_drops_old_terminal_jobs_but_keeps_running_newest_and_pinned_ones() {
        let listing = JobListing::new(
            vec![
                job(
                    "old-ok",
                    "Successful",
                    NOW - 30.0 * DAY,
                    Some(NOW - 30.0 * DAY + 60.0),
                ),
                job("old-running", "InProgress", NOW - 20.0 * DAY, None),
                job(
                    "old-pinned",
                    "Failed",
                    NOW - 40.0 * DAY,
                    Some(NOW - 40.0 * DAY + 5.0),
                ),
                job("recent", "Successful", NOW - DAY, Some(NOW - DAY + 100.0)),
                job("newest", "Cancelled", NOW - 60.0, Some(NOW - 30.0)),
            ],
            vec![InvalidJob {
                id: None,
                reason: "x".into(),
            }],
        );
        let retention = Retention {
            max_age: Duration::from_secs(7 * 86_400),
            max_per_cluster: 0,
        };
        let jobs = summarize(&listing, &["old-pinned".into()], NOW, retention);
        assert_eq!(
            ids(&jobs),
            ["newest", "recent", "old-running", "old-pinned"]
        );
        let counts: Vec<_> = jobs.counts.iter().collect();
        assert_eq!(
            counts,
            [
                ("Queued", 0),
                ("InProgress", 1),
                ("Successful", 2),
                ("Failed", 1),
                ("Cancelled", 1)
            ]
        );
        assert_eq!(jobs.last_success, Some(NOW - DAY + 100.0));
        assert_eq!(jobs.invalid, 1);
    }

    #[test]
    fn the_newest_job_wins_ties_by_the_larger_id_and_is_always_shown() {
        let listing = JobListing::new(
            vec![
                job("a", "Successful", NOW - 90.0 * DAY, None),
                job("b", "Successful", NOW - 90.0 * DAY, None),
            ],
            Vec::new(),
        );
        let retention = Retention {
            max_age: Duration::from_secs(86_400),
            max_per_cluster: 0,
        };
        let jobs = summarize(&listing, &[], NOW, retention);
        assert_eq!(ids(&jobs), ["b"]);
        // A successful job without finishedAt does not count as a success time.
        assert_eq!(jobs.last_success, None);
    }

    #[test]
    fn max_per_cluster_caps_only_the_jobs_kept_for_their_age() {
        let mut jobs: Vec<_> = (0..10)
            .map(|i| {
                job(
                    &format!("j{i}"),
                    "Successful",
                    NOW - f64::from(i) * 60.0,
                    Some(NOW),
                )
            })
            .collect();
        jobs.push(job("running", "Queued", NOW - 3600.0, None));
        let retention = Retention {
            max_age: Duration::ZERO,
            max_per_cluster: 3,
        };
        let summary = summarize(
            &JobListing::new(jobs, Vec::new()),
            &["j9".into()],
            NOW,
            retention,
        );
        assert_eq!(ids(&summary), ["j0", "j1", "j2", "j3", "j9", "running"]);
    }

    #[test]
    fn max_age_and_max_per_cluster_together_keep_the_newest_recent_jobs() {
        // Newest first: a running job, then finished jobs a day apart.
        let mut jobs = vec![job("running", "InProgress", NOW - 60.0, None)];
        jobs.extend((0..6).map(|i| {
            let created = NOW - f64::from(i) * DAY - 3600.0;
            job(
                &format!("j{i}"),
                "Successful",
                created,
                Some(created + 60.0),
            )
        }));
        let retention = Retention {
            max_age: Duration::from_secs(4 * 86_400),
            max_per_cluster: 2,
        };
        let listing = JobListing::new(jobs.clone(), Vec::new());
        // The running job is the newest and is shown anyway; the cap takes j0 and j1.
        assert_eq!(
            ids(&summarize(&listing, &[], NOW, retention)),
            ["running", "j0", "j1"]
        );
        // A cap above what max_age allows: j0 to j3 were created within 4 days.
        let wide = Retention {
            max_per_cluster: 10,
            ..retention
        };
        assert_eq!(
            ids(&summarize(&listing, &[], NOW, wide)),
            ["running", "j0", "j1", "j2", "j3"]
        );
        // Pinned jobs do not use up the cap.
        let pinned = ["j0".to_string(), "j5".to_string()];
        assert_eq!(
            ids(&summarize(&listing, &pinned, NOW, retention)),
            ["running", "j0", "j1", "j2", "j5"]
        );
    }

    #[test]
    fn unknown_states_are_counted_as_their_own_value_and_duplicates_once() {
        let listing = JobListing::new(
            vec![
                job("a", "Paused", NOW, None),
                job("a", "Paused", NOW, None),
                job("c", "Paused", NOW - 2.0, None),
                job("d", "Resuming", NOW - 3.0, None),
                job("b", "Queued", NOW - 1.0, None),
            ],
            Vec::new(),
        );
        let jobs = summarize(
            &listing,
            &[],
            NOW,
            Retention {
                max_age: Duration::ZERO,
                max_per_cluster: 0,
            },
        );
        let counts: Vec<_> = jobs.counts.iter().collect();
        assert_eq!(
            counts,
            [
                ("Queued", 1),
                ("InProgress", 0),
                ("Successful", 0),
                ("Failed", 0),
                ("Cancelled", 0),
                ("Paused", 2),
                ("Resuming", 1)
            ]
        );
        assert_eq!(jobs.counts.get(&JobState::new("Paused")), 2);
        assert_eq!(jobs.counts.get(&JobState::new("Stopped")), 0);
        assert_eq!(jobs.counts.get(&JobState::Queued), 1);
        assert_eq!(jobs.counts.total(), 4);
        assert_eq!(ids(&jobs), ["a", "b", "c", "d"]);
    }
}
