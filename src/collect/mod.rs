//! One collection: plan the Atlas calls from the config, run them concurrently, and reduce each
//! cluster's export jobs to what the metrics show (`summary`, one pure function). Besides the
//! collection, three things are kept from one scrape to the next, each by the part that uses it:
//! the discovered cluster lists (`discovery`, reused for `discovery.interval`), each cluster's
//! last listing ([`JobLister`], told by the collections which clusters are no longer watched),
//! and the failures already logged (`failures`).

mod discovery;
mod expectation;
mod failures;
mod listing;
mod metadata;
mod refresh;
mod summary;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use prometheus::IntCounterVec;

pub use discovery::{DiscoveryReport, Skipped};
pub use expectation::{
    Assessment, Basis, ConfiguredExpectation, Due, Expectation, Facts, Source, assess,
};
pub use metadata::{
    BucketInfo, ClusterInfo, MetadataReport, ProjectInfo, ScheduleInfo, SnapshotInfo,
};
pub use summary::{JobSummary, Retention, StateCounts, summarize};

use crate::atlas::{AtlasClient, AtlasError, Deadline};
use crate::config::Config;
use discovery::Discovery;
use failures::{FailureLog, log_fetch_error};
use listing::{JobLister, JobListing, ListingOutcome};
use metadata::Metadata;

/// Static labels of a target, shared by all its series.
pub type Labels = Arc<[(String, String)]>;

/// What one collection found.
#[derive(Debug, Default)]
pub struct Collection {
    /// One report per cluster, sorted by project and cluster name.
    pub clusters: Vec<ClusterReport>,
    /// One report per discovery listing made or reused in this collection.
    pub discoveries: Vec<DiscoveryReport>,
    /// The names and details of the clusters collected and (on `/metrics`) their projects.
    pub metadata: MetadataReport,
    /// What is expected of each cluster collected, in the same order.
    pub expectations: Vec<ClusterExpectation>,
    /// Whether Atlas refuses the exporter in each watched project (on `/metrics` only).
    pub access: Vec<ProjectAccess>,
}

/// What is expected of one cluster's exports, and when the next one is due.
#[derive(Clone, Debug)]
pub struct ClusterExpectation {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
    pub assessment: Assessment,
}

/// Whether Atlas refuses the exporter in a project (`atlas_backup_export_access_denied`).
#[derive(Debug)]
pub struct ProjectAccess {
    pub group_id: String,
    pub labels: Labels,
    pub denied: bool,
}

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

/// One cluster's outcome in a collection.
#[derive(Clone, Debug)]
pub struct ClusterReport {
    pub cluster: WatchedCluster,
    /// Seconds spent fetching this cluster.
    pub duration: f64,
    /// When the cluster was collected, as Unix seconds.
    pub collected_at: f64,
    /// `None` when the cluster failed (`up 0`).
    pub jobs: Option<JobSummary>,
}

/// Plans and runs collections. Shared by every scrape.
pub struct Collector {
    /// The clusters the config names, in config order.
    configured: Vec<WatchedCluster>,
    discovery: Discovery,
    /// Names, cluster details and buckets, read again once per `metadata.refresh_interval`.
    metadata: Arc<Metadata>,
    /// Lists each cluster's jobs, incrementally where its last listing allows.
    listings: JobLister,
    /// For the jobs the config names by id.
    client: AtlasClient,
    retention: Retention,
    failures: FailureLog,
    /// The discovery generation for which `listings` last forgot the clusters gone.
    pruned_for: AtomicU64,
    /// When each watched cluster was first collected, as Unix seconds: what its next export
    /// counts from when it has no success and Atlas gives no creation time.
    first_seen: Mutex<HashMap<(String, String), f64>>,
    /// How many clusters are fetched at once (see [`Collector::fetch_all`]).
    clusters_in_flight: usize,
}

