//! What the info series show besides the export jobs: project names, cluster details and tags,
//! export buckets. Each is kept per project or cluster and read again once per
//! `metadata.refresh_interval` (see `refresh`), or put by the listings discovery makes anyway:
//! the project listing gives names, a cluster listing its clusters' details.

use std::collections::HashSet;
use std::sync::Arc;

use super::refresh::Refreshed;
use super::{Labels, WatchedCluster};
use crate::atlas::model::{ClusterDetails, ExportBucket};
use crate::atlas::{AtlasClient, Deadline};
use crate::config::{ClusterTag, Config, MetadataConfig};

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
}

#[derive(Debug)]
pub struct ProjectInfo {
    pub group_id: String,
    pub name: String,
    pub labels: Labels,
}

#[derive(Debug)]
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
    details: Refreshed<(String, String), ClusterDetails>,
    buckets: Refreshed<String, Vec<ExportBucket>>,
}

impl Metadata {
    pub(super) fn new(config: &Config, client: AtlasClient) -> Metadata {
        let metadata = config.metadata.clone();
        let (interval, clock) = (metadata.refresh_interval, client.clock().clone());
        Metadata {
            tags: Arc::from(metadata.cluster_tags.clone()),
            names: Refreshed::new("the project's name", interval, clock.clone()),
            details: Refreshed::new("the cluster's details", interval, clock.clone()),
            buckets: Refreshed::new("the project's export buckets", interval, clock),
            config: metadata,
            client,
            max_pages: config.export_jobs.max_pages,
        }
    }

    /// Keeps a project's name from the project listing.
    pub(super) fn put_project_name(&self, group_id: &str, name: Option<String>) {
        if self.config.projects {
            self.names.put(group_id.to_owned(), name);
        }
    }

    /// Keeps a cluster's details from its project's cluster listing.
    pub(super) fn put_cluster(&self, group_id: &str, cluster: &str, details: ClusterDetails) {
        if self.config.clusters {
            let key = (group_id.to_owned(), cluster.to_owned());
            self.details.put(key, details);
        }
    }

    /// Reads again what is due for these projects and these clusters (the configured ones:
    /// discovered clusters get theirs from discovery's listing), each lookup concurrently.
    pub(super) async fn refresh(
        &self,
        group_ids: &[String],
        configured: &[(String, String)],
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
        tokio::join!(names, details, buckets);
    }

    /// What is known of `clusters` and their projects, without calling Atlas. With
    /// `projects: false` the project-level series (names, buckets) are left out.
    pub(super) fn report(&self, clusters: &[WatchedCluster], projects: bool) -> MetadataReport {
        let mut report = MetadataReport {
            tags: self.tags.clone(),
            ..MetadataReport::default()
        };
        for cluster in clusters {
            let key = (cluster.group_id.clone(), cluster.cluster_name.clone());
            if let Some(details) = self.details.get(&key) {
                report.clusters.push(ClusterInfo {
                    group_id: key.0,
                    cluster_name: key.1,
                    labels: cluster.labels.clone(),
                    details,
                });
            }
        }
        if !projects {
            return report;
        }
        let mut seen = HashSet::new();
        for cluster in clusters {
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
        self.details
            .retain(|(g, c)| watched.contains(&(g.as_str(), c.as_str())));
    }
}
