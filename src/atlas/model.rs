//! What Atlas sends back, parsed leniently: a page is accepted if it is a page, and each job in it
//! stands or falls on its own, so one malformed job never hides the others.

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod job;

pub use job::{AtlasId, ExportJob, IdText, JobState, StateReason};

/// The deepest JSON nesting a body may have. Atlas's deepest is four levels (a page, its
/// `results`, a job, its `components`); serde_json stops its own recursion at 128, but skips
/// what it does not keep without counting, so the bound is checked before parsing.
pub const MAX_JSON_DEPTH: usize = 128;

/// A job that could not be used, with whatever id it had, so the log can point at it.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidJob {
    pub id: Option<String>,
    pub reason: String,
}

/// One page of a list endpoint.
#[derive(Debug)]
pub struct Page<T> {
    pub results: Vec<T>,
    pub total_count: Option<u64>,
}

/// Why a response body is not a page (or not a job) at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BodyError {
    #[error("the body is not JSON ({0})")]
    NotJson(String),
    #[error("the body is not UTF-8 text, as JSON must be ({0})")]
    NotUtf8(String),
    #[error("the body nests JSON deeper than {MAX_JSON_DEPTH} levels (at byte {0})")]
    TooDeep(usize),
    #[error("the body is JSON but not a page: {0}")]
    NotAPage(String),
    #[error("the page holds {got} items but at most {asked} were asked for")]
    TooManyItems { got: usize, asked: usize },
    /// An object that lacks what the call needs from it.
    #[error("the answer {0}")]
    Incomplete(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPage<'a> {
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJob<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    state: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    finished_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    snapshot_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    export_bucket_id: Option<std::borrow::Cow<'a, str>>,
    components: Option<Vec<serde::de::IgnoredAny>>,
    state_reason: Option<RawStateReason>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStateReason {
    error_code: Option<String>,
    message: Option<String>,
}

/// Parses a page of export jobs. The page must be a page; a job in it that is malformed is
/// returned as an [`InvalidJob`] instead of failing the page.
pub fn parse_job_page(
    body: &[u8],
    items_per_page: usize,
) -> Result<Page<Result<ExportJob, InvalidJob>>, BodyError> {
    let page = parse_raw_page(body, items_per_page)?;
    let results = page
        .results
        .iter()
        .map(|raw| parse_job_raw(raw.get()))
        .collect();
    Ok(Page {
        results,
        total_count: page.total_count,
    })
}

/// Parses the body of the get-one endpoint.
pub fn parse_job(body: &[u8]) -> Result<Result<ExportJob, InvalidJob>, BodyError> {
    let text = json_text(body)?;
    let value: &RawValue =
        serde_json::from_str(text).map_err(|e| BodyError::NotJson(e.to_string()))?;
    if !is_object(value.get()) {
        return Err(BodyError::NotAPage("expected a JSON object".into()));
    }
    Ok(parse_job_raw(value.get()))
}

/// Parses the body of a get-one endpoint that answers one JSON object (a project, a cluster).
pub fn parse_object(body: &[u8]) -> Result<serde_json::Value, BodyError> {
    let text = json_text(body)?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BodyError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(BodyError::NotAPage("expected a JSON object".into()));
    }
    Ok(value)
}

/// Whether a JSON text (known to be valid) is an object. serde's derived structs also accept
/// a list of field values in order, so `[[]]` would pass for an empty page and
/// `["id", "Queued", "2026-..."]` for a job: everything Atlas sends is an object, and nothing
/// else is taken for one.
fn is_object(json: &str) -> bool {
    json.trim_start().starts_with('{')
}

/// The body as text fit for serde_json: UTF-8, and nested no deeper than [`MAX_JSON_DEPTH`].
fn json_text(body: &[u8]) -> Result<&str, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8(e.to_string()))?;
    if let Some(at) = too_deep(body) {
        return Err(BodyError::TooDeep(at));
    }
    Ok(text)
}