impl Collector {
    /// Plans the collections the config asks for; listings that page through everything are
    /// counted in `full_listings`.
    pub fn new(config: &Config, client: AtlasClient, full_listings: IntCounterVec) -> Collector {
        let configured = config
            .targets
            .iter()
            .flat_map(|target| {
                let labels = Labels::from(target.labels.clone());
                let clusters = target.clusters.iter().flatten();
                let of_target = ConfiguredExpectation::of_target(config, target);
                clusters.map(move |cluster| WatchedCluster {
                    group_id: target.group_id.clone(),
                    cluster_name: cluster.name.clone(),
                    labels: labels.clone(),
                    job_ids: cluster.export_job_ids.as_deref().map(Arc::from),
                    expect: ConfiguredExpectation {
                        explicit: cluster.expect_export_every.or(of_target.explicit),
                        ..of_target
                    },
                })
            })
            .collect();
        let metadata = Arc::new(Metadata::new(config, client.clone()));
        Collector {
            configured,
            discovery: Discovery::new(config, client.clone(), metadata.clone()),
            metadata,
            listings: JobLister::new(client.clone(), config.export_jobs.max_pages, full_listings),
            client,
            retention: Retention {
                max_age: config.export_jobs.max_age,
                max_per_cluster: config.export_jobs.max_per_cluster,
            },
            failures: FailureLog::default(),
            pruned_for: AtomicU64::new(0),
            first_seen: Mutex::default(),
            clusters_in_flight: 2 * config.atlas.max_concurrent_requests.max(1),
        }
    }

    /// Collects every configured and discovered cluster, all concurrently, within `deadline`.
    pub async fn collect(self: &Arc<Self>, deadline: Deadline) -> Collection {
        // Configured clusters are fetched while discovery runs; discovered ones right after.
        let (mut clusters, (discoveries, discovered)) =
            tokio::join!(self.fetch_all(self.configured.clone(), deadline), async {
                let reports = self.discovery.refresh(deadline).await;
                let (generation, discovered) = self.discovery.clusters();
                self.forget_unwatched(generation, &discovered);
                (reports, self.fetch_all(discovered, deadline).await)
            });
        clusters.extend(discovered);
        clusters.sort_by(|a, b| a.cluster.key().cmp(&b.cluster.key()));
        let expectations = self.refresh_and_assess(&clusters, deadline).await;
        let metadata = self.metadata_report(&clusters, true);
        let watched: Vec<WatchedCluster> = clusters.iter().map(|c| c.cluster.clone()).collect();
        let access = self.access_report(&watched, &discoveries);
        Collection {
            clusters,
            discoveries,
            metadata,
            expectations,
            access,
        }
    }

    /// Every cluster the exporter watches, configured or discovered, sorted by project and name;
    /// calls Atlas to discover again when the lists are older than `discovery.interval`. Changes
    /// nothing else: what is kept per cluster is forgotten by the collections that follow.
    pub async fn discover_clusters(&self, deadline: Deadline) -> Vec<WatchedCluster> {
        self.discovery.refresh(deadline).await;
        self.watched_clusters()
    }

    /// Every cluster the exporter watches as the last discovery found them, sorted by project
    /// and name, without calling Atlas (`/sd` when collections run in the background).
    pub fn watched_clusters(&self) -> Vec<WatchedCluster> {
        let mut clusters = self.configured.clone();
        clusters.extend(self.discovery.clusters().1);
        clusters.sort_by(|a, b| a.key().cmp(&b.key()));
        clusters
    }

    /// One cluster's answer to `/probe` from a report a collection already made, with the
    /// expectation that collection assessed: its series and its details as last read, without
    /// calling Atlas.
    pub fn cluster_collection(
        &self,
        report: ClusterReport,
        expectation: Option<ClusterExpectation>,
    ) -> Collection {
        let reports = [report];
        let metadata = self.metadata_report(&reports, false);
        Collection {
            clusters: Vec::from(reports),
            metadata,
            expectations: expectation.into_iter().collect(),
            ..Collection::default()
        }
    }

    /// Collects one cluster, if the exporter watches it (for `/probe`).
    pub async fn collect_cluster(
        &self,
        group_id: &str,
        cluster_name: &str,
        deadline: Deadline,
    ) -> Option<Collection> {
        let is_the_asked_cluster = |c: &WatchedCluster| c.key() == (group_id, cluster_name);
        let cluster = match self.configured.iter().find(|c| is_the_asked_cluster(c)) {
            Some(cluster) => cluster.clone(),
            None => {
                self.discovery.refresh(deadline).await;
                let discovered = self.discovery.clusters().1;
                discovered.into_iter().find(is_the_asked_cluster)?
            }
        };
        // Probes are this set-up's collections: the first one after discovery changed forgets
        // the listings of the clusters gone.
        if self.discovery.generation() != self.pruned_for.load(Ordering::Relaxed) {
            let (generation, discovered) = self.discovery.clusters();
            self.forget_unwatched(generation, &discovered);
        }
        // A probe refreshes its cluster's details and its project's names and buckets when
        // due, and answers with the cluster's series only: the project's are on /metrics.
        let reports = [self.fetch_cluster(cluster, deadline).await];
        let expectations = self.refresh_and_assess(&reports, deadline).await;
        let metadata = self.metadata_report(&reports, false);
        Some(Collection {
            clusters: Vec::from(reports),
            expectations,
            metadata,
            ..Collection::default()
        })
    }

