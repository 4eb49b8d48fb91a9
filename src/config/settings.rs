//! The checked config: the plain structs the rest of the exporter trusts, their defaults, and the
//! label names a static label may not take.

use std::time::Duration;

use super::credentials::Credentials;
use super::duration::DAY;

/// Where Atlas lives unless the config says otherwise (Atlas for Government and test servers differ).
pub const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";

/// A full page of 500 export jobs is about 300 KiB: this leaves room for fifty times that.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 << 20;

/// The prefix of the labels `atlas_backup_export_cluster_tags` makes of Atlas's tag keys; a static
/// label may not start with it.
pub const TAG_LABEL_PREFIX: &str = "tag_";

/// The whole config file, checked: every value here is usable as it is.
#[derive(Clone, Debug)]
pub struct Config {
    /// How to reach Atlas and sign in.
    pub atlas: AtlasConfig,
    /// The projects to watch, in file order: never empty, each `group_id` once.
    pub targets: Vec<Target>,
    pub export_jobs: ExportJobsConfig,
    pub collection: CollectionConfig,
    pub discovery: DiscoveryConfig,
    pub metadata: MetadataConfig,
}

/// How to reach the Atlas Administration API, and how hard to lean on it.
#[derive(Clone, Debug)]
pub struct AtlasConfig {
    /// `http://` or `https://` with a host, without a trailing `/`, so paths can be appended as they are.
    pub base_url: String,
    pub api_version: ApiVersion,
    /// Bound on one HTTP request; never zero.
    pub request_timeout: Duration,
    /// Bound on requests in flight for the whole process; at least 1.
    pub max_concurrent_requests: usize,
    /// Bound on the body of one answer, counted after decompression; at least 1.
    pub max_response_size: u64,
    /// `None` when `atlas.auth` is absent: [`crate::config::resolve_credentials`] then looks at
    /// the environment.
    pub auth: Option<Credentials>,
}

impl Default for AtlasConfig {
    fn default() -> Self {
        AtlasConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: ApiVersion::V2,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 8,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            auth: None,
        }
    }
}

/// Which generation of the Administration API to call: paths and `Accept` header differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/api/atlas/v1.0`, `Accept: application/json`.
    V1,
    /// `/api/atlas/v2` with the versioned `Accept` header (the default).
    V2,
}

impl ApiVersion {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        }
    }
}

/// One Atlas project (a "group" in the API) to watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// 24 hexadecimal digits, lowercase as Atlas writes them.
    pub group_id: String,
    /// `None` means every cluster of the project, found by listing them.
    pub clusters: Option<Vec<ListedCluster>>,
    /// Static labels for every series of this target, sorted by name so output is stable.
    pub labels: Vec<(String, String)>,
    /// `expect_export_every` on the target, for its clusters (discovered ones too); `None`:
    /// not set, `Some(ZERO)`: the configured expectation removed for them.
    pub expect_export_every: Option<Duration>,
}

/// A cluster listed under a target's `clusters` (as opposed to one found by discovery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedCluster {
    pub name: String,
    /// `None`: every export job of the cluster (list endpoint). `Some`: only these jobs (get-one endpoint);
    /// never empty.
    pub export_job_ids: Option<Vec<String>>,
    /// `expect_export_every` on the cluster entry: wins over the target's; `Some(ZERO)` removes
    /// the configured expectation. Never set together with `export_job_ids`.
    pub expect_export_every: Option<Duration>,
}

/// Which export jobs are fetched and which get per-job series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportJobsConfig {
    /// Jobs created within this age get per-job series; `Duration::ZERO` means no age limit.
    pub max_age: Duration,
    /// Hard bound on pages fetched for one cluster in one collection; at least 1.
    pub max_pages: u32,
    /// Cap on jobs that get per-job series only for being within `max_age`; 0 means no cap.
    pub max_per_cluster: usize,
    /// How often clusters without an auto-export schedule are expected to export, unless their
    /// target or entry says otherwise; zero: no expectation.
    pub expect_export_every: Duration,
}

