//! Export jobs to serve: a builder for tests, the seed page's two examples, and Atlas's
//! timestamps.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::store::fake_hex_id;

pub(crate) const RECORDED_SNAPSHOT_ID: &str = "6a7943462c88faeba59ccf5f";
pub(crate) const RECORDED_BUCKET_ID: &str = "6a794342c0eb9e7a17729455";
const RECORDED_CREATED_AT: &str = "2026-08-10T03:28:25Z";
/// The recorded prefix up to the cluster; the time and epoch parts follow `createdAt`.
const RECORDED_PREFIX_BASE: &str =
    "exported_snapshots/a0123456789abcdef012345a/b0123456789abcdef012345b/cluster-989";

/// Builds an export job as Atlas returns it, e.g. `job("a1").state("Failed").build()`.
///
/// Defaults follow the recorded job: state `Queued`, `createdAt` 2026-08-10T03:28:25Z, the
/// recorded snapshot and bucket ids, a prefix of the recorded shape, `customData: []`,
/// `exportStatus` 0/0, no `finishedAt`, no `components`.
#[derive(Clone, Debug)]
pub struct JobBuilder {
    fields: Map<String, Value>,
    prefix_set: bool,
}

/// Starts a job with this `id`; see [`JobBuilder`] for the defaults.
pub fn job(id: &str) -> JobBuilder {
    let mut fields = Map::new();
    fields.insert("id".into(), id.into());
    fields.insert("state".into(), "Queued".into());
    fields.insert("createdAt".into(), RECORDED_CREATED_AT.into());
    fields.insert("snapshotId".into(), RECORDED_SNAPSHOT_ID.into());
    fields.insert("exportBucketId".into(), RECORDED_BUCKET_ID.into());
    fields.insert("customData".into(), json!([]));
    fields.insert(
        "exportStatus".into(),
        json!({"exportedCollections": 0, "totalCollections": 0}),
    );
    JobBuilder {
        fields,
        prefix_set: false,
    }
}

impl JobBuilder {
    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Any state, known or not (`Queued`, `InProgress`, `Successful`, `Failed`, `Cancelled`).
    pub fn state(self, state: &str) -> Self {
        self.set("state", state)
    }

    /// `createdAt` as given, valid RFC 3339 or not (tests serve malformed dates too).
    pub fn created_at(self, at: &str) -> Self {
        self.set("createdAt", at)
    }

    /// `finishedAt` as given.
    pub fn finished_at(self, at: &str) -> Self {
        self.set("finishedAt", at)
    }

    /// `createdAt` from a time, in Atlas's format (UTC, whole seconds, `Z`).
    pub fn created(self, at: OffsetDateTime) -> Self {
        self.set("createdAt", atlas_time(at))
    }

    /// `finishedAt` from a time, in Atlas's format.
    pub fn finished(self, at: OffsetDateTime) -> Self {
        self.set("finishedAt", atlas_time(at))
    }

    pub fn snapshot_id(self, id: &str) -> Self {
        self.set("snapshotId", id)
    }

    pub fn export_bucket_id(self, id: &str) -> Self {
        self.set("exportBucketId", id)
    }

    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix_set = true;
        self.set("prefix", prefix)
    }

    /// `n` shard components, as on a sharded cluster (replaces `exportStatus`, which Atlas
    /// reports for replica sets). 0 removes them.
    pub fn components(mut self, n: usize) -> Self {
        if n == 0 {
            self.fields.remove("components");
            return self;
        }
        let id = self
            .fields
            .get("id")
            .map(Value::to_string)
            .unwrap_or_default();
        let components: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "exportId": fake_hex_id(&format!("{id}/component/{i}")),
                    "replicaSetName": format!("atlas-xxxxxx-shard-{i}"),
                })
            })
            .collect();
        self.fields.remove("exportStatus");
        self.set("components", components)
    }

    /// `stateReason`, as Atlas sets on a `Failed` job.
    pub fn state_reason(self, code: &str, message: &str) -> Self {
        self.set(
            "stateReason",
            json!({"errorCode": code, "message": message}),
        )
    }

    /// Appends one `customData` entry.
    pub fn custom_data(mut self, key: &str, value: &str) -> Self {
        let entry = json!({"key": key, "value": value});
        match self.fields.get_mut("customData") {
            Some(Value::Array(items)) => items.push(entry),
            _ => {
                self.fields.insert("customData".into(), json!([entry]));
            }
        }
        self
    }

    /// Sets any field to any JSON (for malformed jobs: `field("createdAt", json!(12))`).
    pub fn field(self, key: &str, value: Value) -> Self {
        self.set(key, value)
    }

    /// Removes a field, defaults included (e.g. `without("state")`).
    pub fn without(mut self, key: &str) -> Self {
        self.fields.remove(key);
        if key == "prefix" {
            self.prefix_set = true;
        }
        self
    }

    pub fn build(self) -> Value {
        let mut fields = self.fields;
        if !self.prefix_set {
            let created = fields
                .get("createdAt")
                .and_then(Value::as_str)
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            fields.insert("prefix".into(), prefix_for(created).into());
        }
        Value::Object(fields)
    }
}

/// A prefix of the recorded shape: `.../{yyyy-mm-dd}T{hhmm}/{unix seconds}`.
fn prefix_for(created: OffsetDateTime) -> String {
    let created = created.to_offset(time::UtcOffset::UTC);
    let stamp = created
        .format(format_description!("[year]-[month]-[day]T[hour][minute]"))
        .unwrap_or_default();
    format!(
        "{RECORDED_PREFIX_BASE}/{stamp}/{}",
        created.unix_timestamp()
    )
}

/// Atlas's timestamp format: UTC, whole seconds, `Z`.
pub fn atlas_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .or_else(|_| at.format(&Rfc3339))
    .unwrap_or_default()
}

/// The seed page's two example responses, verbatim: the replica-set job and the sharded one.
pub fn seed_examples() -> (Value, Value) {
    let replica_set = json!({
        "createdAt": "2021-03-25T16:49:23Z",
        "exportBucketId": "{BUCKET-ID}",
        "finishedAt": "2021-03-25T17:48:20Z",
        "id": "605ccba3c1c7613f423e1585",
        "prefix": "/exported_snapshots/{ORG-NAME}/{PROJECT-NAME}/{CLUSTER-NAME}/2021-03-25T1649+0000/1616694179",
        "snapshotId": "605cbac9b498841007af7d9f",
        "state": "Successful"
    });
    let sharded = json!({
        "components": [
            {
                "exportId": "606758310d97065aabbe5bfe",
                "replicaSetName": "atlas-xxxxxx-shard-0"
            },
            {
                "exportId": "606758310d97065aabbe5c00",
                "replicaSetName": "atlas-xxxxxx-shard-1"
            }
        ],
        "createdAt": "2021-04-02T17:45:21Z",
        "customData": [],
        "exportBucketId": "{BUCKET-ID}",
        "id": "606758310d97065aabbe5bfd",
        "prefix": "/exported_snapshots/{ORG-NAME}/{PROJECT-NAME}/{CLUSTER-NAME}/2021-04-02T1742/1617385521",
        "snapshotId": "6067566a0d97065aabbe5634",
        "state": "Successful"
    });
    (replica_set, sharded)
}