    /// The project names and export buckets known for the watched projects, without calling
    /// Atlas: `/metrics` shows them when the clusters are scraped through `/probe`.
    pub fn last_project_metadata(&self) -> MetadataReport {
        let mut watched = self.configured.clone();
        watched.extend(self.discovery.clusters().1);
        let mut report = self.metadata.report(&watched, true);
        report.clusters.clear();
        report.schedules.clear();
        report.snapshots.clear();
        report
    }

    /// Refreshes what is due of the metadata of the clusters collected and their projects,
    /// after their export jobs; assesses what is expected of each cluster (which needs its jobs,
    /// schedule and details); then reads the snapshots the successes that count hold. When
    /// Atlas answered none of the clusters (a refused credential, Atlas down), the lookups
    /// would fail the same way and only add to the cost, so they wait for a collection that
    /// reaches Atlas.
    async fn refresh_and_assess(
        &self,
        collected: &[ClusterReport],
        deadline: Deadline,
    ) -> Vec<ClusterExpectation> {
        let reached_atlas = collected.iter().any(|c| c.jobs.is_some());
        if reached_atlas {
            let watched: Vec<&WatchedCluster> = collected.iter().map(|c| &c.cluster).collect();
            let mut group_ids: Vec<String> = watched.iter().map(|c| c.group_id.clone()).collect();
            group_ids.sort();
            group_ids.dedup();
            let key = |c: &WatchedCluster| (c.group_id.clone(), c.cluster_name.clone());
            let configured: Vec<(String, String)> = watched
                .iter()
                .filter(|c| self.configured.contains(c))
                .map(|c| key(c))
                .collect();
            let read: Vec<(String, String)> = collected
                .iter()
                .filter(|c| c.jobs.is_some())
                .map(|c| key(&c.cluster))
                .collect();
            self.metadata
                .refresh(&group_ids, &configured, &read, deadline)
                .await;
        }
        let expectations: Vec<ClusterExpectation> =
            collected.iter().map(|c| self.assess_cluster(c)).collect();
        if reached_atlas {
            // In the order of `collected`: only the clusters whose jobs were read.
            let wanted: Vec<_> = expectations
                .iter()
                .zip(collected)
                .filter(|(_, c)| c.jobs.is_some())
                .map(|(e, _)| {
                    let counted = e.assessment.counted.as_ref();
                    let snapshot = counted.and_then(|job| {
                        Some((job.snapshot_id.as_ref()?.to_string(), job.components > 0))
                    });
                    ((e.group_id.clone(), e.cluster_name.clone()), snapshot)
                })
                .collect();
            self.metadata.refresh_snapshots(&wanted, deadline).await;
        }
        expectations
    }

    /// What is expected of one collected cluster, from its jobs and what is known of its
    /// schedule and details; the first collection of a cluster is when the exporter first saw it.
    fn assess_cluster(&self, report: &ClusterReport) -> ClusterExpectation {
        let cluster = &report.cluster;
        let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
        let first_seen = *lock(&self.first_seen)
            .entry(key.clone())
            .or_insert(report.collected_at);
        let schedule = self.metadata.schedule(&key);
        let details = self.metadata.details(&key);
        let facts = Facts {
            configured: cluster.expect,
            by_job_ids: cluster.job_ids.is_some(),
            schedule: schedule.as_ref(),
            paused: details.as_ref().is_some_and(|d| d.paused == "true"),
            created: details.as_ref().and_then(|d| d.created).map(|at| at as f64),
            first_seen,
            jobs: report.jobs.as_ref(),
        };
        ClusterExpectation {
            group_id: key.0,
            cluster_name: key.1,
            labels: cluster.labels.clone(),
            assessment: assess(&facts),
        }
    }

