//! The one table of Atlas endpoints every call goes through: its `endpoint` label, path, API
//! version and the role Atlas requires; and [`Path`], a call's path with exactly its ids.

/// The Atlas endpoints the exporter calls: every call goes through this table, which gives its
/// `endpoint` label, its path, the API version it asks for on v2, and the role Atlas requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    OAuthToken,
    ListProjects,
    GetProject,
    ListClusters,
    GetCluster,
    ListExportJobs,
    GetExportJob,
    ListExportBuckets,
    GetBackupSchedule,
    /// A replica set's snapshot.
    GetSnapshot,
    /// A sharded cluster's snapshot: another path, the same `endpoint` label.
    GetShardedSnapshot,
}

/// One row of the endpoint table.
pub struct Route {
    /// The value of the `endpoint` label.
    pub label: &'static str,
    /// The path under `/api/atlas/v2` (and `/api/atlas/v1.0`), `{name}` for each id a
    /// [`Path`] fills in; `None` for the OAuth token, which is outside the API.
    pub path: Option<&'static str>,
    /// The version date sent on v2: the newest one the specification lists for the path without
    /// a sunset date.
    pub version: &'static str,
    /// The role the specification says the credential needs (`None`: any).
    pub role: Option<&'static str>,
}

impl Endpoint {
    /// Every endpoint, in the table's order.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::OAuthToken,
        Endpoint::ListProjects,
        Endpoint::GetProject,
        Endpoint::ListClusters,
        Endpoint::GetCluster,
        Endpoint::ListExportJobs,
        Endpoint::GetExportJob,
        Endpoint::ListExportBuckets,
        Endpoint::GetBackupSchedule,
        Endpoint::GetSnapshot,
        Endpoint::GetShardedSnapshot,
    ];

    /// The endpoint's row of the table.
    pub const fn route(self) -> Route {
        // 2024-08-05 is the cluster listing's newest version: 2023-01-01 and 2023-02-01 are sunset
        // on 2027-07-01, and Atlas refuses them for a project holding a cluster with
        // asymmetric shards; the same holds for one cluster. Export jobs exist in 2023-01-01
        // only; export buckets' 2023-01-01 is sunset on 2027-07-01 too.
        let (label, path, version, role) = match self {
            Endpoint::OAuthToken => ("oauth_token", None, "", None),
            Endpoint::ListProjects => ("list_projects", Some("/groups"), "2023-01-01", None),
            Endpoint::GetProject => (
                "get_project",
                Some("/groups/{groupId}"),
                "2023-01-01",
                Some("Project Read Only"),
            ),
            Endpoint::ListClusters => (
                "list_clusters",
                Some("/groups/{groupId}/clusters"),
                "2024-08-05",
                Some("Project Read Only"),
            ),
            Endpoint::GetCluster => (
                "get_cluster",
                Some("/groups/{groupId}/clusters/{clusterName}"),
                "2024-08-05",
                Some("Project Read Only"),
            ),
            Endpoint::ListExportJobs => (
                "list_export_jobs",
                Some("/groups/{groupId}/clusters/{clusterName}/backup/exports"),
                "2023-01-01",
                Some("Project Backup Manager"),
            ),
            Endpoint::GetExportJob => (
                "get_export_job",
                Some("/groups/{groupId}/clusters/{clusterName}/backup/exports/{exportId}"),
                "2023-01-01",
                Some("Project Backup Manager"),
            ),
            Endpoint::ListExportBuckets => (
                "list_export_buckets",
                Some("/groups/{groupId}/backup/exportBuckets"),
                "2024-05-30",
                Some("Project Read Only"),
            ),
            // The schedule's 2023-01-01 is sunset on 2027-07-01; snapshots exist in 2023-01-01 only.
            Endpoint::GetBackupSchedule => (
                "get_backup_schedule",
                Some("/groups/{groupId}/clusters/{clusterName}/backup/schedule"),
                "2024-08-05",
                Some("Project Read Only"),
            ),
            Endpoint::GetSnapshot => (
                "get_snapshot",
                Some("/groups/{groupId}/clusters/{clusterName}/backup/snapshots/{snapshotId}"),
                "2023-01-01",
                Some("Project Read Only"),
            ),
            Endpoint::GetShardedSnapshot => (
                "get_snapshot",
                Some(
                    "/groups/{groupId}/clusters/{clusterName}/backup/snapshots/shardedCluster/{snapshotId}",
                ),
                "2023-01-01",
                Some("Project Read Only"),
            ),
        };
        Route {
            label,
            path,
            version,
            role,
        }
    }

    /// The value of the `endpoint` label.
    pub const fn label(self) -> &'static str {
        self.route().label
    }

    /// The media type that selects the endpoint's version on v2.
    pub fn media_type(self) -> String {
        format!("application/vnd.atlas.{}+json", self.route().version)
    }
}

