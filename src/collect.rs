//! One collection: plan the Atlas calls from the config, run them concurrently, and reduce each
//! cluster's export jobs to what the metrics show. Nothing here outlives a collection except the
//! discovered cluster lists (reused for `discovery.interval`) and the set of failures already
//! logged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;

use crate::atlas::model::{ExportJob, KNOWN_STATES};
use crate::atlas::{AtlasClient, AtlasError, Deadline, JobLister, JobListing, Listed};
use crate::config::{Config, Target};

/// Failed jobs whose failure was logged, remembered so each is logged once; past this many the
/// memory starts over (and a few lines repeat).
const MAX_FAILURES_REMEMBERED: usize = 10_000;

/// Static labels of a target, shared by all its series.
pub type Labels = Arc<[(String, String)]>;

/// What one collection found.
#[derive(Debug, Default)]
pub struct Collection {
    /// One report per cluster, sorted by project and cluster name.
    pub clusters: Vec<ClusterReport>,
    /// One report per discovery listing made or reused in this collection.
    pub discoveries: Vec<DiscoveryReport>,
}

/// Whether listing the clusters of a project (or of every project, `group_id` None) worked.
#[derive(Debug)]
pub struct DiscoveryReport {
    pub group_id: Option<String>,
    pub labels: Labels,
    pub up: bool,
}

/// A cluster the exporter watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedCluster {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
}

/// One cluster's outcome.
#[derive(Debug)]
pub struct ClusterReport {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
    /// Seconds spent fetching this cluster.
    pub duration: f64,
    /// When the cluster was collected, as Unix seconds.
    pub collected_at: f64,
    /// `None` when the cluster failed (`up 0`).
    pub jobs: Option<ClusterJobs>,
}

/// A cluster's jobs, reduced to what the metrics show.
#[derive(Debug, Default, PartialEq)]
pub struct ClusterJobs {
    /// Jobs that get per-job series, newest first.
    pub shown: Vec<Arc<ExportJob>>,
    /// Jobs per state over every job fetched: the five known states first, then any new ones.
    pub counts: Vec<(String, u64)>,
    /// The largest `finishedAt` among successful jobs.
    pub last_success: Option<f64>,
    /// Jobs skipped because they were malformed.
    pub invalid: u64,
}

/// Which jobs keep per-job series besides the ones that always do.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Jobs created within this keep their series; zero means no age limit.
    pub max_age: Duration,
    /// At most this many of those, newest first; zero means no cap.
    pub max_per_cluster: usize,
}

/// Runs collections. Shared by every scrape.
pub struct Collector {
    client: AtlasClient,
    targets: Vec<TargetPlan>,
    retention: Retention,
    max_pages: u32,
    discovery_interval: Duration,
    all_projects: bool,
    discovered: Mutex<HashMap<Option<String>, Discovered>>,
    /// Whether each project's last cluster listing worked (`None`: every project), for
    /// `/metrics` in `/probe` set-ups.
    discovery_up: Mutex<HashMap<Option<String>, bool>>,
    /// Lists each cluster's jobs, incrementally where its last listing allows.
    listings: JobLister,
    failures_logged: Mutex<HashSet<String>>,
}

struct TargetPlan {
    group_id: String,
    labels: Labels,
    clusters: Option<Vec<ClusterPlan>>,
}

#[derive(Clone)]
struct ClusterPlan {
    name: String,
    job_ids: Option<Vec<String>>,
}

#[derive(Clone)]
struct Discovered {
    at: Instant,
    clusters: Vec<(String, String)>,
}

/// A cluster to fetch in this collection.
struct Planned {
    group_id: String,
    labels: Labels,
    cluster: ClusterPlan,
}