impl Default for ExportJobsConfig {
    fn default() -> Self {
        ExportJobsConfig {
            max_age: Duration::from_millis(7 * DAY),
            max_pages: 100,
            max_per_cluster: 50,
            expect_export_every: Duration::ZERO,
        }
    }
}

/// How one collection (the Atlas calls behind a scrape) is bounded and shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionConfig {
    /// Deadline when Prometheus sends no `X-Prometheus-Scrape-Timeout-Seconds`; never zero.
    /// With `interval`, the bound of each background collection when `timeout_is_set`.
    pub timeout: Duration,
    /// Whether the file sets `timeout` (rather than leaving the default).
    pub timeout_is_set: bool,
    /// Collect in the background once per this, and answer scrapes from the newest collection;
    /// zero collects on each scrape. Never below a second otherwise.
    pub interval: Duration,
    /// Taken off Prometheus's timeout header, to leave time to answer.
    pub timeout_offset: Duration,
    /// How long a finished collection is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// `false`: `/metrics` serves only the exporter's own metrics (for `/probe` set-ups).
    pub on_metrics: bool,
}

impl Default for CollectionConfig {
    fn default() -> Self {
        CollectionConfig {
            timeout: Duration::from_secs(30),
            timeout_is_set: false,
            interval: Duration::ZERO,
            timeout_offset: Duration::from_millis(500),
            cache_ttl: Duration::ZERO,
            on_metrics: true,
        }
    }
}

impl CollectionConfig {
    /// Whether collections run in the background (`interval` is set).
    pub fn in_background(&self) -> bool {
        !self.interval.is_zero()
    }

    /// The bound of one background collection: `timeout` when the file sets it, else the
    /// interval, so that a collection ends by the time the next is due.
    pub fn background_timeout(&self) -> Duration {
        if self.timeout_is_set {
            self.timeout
        } else {
            self.interval
        }
    }
}

/// How clusters are found for targets without a `clusters` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// How long a discovered cluster list is reused; zero lists on every scrape.
    pub interval: Duration,
    /// Also watch every cluster of every project the credential can see.
    pub all_projects: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            interval: Duration::from_secs(5 * 60),
            all_projects: false,
        }
    }
}

/// The names and details read besides the export jobs (the `*_info` and `cluster_tags` series), and
/// how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataConfig {
    /// How long a looked-up name, cluster detail, tag or bucket is reused; never zero.
    pub refresh_interval: Duration,
    /// Project names (`atlas_backup_export_project_info`).
    pub projects: bool,
    /// Cluster details and tags (`cluster_info`, `cluster_tags`).
    pub clusters: bool,
    /// Export buckets (`bucket_info`).
    pub buckets: bool,
    /// Each watched cluster's backup schedule (`auto_export_*`).
    pub schedules: bool,
    /// The time of the snapshot each cluster's newest successful export holds
    /// (`last_success_snapshot_timestamp_seconds`).
    pub snapshots: bool,
    /// The Atlas tag keys `cluster_tags` carries, in file order, each with its label name.
    pub cluster_tags: Vec<ClusterTag>,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            refresh_interval: Duration::from_secs(3600),
            projects: true,
            clusters: true,
            buckets: true,
            schedules: true,
            snapshots: true,
            cluster_tags: Vec::new(),
        }
    }
}

/// An Atlas resource tag key allowed onto `atlas_backup_export_cluster_tags`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTag {
    /// The key as Atlas spells it.
    pub key: String,
    /// `tag_` and the key with every character outside `[a-zA-Z0-9_]` made `_`.
    pub label: String,
}

impl ClusterTag {
    /// The tag key and its label name.
    pub fn new(key: &str) -> ClusterTag {
        let sanitised: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        ClusterTag {
            key: key.to_owned(),
            label: format!("{TAG_LABEL_PREFIX}{sanitised}"),
        }
    }
}