/// One call's path, with exactly the ids its endpoint takes: a call cannot be built with an id
/// too many or too few.
///
/// ```
/// use atlas_backup_exporter::atlas::{Endpoint, Path};
///
/// let path = Path::GetExportJob { group_id: "5f1a2b3c4d5e6f7a8b9c0d1e", cluster: "Cluster0", job_id: "j" };
/// assert_eq!(path.endpoint(), Endpoint::GetExportJob);
/// assert_eq!(path.to_string(), "/groups/5f1a2b3c4d5e6f7a8b9c0d1e/clusters/Cluster0/backup/exports/j");
/// ```
///
/// An id missing does not compile:
///
/// ```compile_fail,E0063
/// use atlas_backup_exporter::atlas::Path;
///
/// let path = Path::GetExportJob { group_id: "5f1a2b3c4d5e6f7a8b9c0d1e", cluster: "Cluster0" };
/// ```
///
/// Nor does an id too many:
///
/// ```compile_fail,E0559
/// use atlas_backup_exporter::atlas::Path;
///
/// let path = Path::GetCluster { group_id: "5f1a2b3c4d5e6f7a8b9c0d1e", cluster: "Cluster0", job_id: "j" };
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path<'a> {
    ListProjects,
    GetProject {
        group_id: &'a str,
    },
    ListClusters {
        group_id: &'a str,
    },
    GetCluster {
        group_id: &'a str,
        cluster: &'a str,
    },
    ListExportJobs {
        group_id: &'a str,
        cluster: &'a str,
    },
    GetExportJob {
        group_id: &'a str,
        cluster: &'a str,
        job_id: &'a str,
    },
    ListExportBuckets {
        group_id: &'a str,
    },
    GetBackupSchedule {
        group_id: &'a str,
        cluster: &'a str,
    },
    GetSnapshot {
        group_id: &'a str,
        cluster: &'a str,
        snapshot_id: &'a str,
    },
    GetShardedSnapshot {
        group_id: &'a str,
        cluster: &'a str,
        snapshot_id: &'a str,
    },
}

impl<'a> Path<'a> {
    /// The endpoint the path belongs to.
    pub const fn endpoint(self) -> Endpoint {
        match self {
            Path::ListProjects => Endpoint::ListProjects,
            Path::GetProject { .. } => Endpoint::GetProject,
            Path::ListClusters { .. } => Endpoint::ListClusters,
            Path::GetCluster { .. } => Endpoint::GetCluster,
            Path::ListExportJobs { .. } => Endpoint::ListExportJobs,
            Path::GetExportJob { .. } => Endpoint::GetExportJob,
            Path::ListExportBuckets { .. } => Endpoint::ListExportBuckets,
            Path::GetBackupSchedule { .. } => Endpoint::GetBackupSchedule,
            Path::GetSnapshot { .. } => Endpoint::GetSnapshot,
            Path::GetShardedSnapshot { .. } => Endpoint::GetShardedSnapshot,
        }
    }

    /// The project the call is in: Atlas meters a project's calls together.
    pub const fn group_id(self) -> Option<&'a str> {
        match self {
            Path::ListProjects => None,
            Path::GetProject { group_id }
            | Path::ListClusters { group_id }
            | Path::ListExportBuckets { group_id }
            | Path::GetCluster { group_id, .. }
            | Path::ListExportJobs { group_id, .. }
            | Path::GetExportJob { group_id, .. }
            | Path::GetBackupSchedule { group_id, .. }
            | Path::GetSnapshot { group_id, .. }
            | Path::GetShardedSnapshot { group_id, .. } => Some(group_id),
        }
    }

    /// The cluster the call is about, if it is about one.
    pub const fn cluster(self) -> Option<&'a str> {
        match self {
            Path::GetCluster { cluster, .. }
            | Path::ListExportJobs { cluster, .. }
            | Path::GetExportJob { cluster, .. }
            | Path::GetBackupSchedule { cluster, .. }
            | Path::GetSnapshot { cluster, .. }
            | Path::GetShardedSnapshot { cluster, .. } => Some(cluster),
            Path::ListProjects
            | Path::GetProject { .. }
            | Path::ListClusters { .. }
            | Path::ListExportBuckets { .. } => None,
        }
    }

    /// The id the table's placeholder `{name}` stands for.
    fn id(self, name: &str) -> Option<&'a str> {
        match (name, self) {
            ("groupId", _) => self.group_id(),
            ("clusterName", _) => self.cluster(),
            ("exportId", Path::GetExportJob { job_id, .. }) => Some(job_id),
            (
                "snapshotId",
                Path::GetSnapshot { snapshot_id, .. }
                | Path::GetShardedSnapshot { snapshot_id, .. },
            ) => Some(snapshot_id),
            _ => None,
        }
    }
}

