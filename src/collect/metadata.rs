//! What the info series show besides the export jobs: project names, cluster details and tags,
//! export buckets. Each is kept per project or cluster and read again once per
//! `metadata.refresh_interval` (see `refresh`), or taken from the listings discovery makes
//! anyway: the project listing gives names, a cluster listing its clusters' details. Besides
//! them, each cluster's backup schedule, and when the snapshot its newest successful export holds
//! was taken: read once per snapshot id, since a snapshot never changes, in a stage of its own
//! once the collection knows which success counts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::refresh::{Refreshed, bounded};
use super::watched::{Labels, WatchedCluster, lock};
use crate::atlas::model::{BackupSchedule, ClusterDetails, ExportBucket, SnapshotTime};
use crate::atlas::{AtlasClient, Deadline};
use crate::clock::Clock;
use crate::config::{ClusterTag, Config, MetadataConfig};

/// A project and a cluster name.
type ClusterKey = (String, String);

/// The snapshot the success that counts of a cluster holds, and whether the cluster is sharded;
/// `None` when no success counts.
pub(super) type CountedSnapshot = Option<(String, bool)>;

/// The names and details of the watched projects and clusters, as one collection shows them.
#[derive(Debug, Default)]
pub struct MetadataReport {
    /// Projects whose name is known, with their target's labels.
    pub projects: Vec<ProjectInfo>,
    /// Clusters whose details are known.
    pub clusters: Vec<ClusterInfo>,
    /// The export buckets of each project whose buckets are known.
    pub buckets: Vec<BucketInfo>,
    /// The tag keys `cluster_tags` carries; empty: no `cluster_tags` series.
    pub tags: Arc<[ClusterTag]>,
    /// Clusters whose backup schedule is known.
    pub schedules: Vec<ScheduleInfo>,
    /// Clusters whose newest exported snapshot's time is known.
    pub snapshots: Vec<SnapshotInfo>,
}

#[derive(Clone, Debug)]
pub struct ScheduleInfo {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
    pub schedule: BackupSchedule,
}

#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
    pub time: SnapshotTime,
}

/// The time of the snapshot a cluster's newest successful export holds.
#[derive(Clone, Debug)]
struct KeptSnapshot {
    snapshot_id: String,
    time: SnapshotTime,
}

#[derive(Debug)]
pub struct ProjectInfo {
    pub group_id: String,
    pub name: String,
    pub labels: Labels,
}

#[derive(Clone, Debug)]
pub struct ClusterInfo {
    pub group_id: String,
    pub cluster_name: String,
    pub labels: Labels,
    pub details: ClusterDetails,
}

#[derive(Debug)]
pub struct BucketInfo {
    pub group_id: String,
    pub labels: Labels,
    pub bucket: ExportBucket,
}

/// The lookups, their last good values, and which are turned on.
pub(super) struct Metadata {
    config: MetadataConfig,
    client: AtlasClient,
    max_pages: u32,
    tags: Arc<[ClusterTag]>,
    /// A project's name; `None` when Atlas gave none.
    names: Refreshed<String, Option<String>>,
    pub(super) details: Refreshed<(String, String), ClusterDetails>,
    buckets: Refreshed<String, Vec<ExportBucket>>,
    pub(super) schedules: Refreshed<ClusterKey, BackupSchedule>,
    /// Per cluster, the snapshot its newest success holds, kept while that job is the newest.
    snapshots: Mutex<HashMap<ClusterKey, KeptSnapshot>>,
    /// Per cluster, the snapshot id last tried and when: a failed lookup waits for the next
    /// refresh, as the other lookups do.
    snapshot_tries: Mutex<HashMap<ClusterKey, (String, Instant)>>,
    clock: Clock,
}

impl Metadata {
    /// The lookups `config` turns on, each value read again once per `refresh_interval` on
    /// `clock`.
    pub(super) fn new(config: &Config, client: AtlasClient, clock: Clock) -> Metadata {
        let metadata = config.metadata.clone();
        let interval = metadata.refresh_interval;
        Metadata {
            tags: Arc::from(metadata.cluster_tags.clone()),
            names: Refreshed::new("the project's name", interval, clock.clone()),
            details: Refreshed::new("the cluster's details", interval, clock.clone()),
            buckets: Refreshed::new("the project's export buckets", interval, clock.clone()),
            schedules: Refreshed::new("the cluster's backup schedule", interval, clock.clone()),
            snapshots: Mutex::default(),
            snapshot_tries: Mutex::default(),
            clock,
            config: metadata,
            client,
            max_pages: config.export_jobs.max_pages,
        }
    }

