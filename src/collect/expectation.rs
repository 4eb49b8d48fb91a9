//! What is expected of a cluster's exports, and when its next one is due: one pure function,
//! [`assess`], run once a collection knows the cluster's jobs, schedule and details.
//!
//! A cluster is expected to export when auto-export is on (every schedule period) or when the
//! config says so (`expect_export_every`); a value on the cluster or its target wins over the
//! schedule, the cluster's over the target's, and `0` there removes the configured expectation
//! (the schedule still counts); `export_jobs.expect_export_every` is a default for clusters
//! without a schedule. Paused clusters and clusters watched through `export_job_ids` are expected
//! nothing. The next export is due one interval after the success that counts: with auto-export,
//! the newest to the schedule's bucket, or, when none reached it (the schedule just moved), the
//! newest to any bucket; with a configured expectation, the newest to any bucket. Without any
//! success it counts from the cluster's creation, or from when the exporter first saw it.

use std::sync::Arc;
use std::time::Duration;

use super::summary::JobSummary;
use crate::atlas::model::{BackupSchedule, ExportJob};
use crate::config::{Config, Target};

/// Where a cluster's expected interval comes from (the `source` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The backup schedule's auto-export frequency.
    AutoExport,
    /// `expect_export_every` in the config.
    Config,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::AutoExport => "auto_export",
            Source::Config => "config",
        }
    }
}

/// What the next due time counts from (the `basis` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The newest successful export to the auto-export schedule's bucket.
    ScheduleBucket,
    /// The newest successful export to any bucket.
    AnyBucket,
    /// The cluster's creation (`createDate`), or when the exporter first saw it: no success yet.
    Created,
}

impl Basis {
    pub fn label(self) -> &'static str {
        match self {
            Basis::ScheduleBucket => "schedule_bucket",
            Basis::AnyBucket => "any_bucket",
            Basis::Created => "created",
        }
    }
}

/// What the config says of one watched cluster's exports, before Atlas has its say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConfiguredExpectation {
    /// The cluster entry's `expect_export_every`, else its target's; `Some(ZERO)`: removed.
    pub explicit: Option<Duration>,
    /// `export_jobs.expect_export_every`: for clusters without an auto-export schedule; zero: none.
    pub default: Duration,
}

impl ConfiguredExpectation {
    /// What a target's config expects of its clusters (discovered ones included).
    pub fn of_target(config: &Config, target: &Target) -> ConfiguredExpectation {
        ConfiguredExpectation {
            explicit: target.expect_export_every,
            default: config.export_jobs.expect_export_every,
        }
    }
}

/// A cluster's expected interval between exports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expectation {
    pub interval_seconds: f64,
    pub source: Source,
}

/// When the next export is due, and what that counts from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Due {
    /// Unix seconds.
    pub at: f64,
    pub basis: Basis,
}

/// What [`assess`] needs to know of one cluster.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub configured: ConfiguredExpectation,
    /// Watched through `export_job_ids` only: its jobs are not its whole history.
    pub by_job_ids: bool,
    /// Its backup schedule, when known.
    pub schedule: Option<&'a BackupSchedule>,
    /// Atlas says the cluster is paused.
    pub paused: bool,
    /// `createDate` as Unix seconds, when known.
    pub created: Option<f64>,
    /// When this exporter first saw the cluster, as Unix seconds.
    pub first_seen: f64,
    /// Its jobs, when this collection read them.
    pub jobs: Option<&'a JobSummary>,
}

/// What is expected of one cluster and what counts toward it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assessment {
    /// `None`: the cluster never pages for the age of its exports.
    pub expectation: Option<Expectation>,
    /// With an expectation and the jobs read.
    pub next_due: Option<Due>,
    /// The success that counts (with or without an expectation): its snapshot is the one
    /// `last_success_snapshot_timestamp_seconds` shows.
    pub counted: Option<Arc<ExportJob>>,
    /// `finishedAt` of the newest success to the auto-export bucket, while auto-export is on.
    pub schedule_success: Option<f64>,
}