impl Collector {
    /// Plans the collections the config asks for.
    pub fn new(config: &Config, client: AtlasClient) -> Collector {
        Collector {
            listings: JobLister::new(client.clone(), config.export_jobs.max_pages),
            client,
            targets: config.targets.iter().map(TargetPlan::from).collect(),
            retention: Retention {
                max_age: config.export_jobs.max_age,
                max_per_cluster: config.export_jobs.max_per_cluster,
            },
            max_pages: config.export_jobs.max_pages,
            discovery_interval: config.discovery.interval,
            all_projects: config.discovery.all_projects,
            discovered: Mutex::default(),
            discovery_up: Mutex::default(),
            failures_logged: Mutex::default(),
        }
    }

    /// Collects every configured and discovered cluster, all concurrently, within `deadline`.
    pub async fn collect(self: &Arc<Self>, deadline: Deadline) -> Collection {
        // Configured clusters are fetched while discovery runs; discovered ones right after.
        let (mut clusters, (discoveries, discovered)) =
            tokio::join!(self.fetch_all(self.configured(), deadline), async {
                let (reports, planned) = self.discovered(deadline).await;
                (reports, self.fetch_all(planned, deadline).await)
            });
        clusters.extend(discovered);
        clusters
            .sort_by(|a, b| (&a.group_id, &a.cluster_name).cmp(&(&b.group_id, &b.cluster_name)));
        self.forget_unwatched(clusters.iter().map(|c| (&c.group_id, &c.cluster_name)));
        Collection {
            clusters,
            discoveries,
        }
    }

    /// Every cluster the exporter watches, configured or discovered (discovering if the lists
    /// are older than `discovery.interval`), sorted by project and name.
    pub async fn clusters(&self, deadline: Deadline) -> Vec<WatchedCluster> {
        let mut planned = self.configured();
        planned.extend(self.discovered(deadline).await.1);
        let mut clusters: Vec<WatchedCluster> = planned
            .into_iter()
            .map(|p| WatchedCluster {
                group_id: p.group_id,
                cluster_name: p.cluster.name,
                labels: p.labels,
            })
            .collect();
        clusters
            .sort_by(|a, b| (&a.group_id, &a.cluster_name).cmp(&(&b.group_id, &b.cluster_name)));
        // With `/probe`, this is where clusters are seen to go (from `/sd`).
        self.forget_unwatched(clusters.iter().map(|c| (&c.group_id, &c.cluster_name)));
        clusters
    }