/// The path under the API root: the endpoint's template from the table, each placeholder
/// filled with its id, percent-encoded.
impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let template = self.endpoint().route().path.unwrap_or_default();
        for part in template.split('/').filter(|p| !p.is_empty()) {
            let name = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
            match name.and_then(|name| self.id(name)) {
                Some(id) => write!(f, "/{}", encode(id))?,
                None => write!(f, "/{part}")?,
            }
        }
        Ok(())
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved characters. Project
/// ids and cluster names never need it; job ids are opaque strings from the config, so they might.
fn encode(segment: &str) -> std::borrow::Cow<'_, str> {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, UNRESERVED).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_only_when_needed() {
        assert_eq!(encode("Cluster-0"), "Cluster-0");
        assert_eq!(encode("{BUCKET-ID}"), "%7BBUCKET-ID%7D");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é%"), "%C3%A9%25");
    }

    #[test]
    fn endpoint_labels_are_the_documented_ones() {
        let labels: Vec<_> = Endpoint::ALL.into_iter().map(Endpoint::label).collect();
        assert_eq!(
            labels,
            [
                "oauth_token",
                "list_projects",
                "get_project",
                "list_clusters",
                "get_cluster",
                "list_export_jobs",
                "get_export_job",
                "list_export_buckets",
                "get_backup_schedule",
                "get_snapshot",
                "get_snapshot",
            ]
        );
    }

    #[test]
    fn every_path_fills_every_placeholder_of_its_endpoint() {
        let (group_id, cluster, id) = ("g", "c", "i");
        let paths = [
            Path::ListProjects,
            Path::GetProject { group_id },
            Path::ListClusters { group_id },
            Path::GetCluster { group_id, cluster },
            Path::ListExportJobs { group_id, cluster },
            Path::GetExportJob {
                group_id,
                cluster,
                job_id: id,
            },
            Path::ListExportBuckets { group_id },
            Path::GetBackupSchedule { group_id, cluster },
            Path::GetSnapshot {
                group_id,
                cluster,
                snapshot_id: id,
            },
            Path::GetShardedSnapshot {
                group_id,
                cluster,
                snapshot_id: id,
            },
        ];
        let endpoints: Vec<_> = paths.iter().map(|p| p.endpoint()).collect();
        assert_eq!(endpoints, Endpoint::ALL[1..]);
        for path in paths {
            let template = path.endpoint().route().path.unwrap();
            let expected = template
                .replace("{groupId}", "g")
                .replace("{clusterName}", "c")
                .replace("{exportId}", "i")
                .replace("{snapshotId}", "i");
            assert_eq!(path.to_string(), expected);
        }
    }

    #[test]
    fn paths_fill_and_encode_their_ids() {
        assert_eq!(Path::ListProjects.to_string(), "/groups");
        let job = Path::GetExportJob {
            group_id: "5f1a2b3c4d5e6f7a8b9c0d1e",
            cluster: "Cluster0",
            job_id: "{BUCKET-ID}",
        };
        assert_eq!(
            job.to_string(),
            "/groups/5f1a2b3c4d5e6f7a8b9c0d1e/clusters/Cluster0/backup/exports/%7BBUCKET-ID%7D"
        );
        let sharded = Path::GetShardedSnapshot {
            group_id: "g",
            cluster: "c d",
            snapshot_id: "s",
        };
        assert_eq!(
            sharded.to_string(),
            "/groups/g/clusters/c%20d/backup/snapshots/shardedCluster/s"
        );
        assert_eq!(
            Endpoint::ListClusters.media_type(),
            "application/vnd.atlas.2024-08-05+json"
        );
    }
}
