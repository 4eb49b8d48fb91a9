//! Export jobs to serve: a builder for tests, the seed page's two examples, and the demo.

use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use tokio::task::JoinHandle;

use super::store::fake_hex_id;
use super::{ClusterKind, FakeAtlas};

/// The demo's project (the id the README's config example uses).
pub const DEMO_GROUP_ID: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
/// The demo's API key pair, accepted over digest auth.
pub const DEMO_PUBLIC_KEY: &str = "demo-public-key";
/// See [`DEMO_PUBLIC_KEY`].
pub const DEMO_PRIVATE_KEY: &str = "demo-private-key";
/// The demo's service account, accepted at `/api/oauth/token`.
pub const DEMO_CLIENT_ID: &str = "mdb_sa_id_demo";
/// See [`DEMO_CLIENT_ID`].
pub const DEMO_CLIENT_SECRET: &str = "mdb_sa_sk_demo";
/// The demo job that goes from `Queued` to `InProgress` to `Successful` (the id of the job
/// recorded doing exactly that on real Atlas).
pub const DEMO_MOVING_JOB_ID: &str = "6a7945592c88faeba59d5e8e";

const RECORDED_SNAPSHOT_ID: &str = "6a7943462c88faeba59ccf5f";
/// The snapshot of the seed page's replica-set example.
const DEMO_SEED_SNAPSHOT_ID: &str = "605cbac9b498841007af7d9f";
/// The demo's expired snapshot: the newest success of `Cluster1` holds it, Atlas answers 404.
pub const DEMO_EXPIRED_SNAPSHOT_ID: &str = "6a7943472c88faeba59ccf70";
const DEMO_OVERDUE_SNAPSHOT_ID: &str = "6a7943482c88faeba59ccf80";
const DEMO_ON_DEMAND_SNAPSHOT_ID: &str = "6a7943482c88faeba59ccf81";
const RECORDED_BUCKET_ID: &str = "6a794342c0eb9e7a17729455";
/// The demo's second export bucket, on GCP.
const DEMO_GCP_BUCKET_ID: &str = "6a794342c0eb9e7a17729456";
/// The demo's second project, `Demo Tooling`: its cluster `Reports` is exported by the team's
/// own tooling every day, which the demo's config declares with `expect_export_every: 1d`.
pub const DEMO_TOOLING_GROUP_ID: &str = "6a7941002c88faeba59c0001";
/// `Demo Tooling`'s export bucket.
const DEMO_TOOLING_BUCKET_ID: &str = "6a794342c0eb9e7a17729457";
const DEMO_HAND_SNAPSHOT_ID: &str = "6a7943492c88faeba59ccf90";
const DEMO_TOOLING_SNAPSHOT_ID: &str = "6a79434a2c88faeba59ccfa0";
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

/// When the demo's moving job changes state, counted from [`FakeAtlas::seed_demo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoTimings {
    /// `Queued` until then.
    pub queued_for: Duration,
    /// `InProgress` until then, `Successful` afterwards.
    pub in_progress_until: Duration,
}

impl Default for DemoTimings {
    fn default() -> Self {
        Self {
            queued_for: Duration::from_secs(60),
            in_progress_until: Duration::from_secs(180),
        }
    }
}

/// Keeps the demo's moving job moving; dropping it stops the updates.
pub struct DemoHandle {
    task: Option<JoinHandle<()>>,
}

impl Drop for DemoHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl FakeAtlas {
    /// Fills the stand-in with the demo's data, dated relative to `now`, and accepts the demo
    /// credentials ([`DEMO_PUBLIC_KEY`] / [`DEMO_PRIVATE_KEY`], [`DEMO_CLIENT_ID`] /
    /// [`DEMO_CLIENT_SECRET`]).
    ///
    /// Project [`DEMO_GROUP_ID`] holds `Cluster0` (replica set: the seed's replica-set example
    /// finished 2 h ago after its 3,537 s, a `Failed` job with a `stateReason` from 5 h ago, and the job
    /// that moves from `Queued` to `InProgress` (after 60 s) to `Successful` (after 180 s))
    /// and `Cluster1` (sharded: the seed's sharded example, `Successful` without `finishedAt`
    /// as in the seed, a `Successful` one from 8 h ago with `finishedAt`, and a job still
    /// `InProgress`), and `Archive`, a cluster with Cloud Backup off. `Cluster0` and `Cluster1`
    /// carry tags (`team`, `environment`), and the project has two export buckets,
    /// `acme-backups` on AWS (Cluster0's exports) and `acme-backups-eu` on GCP (Cluster1's). The moving job needs a
    /// tokio runtime;
    /// outside one it stays `Queued`.
    ///
    /// Backup schedules: `Cluster0` exports monthly to `acme-backups` and is on schedule;
    /// `Cluster1` has no auto-export; `Cluster2` exports monthly to `acme-backups` but its last
    /// scheduled export is 40 days old (an on-demand export to `acme-backups-eu` 2 days ago).
    /// Each success's snapshot is there, but for `Cluster1`'s newest
    /// ([`DEMO_EXPIRED_SNAPSHOT_ID`]), which has expired (404).
    ///
    /// `Cluster3` was exported by hand once, 200 days ago, and has no auto-export: nobody
    /// expects it to export. A second project, [`DEMO_TOOLING_GROUP_ID`] (`Demo Tooling`), holds
    /// `Reports`, exported daily by the team's own tooling (last 20 hours ago) to its bucket
    /// `tooling-exports` on AWS, without auto-export: the demo's config declares the expectation.
    #[must_use = "dropping the handle stops the moving job"]
    pub fn seed_demo(&self, now: OffsetDateTime) -> DemoHandle {
        self.seed_demo_with_timings(now, DemoTimings::default())
    }

