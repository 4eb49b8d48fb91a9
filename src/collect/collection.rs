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
    let is_before = |item: &T| {
        let (group_id, cluster_name) = of(item);
        (group_id.as_str(), cluster_name.as_str()) < key
    };
    let is_it = |item: &T| {
        let (group_id, cluster_name) = of(item);
        (group_id.as_str(), cluster_name.as_str()) == key
    };
    let start = items.partition_point(is_before);
    let found = items[start..].iter().take_while(|item| is_it(item));
    found.cloned().collect()
}
