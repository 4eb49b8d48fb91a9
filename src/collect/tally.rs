//! What a summary takes from every job of a listing, whatever the time: counts per state, the
//! last success, the newest success to each bucket and the jobs still running. A listing is
//! immutable and an unchanged one is kept from scrape to scrape, so this is tallied once per
//! listing ([`JobListing::tally`](super::listing::JobListing::tally)) rather than once per
//! scrape over every job: at 10,000 clusters of 100 jobs, a million jobs a scrape.

use std::sync::Arc;

use crate::atlas::model::{ExportJob, JobState};

/// The time-free part of a cluster's summary.
#[derive(Debug, Default)]
pub struct Tally {
    /// Jobs per state over every job.
    pub counts: StateCounts,
    /// The largest `finishedAt` among successful jobs.
    pub last_success: Option<f64>,
    /// The newest successful job (largest `finishedAt`) to each export bucket, a job without
    /// `exportBucketId` under its own entry.
    pub newest_successes: Vec<Arc<ExportJob>>,
    /// Positions of the jobs not in a terminal state, in listing order.
    pub running: Vec<usize>,
}

impl Tally {
    /// Tallies `jobs` (a listing's, newest first).
    pub fn of(jobs: &[Arc<ExportJob>]) -> Tally {
        let mut tally = Tally::default();
        for (index, job) in jobs.iter().enumerate() {
            tally.counts.add(&job.state);
            if job.state == JobState::Successful
                && let Some(finished) = job.finished_at
            {
                tally.last_success = Some(tally.last_success.map_or(finished, |l| l.max(finished)));
                let same_bucket =
                    |kept: &Arc<ExportJob>| kept.export_bucket_id == job.export_bucket_id;
                match tally
                    .newest_successes
                    .iter_mut()
                    .find(|kept| same_bucket(kept))
                {
                    Some(kept) if kept.finished_at < Some(finished) => *kept = Arc::clone(job),
                    Some(_) => {}
                    None => tally.newest_successes.push(Arc::clone(job)),
                }
            }
            if !job.is_terminal() {
                tally.running.push(index);
            }
        }
        tally
    }
}

/// Jobs per state: the five documented states in an array indexed by [`JobState::index`], and
/// any state Atlas adds in the order the listing first shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateCounts {
    known: [u64; JobState::KNOWN.len()],
    other: Vec<(Box<str>, u64)>,
}

impl StateCounts {
    /// Counts one more job in `state`.
    pub fn add(&mut self, state: &JobState) {
        match state.index() {
            Some(index) => self.known[index] += 1,
            None => match self.other.iter_mut().find(|(s, _)| **s == *state.as_str()) {
                Some((_, count)) => *count += 1,
                None => self.other.push((state.as_str().into(), 1)),
            },
        }
    }

    /// The jobs in `state`.
    pub fn get(&self, state: &JobState) -> u64 {
        match state.index() {
            Some(index) => self.known[index],
            None => self
                .other
                .iter()
                .find(|(s, _)| **s == *state.as_str())
                .map_or(0, |(_, count)| *count),
        }
    }

    /// Every state with its count: the five documented ones first (0 included), then any new
    /// ones.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let known = JobState::KNOWN.iter().map(JobState::as_str).zip(self.known);
        let other = self.other.iter().map(|(state, count)| (&**state, *count));
        known.chain(other)
    }

    /// Jobs in every state.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, count)| count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::listing::JobListing;

    fn job(id: &str, state: &str, bucket: Option<&str>, finished: Option<f64>) -> Arc<ExportJob> {
        Arc::new(ExportJob {
            id: id.into(),
            state: state.into(),
            created_at: 1_000.0,
            finished_at: finished,
            snapshot_id: None,
            export_bucket_id: bucket.map(Into::into),
            components: 0,
            state_reason: None,
        })
    }

    #[test]
    fn a_listing_is_tallied_once_with_counts_successes_per_bucket_and_running_jobs() {
        let jobs = vec![
            job("a", "InProgress", Some("b1"), None),
            job("b", "Successful", Some("b1"), Some(500.0)),
            job("c", "Successful", Some("b2"), Some(900.0)),
            job("d", "Successful", Some("b1"), Some(700.0)),
            job("e", "Queued", None, None),
            job("f", "Failed", Some("b2"), Some(950.0)),
        ];
        let tally = Tally::of(&jobs);
        let counts: Vec<(&str, u64)> = tally.counts.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            counts,
            [
                ("Queued", 1),
                ("InProgress", 1),
                ("Successful", 3),
                ("Failed", 1)
            ]
        );
        assert_eq!(tally.last_success, Some(900.0));
        let newest: Vec<String> = tally
            .newest_successes
            .iter()
            .map(|j| j.id.to_string())
            .collect();
        assert_eq!(newest, ["d", "c"], "the latest finished to each bucket");
        assert_eq!(tally.running, [0, 4]);

        let listing = JobListing::new(jobs, Vec::new());
        assert!(
            std::ptr::eq(listing.tally(), listing.tally()),
            "the second summary of a listing reuses its tally"
        );
    }
}