/// Where the nesting of `[` and `{` outside strings first passes [`MAX_JSON_DEPTH`], if it does.
/// A linear scan with a counter, so no depth can exhaust a stack here or later.
fn too_deep(body: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, &byte) in body.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Some(at);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn parse_raw_page(body: &[u8], items_per_page: usize) -> Result<RawPage<'_>, BodyError> {
    let text = json_text(body)?;
    // First make sure it is JSON at all, so a proxy's HTML page and a page without `results`
    // get different messages.
    let page: RawPage = serde_json::from_str(text).map_err(|e| {
        if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
            BodyError::NotJson(e.to_string())
        } else {
            BodyError::NotAPage(e.to_string())
        }
    })?;
    if !is_object(text) {
        return Err(BodyError::NotAPage(
            "expected a JSON object with `results`".into(),
        ));
    }
    if page.results.len() > items_per_page {
        return Err(BodyError::TooManyItems {
            got: page.results.len(),
            asked: items_per_page,
        });
    }
    Ok(page)
}

fn parse_job_raw(text: &str) -> Result<ExportJob, InvalidJob> {
    if !is_object(text) {
        return Err(InvalidJob {
            id: None,
            reason: "not a JSON object".into(),
        });
    }
    let raw: RawJob = match serde_json::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(InvalidJob {
                id: id_of(text),
                reason: e.to_string(),
            });
        }
    };
    let id = raw.id.map(|s| s.into_owned());
    let invalid = |reason: String| InvalidJob {
        id: id.clone(),
        reason,
    };
    let (Some(state), Some(created)) = (&raw.state, &raw.created_at) else {
        let missing = [
            ("id", id.is_none()),
            ("state", raw.state.is_none()),
            ("createdAt", raw.created_at.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| name)
        .collect::<Vec<_>>()
        .join(", ");
        return Err(invalid(format!("missing required field(s): {missing}")));
    };
    let Some(job_id) = id.clone() else {
        return Err(invalid("missing required field(s): id".into()));
    };
    let created_at = parse_timestamp(created).ok_or_else(|| {
        invalid(format!(
            "createdAt {created:?} is not an RFC 3339 timestamp"
        ))
    })?;
    let finished_at =
        match &raw.finished_at {
            Some(text) => Some(parse_timestamp(text).ok_or_else(|| {
                invalid(format!("finishedAt {text:?} is not an RFC 3339 timestamp"))
            })?),
            None => None,
        };
    Ok(ExportJob {
        id: AtlasId::new(&job_id),
        state: JobState::new(state),
        created_at,
        finished_at,
        snapshot_id: raw.snapshot_id.as_deref().map(AtlasId::new),
        export_bucket_id: raw.export_bucket_id.as_deref().map(AtlasId::new),
        components: raw
            .components
            .map_or(0, |c| u32::try_from(c.len()).unwrap_or(u32::MAX)),
        state_reason: raw.state_reason.map(|reason| {
            Box::new(StateReason {
                error_code: reason.error_code.unwrap_or_default(),
                message: reason.message.unwrap_or_default(),
            })
        }),
    })
}

/// The `id` of a job that failed to parse, if it has a string one.
fn id_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct OnlyId {
        id: Option<serde_json::Value>,
    }
    let only: OnlyId = serde_json::from_str(text).ok()?;
    match only.id? {
        serde_json::Value::String(id) => Some(id),
        other => Some(other.to_string()),
    }
}

/// RFC 3339 to Unix seconds, keeping fractional seconds.
pub fn parse_timestamp(text: &str) -> Option<f64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(parsed.unix_timestamp() as f64 + f64::from(parsed.nanosecond()) / 1e9)
}

/// A project, as `GET /groups` lists it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// Absent only in a malformed item, which is skipped.
    #[serde(default)]
    pub id: Option<String>,
    /// Atlas's count of the project's clusters; absent means unknown, so the project is listed.
    #[serde(default)]
    pub cluster_count: Option<i64>,
    /// The project's name (`atlas_backup_export_project_info`); absent or not a string says
    /// nothing.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

/// A string field that may be missing, `null` or of another type; only a string says something.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(value.as_str().map(str::to_owned))
}

/// A project's export bucket, as `GET /groups/{id}/backup/exportBuckets` lists it; the id is
/// `_id`. Only the id is needed: a missing name or provider is an empty label value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportBucket {
    #[serde(rename = "_id", default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub bucket_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub cloud_provider: Option<String>,
}

