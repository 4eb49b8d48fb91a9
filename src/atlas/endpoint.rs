//! The one table of Atlas endpoints every call goes through: its `endpoint` label, path, API
//! version and the role Atlas requires.

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
    /// The path under `/api/atlas/v2` (and `/api/atlas/v1.0`), `{name}` for each segment the
    /// call fills in, in order; `None` for the OAuth token, which is outside the API.
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

    /// The path under the API root with `segments` filled in, each percent-encoded. A segment
    /// too many or too few is a bug of the caller: the path then keeps its placeholder, and
    /// Atlas answers 404.
    pub fn path(self, segments: &[&str]) -> String {
        let template = self.route().path.unwrap_or_default();
        let mut path = String::with_capacity(template.len() + 64);
        let mut segments = segments.iter();
        for part in template.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            let segment = part.starts_with('{').then(|| segments.next()).flatten();
            match segment {
                Some(segment) => path.push_str(&encode(segment)),
                None => path.push_str(part),
            }
        }
        debug_assert!(segments.next().is_none(), "{template}: too many segments");
        path
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
    fn paths_fill_and_encode_their_segments() {
        assert_eq!(Endpoint::ListProjects.path(&[]), "/groups");
        assert_eq!(
            Endpoint::GetExportJob.path(&["5f1a2b3c4d5e6f7a8b9c0d1e", "Cluster0", "{BUCKET-ID}"]),
            "/groups/5f1a2b3c4d5e6f7a8b9c0d1e/clusters/Cluster0/backup/exports/%7BBUCKET-ID%7D"
        );
        assert_eq!(
            Endpoint::ListClusters.media_type(),
            "application/vnd.atlas.2024-08-05+json"
        );
    }
}
