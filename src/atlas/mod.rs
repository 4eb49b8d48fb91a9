//! The Atlas Administration API client: authentication (digest or OAuth), the calls the exporter
//! makes, paging, and the models of what comes back.

mod access;
mod body;
mod client;
mod endpoint;
mod error;
pub mod model;
mod observer;
mod ratelimit;

pub use client::{AtlasClient, Body, Deadline, Endpoint, Route};
pub use error::AtlasError;
use futures_util::future::join_all;
use model::{
    BackupSchedule, BodyError, ClusterDetails, ClusterItem, ClusterShape, ExportBucket, ExportJob,
    InvalidJob, Page, Project, SnapshotTime,
};
pub use observer::{CallObserver, CallOutcome};

use crate::config::ApiVersion;

/// A project's clusters as listed: the items with a name, and how many had none.
#[derive(Debug, Default)]
pub struct ClusterList {
    pub clusters: Vec<ClusterItem>,
    pub invalid: u64,
}

/// Items per page on every list call: Atlas's maximum, so a listing costs as few calls as it can.
pub const ITEMS_PER_PAGE: usize = 500;

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
        let segments = [group_id, cluster, job_id];
        let body = match self
            .get(Endpoint::GetExportJob, &segments, "", &call, deadline)
            .await
        {
            Ok(body) => body,
            Err(AtlasError::Status {
                status: 404,
                error_code,
                ..
            }) if error_code.as_deref() != Some("CLUSTER_NOT_FOUND")
                && error_code.as_deref() != Some("GROUP_NOT_FOUND") =>
            {
                return Err(AtlasError::UnknownJob {
                    call,
                    job_id: job_id.into(),
                    error_code,
                });
            }
            Err(e) => return Err(e),
        };
        model::parse_job(&body.bytes).map_err(|source| AtlasError::Body {
            call,
            content_type: body.content_type,
            source,
        })
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
                Endpoint::ListClusters,
                &[group_id],
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
                Endpoint::ListProjects,
                &[],
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
            .get_object(Endpoint::GetProject, &[group_id], &call, deadline)
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
            .get_object(Endpoint::GetCluster, &[group_id, cluster], &call, deadline)
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
        let segments = [group_id, cluster];
        let value = self
            .get_object(Endpoint::GetBackupSchedule, &segments, &call, deadline)
            .await?;
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
        let endpoint = match sharded {
            true => Endpoint::GetShardedSnapshot,
            false => Endpoint::GetSnapshot,
        };
        let segments = [group_id, cluster, snapshot_id];
        let body = match self.get(endpoint, &segments, "", &call, deadline).await {
            Ok(body) => body,
            Err(AtlasError::Status {
                status: 404,
                error_code,
                ..
            }) if error_code.as_deref() != Some("CLUSTER_NOT_FOUND")
                && error_code.as_deref() != Some("GROUP_NOT_FOUND") =>
            {
                let taken_at = model::object_id_time(snapshot_id)
                    .ok_or(AtlasError::ExpiredSnapshot { call })?;
                return Ok(SnapshotTime {
                    taken_at,
                    from_id: true,
                });
            }
            Err(error) => return Err(error),
        };
        let taken_at = model::parse_object(&body.bytes).and_then(|value| {
            let created = value.get("createdAt").and_then(serde_json::Value::as_str);
            created
                .and_then(model::parse_timestamp)
                .ok_or_else(|| BodyError::Incomplete("has no createdAt time".into()))
        });
        match taken_at {
            Ok(taken_at) => Ok(SnapshotTime {
                taken_at,
                from_id: false,
            }),
            Err(source) => Err(AtlasError::Body {
                call,
                content_type: body.content_type,
                source,
            }),
        }
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
                Endpoint::ListExportBuckets,
                &[group_id],
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
        endpoint: Endpoint,
        segments: &[&str],
        call: &str,
        deadline: Deadline,
    ) -> Result<serde_json::Value, AtlasError> {
        let body = self.get(endpoint, segments, "", call, deadline).await?;
        model::parse_object(&body.bytes).map_err(|source| AtlasError::Body {
            call: call.to_owned(),
            content_type: body.content_type,
            source,
        })
    }

    /// Fetches a listing page by page. The first page says how many there are (`totalCount`);
    /// the rest of those are fetched at once, and paging goes on while the last page is full,
    /// since `totalCount` is only an estimate.
    async fn pages<T>(
        &self,
        endpoint: Endpoint,
        segments: &[&str],
        call: &str,
        max_pages: u32,
        deadline: Deadline,
        parse: fn(&[u8], usize) -> Result<Page<T>, BodyError>,
    ) -> Result<Vec<Page<T>>, AtlasError> {
        let fetch = |page_num| async move {
            let page = self
                .fetch_page(endpoint, segments, call, page_num, deadline)
                .await?;
            page.parse(parse)
        };
        let first = fetch(1).await?;
        page_through(vec![first], max_pages, call, fetch).await
    }
}

