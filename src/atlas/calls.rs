//! The calls the exporter makes to Atlas, besides listing export jobs (see `listing`): each
//! builds its path, asks through the client and parses what comes back.

use super::client::{AtlasClient, Body};
use super::deadline::Deadline;
use super::endpoint::Path;
use super::error::{AtlasError, Gone};
use super::model::{
    self, BackupSchedule, BodyError, ClusterDetails, ClusterItem, ClusterShape, ExportBucket,
    ExportJob, InvalidJob, Project, SnapshotTime,
};
use crate::config::ApiVersion;

/// A project's clusters as listed: the items with a name, and how many had none.
#[derive(Debug, Default)]
pub struct ClusterList {
    pub clusters: Vec<ClusterItem>,
    pub invalid: u64,
}

impl AtlasClient {
    /// Fetches one export job by id (the get-one endpoint). A job Atlas does not know is
    /// [`AtlasError::UnknownJob`]; a malformed one is `Ok(Err(..))`.
    pub async fn get_export_job(
        &self,
        group_id: &str,
        cluster: &str,
        job_id: &str,
        deadline: Deadline,
    ) -> Result<Result<ExportJob, InvalidJob>, AtlasError> {
        let call = format!("getting export job {job_id} of {group_id}/{cluster}");
        let path = Path::GetExportJob {
            group_id,
            cluster,
            job_id,
        };
        match self.get_unless_gone(path, &call, deadline).await? {
            Ok(body) => body.parse(call, model::parse_job),
            Err(error_code) => Err(AtlasError::UnknownJob {
                call,
                job_id: job_id.into(),
                error_code,
            }),
        }
    }

    /// Every cluster of a project, all pages; an item without a name is counted, not listed.
    pub async fn list_clusters(
        &self,
        group_id: &str,
        max_pages: u32,
        deadline: Deadline,
    ) -> Result<ClusterList, AtlasError> {
        let call = format!("listing the clusters of project {group_id}");
        let pages = self
            .pages(
                Path::ListClusters { group_id },
                &call,
                max_pages,
                deadline,
                model::parse_page::<serde_json::Value>,
            )
            .await?;
        let shape = match self.api_version() {
            ApiVersion::V2 => ClusterShape::V2,
            ApiVersion::V1 => ClusterShape::V1,
        };
        let mut list = ClusterList::default();
        for item in pages.iter().flat_map(|p| &p.results) {
            match ClusterItem::from_value(item, shape) {
                Some(cluster) => list.clusters.push(cluster),
                None => list.invalid += 1,
            }
        }
        Ok(list)
    }

    /// Every project the credential can see (`GET /groups`), all pages.
    pub async fn list_projects(
        &self,
        max_pages: u32,
        deadline: Deadline,
    ) -> Result<Vec<Project>, AtlasError> {
        let pages = self
            .pages(
                Path::ListProjects,
                "listing the projects",
                max_pages,
                deadline,
                model::parse_page::<Project>,
            )
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.results).collect())
    }

    /// A project's name (`GET /groups/{groupId}`); `None` when Atlas gives none.
    pub async fn get_project(
        &self,
        group_id: &str,
        deadline: Deadline,
    ) -> Result<Option<String>, AtlasError> {
        let call = format!("getting project {group_id}");
        let value = self
            .get_object(Path::GetProject { group_id }, &call, deadline)
            .await?;
        Ok(value
            .get("name")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned))
    }

    /// One cluster's details and tags (`GET /groups/{groupId}/clusters/{clusterName}`).
    pub async fn get_cluster(
        &self,
        group_id: &str,
        cluster: &str,
        deadline: Deadline,
    ) -> Result<ClusterDetails, AtlasError> {
        let call = format!("getting cluster {group_id}/{cluster}");
        let value = self
            .get_object(Path::GetCluster { group_id, cluster }, &call, deadline)
            .await?;
        Ok(ClusterDetails::from_value(&value))
    }

    /// A cluster's backup schedule: whether it exports automatically, where and how often.
    pub async fn get_backup_schedule(
        &self,
        group_id: &str,
        cluster: &str,
        deadline: Deadline,
    ) -> Result<BackupSchedule, AtlasError> {
        let call = format!("getting the backup schedule of {group_id}/{cluster}");
        let path = Path::GetBackupSchedule { group_id, cluster };
        let value = self.get_object(path, &call, deadline).await?;
        Ok(BackupSchedule::from_value(&value))
    }

    /// When a snapshot was taken (`createdAt`), at the sharded path when `sharded`. A snapshot
    /// Atlas no longer has (it expired: 404 for the snapshot, not for the cluster or project)
    /// gives the time its id carries.
    pub async fn get_snapshot(
        &self,
        group_id: &str,
        cluster: &str,
        snapshot_id: &str,
        sharded: bool,
        deadline: Deadline,
    ) -> Result<SnapshotTime, AtlasError> {
        let call = format!("getting snapshot {snapshot_id} of {group_id}/{cluster}");
        let path = match sharded {
            true => Path::GetShardedSnapshot {
                group_id,
                cluster,
                snapshot_id,
            },
            false => Path::GetSnapshot {
                group_id,
                cluster,
                snapshot_id,
            },
        };
        let body = match self.get_unless_gone(path, &call, deadline).await? {
            Ok(body) => body,
            Err(_) => {
                let taken_at = model::object_id_time(snapshot_id)
                    .ok_or(AtlasError::ExpiredSnapshot { call })?;
                return Ok(SnapshotTime {
                    taken_at,
                    from_id: true,
                });
            }
        };
        let taken_at = body.parse(call, |bytes| {
            let value = model::parse_object(bytes)?;
            let created = value.get("createdAt").and_then(serde_json::Value::as_str);
            created
                .and_then(model::parse_timestamp)
                .ok_or_else(|| BodyError::Incomplete("has no createdAt time".into()))
        })?;
        Ok(SnapshotTime {
            taken_at,
            from_id: false,
        })
    }

    /// A project's export buckets, all pages; a bucket without an `_id` is left out.
    pub async fn list_export_buckets(
        &self,
        group_id: &str,
        max_pages: u32,
        deadline: Deadline,
    ) -> Result<Vec<ExportBucket>, AtlasError> {
        let call = format!("listing the export buckets of project {group_id}");
        let pages = self
            .pages(
                Path::ListExportBuckets { group_id },
                &call,
                max_pages,
                deadline,
                model::parse_page::<ExportBucket>,
            )
            .await?;
        let buckets = pages.into_iter().flat_map(|p| p.results);
        Ok(buckets.filter(|b| b.id.is_some()).collect())
    }

    /// GETs one JSON object.
    async fn get_object(
        &self,
        path: Path<'_>,
        call: &str,
        deadline: Deadline,
    ) -> Result<serde_json::Value, AtlasError> {
        let body = self.get(path, "", call, deadline).await?;
        body.parse(call.to_owned(), model::parse_object)
    }

    /// GETs `path`; `Ok(Err(error_code))` when Atlas answers 404 for the resource itself, not for
    /// its project or cluster.
    async fn get_unless_gone(
        &self,
        path: Path<'_>,
        call: &str,
        deadline: Deadline,
    ) -> Result<Result<Body, Option<String>>, AtlasError> {
        match self.get(path, "", call, deadline).await {
            Err(AtlasError::Status {
                status: 404,
                error_code,
                ..
            }) if Gone::from_404(error_code.as_deref()) == Gone::Resource => Ok(Err(error_code)),
            result => result.map(Ok),
        }
    }
}