    /// Keeps the project names and cluster details discovery's listings gave: each counts as
    /// a refresh of its value.
    pub(super) fn take_listed(
        &self,
        names: Vec<(String, Option<String>)>,
        details: Vec<(ClusterKey, ClusterDetails)>,
    ) {
        if self.config.projects {
            for (group_id, name) in names {
                self.names.put(group_id, name);
            }
        }
        if self.config.clusters {
            for (key, details) in details {
                self.details.put(key, details);
            }
        }
    }

    /// Reads again what is due for these projects and these clusters (the configured ones:
    /// discovered clusters get theirs from discovery's listing), each lookup concurrently; and
    /// the schedules of the clusters `collected` (those whose jobs were read).
    pub(super) async fn refresh(
        &self,
        group_ids: &[String],
        configured: &[ClusterKey],
        collected: &[ClusterKey],
        deadline: Deadline,
    ) {
        let client = &self.client;
        let names = async {
            if self.config.projects {
                let lookup = |g: String| async move { client.get_project(&g, deadline).await };
                self.names.refresh(group_ids, lookup).await;
            }
        };
        let details = async {
            if self.config.clusters {
                let lookup = |(g, c): (String, String)| async move {
                    client.get_cluster(&g, &c, deadline).await
                };
                self.details.refresh(configured, lookup).await;
            }
        };
        let buckets = async {
            if self.config.buckets {
                let max_pages = self.max_pages;
                let lookup = |g: String| async move {
                    client.list_export_buckets(&g, max_pages, deadline).await
                };
                self.buckets.refresh(group_ids, lookup).await;
            }
        };
        let schedules = async {
            if self.config.schedules {
                let lookup = |(g, c): ClusterKey| async move {
                    let schedule = client.get_backup_schedule(&g, &c, deadline).await?;
                    if schedule.auto_export && schedule.interval_seconds().is_none() {
                        tracing::warn!(
                            group_id = g,
                            cluster_name = c,
                            frequency_type = schedule.frequency_type.as_deref().unwrap_or(""),
                            "the backup schedule's auto-export frequency is not one the exporter \
                             knows; no atlas_backup_export_auto_export_interval_seconds for it"
                        );
                    }
                    Ok(schedule)
                };
                self.schedules.refresh(collected, lookup).await;
            }
        };
        tokio::join!(names, details, buckets, schedules);
    }