/// What `atlas_backup_export_cluster_info` and `cluster_tags` show of a cluster; a field Atlas
/// leaves out (or sends as another type) is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterDetails {
    pub cluster_type: String,
    pub mongodb_version: String,
    pub state_name: String,
    /// `None` when Atlas does not say.
    pub paused: Option<bool>,
    /// Atlas's resource tags, key and value, in Atlas's order.
    pub tags: Vec<(String, String)>,
    /// `createDate` as whole Unix seconds; `None` when Atlas leaves it out or it does not parse.
    pub created: Option<i64>,
}

impl ClusterDetails {
    /// Reads the details of a cluster item (v2 and v1.0 name these fields alike).
    pub fn from_value(item: &serde_json::Value) -> ClusterDetails {
        use serde_json::Value;
        let text = |key: &str| {
            item.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let tags = item
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|tag| {
                let key = tag.get("key")?.as_str()?;
                let value = tag.get("value").and_then(Value::as_str).unwrap_or_default();
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        ClusterDetails {
            cluster_type: text("clusterType"),
            mongodb_version: text("mongoDBVersion"),
            state_name: text("stateName"),
            paused: item.get("paused").and_then(Value::as_bool),
            tags,
            created: item
                .get("createDate")
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .map(|at| at.floor() as i64),
        }
    }

    /// The value of tag `key`, or empty when the cluster has no such tag.
    pub fn tag(&self, key: &str) -> &str {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What a cluster's backup schedule says of auto-export
/// (`GET …/clusters/{clusterName}/backup/schedule`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSchedule {
    /// `autoExportEnabled`; a schedule that leaves it out does not export.
    pub auto_export: bool,
    /// `export.exportBucketId`.
    pub bucket_id: Option<String>,
    /// `export.frequencyType` as Atlas sends it (`monthly`, `yearly`, …).
    pub frequency_type: Option<String>,
}

impl BackupSchedule {
    pub fn from_value(value: &serde_json::Value) -> BackupSchedule {
        use serde_json::Value;
        let export = value.get("export");
        let text = |key: &str| {
            export
                .and_then(|e| e.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        BackupSchedule {
            auto_export: value.get("autoExportEnabled").and_then(Value::as_bool) == Some(true),
            bucket_id: text("exportBucketId"),
            frequency_type: text("frequencyType"),
        }
    }

    /// The seconds one export period lasts: Atlas's CLI documents daily and weekly besides the
    /// specification's monthly and yearly; months and years at their longest, so that a
    /// schedule on time is never overdue. `None` for any other value.
    pub fn interval_seconds(&self) -> Option<u64> {
        match self.frequency_type.as_deref()? {
            "daily" => Some(86_400),
            "weekly" => Some(604_800),
            "monthly" => Some(2_678_400),
            "yearly" => Some(31_622_400),
            _ => None,
        }
    }
}

/// When a snapshot was taken, and where the exporter learnt it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotTime {
    /// Unix seconds.
    pub taken_at: f64,
    /// `true`: Atlas no longer has the snapshot (404), and the time is the one its id carries.
    pub from_id: bool,
}

/// The creation time an ObjectId carries in its first four bytes, as Unix seconds; `None` for
/// anything but 24 hexadecimal digits.
pub fn object_id_time(id: &str) -> Option<f64> {
    if id.len() != 24 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(id.get(..8)?, 16).ok().map(f64::from)
}

/// One cluster of a project, as `GET /groups/{id}/clusters` lists it: its name, and why it
/// cannot have export jobs, if it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterItem {
    pub name: String,
    pub unwatched: Option<Unwatched>,
    pub details: ClusterDetails,
}

/// Why a discovered cluster is not watched: it has no Cloud Backup snapshots to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unwatched {
    /// Shared tier or Flex: every region's provider is `TENANT`.
    Tenant,
    /// Cloud Backup is off.
    BackupDisabled,
}

impl Unwatched {
    /// Every reason, in the order of the `reason` label's values.
    pub const ALL: [Unwatched; 2] = [Unwatched::Tenant, Unwatched::BackupDisabled];

    /// The value of the `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Unwatched::Tenant => "tenant",
            Unwatched::BackupDisabled => "backup_disabled",
        }
    }
}

/// Which shape a cluster item has: v2 (2024-08-05) or v1.0's, where Cloud Backup is
/// `providerBackupEnabled` and `backupEnabled` means legacy backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterShape {
    V2,
    V1,
}