    /// Forgets the listings kept for clusters no longer watched (deleted, or gone from
    /// discovery).
    fn forget_unwatched<'a>(&self, watched: impl Iterator<Item = (&'a String, &'a String)>) {
        let watched: HashSet<(&str, &str)> =
            watched.map(|(g, c)| (g.as_str(), c.as_str())).collect();
        self.listings
            .forget_all_but(|group_id, cluster| watched.contains(&(group_id, cluster)));
    }

    /// Collects one cluster, if the exporter watches it (for `/probe`).
    pub async fn collect_cluster(
        &self,
        group_id: &str,
        cluster_name: &str,
        deadline: Deadline,
    ) -> Option<Collection> {
        let is_it = |p: &Planned| p.group_id == group_id && p.cluster.name == cluster_name;
        let planned = match self.configured().into_iter().find(is_it) {
            Some(planned) => planned,
            None => self.discovered(deadline).await.1.into_iter().find(is_it)?,
        };
        Some(Collection {
            clusters: vec![self.fetch_cluster(planned, deadline).await],
            discoveries: Vec::new(),
        })
    }

    /// The clusters named in the config.
    fn configured(&self) -> Vec<Planned> {
        self.targets
            .iter()
            .flat_map(|target| {
                target.clusters.iter().flatten().map(|cluster| Planned {
                    group_id: target.group_id.clone(),
                    labels: target.labels.clone(),
                    cluster: cluster.clone(),
                })
            })
            .collect()
    }

    /// The clusters found by discovery that the config does not name, with a report per listing.
    async fn discovered(&self, deadline: Deadline) -> (Vec<DiscoveryReport>, Vec<Planned>) {
        let projects = self.targets.iter().filter(|t| t.clusters.is_none());
        let mut found = join_all(
            projects.map(|t| self.discover(Some(&t.group_id), t.labels.clone(), deadline)),
        )
        .await;
        if self.all_projects {
            found.push(self.discover(None, Labels::from([]), deadline).await);
        }
        let mut seen: HashSet<(String, String)> = self
            .configured()
            .into_iter()
            .map(|p| (p.group_id, p.cluster.name))
            .collect();
        let mut planned = Vec::new();
        let mut reports = Vec::new();
        for (report, clusters) in found {
            for (group_id, name) in clusters {
                if seen.insert((group_id.clone(), name.clone())) {
                    // A project that is also a target keeps that target's labels.
                    let labels = self
                        .targets
                        .iter()
                        .find(|t| t.group_id == group_id)
                        .map_or_else(|| report.labels.clone(), |t| t.labels.clone());
                    planned.push(Planned {
                        group_id,
                        labels,
                        cluster: ClusterPlan {
                            name,
                            job_ids: None,
                        },
                    });
                }
            }
            reports.push(report);
        }
        (reports, planned)
    }

    /// Lists the clusters of one project (or of every project when `group_id` is None), reusing
    /// a list younger than `discovery.interval`, and falling back to the last list that worked.
    async fn discover(
        &self,
        group_id: Option<&str>,
        labels: Labels,
        deadline: Deadline,
    ) -> (DiscoveryReport, Vec<(String, String)>) {
        let key = group_id.map(str::to_owned);
        let cached = lock(&self.discovered).get(&key).cloned();
        if let Some(cached) = &cached
            && !self.discovery_interval.is_zero()
            && cached.at.elapsed() < self.discovery_interval
        {
            let report = DiscoveryReport {
                group_id: key,
                labels,
                up: true,
            };
            return (report, cached.clusters.clone());
        }
        let listed = match group_id {
            Some(group_id) => self
                .client
                .list_clusters(group_id, self.max_pages, deadline)
                .await
                .map(|names| {
                    names
                        .into_iter()
                        .map(|name| (group_id.to_owned(), name))
                        .collect::<Vec<_>>()
                }),
            None => self
                .client
                .list_all_clusters(self.max_pages, deadline)
                .await
                .map(|projects| {
                    projects
                        .into_iter()
                        .flat_map(|p| {
                            let group_id = p.group_id;
                            p.clusters
                                .into_iter()
                                .map(move |c| (group_id.clone(), c.name))
                        })
                        .collect()
                }),
        };
        let up = listed.is_ok();
        let clusters = match listed {
            Ok(clusters) => {
                lock(&self.discovered).insert(
                    key.clone(),
                    Discovered {
                        at: Instant::now(),
                        clusters: clusters.clone(),
                    },
                );
                clusters
            }
            Err(error) => {
                let reused = cached.map(|c| c.clusters).unwrap_or_default();
                tracing::warn!(
                    group_id = key.as_deref().unwrap_or("*"),
                    %error,
                    reused_clusters = reused.len(),
                    "cluster discovery failed; using the last list that worked"
                );
                reused
            }
        };
        lock(&self.discovery_up).insert(key.clone(), up);
        let report = DiscoveryReport {
            group_id: key,
            labels,
            up,
        };
        (report, clusters)
    }

    /// How the last discovery of each project went, without calling Atlas: `/metrics` shows it
    /// when the clusters are scraped through `/probe` (whose `/sd` and probes discover).
    pub fn last_discoveries(&self) -> Vec<DiscoveryReport> {
        let up = lock(&self.discovery_up);
        let projects = self
            .targets
            .iter()
            .filter(|t| t.clusters.is_none())
            .map(|t| (Some(t.group_id.clone()), t.labels.clone()));
        let every = self.all_projects.then(|| (None, Labels::from([])));
        projects
            .chain(every)
            .filter_map(|(group_id, labels)| {
                let up = *up.get(&group_id)?;
                Some(DiscoveryReport {
                    group_id,
                    labels,
                    up,
                })
            })
            .collect()
    }

    /// Fetches clusters concurrently, each in a task of its own so that parsing and reducing
    /// big listings use every core.
    async fn fetch_all(
        self: &Arc<Self>,
        planned: Vec<Planned>,
        deadline: Deadline,
    ) -> Vec<ClusterReport> {
        let tasks = planned.into_iter().map(|planned| {
            let this = self.clone();
            let (group_id, cluster_name, labels) = (
                planned.group_id.clone(),
                planned.cluster.name.clone(),
                planned.labels.clone(),
            );
            let task = tokio::spawn(async move { this.fetch_cluster(planned, deadline).await });
            async move {
                task.await.unwrap_or_else(|error| {
                    tracing::error!(group_id, cluster_name, %error, "collecting a cluster panicked");
                    ClusterReport {
                        group_id,
                        cluster_name,
                        labels,
                        duration: 0.0,
                        collected_at: unix_now(),
                        jobs: None,
                    }
                })
            }
        });
        join_all(tasks).await
    }

    async fn fetch_cluster(&self, planned: Planned, deadline: Deadline) -> ClusterReport {
        let started = Instant::now();
        let Planned {
            group_id,
            labels,
            cluster,
        } = planned;
        let fetched = match &cluster.job_ids {
            None => self.listings.list(&group_id, &cluster.name, deadline).await,
            Some(ids) => self.get_jobs(&group_id, &cluster.name, ids, deadline).await,
        };
        let jobs = match fetched {
            Ok(listed) => {
                log_invalid(&group_id, &cluster.name, &listed.listing);
                // The failures of an unchanged listing were logged when it was new.
                if !listed.unchanged {
                    self.log_failures(&group_id, &cluster.name, &listed.listing);
                }
                let pinned = cluster.job_ids.as_deref().unwrap_or_default();
                Some(summarize(
                    &listed.listing,
                    pinned,
                    unix_now(),
                    self.retention,
                ))
            }
            Err(error) => {
                log_failure(&group_id, &cluster.name, &error);
                None
            }
        };
        ClusterReport {
            group_id,
            cluster_name: cluster.name,
            labels,
            duration: started.elapsed().as_secs_f64(),
            collected_at: unix_now(),
            jobs,
        }
    }

    /// The get-one endpoint for each configured job id, concurrently. Any unknown id fails the
    /// cluster.
    async fn get_jobs(
        &self,
        group_id: &str,
        cluster: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> Result<Listed, AtlasError> {
        let results = join_all(
            ids.iter()
                .map(|id| self.client.get_export_job(group_id, cluster, id, deadline)),
        )
        .await;
        let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Listed {
            listing: Arc::new(JobListing::from_results(results)),
            unchanged: false,
        })
    }

    /// Logs each failed job once.
    fn log_failures(&self, group_id: &str, cluster: &str, listing: &JobListing) {
        let mut logged = lock(&self.failures_logged);
        for job in listing.jobs() {
            let Some(reason) = &job.state_reason else {
                continue;
            };
            // Each failure is worth one line, not one per scrape; the memory of them is bounded.
            if logged.len() >= MAX_FAILURES_REMEMBERED {
                logged.clear();
            }
            if logged.insert(format!("{group_id}/{cluster}/{}", job.id)) {
                tracing::warn!(
                    group_id,
                    cluster_name = cluster,
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

impl From<&Target> for TargetPlan {
    fn from(target: &Target) -> TargetPlan {
        TargetPlan {
            group_id: target.group_id.clone(),
            labels: target.labels.clone().into(),
            clusters: target.clusters.as_ref().map(|clusters| {
                clusters
                    .iter()
                    .map(|c| ClusterPlan {
                        name: c.name.clone(),
                        job_ids: c.export_job_ids.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Logs the malformed jobs of a listing, on every scrape, as long as Atlas sends them.
fn log_invalid(group_id: &str, cluster: &str, listing: &JobListing) {
    for invalid in listing.invalid() {
        tracing::warn!(
            group_id,
            cluster_name = cluster,
            export_job_id = invalid.id.as_deref().unwrap_or("(none)"),
            reason = %invalid.reason,
            "skipping a malformed export job"
        );
    }
}

fn log_failure(group_id: &str, cluster: &str, error: &AtlasError) {
    tracing::warn!(
        group_id,
        cluster_name = cluster,
        kind = error.kind(),
        %error,
        "collecting export jobs failed"
    );
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The reduce step: a cluster's listing to counts per state, the last success, and the jobs that
/// keep per-job series: every job still running (so a stuck job never drops out), the newest
/// job, the jobs named in the config (`pinned`), and the newest `max_per_cluster` of those
/// created within `max_age`.
pub fn summarize(
    listing: &JobListing,
    pinned: &[String],
    now: f64,
    retention: Retention,
) -> ClusterJobs {
    let jobs = listing.jobs();
    let mut counts: Vec<(String, u64)> = KNOWN_STATES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut last_success: Option<f64> = None;
    let mut shown: Vec<usize> = Vec::new();
    shown.extend(jobs.first().map(|_| 0));
    for (index, job) in jobs.iter().enumerate() {
        match counts.iter_mut().find(|(state, _)| *state == job.state) {
            Some((_, count)) => *count += 1,
            None => counts.push((job.state.clone(), 1)),
        }
        if job.state == "Successful"
            && let Some(finished) = job.finished_at
        {
            last_success = Some(last_success.map_or(finished, |l| l.max(finished)));
        }
        if !job.is_terminal() {
            shown.push(index);
        }
    }
    let is_pinned = |job: &ExportJob| pinned.contains(&job.id);
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

    ClusterJobs {
        shown: shown.into_iter().map(|i| Arc::clone(&jobs[i])).collect(),
        counts,
        last_success,
        invalid: listing.invalid().len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlas::model::InvalidJob;

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

    fn ids(jobs: &ClusterJobs) -> Vec<&str> {
        jobs.shown.iter().map(|j| j.id.as_str()).collect()
    }

    #[tokio::test]
    async fn listings_kept_for_clusters_gone_from_discovery_are_forgotten_by_sd() {
        use crate::fake_atlas::{FakeAtlas, job};

        const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
        let fake = FakeAtlas::new().with_api_key("pk", "sk");
        let base_url = fake.start().await.unwrap();
        for cluster in ["A", "B"] {
            fake.add_cluster(GROUP, cluster);
            fake.put_job(GROUP, cluster, job("0123456789abcdef01234567").build());
        }
        let yaml = format!(
            "atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\ndiscovery:\n  interval: 0\n"
        );
        let config = crate::config::parse(&yaml, "test.yml").unwrap();
        let collector = Collector::new(&config, AtlasClient::for_tests(&config.atlas));
        let deadline = Deadline::after(Duration::from_secs(10));
        for cluster in ["A", "B"] {
            let probed = collector.collect_cluster(GROUP, cluster, deadline).await;
            assert!(probed.unwrap().clusters[0].jobs.is_some());
        }
        let kept = |c: &Collector| {
            let kept = c.listings.remembered().into_iter();
            kept.map(|(_, cluster)| cluster).collect::<Vec<_>>()
        };
        assert_eq!(kept(&collector), ["A", "B"]);

        fake.remove_cluster(GROUP, "B");
        let watched = collector.clusters(deadline).await;
        assert_eq!(watched.len(), 1);
        assert_eq!(kept(&collector), ["A"]);
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
        let counts: Vec<_> = jobs.counts.iter().map(|(s, c)| (s.as_str(), *c)).collect();
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
        assert_eq!(jobs.counts.last(), Some(&("Paused".to_string(), 1)));
        assert_eq!(jobs.counts[0], ("Queued".to_string(), 1));
        assert_eq!(ids(&jobs), ["a", "b"]);
    }
}