/// Completes a listing from the pages fetched so far: the pages the first page's `totalCount`
/// announces at once, then on while the last page is full, since `totalCount` is only an
/// estimate; never past `max_pages`.
pub(crate) async fn page_through<T, F, Fut>(
    mut pages: Vec<Page<T>>,
    max_pages: u32,
    call: &str,
    fetch: F,
) -> Result<Vec<Page<T>>, AtlasError>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, AtlasError>>,
{
    let expected = expected_pages(&pages);
    if is_full(&pages) && expected > pages.len() as u64 {
        let next = pages.len() as u32 + 1;
        let last = expected.min(u64::from(max_pages)) as u32;
        for page in join_all((next..=last).map(&fetch)).await {
            pages.push(page?);
        }
    }
    while is_full(&pages) {
        if pages.len() as u32 >= max_pages {
            return Err(AtlasError::TooManyPages {
                call: call.into(),
                max_pages,
            });
        }
        pages.push(fetch(pages.len() as u32 + 1).await?);
    }
    Ok(pages)
}

/// Pages the listing has according to `totalCount` (at least the ones fetched).
pub(crate) fn expected_pages<T>(pages: &[Page<T>]) -> u64 {
    pages
        .first()
        .and_then(|p| p.total_count)
        .map_or(1, |total| total.div_ceil(ITEMS_PER_PAGE as u64))
        .max(pages.len() as u64)
}

impl AtlasClient {
    /// Fetches page `page_num` of a listing, leaving it unparsed.
    pub(crate) async fn fetch_page(
        &self,
        endpoint: Endpoint,
        segments: &[&str],
        call: &str,
        page_num: u32,
        deadline: Deadline,
    ) -> Result<FetchedPage, AtlasError> {
        let query = format!("?pageNum={page_num}&itemsPerPage={ITEMS_PER_PAGE}");
        let call = format!("{call} (page {page_num})");
        let body = self
            .get(endpoint, segments, &query, &call, deadline)
            .await?;
        Ok(FetchedPage { body, call })
    }
}

/// A page of a listing as Atlas sent it, not parsed yet.
pub(crate) struct FetchedPage {
    body: Body,
    /// The call, for errors.
    call: String,
}

impl FetchedPage {
    /// A 128-bit digest of the body: two pages with the same digest hold the same bytes.
    pub(crate) fn digest(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&self.body.bytes)
    }

    pub(crate) fn parse<T>(
        self,
        parse: fn(&[u8], usize) -> Result<Page<T>, BodyError>,
    ) -> Result<Page<T>, AtlasError> {
        parse(&self.body.bytes, ITEMS_PER_PAGE).map_err(|source| AtlasError::Body {
            call: self.call,
            content_type: self.body.content_type,
            source,
        })
    }
}

pub(crate) fn is_full<T>(pages: &[Page<T>]) -> bool {
    pages
        .last()
        .is_some_and(|p| p.results.len() >= ITEMS_PER_PAGE)
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
}