impl ClusterItem {
    /// Reads a cluster item. Only `name` is needed; every other field may be absent, `null`
    /// or of another type, and then says nothing (the cluster is watched). `None` without a
    /// usable name.
    pub fn from_value(item: &serde_json::Value, shape: ClusterShape) -> Option<ClusterItem> {
        use serde_json::Value;
        let name = item.get("name")?.as_str().filter(|n| !n.is_empty())?;
        let provider = |v: &Value| {
            v.get("providerName")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let providers: Vec<Option<String>> = match shape {
            ClusterShape::V2 => item
                .get("replicationSpecs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|spec| {
                    let configs = spec.get("regionConfigs").and_then(Value::as_array);
                    configs.into_iter().flatten().map(provider)
                })
                .collect(),
            ClusterShape::V1 => item
                .get("providerSettings")
                .map(provider)
                .into_iter()
                .collect(),
        };
        let tenant =
            !providers.is_empty() && providers.iter().all(|p| p.as_deref() == Some("TENANT"));
        let backup_field = match shape {
            ClusterShape::V2 => "backupEnabled",
            ClusterShape::V1 => "providerBackupEnabled",
        };
        let backup_off = item.get(backup_field).and_then(Value::as_bool) == Some(false);
        let unwatched = if tenant {
            Some(Unwatched::Tenant)
        } else if backup_off {
            Some(Unwatched::BackupDisabled)
        } else {
            None
        };
        Some(ClusterItem {
            name: name.to_owned(),
            unwatched,
            details: ClusterDetails::from_value(item),
        })
    }
}

/// Parses a page of a list endpoint whose items must all be well-formed (clusters, projects).
pub fn parse_page<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    items_per_page: usize,
) -> Result<Page<T>, BodyError> {
    let page = parse_raw_page(body, items_per_page)?;
    let results = page
        .results
        .iter()
        .map(|raw| {
            if is_object(raw.get()) {
                serde_json::from_str(raw.get())
            } else {
                Err(serde::de::Error::custom("not a JSON object"))
            }
        })
        .collect::<Result<Vec<T>, serde_json::Error>>()
        .map_err(|e| BodyError::NotAPage(format!("an item is malformed: {e}")))?;
    Ok(Page {
        results,
        total_count: page.total_count,
    })
}