    /// Whether Atlas refused the credential, or the last call of some kind for each watched
    /// project, without calling Atlas: one per project of `clusters` and `discoveries`.
    fn access_report(
        &self,
        clusters: &[WatchedCluster],
        discoveries: &[DiscoveryReport],
    ) -> Vec<ProjectAccess> {
        let mut projects: Vec<(&str, &Labels)> = clusters
            .iter()
            .map(|c| (c.group_id.as_str(), &c.labels))
            .chain(
                discoveries
                    .iter()
                    .filter_map(|d| Some((d.group_id.as_deref()?, &d.labels))),
            )
            .collect();
        projects.sort_by_key(|(group_id, _)| *group_id);
        projects.dedup_by_key(|(group_id, _)| *group_id);
        projects
            .into_iter()
            .map(|(group_id, labels)| ProjectAccess {
                group_id: group_id.to_owned(),
                labels: labels.clone(),
                denied: self.client.access_denied(group_id),
            })
            .collect()
    }

    /// The metadata report of the clusters collected.
    fn metadata_report(&self, collected: &[ClusterReport], projects: bool) -> MetadataReport {
        let watched: Vec<WatchedCluster> = collected.iter().map(|r| r.cluster.clone()).collect();
        self.metadata.report(&watched, projects)
    }

    /// Access to the watched projects as the last calls left it, without calling Atlas:
    /// `/metrics` shows it when the clusters are scraped through `/probe`.
    pub fn last_access(&self) -> Vec<ProjectAccess> {
        let mut watched = self.configured.clone();
        watched.extend(self.discovery.clusters().1);
        self.access_report(&watched, &self.discovery.last_reports())
    }

    /// How the last discovery of each project went, without calling Atlas: `/metrics` shows it
    /// when the clusters are scraped through `/probe` (whose `/sd` and probes discover).
    pub fn last_discoveries(&self) -> Vec<DiscoveryReport> {
        self.discovery.last_reports()
    }

    /// Forgets the listings kept for clusters no longer watched (gone from discovery), once
    /// per change of the discovered lists (`generation`).
    fn forget_unwatched(&self, generation: u64, discovered: &[WatchedCluster]) {
        if self.pruned_for.swap(generation, Ordering::Relaxed) == generation {
            return;
        }
        let watched: HashSet<(&str, &str)> = self
            .configured
            .iter()
            .chain(discovered)
            .map(WatchedCluster::key)
            .collect();
        self.listings
            .forget_all_but(|group_id, cluster| watched.contains(&(group_id, cluster)));
        let all: Vec<WatchedCluster> = self.configured.iter().chain(discovered).cloned().collect();
        self.metadata.forget_all_but(&all);
        lock(&self.first_seen).retain(|(group_id, cluster), _| {
            watched.contains(&(group_id.as_str(), cluster.as_str()))
        });
        let projects: HashSet<&str> = all.iter().map(|c| c.group_id.as_str()).collect();
        self.client
            .forget_access_all_but(|group_id| projects.contains(group_id));
    }

    /// Fetches clusters concurrently, each in a task of its own so that parsing and reducing
    /// big listings use every core. Twice as many clusters as requests may be in flight are
    /// under way at once, so the requests stay busy while listings are parsed; the rest wait
    /// their turn unstarted: a cluster's task holds some 16 KiB once started, 160 MiB at
    /// 10,000 clusters if all were started together.
    async fn fetch_all(
        self: &Arc<Self>,
        clusters: Vec<WatchedCluster>,
        deadline: Deadline,
    ) -> Vec<ClusterReport> {
        let tasks = clusters.into_iter().map(|cluster| {
            let this = self.clone();
            async move {
                let watched = cluster.clone();
                let task = tokio::spawn(async move { this.fetch_cluster(cluster, deadline).await });
                task.await.unwrap_or_else(|error| {
                    tracing::error!(
                        group_id = watched.group_id,
                        cluster_name = watched.cluster_name,
                        %error,
                        "collecting a cluster panicked"
                    );
                    ClusterReport {
                        cluster: watched,
                        duration: 0.0,
                        collected_at: unix_now(),
                        jobs: None,
                    }
                })
            }
        });
        stream::iter(tasks)
            .buffered(self.clusters_in_flight)
            .collect()
            .await
    }

