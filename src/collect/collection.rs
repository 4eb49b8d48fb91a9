//! What one collection found: the report the renderer writes, built once and never changed.

use super::discovery::DiscoveryReport;
use super::expectation::Assessment;
use super::metadata::MetadataReport;
use super::summary::JobSummary;
use super::watched::{Labels, WatchedCluster};

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

impl Collection {
    /// One cluster's part of this collection, as `/probe` shows it: its series, expectation and
    /// details, without the project's series (those are on `/metrics`). `None` when this
    /// collection did not collect the cluster.
    pub fn of_cluster(&self, group_id: &str, cluster_name: &str) -> Option<Collection> {
        let key = (group_id, cluster_name);
        let at = self
            .clusters
            .binary_search_by(|c| c.cluster.key().cmp(&key))
            .ok()?;
        let expectation = self
            .expectations
            .get(at)
            .filter(|e| (e.group_id.as_str(), e.cluster_name.as_str()) == key);
        let metadata = &self.metadata;
        let metadata = MetadataReport {
            clusters: about(&metadata.clusters, key, |c| (&c.group_id, &c.cluster_name)),
            schedules: about(&metadata.schedules, key, |s| (&s.group_id, &s.cluster_name)),
            snapshots: about(&metadata.snapshots, key, |s| (&s.group_id, &s.cluster_name)),
            tags: metadata.tags.clone(),
            ..MetadataReport::default()
        };
        Some(Collection {
            clusters: vec![self.clusters[at].clone()],
            metadata,
            expectations: expectation.into_iter().cloned().collect(),
            ..Collection::default()
        })
    }
}

/// The entries of `items` about the cluster `key`: a report's entries per cluster are in the
/// order of its clusters, sorted by key.
fn about<T: Clone>(items: &[T], key: (&str, &str), of: fn(&T) -> (&String, &String)) -> Vec<T> {
    let order = |item: &T| {
        let (group_id, cluster_name) = of(item);
        (group_id.as_str(), cluster_name.as_str()).cmp(&key)
    };
    let start = items.partition_point(|item| order(item).is_lt());
    let found = items[start..].iter().take_while(|item| order(item).is_eq());
    found.cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::atlas::model::{BackupSchedule, ClusterDetails, SnapshotTime};
    use crate::collect::metadata::{ClusterInfo, ScheduleInfo, SnapshotInfo};

    const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

    fn watched(name: &str) -> WatchedCluster {
        WatchedCluster {
            group_id: GROUP.into(),
            cluster_name: name.into(),
            labels: Labels::from([("env".to_owned(), name.to_lowercase())]),
            job_ids: None,
            expect: Default::default(),
        }
    }

    /// Clusters A, B and C: details of A and C, a schedule of B, a snapshot of C.
    fn three_clusters() -> Collection {
        let names = ["A", "B", "C"];
        let info = |name: &str| (GROUP.to_owned(), name.to_owned(), watched(name).labels);
        let mut collection = Collection {
            clusters: names
                .iter()
                .map(|name| ClusterReport {
                    cluster: watched(name),
                    duration: 0.0,
                    collected_at: 0.0,
                    jobs: None,
                })
                .collect(),
            expectations: names
                .iter()
                .map(|name| ClusterExpectation {
                    group_id: GROUP.into(),
                    cluster_name: (*name).into(),
                    labels: watched(name).labels,
                    assessment: Assessment::default(),
                })
                .collect(),
            ..Collection::default()
        };
        let metadata = &mut collection.metadata;
        for (name, state) in [("A", "IDLE"), ("C", "UPDATING")] {
            let (group_id, cluster_name, labels) = info(name);
            let details = ClusterDetails {
                state_name: state.into(),
                ..ClusterDetails::default()
            };
            metadata.clusters.push(ClusterInfo {
                group_id,
                cluster_name,
                labels,
                details,
            });
        }
        let (group_id, cluster_name, labels) = info("B");
        let schedule = BackupSchedule::default();
        metadata.schedules.push(ScheduleInfo {
            group_id,
            cluster_name,
            labels,
            schedule,
        });
        let (group_id, cluster_name, labels) = info("C");
        let time = SnapshotTime {
            taken_at: 1_800_000_000.0,
            from_id: false,
        };
        metadata.snapshots.push(SnapshotInfo {
            group_id,
            cluster_name,
            labels,
            time,
        });
        metadata.tags = Arc::from([]);
        collection
    }

    #[test]
    fn a_clusters_part_holds_its_own_series_and_details_only() {
        let collection = three_clusters();
        let c = collection.of_cluster(GROUP, "C").unwrap();
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.clusters[0].cluster, watched("C"));
        assert_eq!(c.expectations.len(), 1);
        assert_eq!(c.expectations[0].cluster_name, "C");
        assert_eq!(c.metadata.clusters.len(), 1);
        assert_eq!(c.metadata.clusters[0].details.state_name, "UPDATING");
        assert!(c.metadata.schedules.is_empty());
        assert_eq!(c.metadata.snapshots.len(), 1);
        assert_eq!(c.metadata.snapshots[0].time.taken_at, 1_800_000_000.0);
        assert!(c.discoveries.is_empty() && c.access.is_empty());

        let b = collection.of_cluster(GROUP, "B").unwrap();
        assert_eq!(b.clusters[0].cluster.cluster_name, "B");
        assert!(b.metadata.clusters.is_empty());
        assert_eq!(b.metadata.schedules.len(), 1);
        assert!(b.metadata.snapshots.is_empty());

        assert!(collection.of_cluster(GROUP, "D").is_none());
        assert!(collection.of_cluster("another", "A").is_none());
    }
}