    /// [`FakeAtlas::seed_demo`] with other timings for the moving job (for tests).
    #[must_use = "dropping the handle stops the moving job"]
    pub fn seed_demo_with_timings(&self, now: OffsetDateTime, timings: DemoTimings) -> DemoHandle {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let hours = |h: i64| time::Duration::hours(h);
        let g = DEMO_GROUP_ID;
        self.add_api_key(DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY);
        self.add_service_account(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        self.set_group_name(g, "Demo Project");
        self.add_cluster(g, "Cluster0");
        self.add_sharded_cluster(g, "Cluster1");
        // Cloud Backup off: discovery does not watch it, and counts it as unwatched.
        self.add_cluster_of_kind(g, "Archive", ClusterKind::BackupDisabled);
        self.set_cluster_tags(
            g,
            "Cluster0",
            &[("team", "payments"), ("environment", "demo")],
        );
        self.set_cluster_tags(g, "Cluster1", &[("team", "analytics")]);
        // Cluster2 exports monthly by its schedule, but its last scheduled export is 40 days
        // old: an on-demand export to the other bucket 2 days ago does not hide that.
        self.add_cluster(g, "Cluster2");
        for cluster in ["Cluster0", "Cluster1", "Cluster2"] {
            self.set_cluster_created(g, cluster, now - time::Duration::days(400));
        }
        self.set_auto_export(g, "Cluster0", RECORDED_BUCKET_ID, "monthly");
        self.set_auto_export(g, "Cluster2", RECORDED_BUCKET_ID, "monthly");
        // Buckets on two clouds: Cluster0's jobs export to the recorded bucket on AWS,
        // Cluster1's to one on GCP.
        self.add_export_bucket(g, RECORDED_BUCKET_ID, "acme-backups", "AWS");
        self.add_export_bucket(g, DEMO_GCP_BUCKET_ID, "acme-backups-eu", "GCP");

        let (mut replica_set, mut sharded) = seed_examples();
        // Re-dated with the seed's own durations kept (3,537 s for the replica set).
        let rs_created = now - hours(2);
        replica_set["createdAt"] = atlas_time(rs_created).into();
        replica_set["finishedAt"] = atlas_time(rs_created + time::Duration::seconds(3537)).into();
        // Their buckets too: the documentation's placeholder becomes the demo's buckets.
        replica_set["exportBucketId"] = RECORDED_BUCKET_ID.into();
        self.add_snapshot(
            g,
            "Cluster0",
            DEMO_SEED_SNAPSHOT_ID,
            rs_created - time::Duration::minutes(30),
        );
        self.put_job(g, "Cluster0", replica_set);
        sharded["exportBucketId"] = DEMO_GCP_BUCKET_ID.into();
        sharded["createdAt"] = atlas_time(now - hours(3)).into();
        self.put_job(g, "Cluster1", sharded);

        let failed_at = now - hours(5);
        self.put_job(
            g,
            "Cluster0",
            job("6a7945592c88faeba59d5e90")
                .state("Failed")
                .created(failed_at)
                .finished(failed_at + time::Duration::minutes(14))
                .snapshot_id("6a7943462c88faeba59ccf60")
                .state_reason(
                    "EXPORT_FAILED",
                    "Access denied to the export bucket: check the IAM role Atlas assumes.",
                )
                .build(),
        );
        // A finished export on the sharded cluster too, so it has a last success.
        let sharded_done = now - hours(8);
        self.put_job(
            g,
            "Cluster1",
            job("6a79455a2c88faeba59d5f00")
                .state("Successful")
                .created(sharded_done)
                .finished(sharded_done + time::Duration::minutes(41))
                .snapshot_id(DEMO_EXPIRED_SNAPSHOT_ID)
                .export_bucket_id(DEMO_GCP_BUCKET_ID)
                .components(2)
                .build(),
        );
        self.put_job(
            g,
            "Cluster1",
            job("6a79455a2c88faeba59d5f01")
                .state("InProgress")
                .created(now - time::Duration::minutes(25))
                .snapshot_id("6a7943472c88faeba59ccf71")
                .export_bucket_id(DEMO_GCP_BUCKET_ID)
                .components(2)
                .build(),
        );

        // The sharded cluster's newest success holds a snapshot that has expired since
        // (never added: Atlas answers 404), so its time comes from its id.
        let days = |d: i64| time::Duration::days(d);
        let (scheduled, on_demand) = (now - days(40), now - days(2));
        self.add_snapshot(
            g,
            "Cluster2",
            DEMO_OVERDUE_SNAPSHOT_ID,
            scheduled - hours(1),
        );
        self.add_snapshot(
            g,
            "Cluster2",
            DEMO_ON_DEMAND_SNAPSHOT_ID,
            on_demand - hours(1),
        );
        self.put_job(
            g,
            "Cluster2",
            job("6a79455b2c88faeba59d5f10")
                .state("Successful")
                .created(scheduled)
                .finished(scheduled + time::Duration::minutes(20))
                .snapshot_id(DEMO_OVERDUE_SNAPSHOT_ID)
                .export_bucket_id(RECORDED_BUCKET_ID)
                .build(),
        );
        self.put_job(
            g,
            "Cluster2",
            job("6a79455b2c88faeba59d5f11")
                .state("Successful")
                .created(on_demand)
                .finished(on_demand + time::Duration::minutes(20))
                .snapshot_id(DEMO_ON_DEMAND_SNAPSHOT_ID)
                .export_bucket_id(DEMO_GCP_BUCKET_ID)
                .build(),
        );
        // Exported by hand once, long ago, and never again: no schedule, no expectation.
        let by_hand = now - days(200);
        self.add_cluster(g, "Cluster3");
        self.set_cluster_created(g, "Cluster3", now - days(400));
        self.add_snapshot(g, "Cluster3", DEMO_HAND_SNAPSHOT_ID, by_hand - hours(1));
        self.put_job(
            g,
            "Cluster3",
            job("6a79455c2c88faeba59d5f20")
                .state("Successful")
                .created(by_hand)
                .finished(by_hand + time::Duration::minutes(12))
                .snapshot_id(DEMO_HAND_SNAPSHOT_ID)
                .export_bucket_id(DEMO_GCP_BUCKET_ID)
                .build(),
        );
        // The second project: a cluster the team's own tooling exports every day.
        let tooling = DEMO_TOOLING_GROUP_ID;
        let exported = now - hours(20);
        self.set_group_name(tooling, "Demo Tooling");
        self.add_cluster(tooling, "Reports");
        self.set_cluster_created(tooling, "Reports", now - days(90));
        self.add_export_bucket(tooling, DEMO_TOOLING_BUCKET_ID, "tooling-exports", "AWS");
        self.add_snapshot(
            tooling,
            "Reports",
            DEMO_TOOLING_SNAPSHOT_ID,
            exported - hours(1),
        );
        self.put_job(
            tooling,
            "Reports",
            job("6a79455d2c88faeba59d5f30")
                .state("Successful")
                .created(exported)
                .finished(exported + time::Duration::minutes(9))
                .snapshot_id(DEMO_TOOLING_SNAPSHOT_ID)
                .export_bucket_id(DEMO_TOOLING_BUCKET_ID)
                .build(),
        );
        // The moving job's snapshot, taken half an hour before it starts.
        self.add_snapshot(
            g,
            "Cluster0",
            RECORDED_SNAPSHOT_ID,
            now - time::Duration::minutes(30),
        );

        let moving = move |state: &str, finished: Option<OffsetDateTime>| {
            let mut j = job(DEMO_MOVING_JOB_ID).state(state).created(now);
            if let Some(at) = finished {
                j = j.finished(at);
            }
            j.build()
        };
        self.put_job(g, "Cluster0", moving("Queued", None));
        let fake = self.clone();
        let task = tokio::runtime::Handle::try_current().ok().map(|rt| {
            rt.spawn(async move {
                tokio::time::sleep(timings.queued_for).await;
                fake.put_job(g, "Cluster0", moving("InProgress", None));
                let rest = timings.in_progress_until.saturating_sub(timings.queued_for);
                tokio::time::sleep(rest).await;
                let took = time::Duration::try_from(timings.in_progress_until)
                    .unwrap_or(time::Duration::ZERO);
                fake.put_job(g, "Cluster0", moving("Successful", Some(now + took)));
            })
        });
        DemoHandle { task }
    }
}