    /// The second stage, once the success that counts of each cluster is known: reads the time
    /// of each snapshot such a success holds that is not kept yet (once per snapshot id, and a
    /// failed lookup once per refresh), and gives the time known for each of `clusters`, in
    /// their order. For each cluster, `wanted` is `None` when its jobs were not read (what is
    /// kept stays), else its success's snapshot id and whether the cluster is sharded (`None`:
    /// no success counts, and the kept time goes).
    pub(super) async fn snapshots(
        &self,
        clusters: &[(&WatchedCluster, Option<CountedSnapshot>)],
        deadline: Deadline,
    ) -> Vec<SnapshotInfo> {
        if !self.config.snapshots {
            return Vec::new();
        }
        let now = self.clock.now();
        let interval = self.config.refresh_interval;
        let mut due: Vec<(ClusterKey, String, bool)> = Vec::new();
        {
            let mut kept = lock(&self.snapshots);
            let mut tries = lock(&self.snapshot_tries);
            for (cluster, wanted) in clusters {
                let Some(wanted) = wanted else { continue };
                let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
                let Some((snapshot_id, sharded)) = wanted.clone() else {
                    // Its job is no longer the success that counts: the snapshot goes with it.
                    kept.remove(&key);
                    tries.remove(&key);
                    continue;
                };
                if kept.get(&key).is_some_and(|k| k.snapshot_id == snapshot_id) {
                    continue;
                }
                let tried_lately = tries.get(&key).is_some_and(|(id, at)| {
                    *id == snapshot_id && now.saturating_duration_since(*at) < interval
                });
                if !tried_lately {
                    tries.insert(key.clone(), (snapshot_id.clone(), now));
                    due.push((key, snapshot_id, sharded));
                }
            }
        }
        let client = &self.client;
        // Bounded as the other lookups are: a cluster's first collection can find thousands of
        // snapshots to read.
        let looked_up = bounded(due, |(key, id, sharded)| async move {
            let (g, c) = &key;
            let result = client.get_snapshot(g, c, &id, sharded, deadline).await;
            (key, id, result)
        })
        .await;
        let mut kept = lock(&self.snapshots);
        for ((group_id, cluster_name), snapshot_id, result) in looked_up {
            match result {
                Ok(time) => {
                    if time.from_id {
                        tracing::debug!(
                            group_id,
                            cluster_name,
                            snapshot_id,
                            "the exported snapshot has expired; its time is the one its id carries"
                        );
                    }
                    let key = (group_id, cluster_name);
                    kept.insert(key, KeptSnapshot { snapshot_id, time });
                }
                Err(error) => {
                    tracing::warn!(
                        group_id,
                        cluster_name,
                        snapshot_id,
                        %error,
                        kept_last_value = kept.contains_key(&(group_id.clone(), cluster_name.clone())),
                        "looking up the exported snapshot failed; trying again at the next refresh"
                    );
                }
            }
        }
        let known = clusters.iter().filter_map(|(cluster, _)| {
            let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
            let time = kept.get(&key)?.time;
            Some(SnapshotInfo {
                group_id: key.0,
                cluster_name: key.1,
                labels: cluster.labels.clone(),
                time,
            })
        });
        known.collect()
    }

    /// What is known of `clusters` (their details and schedules, with the times of the
    /// `snapshots` the second stage gave) and of the projects of `projects` (names, buckets),
    /// without calling Atlas.
    pub(super) fn report(
        &self,
        clusters: &[WatchedCluster],
        projects: &[WatchedCluster],
        snapshots: Vec<SnapshotInfo>,
    ) -> MetadataReport {
        let mut report = MetadataReport {
            tags: self.tags.clone(),
            snapshots,
            ..MetadataReport::default()
        };
        for cluster in clusters {
            let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
            if let Some(schedule) = self.schedules.get(&key) {
                report.schedules.push(ScheduleInfo {
                    group_id: key.0.clone(),
                    cluster_name: key.1.clone(),
                    labels: cluster.labels.clone(),
                    schedule,
                });
            }
            if let Some(details) = self.details.get(&key) {
                report.clusters.push(ClusterInfo {
                    group_id: key.0,
                    cluster_name: key.1,
                    labels: cluster.labels.clone(),
                    details,
                });
            }
        }
        let mut seen = HashSet::new();
        for cluster in projects {
            let group_id = &cluster.group_id;
            if !seen.insert(group_id.as_str()) {
                continue;
            }
            if let Some(Some(name)) = self.names.get(group_id) {
                report.projects.push(ProjectInfo {
                    group_id: group_id.clone(),
                    name,
                    labels: cluster.labels.clone(),
                });
            }
            for bucket in self.buckets.get(group_id).unwrap_or_default() {
                report.buckets.push(BucketInfo {
                    group_id: group_id.clone(),
                    labels: cluster.labels.clone(),
                    bucket,
                });
            }
        }
        report
    }

    /// Forgets what is kept for projects and clusters no longer watched.
    pub(super) fn forget_all_but(&self, clusters: &[WatchedCluster]) {
        let projects: HashSet<&str> = clusters.iter().map(|c| c.group_id.as_str()).collect();
        let watched: HashSet<(&str, &str)> = clusters.iter().map(WatchedCluster::key).collect();
        self.names.retain(|g| projects.contains(g.as_str()));
        self.buckets.retain(|g| projects.contains(g.as_str()));
        let is_watched = |(g, c): &ClusterKey| watched.contains(&(g.as_str(), c.as_str()));
        self.details.retain(is_watched);
        self.schedules.retain(is_watched);
        lock(&self.snapshots).retain(|key, _| is_watched(key));
        lock(&self.snapshot_tries).retain(|key, _| is_watched(key));
    }
}