/// Atlas's error body: `{"error": 404, "errorCode": "CLUSTER_NOT_FOUND", "detail": "..."}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl ErrorBody {
    /// Parses an Atlas error body, or `None` if the body is something else.
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        let text = std::str::from_utf8(body).ok()?;
        if !is_object(text) {
            return None;
        }
        serde_json::from_str::<ErrorBody>(text)
            .ok()
            .filter(|e| e.error_code.is_some() || e.detail.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_reads_auto_export_and_knows_four_frequencies() {
        let on = serde_json::json!({
            "autoExportEnabled": true,
            "export": {"exportBucketId": "32b6e34b3d91647abb20e7b8", "frequencyType": "monthly"},
        });
        let schedule = BackupSchedule::from_value(&on);
        assert!(schedule.auto_export);
        assert_eq!(
            schedule.bucket_id.as_deref(),
            Some("32b6e34b3d91647abb20e7b8")
        );
        assert_eq!(schedule.interval_seconds(), Some(31 * 86_400));
        for (frequency, seconds) in [
            ("yearly", Some(366 * 86_400)),
            ("weekly", Some(7 * 86_400)),
            ("daily", Some(86_400)),
            ("ondemand", None),
        ] {
            let schedule = BackupSchedule {
                frequency_type: Some(frequency.into()),
                ..BackupSchedule::default()
            };
            assert_eq!(schedule.interval_seconds(), seconds, "{frequency}");
        }
        // A field of another type, or none, is "off".
        let odd = serde_json::json!({"autoExportEnabled": "yes", "export": 3});
        assert_eq!(BackupSchedule::from_value(&odd), BackupSchedule::default());
    }

    #[test]
    fn an_object_id_carries_its_creation_second() {
        assert_eq!(
            object_id_time("6a7943472c88faeba59ccf70"),
            Some(1_786_331_975.0)
        );
        assert_eq!(
            object_id_time("ffffffff2c88faeba59ccf70"),
            Some(4_294_967_295.0)
        );
        for not_an_id in [
            "",
            "6a794347",
            "6a7943472c88faeba59ccf7g",
            "6a7943472c88faeba59ccf700",
            "é6a7943472c88faeba59ccf",
        ] {
            assert_eq!(object_id_time(not_an_id), None, "{not_an_id}");
        }
    }

    #[test]
    fn seed_replica_set_example_parses_to_exact_values() {
        let (replica_set, _) = crate::fake_atlas::seed_examples();
        let job = parse_job(replica_set.to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(job.id, "605ccba3c1c7613f423e1585");
        assert_eq!(job.state, "Successful");
        assert_eq!(job.created_at, 1616690963.0);
        assert_eq!(job.finished_at, Some(1616694500.0));
        assert_eq!(job.duration(), Some(3537.0));
        assert_eq!(job.components, 0);
        assert_eq!(job.export_bucket_id, Some("{BUCKET-ID}".into()));
        assert_eq!(job.snapshot_id, Some("605cbac9b498841007af7d9f".into()));
        assert!(job.snapshot_id.as_ref().is_some_and(AtlasId::is_object_id));
        assert!(job.is_terminal());
    }

    #[test]
    fn fractional_seconds_and_offsets_are_accepted() {
        assert_eq!(
            parse_timestamp("2021-03-25T16:49:23.250Z"),
            Some(1616690963.25)
        );
        assert_eq!(
            parse_timestamp("2021-03-25T17:49:23+01:00"),
            Some(1616690963.0)
        );
        assert_eq!(parse_timestamp("2021-03-25 16:49:23"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn a_malformed_job_is_reported_with_its_id_and_the_page_survives() {
        let body = br#"{"results":[
            {"id":"a1","state":"Queued","createdAt":"2026-08-10T03:28:25Z"},
            {"id":"b2","state":"Queued","createdAt":"not a time"},
            {"id":"c3","createdAt":"2026-08-10T03:28:25Z"},
            {"id":4,"state":"Queued","createdAt":"2026-08-10T03:28:25Z"},
            {"id":"e5","state":"Failed","createdAt":"2026-08-10T03:28:25Z","components":"x"}
        ],"totalCount":5}"#;
        let page = parse_job_page(body, 500).unwrap();
        assert_eq!(page.total_count, Some(5));
        assert_eq!(page.results[0].as_ref().unwrap().id, "a1");
        let errors: Vec<_> = page.results[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().clone())
            .collect();
        assert_eq!(errors[0].id.as_deref(), Some("b2"));
        assert!(
            errors[0].reason.contains("createdAt"),
            "{}",
            errors[0].reason
        );
        assert_eq!(errors[1].id.as_deref(), Some("c3"));
        assert_eq!(errors[1].reason, "missing required field(s): state");
        assert_eq!(errors[2].id.as_deref(), Some("4"));
        assert_eq!(errors[3].id.as_deref(), Some("e5"));
    }

    #[test]
    fn bodies_that_are_not_pages_are_told_apart() {
        assert!(matches!(
            parse_job_page(b"<html>502 Bad Gateway</html>", 500),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            parse_job_page(br#"{"results":[{"id":"a"#, 500),
            Err(BodyError::NotJson(_))
        ));
        assert!(matches!(
            parse_job_page(br#"{"totalCount":3}"#, 500),
            Err(BodyError::NotAPage(_))
        ));
        assert_eq!(
            parse_job_page(br#"{"results":[{},{},{}]}"#, 2).unwrap_err(),
            BodyError::TooManyItems { got: 3, asked: 2 }
        );
    }

    #[test]
    fn lists_are_not_taken_for_objects() {
        // serde's derived structs accept a list of field values; Atlas never sends one.
        for body in [&b"[[]]"[..], b"[[], 3]", b" [[{}]]"] {
            assert!(
                matches!(parse_job_page(body, 500), Err(BodyError::NotAPage(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let page = parse_job_page(
            br#"{"results":[["605ccba3c1c7613f423e1585","Queued","2026-08-10T03:28:25Z"]]}"#,
            500,
        )
        .unwrap();
        assert_eq!(
            page.results[0],
            Err(InvalidJob {
                id: None,
                reason: "not a JSON object".into()
            })
        );
        assert!(parse_page::<serde_json::Value>(br#"{"results":[["Cluster0"]]}"#, 500).is_err());
        assert!(ErrorBody::parse(br#"["CLUSTER_NOT_FOUND", "gone"]"#).is_none());
    }

    #[test]
    fn state_reason_keeps_its_code_and_message() {
        let job = parse_job(
            br#"{"id":"x","state":"Failed","createdAt":"2026-08-10T03:28:25Z",
                 "stateReason":{"errorCode":"EXPORT_FAILED","message":"bucket gone"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            job.state_reason,
            Some(Box::new(StateReason {
                error_code: "EXPORT_FAILED".into(),
                message: "bucket gone".into()
            }))
        );
    }

    #[test]
    fn error_bodies_are_recognised() {
        let body = br#"{"detail":"No cluster named cluster-712 exists in group 6a799efbc0eb9e7a177d7e0e.","error":404,"errorCode":"CLUSTER_NOT_FOUND","parameters":["cluster-712","6a799efbc0eb9e7a177d7e0e"],"reason":"Not Found"}"#;
        let error = ErrorBody::parse(body).unwrap();
        assert_eq!(error.error_code.as_deref(), Some("CLUSTER_NOT_FOUND"));
        assert!(ErrorBody::parse(b"<html></html>").is_none());
    }

    /// `levels` of `open`, then as many of `close`: JSON nested that deep.
    fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
        format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn bodies_nested_100000_levels_deep_are_refused_whole_without_recursion() {
        const LEVELS: usize = 100_000;
        let job = r#""id":"a1","state":"Queued","createdAt":"2026-08-10T03:28:25Z""#;
        let bodies = [
            nested("[", "", "]", LEVELS),
            nested("{\"a\":", "1", "}", LEVELS),
            format!(r#"{{"results":[{}]}}"#, nested("[", "", "]", LEVELS)),
            format!(
                r#"{{"results":[{{{job},"components":{}}}]}}"#,
                nested("[", "{}", "]", LEVELS)
            ),
            format!(
                r#"{{"results":[{{{job},"stateReason":{}}}]}}"#,
                nested("{\"x\":", "0", "}", LEVELS)
            ),
            format!(
                r#"{{"results":[{{"id":{}}}]}}"#,
                nested("[", "", "]", LEVELS)
            ),
        ];
        for body in &bodies {
            let page = parse_job_page(body.as_bytes(), 500);
            assert!(
                matches!(page, Err(BodyError::TooDeep(_))),
                "{:?} for {}…",
                page.map(|p| p.results.len()),
                &body[..40]
            );
            assert!(matches!(
                parse_job(body.as_bytes()),
                Err(BodyError::TooDeep(_))
            ));
            assert!(matches!(
                parse_page::<serde_json::Value>(body.as_bytes(), 500),
                Err(BodyError::TooDeep(_))
            ));
            // Error bodies are only looked at, never nested into.
            assert!(ErrorBody::parse(body.as_bytes()).is_none());
        }
        // The message says how deep is too deep, and where.
        assert_eq!(
            parse_job_page(nested("[", "", "]", 200).as_bytes(), 500)
                .unwrap_err()
                .to_string(),
            "the body nests JSON deeper than 128 levels (at byte 128)"
        );
        // Brackets inside strings are text, not nesting.
        let brackets = "[".repeat(1_000);
        let page = format!(
            r#"{{"results":[{{{job},"stateReason":{{"errorCode":"X","message":"{brackets}\"{{"}}}}]}}"#
        );
        let page = parse_job_page(page.as_bytes(), 500).unwrap();
        let job = page.results[0].as_ref().unwrap();
        assert!(
            job.state_reason
                .as_ref()
                .unwrap()
                .message
                .starts_with("[[[")
        );
    }

    #[test]
    fn invalid_utf8_is_named_as_such() {
        let body = b"{\"results\":[{\"id\":\"a\xff1\",\"state\":\"Queued\",\"createdAt\":\"2026-08-10T03:28:25Z\"}]}";
        let error = parse_job_page(body, 500).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the body is not UTF-8 text, as JSON must be (invalid utf-8 sequence of 1 bytes from index 20)"
        );
        assert!(matches!(parse_job(body), Err(BodyError::NotUtf8(_))));
    }
}
