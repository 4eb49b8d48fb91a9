//! One collection, in steps that each hand their result forward: plan the Atlas calls from the
//! config; discover clusters while the configured ones are fetched; fetch the discovered ones;
//! reduce each cluster's export jobs to what the metrics show (`summary`, one pure function);
//! look up what is due of the metadata; assess each cluster's expectation and the success that
//! counts (`expectation`, one pure function); look up the snapshots those successes hold; and
//! only then build the report ([`Collection`]), which nothing changes afterwards.
//!
//! Besides the collection, a few things are kept from one scrape to the next, each by the part
//! that uses it: the discovered cluster lists (`discovery`, reused for `discovery.interval`),
//! each cluster's last listing (`JobLister`, told by the collections which clusters are no
//! longer watched), the metadata (`metadata`, read again once per `metadata.refresh_interval`),
//! and the failures already logged (`failures`). Every interval is measured on the one clock
//! [`Collector::new`] is given.

mod collection;
mod discovery;
mod expectation;
mod failures;
mod listing;
mod metadata;
mod refresh;
mod summary;
mod tally;
mod watched;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use prometheus::IntCounterVec;

pub use collection::{ClusterExpectation, ClusterReport, Collection, ProjectAccess};
pub use discovery::{DiscoveryReport, Skipped};
pub use expectation::{
    Assessment, Basis, ConfiguredExpectation, Due, Expectation, Facts, Source, assess,
};
pub use metadata::{
    BucketInfo, ClusterInfo, MetadataReport, ProjectInfo, ScheduleInfo, SnapshotInfo,
};
pub use summary::{JobSummary, Retention, StateCounts, summarize};
pub use watched::{Labels, WatchedCluster};

use crate::atlas::{AtlasClient, AtlasError, Deadline};
use crate::clock::Clock;
use crate::config::Config;
use discovery::Discovery;
use failures::{FailureLog, log_fetch_error};
use listing::{JobLister, JobListing, ListingOutcome};
use metadata::Metadata;
use watched::lock;

