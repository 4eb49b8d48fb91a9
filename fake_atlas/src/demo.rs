//! The demo's estate: two projects whose clusters show every state, schedule and expectation
//! the exporter reports, with one job that moves on its own.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::fixtures::{RECORDED_BUCKET_ID, RECORDED_SNAPSHOT_ID, atlas_time, job, seed_examples};
use crate::state::FakeAtlas;
use crate::store::ClusterKind;

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
/// The snapshot of the seed page's replica-set example.
const DEMO_SEED_SNAPSHOT_ID: &str = "605cbac9b498841007af7d9f";
/// The demo's expired snapshot: the newest success of `Cluster1` holds it, Atlas answers 404.
pub const DEMO_EXPIRED_SNAPSHOT_ID: &str = "6a7943472c88faeba59ccf70";
const DEMO_OVERDUE_SNAPSHOT_ID: &str = "6a7943482c88faeba59ccf80";
const DEMO_ON_DEMAND_SNAPSHOT_ID: &str = "6a7943482c88faeba59ccf81";
/// The demo's second export bucket, on GCP.
const DEMO_GCP_BUCKET_ID: &str = "6a794342c0eb9e7a17729456";
/// The demo's second project, `Demo Tooling`: its cluster `Reports` is exported by the team's
/// own tooling every day, which the demo's config declares with `expect_export_every: 1d`.
pub const DEMO_TOOLING_GROUP_ID: &str = "6a7941002c88faeba59c0001";
/// `Demo Tooling`'s export bucket.
const DEMO_TOOLING_BUCKET_ID: &str = "6a794342c0eb9e7a17729457";
const DEMO_HAND_SNAPSHOT_ID: &str = "6a7943492c88faeba59ccf90";
const DEMO_TOOLING_SNAPSHOT_ID: &str = "6a79434a2c88faeba59ccfa0";

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