    /// Fetches one cluster's jobs and reduces them.
    async fn fetch_cluster(&self, cluster: WatchedCluster, deadline: Deadline) -> ClusterReport {
        let started = Instant::now();
        let fetched = match &cluster.job_ids {
            None => {
                let (group_id, name) = cluster.key();
                self.listings.list(group_id, name, deadline).await
            }
            Some(ids) => self.get_jobs(&cluster, ids, deadline).await,
        };
        let jobs = match fetched {
            Ok(listed) => {
                self.failures.log_listing(&cluster, &listed);
                let pinned = cluster.job_ids.as_deref().unwrap_or_default();
                Some(summarize(
                    &listed.listing,
                    pinned,
                    unix_now(),
                    self.retention,
                ))
            }
            Err(error) => {
                log_fetch_error(&cluster, &error);
                None
            }
        };
        ClusterReport {
            cluster,
            duration: started.elapsed().as_secs_f64(),
            collected_at: unix_now(),
            jobs,
        }
    }

    /// The get-one endpoint for each configured job id, concurrently. Any unknown id fails the
    /// cluster.
    async fn get_jobs(
        &self,
        cluster: &WatchedCluster,
        ids: &[String],
        deadline: Deadline,
    ) -> Result<ListingOutcome, AtlasError> {
        let (group_id, name) = cluster.key();
        let results = join_all(
            ids.iter()
                .map(|id| self.client.get_export_job(group_id, name, id, deadline)),
        )
        .await;
        let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(ListingOutcome {
            listing: Arc::new(JobListing::from_results(results)),
            unchanged: false,
        })
    }
}

impl WatchedCluster {
    /// `(group_id, cluster_name)`: what tells watched clusters apart, and sorts them.
    pub fn key(&self) -> (&str, &str) {
        (&self.group_id, &self.cluster_name)
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fake_atlas::{FakeAtlas, job};

    const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    /// A stand-in with clusters A and B of one job each in a project that is discovered on
    /// every call, and a collector for it.
    async fn two_discovered_clusters() -> (FakeAtlas, Arc<Collector>) {
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
        let full_listings = crate::metrics::OwnMetrics::new().full_listings;
        let collector = Collector::new(
            &config,
            AtlasClient::for_tests(&config.atlas),
            full_listings,
        );
        (fake, Arc::new(collector))
    }

    /// The clusters whose last listing the collector keeps.
    fn kept(collector: &Collector) -> Vec<String> {
        let kept = collector.listings.remembered().into_iter();
        kept.map(|(_, cluster)| cluster).collect()
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    #[tokio::test]
    async fn listings_of_clusters_gone_from_discovery_are_forgotten_by_the_next_probe_not_by_sd() {
        let (fake, collector) = two_discovered_clusters().await;
        for cluster in ["A", "B"] {
            let probed = collector.collect_cluster(GROUP, cluster, deadline()).await;
            assert!(probed.unwrap().clusters[0].jobs.is_some());
        }
        assert_eq!(kept(&collector), ["A", "B"]);

        fake.remove_cluster(GROUP, "B");
        let watched = collector.discover_clusters(deadline()).await;
        assert_eq!(watched.len(), 1);
        assert_eq!(kept(&collector), ["A", "B"], "/sd only reads");

        // In a /probe set-up, probes are the collections: the next one forgets B's listing.
        let probed = collector.collect_cluster(GROUP, "A", deadline()).await;
        assert!(probed.unwrap().clusters[0].jobs.is_some());
        assert_eq!(kept(&collector), ["A"]);
        let gone = collector.collect_cluster(GROUP, "B", deadline()).await;
        assert!(gone.is_none());
        assert_eq!(kept(&collector), ["A"]);
    }

    #[tokio::test]
    async fn listings_of_clusters_gone_from_discovery_are_forgotten_by_the_next_collection() {
        let (fake, collector) = two_discovered_clusters().await;
        let collection = collector.collect(deadline()).await;
        assert_eq!(collection.clusters.len(), 2);
        assert_eq!(kept(&collector), ["A", "B"]);

        fake.remove_cluster(GROUP, "B");
        let collection = collector.collect(deadline()).await;
        let names: Vec<&str> = collection
            .clusters
            .iter()
            .map(|c| c.cluster.key().1)
            .collect();
        assert_eq!(names, ["A"]);
        assert_eq!(kept(&collector), ["A"]);
    }
}