/// Plans and runs collections. Shared by every scrape.
pub struct Collector {
    /// The clusters the config names, in config order.
    configured: Vec<WatchedCluster>,
    discovery: Discovery,
    /// Names, cluster details and buckets, read again once per `metadata.refresh_interval`.
    metadata: Metadata,
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
    /// counted in `full_listings`; `discovery.interval` and `metadata.refresh_interval` are
    /// measured on `clock`.
    pub fn new(
        config: &Config,
        client: AtlasClient,
        full_listings: IntCounterVec,
        clock: Clock,
    ) -> Collector {
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
        Collector {
            configured,
            discovery: Discovery::new(config, client.clone(), clock.clone()),
            metadata: Metadata::new(config, client.clone(), clock),
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

    /// The Atlas client's rate limits as they are now, for the exporter's own metrics.
    pub fn rate_limits(&self) -> crate::atlas::RateLimitSnapshot {
        self.client.rate_limits()
    }

    /// Collects every configured and discovered cluster, all concurrently, within `deadline`.
    pub async fn collect(self: &Arc<Self>, deadline: Deadline) -> Collection {
        // Configured clusters are fetched while discovery runs; discovered ones right after.
        let (mut clusters, (discoveries, discovered)) =
            tokio::join!(self.fetch_all(self.configured.clone(), deadline), async {
                let reports = self.discover(deadline).await;
                let (generation, discovered) = self.discovery.clusters();
                self.forget_unwatched(generation, &discovered);
                (reports, self.fetch_all(discovered, deadline).await)
            });
        clusters.extend(discovered);
        clusters.sort_by(|a, b| a.cluster.key().cmp(&b.cluster.key()));
        let (expectations, metadata) = self.look_up_and_assess(&clusters, true, deadline).await;
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
        self.discover(deadline).await;
        self.watched_clusters()
    }

    /// Lists what discovery finds due, and hands the names and details its listings gave to
    /// the metadata.
    async fn discover(&self, deadline: Deadline) -> Vec<DiscoveryReport> {
        let found = self.discovery.refresh(deadline).await;
        self.metadata.take_listed(found.names, found.details);
        found.reports
    }

    /// Every cluster the exporter watches as the last discovery found them, sorted by project
    /// and name, without calling Atlas (`/sd` when collections run in the background).
    pub fn watched_clusters(&self) -> Vec<WatchedCluster> {
        let mut clusters = self.configured.clone();
        clusters.extend(self.discovery.clusters().1);
        clusters.sort_by(|a, b| a.key().cmp(&b.key()));
        clusters
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
                self.discover(deadline).await;
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
        let (expectations, metadata) = self.look_up_and_assess(&reports, false, deadline).await;
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
        self.metadata.report(&[], &watched, Vec::new())
    }

    /// The steps after the jobs of `collected` are read: the lookups that are due of their
    /// metadata and their projects'; what is expected of each cluster (which needs its jobs,
    /// schedule and details); the snapshots the successes that count hold; and the metadata
    /// report of it all (with the project-level series when `projects`). When Atlas answered
    /// none of the clusters (a refused credential, Atlas down), the lookups would fail the same
    /// way and only add to the cost, so they wait for a collection that reaches Atlas.
    async fn look_up_and_assess(
        &self,
        collected: &[ClusterReport],
        projects: bool,
        deadline: Deadline,
    ) -> (Vec<ClusterExpectation>, MetadataReport) {
        let watched: Vec<WatchedCluster> = collected.iter().map(|c| c.cluster.clone()).collect();
        if collected.iter().any(|c| c.jobs.is_some()) {
            let mut group_ids: Vec<String> = watched.iter().map(|c| c.group_id.clone()).collect();
            group_ids.sort();
            group_ids.dedup();
            let key = |c: &WatchedCluster| (c.group_id.clone(), c.cluster_name.clone());
            // By key, not by a scan of the config's list per cluster: with every cluster
            // named in the config that scan was quadratic, about a fifth of a scrape's CPU at
            // 10,000 clusters. The config refuses a cluster named twice, so a key finds one.
            let by_key: HashMap<(&str, &str), &WatchedCluster> =
                self.configured.iter().map(|c| (c.key(), c)).collect();
            let configured: Vec<(String, String)> = watched
                .iter()
                .filter(|c| by_key.get(&c.key()).is_some_and(|known| *known == *c))
                .map(key)
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
        // Only the clusters whose jobs were read have a success that counts now.
        let wanted: Vec<_> = collected
            .iter()
            .zip(&expectations)
            .map(|(c, e)| {
                let counted = e.assessment.counted_snapshot();
                (&c.cluster, c.jobs.is_some().then_some(counted))
            })
            .collect();
        let snapshots = self.metadata.snapshots(&wanted, deadline).await;
        let of_projects = if projects { &watched[..] } else { &[] };
        let metadata = self.metadata.report(&watched, of_projects, snapshots);
        (expectations, metadata)
    }

    /// What is expected of one collected cluster, from its jobs and what is known of its
    /// schedule and details; the first collection of a cluster is when the exporter first saw it.
    fn assess_cluster(&self, report: &ClusterReport) -> ClusterExpectation {
        let cluster = &report.cluster;
        let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
        let first_seen = *lock(&self.first_seen)
            .entry(key.clone())
            .or_insert(report.collected_at);
        let schedule = self.metadata.schedules.get(&key);
        let details = self.metadata.details.get(&key);
        let facts = Facts {
            configured: cluster.expect,
            by_job_ids: cluster.job_ids.is_some(),
            schedule: schedule.as_ref(),
            paused: details.as_ref().is_some_and(|d| d.paused == Some(true)),
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
        let client = AtlasClient::for_tests(&config.atlas);
        let collector = Collector::new(&config, client, full_listings, Clock::real());
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

    /// `discovery.interval` and `metadata.refresh_interval` are measured on the collector's
    /// clock, not the client's: the client here runs on the real clock, which does not move an
    /// hour during the test. The cluster's details come from discovery's listing, never looked
    /// up on their own.
    #[tokio::test]
    async fn discovery_and_lookups_fall_due_on_the_collectors_clock() {
        let fake = FakeAtlas::new().with_api_key("pk", "sk");
        let base_url = fake.start().await.unwrap();
        fake.add_cluster(GROUP, "A");
        fake.set_group_name(GROUP, "payments");
        fake.put_job(GROUP, "A", job("0123456789abcdef01234567").build());
        let yaml = format!(
            "atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\n\
             discovery:\n  interval: 1h\nmetadata:\n  refresh_interval: 2h\n"
        );
        let config = crate::config::parse(&yaml, "test.yml").unwrap();
        let full_listings = crate::metrics::OwnMetrics::new().full_listings;
        let client = AtlasClient::for_tests(&config.atlas);
        let clock = crate::clock::ManualClock::new();
        let collector = Arc::new(Collector::new(
            &config,
            client,
            full_listings,
            clock.clock(),
        ));
        let calls = |endpoint: &str| fake.requests().endpoint(endpoint);

        let first = collector.collect(deadline()).await;
        let details = &first.metadata.clusters;
        assert_eq!(details.len(), 1, "from the cluster listing");
        assert_eq!(details[0].details.paused, Some(false));
        assert_eq!(first.metadata.projects[0].name, "payments");
        // The first request of the digest handshake is counted too: counts from here on.
        let counts = |at: (u64, u64)| (calls("list_clusters") - at.0, calls("get_project") - at.1);
        let at = counts((0, 0));

        collector.collect(deadline()).await;
        assert_eq!(counts(at), (0, 0), "nothing due");
        clock.advance(Duration::from_secs(3600));
        collector.collect(deadline()).await;
        assert_eq!(
            counts(at),
            (1, 0),
            "the cluster list is due, the name is not"
        );
        clock.advance(Duration::from_secs(3600));
        collector.collect(deadline()).await;
        assert_eq!(counts(at), (2, 1), "both are due");
        assert_eq!(
            calls("get_cluster"),
            0,
            "discovery's listing gave the details"
        );
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