impl Assessment {
    /// The snapshot the success that counts holds, and whether it is a sharded cluster's (the
    /// lookup of its time differs): what `last_success_snapshot_timestamp_seconds` shows.
    pub fn counted_snapshot(&self) -> Option<(String, bool)> {
        let job = self.counted.as_ref()?;
        Some((job.snapshot_id.as_ref()?.to_string(), job.components > 0))
    }
}

/// The expected interval of a cluster, if any (see the module's documentation).
pub fn expectation(facts: &Facts) -> Option<Expectation> {
    if facts.by_job_ids || facts.paused {
        return None;
    }
    let auto_export = facts
        .schedule
        .filter(|s| s.auto_export)
        .and_then(BackupSchedule::interval_seconds)
        .map(|seconds| Expectation {
            interval_seconds: seconds as f64,
            source: Source::AutoExport,
        });
    let configured = |every: Duration| {
        (!every.is_zero()).then_some(Expectation {
            interval_seconds: every.as_secs_f64(),
            source: Source::Config,
        })
    };
    match facts.configured.explicit {
        Some(every) => configured(every).or(auto_export),
        None => auto_export.or_else(|| configured(facts.configured.default)),
    }
}

/// Assesses one cluster: its expectation, the success that counts, and when it is due next.
/// Pure: the same facts give the same assessment.
pub fn assess(facts: &Facts) -> Assessment {
    let expectation = expectation(facts);
    let schedule_bucket = facts
        .schedule
        .filter(|s| s.auto_export)
        .and_then(|s| s.bucket_id.as_deref());
    let Some(jobs) = facts.jobs else {
        return Assessment {
            expectation,
            ..Assessment::default()
        };
    };
    // A configured expectation counts exports to any bucket; otherwise the schedule's comes first.
    let preferred = match expectation {
        Some(Expectation {
            source: Source::Config,
            ..
        }) => None,
        _ => schedule_bucket,
    };
    let counted = preferred
        .and_then(|bucket| jobs.newest_success(Some(bucket)))
        .map(|job| (job, Basis::ScheduleBucket))
        .or_else(|| jobs.newest_success(None).map(|job| (job, Basis::AnyBucket)))
        .and_then(|(job, basis)| Some((job, job.finished_at?, basis)));
    let next_due = expectation.map(|e| {
        let (from, basis) = match counted {
            Some((_, finished, basis)) => (finished, basis),
            None => (facts.created.unwrap_or(facts.first_seen), Basis::Created),
        };
        Due {
            at: from + e.interval_seconds,
            basis,
        }
    });
    let schedule_success = schedule_bucket
        .and_then(|bucket| jobs.newest_success(Some(bucket)))
        .and_then(|job| job.finished_at);
    Assessment {
        expectation,
        next_due,
        counted: counted.map(|(job, _, _)| Arc::clone(job)),
        schedule_success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;
    const DAY: f64 = 86_400.0;
    const MONTH: f64 = 2_678_400.0;
    const OLD: &str = "0123456789abcdef01234567";
    const NEW: &str = "89abcdef0123456789abcdef";

    fn success(id: &str, bucket: &str, finished: f64) -> Arc<ExportJob> {
        Arc::new(ExportJob {
            id: id.into(),
            state: "Successful".into(),
            created_at: finished - 600.0,
            finished_at: Some(finished),
            snapshot_id: Some(format!("snap-{id}").into()),
            export_bucket_id: Some(bucket.into()),
            components: 0,
            state_reason: None,
        })
    }

    fn jobs(successes: &[Arc<ExportJob>]) -> JobSummary {
        JobSummary {
            last_success: successes
                .iter()
                .filter_map(|j| j.finished_at)
                .reduce(f64::max),
            newest_successes: successes.to_vec(),
            ..JobSummary::default()
        }
    }

    fn monthly(bucket: &str) -> BackupSchedule {
        BackupSchedule {
            auto_export: true,
            bucket_id: Some(bucket.into()),
            frequency_type: Some("monthly".into()),
        }
    }

    fn facts<'a>(schedule: Option<&'a BackupSchedule>, jobs: &'a JobSummary) -> Facts<'a> {
        Facts {
            configured: ConfiguredExpectation::default(),
            by_job_ids: false,
            schedule,
            paused: false,
            created: Some(NOW - 400.0 * DAY),
            first_seen: NOW - DAY,
            jobs: Some(jobs),
        }
    }

    fn every(days: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(days * DAY))
    }

    #[test]
    fn auto_export_counts_the_newest_export_to_the_schedules_bucket() {
        let schedule = monthly(OLD);
        let to_old = success("a", OLD, NOW - 40.0 * DAY);
        let to_other = success("b", NEW, NOW - 2.0 * DAY);
        let listed = jobs(&[to_old.clone(), to_other]);
        let assessed = assess(&facts(Some(&schedule), &listed));
        assert_eq!(
            assessed.expectation,
            Some(Expectation {
                interval_seconds: MONTH,
                source: Source::AutoExport
            })
        );
        assert_eq!(
            assessed.next_due,
            Some(Due {
                at: NOW - 40.0 * DAY + MONTH,
                basis: Basis::ScheduleBucket
            })
        );
        assert_eq!(assessed.counted, Some(to_old));
        assert_eq!(assessed.schedule_success, Some(NOW - 40.0 * DAY));
    }

    #[test]
    fn the_snapshot_looked_up_is_the_one_the_counted_success_holds() {
        let schedule = monthly(OLD);
        let to_old = success("a", OLD, NOW - 40.0 * DAY);
        let mut sharded = (*success("b", NEW, NOW - 2.0 * DAY)).clone();
        sharded.components = 3;
        let listed = jobs(&[to_old, Arc::new(sharded)]);
        let assessed = assess(&facts(Some(&schedule), &listed));
        assert_eq!(assessed.counted_snapshot(), Some(("snap-a".into(), false)));
        let assessed = assess(&facts(None, &listed));
        assert_eq!(assessed.counted_snapshot(), Some(("snap-b".into(), true)));
        assert_eq!(assess(&facts(None, &jobs(&[]))).counted_snapshot(), None);
    }

    #[test]
    fn a_schedule_moved_to_a_new_bucket_counts_the_newest_export_to_any_bucket() {
        let schedule = monthly(NEW);
        let to_old = success("a", OLD, NOW - 3.0 * DAY);
        let listed = jobs(std::slice::from_ref(&to_old));
        let assessed = assess(&facts(Some(&schedule), &listed));
        assert_eq!(
            assessed.next_due,
            Some(Due {
                at: NOW - 3.0 * DAY + MONTH,
                basis: Basis::AnyBucket
            })
        );
        assert_eq!(assessed.counted, Some(to_old));
        assert_eq!(assessed.schedule_success, None);
    }

    #[test]
    fn without_a_success_the_due_time_counts_from_the_creation_or_the_first_sight() {
        let schedule = monthly(OLD);
        let nothing = jobs(&[]);
        let mut cluster = facts(Some(&schedule), &nothing);
        let due = |facts: &Facts| assess(facts).next_due;
        assert_eq!(
            due(&cluster),
            Some(Due {
                at: NOW - 400.0 * DAY + MONTH,
                basis: Basis::Created
            })
        );
        cluster.created = None;
        assert_eq!(
            due(&cluster),
            Some(Due {
                at: NOW - DAY + MONTH,
                basis: Basis::Created
            })
        );
        // Jobs not read in this collection: nothing is known of the successes.
        cluster.jobs = None;
        assert_eq!(due(&cluster), None);
        assert!(assess(&cluster).expectation.is_some());
    }

    #[test]
    fn a_configured_expectation_wins_over_the_schedule_and_counts_any_bucket() {
        let schedule = monthly(OLD);
        let to_old = success("a", OLD, NOW - 10.0 * DAY);
        let to_other = success("b", NEW, NOW - 0.5 * DAY);
        let listed = jobs(&[to_old, to_other.clone()]);
        let mut cluster = facts(Some(&schedule), &listed);
        cluster.configured.explicit = every(1.0);
        let assessed = assess(&cluster);
        assert_eq!(
            assessed.expectation,
            Some(Expectation {
                interval_seconds: DAY,
                source: Source::Config
            })
        );
        assert_eq!(
            assessed.next_due,
            Some(Due {
                at: NOW + 0.5 * DAY,
                basis: Basis::AnyBucket
            })
        );
        assert_eq!(assessed.counted, Some(to_other));
        // The schedule's own last success is still shown.
        assert_eq!(assessed.schedule_success, Some(NOW - 10.0 * DAY));
    }

    #[test]
    fn zero_removes_the_configured_expectation_but_not_the_schedule() {
        let schedule = monthly(OLD);
        let listed = jobs(&[success("a", OLD, NOW - DAY)]);
        let mut cluster = facts(Some(&schedule), &listed);
        cluster.configured = ConfiguredExpectation {
            explicit: Some(Duration::ZERO),
            default: Duration::from_secs(3600),
        };
        assert_eq!(
            expectation(&cluster).map(|e| e.source),
            Some(Source::AutoExport)
        );
        cluster.schedule = None;
        assert_eq!(expectation(&cluster), None, "the default is removed too");
    }

    #[test]
    fn the_default_applies_only_without_an_auto_export_schedule() {
        let listed = jobs(&[success("a", OLD, NOW - DAY)]);
        let default = ConfiguredExpectation {
            explicit: None,
            default: Duration::from_secs(7 * 86_400),
        };
        let schedule = monthly(OLD);
        let mut cluster = facts(Some(&schedule), &listed);
        cluster.configured = default;
        assert_eq!(
            expectation(&cluster).map(|e| e.interval_seconds),
            Some(MONTH)
        );
        let off = BackupSchedule {
            auto_export: false,
            ..monthly(OLD)
        };
        cluster.schedule = Some(&off);
        assert_eq!(
            expectation(&cluster),
            Some(Expectation {
                interval_seconds: 7.0 * DAY,
                source: Source::Config
            })
        );
        // A frequency the exporter does not know is no schedule to expect by.
        let unknown = BackupSchedule {
            frequency_type: Some("hourly".into()),
            ..monthly(OLD)
        };
        cluster.schedule = Some(&unknown);
        assert_eq!(
            expectation(&cluster).map(|e| e.source),
            Some(Source::Config)
        );
        cluster.configured.default = Duration::ZERO;
        assert_eq!(expectation(&cluster), None);
    }

    #[test]
    fn paused_clusters_and_clusters_watched_by_job_ids_have_no_expectation() {
        let schedule = monthly(OLD);
        let to_old = success("a", OLD, NOW - 90.0 * DAY);
        let listed = jobs(std::slice::from_ref(&to_old));
        let mut cluster = facts(Some(&schedule), &listed);
        cluster.configured.explicit = every(1.0);
        cluster.paused = true;
        let assessed = assess(&cluster);
        assert_eq!((assessed.expectation, assessed.next_due), (None, None));
        // The success that counts and the schedule's are still known.
        assert_eq!(assessed.counted, Some(to_old));
        assert_eq!(assessed.schedule_success, Some(NOW - 90.0 * DAY));
        cluster.paused = false;
        cluster.by_job_ids = true;
        assert_eq!(assess(&cluster).expectation, None);
    }

    #[test]
    fn without_auto_export_or_config_nothing_is_expected() {
        let listed = jobs(&[success("a", OLD, NOW - 300.0 * DAY)]);
        let assessed = assess(&facts(None, &listed));
        assert_eq!((assessed.expectation, assessed.next_due), (None, None));
        assert_eq!(assessed.schedule_success, None);
    }
}
