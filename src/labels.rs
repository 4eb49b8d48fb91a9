//! Every label name the exporter writes, in one table: the renderer and the exporter's own
//! metrics take their names from here, and the config derives from it the names a target's static
//! `labels` may not take ([`reserved`]), so the two cannot drift apart. A name the metrics no
//! longer write stays in the table as [`Use::Retired`]: a config that was refused for using it
//! stays refused, rather than starting to mean something else on a dashboard that still joins on
//! the old label.

/// The project's id, on every per-project and per-cluster series.
pub const GROUP_ID: &str = "group_id";
/// The cluster's name, on every per-cluster series.
pub const CLUSTER_NAME: &str = "cluster_name";
/// The export job's id, on every per-job series.
pub const EXPORT_JOB_ID: &str = "export_job_id";
/// An export job's state (`atlas_backup_export_job_state`, `atlas_backup_export_jobs`).
pub const STATE: &str = "state";
pub const SNAPSHOT_ID: &str = "snapshot_id";
pub const EXPORT_BUCKET_ID: &str = "export_bucket_id";
/// Auto-export's frequency (`atlas_backup_export_auto_export_info`).
pub const FREQUENCY_TYPE: &str = "frequency_type";
/// Atlas's error code of a failed job (`atlas_backup_export_job_failure_info`).
pub const ERROR_CODE: &str = "error_code";
/// The Atlas call of the exporter's own request metrics.
pub const ENDPOINT: &str = "endpoint";
/// An HTTP status code, of Atlas's answers or of the exporter's own.
pub const CODE: &str = "code";
pub const VERSION: &str = "version";
pub const REVISION: &str = "revision";
/// The exporter's own HTTP handler.
pub const HANDLER: &str = "handler";
/// Why a cluster is not watched, or why a collection failed.
pub const REASON: &str = "reason";
pub const GROUP_NAME: &str = "group_name";
pub const CLUSTER_TYPE: &str = "cluster_type";
pub const MONGODB_VERSION: &str = "mongodb_version";
/// Where a cluster's expected export interval comes from.
pub const SOURCE: &str = "source";
/// What a cluster's next due time is reckoned from.
pub const BASIS: &str = "basis";
pub const BUCKET_NAME: &str = "bucket_name";
pub const CLOUD_PROVIDER: &str = "cloud_provider";

/// Why a name is in the [`TABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// The exporter writes it on some series.
    Written,
    /// The exporter wrote it once (see CHANGELOG.md); no series has it any more.
    Retired,
    /// Prometheus sets it on every series of a target.
    Prometheus,
}

/// Every label name the exporter writes, wrote, or finds set by Prometheus.
pub const TABLE: &[(&str, Use)] = &[
    (GROUP_ID, Use::Written),
    (CLUSTER_NAME, Use::Written),
    (EXPORT_JOB_ID, Use::Written),
    (STATE, Use::Written),
    (SNAPSHOT_ID, Use::Written),
    (EXPORT_BUCKET_ID, Use::Written),
    (FREQUENCY_TYPE, Use::Written),
    (ERROR_CODE, Use::Written),
    (ENDPOINT, Use::Written),
    (CODE, Use::Written),
    (VERSION, Use::Written),
    (REVISION, Use::Written),
    (HANDLER, Use::Written),
    (REASON, Use::Written),
    (GROUP_NAME, Use::Written),
    (CLUSTER_TYPE, Use::Written),
    (MONGODB_VERSION, Use::Written),
    (SOURCE, Use::Written),
    (BASIS, Use::Written),
    (BUCKET_NAME, Use::Written),
    (CLOUD_PROVIDER, Use::Written),
    // `atlas_backup_export_cluster_info` had both until `paused` moved to a series of its own
    // and `state_name` went (it churned series at every cluster update).
    ("state_name", Use::Retired),
    ("paused", Use::Retired),
    ("job", Use::Prometheus),
    ("instance", Use::Prometheus),
];

/// The names a target's static `labels` may not take: every name of the [`TABLE`].
pub fn reserved() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(name, _)| *name)
}

/// Whether `name` is [`reserved`].
pub fn is_reserved(name: &str) -> bool {
    reserved().any(|reserved| reserved == name)
}

/// The names the exporter writes today.
pub fn written() -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .filter(|(_, use_)| *use_ == Use::Written)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_in_the_table_once() {
        let mut names: Vec<&str> = reserved().collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "{names:?}");
    }

    #[test]
    fn retired_and_prometheus_names_stay_reserved() {
        for name in ["state_name", "paused", "job", "instance", GROUP_ID, REASON] {
            assert!(is_reserved(name), "{name}");
        }
        assert!(!written().any(|name| name == "paused"));
        assert!(!is_reserved("env"));
    }
}
