//! What is expected of each cluster's exports, against the stand-in: the expected interval and
//! its source, the next due time and its basis for each situation of issue 21's table, the
//! config's precedence, the renamed and relabelled series, and whether Atlas refuses the
//! exporter in each project.

use fake_atlas::{ClusterKind, FakeAtlas, Fault, job};
use secrecy::SecretString;
use time::OffsetDateTime;

use atlas_backup_exporter::config::Credentials;

use crate::support::{self, CLIENT_ID, Exporter, GROUP, GROUP2, PUBLIC_KEY, Scrape, fake};

const EXPECTED: &str = "atlas_backup_export_expected_interval_seconds";
const DUE: &str = "atlas_backup_export_next_due_timestamp_seconds";
const PAUSED: &str = "atlas_backup_export_cluster_paused";
const SNAPSHOT: &str = "atlas_backup_export_last_success_snapshot_timestamp_seconds";
const DENIED: &str = "atlas_backup_export_access_denied";
const DAY: f64 = 86_400.0;
const MONTH: f64 = 2_678_400.0;
const BUCKET: &str = "6a794342c0eb9e7a17729455";
const NEW_BUCKET: &str = "6a794342c0eb9e7a17729456";
const GROUP3: &str = "7b799efbc0eb9e7a177d7e0f";

/// Now, at a whole second, and a time that many days before it.
fn clock() -> (OffsetDateTime, impl Fn(f64) -> OffsetDateTime) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    (now, move |days: f64| {
        now - time::Duration::seconds_f64(days * DAY)
    })
}

fn unix(at: OffsetDateTime) -> f64 {
    at.unix_timestamp() as f64
}

/// A successful export finished at `finished` (10 minutes after it started) to `bucket`, of
/// snapshot `snapshot` (taken an hour before it started).
fn export(
    fake: &FakeAtlas,
    group: &str,
    cluster: &str,
    id: &str,
    bucket: &str,
    finished: OffsetDateTime,
) -> f64 {
    let created = finished - time::Duration::minutes(10);
    let snapshot = format!("5{}", &id[1..]);
    fake.add_snapshot(
        group,
        cluster,
        &snapshot,
        created - time::Duration::hours(1),
    );
    fake.put_job(
        group,
        cluster,
        job(id)
            .state("Successful")
            .created(created)
            .finished(finished)
            .snapshot_id(&snapshot)
            .export_bucket_id(bucket)
            .build(),
    );
    unix(created) - 3600.0
}

/// `(source, seconds)` of a cluster's expected interval.
fn expected(scrape: &Scrape, cluster: &str) -> Option<(String, f64)> {
    let found = scrape.find(EXPECTED, &[("cluster_name", cluster)]);
    assert!(found.len() <= 1, "{found:?}");
    found.first().map(|s| (s.labels["source"].clone(), s.value))
}

/// `(basis, when)` of a cluster's next due time.
fn due(scrape: &Scrape, cluster: &str) -> Option<(String, f64)> {
    let found = scrape.find(DUE, &[("cluster_name", cluster)]);
    assert!(found.len() <= 1, "{found:?}");
    found.first().map(|s| (s.labels["basis"].clone(), s.value))
}

fn auto(value: f64) -> Option<(String, f64)> {
    Some(("auto_export".to_owned(), value))
}

fn config(value: f64) -> Option<(String, f64)> {
    Some(("config".to_owned(), value))
}

fn basis(basis: &str, at: f64) -> Option<(String, f64)> {
    Some((basis.to_owned(), at))
}

#[tokio::test]
async fn each_situation_of_the_table_gets_its_expectation_and_due_time() {
    let fake = fake();
    let (now, ago) = clock();
    let g = GROUP;
    for cluster in [
        "Manual", "Off", "Monthly", "Late", "Moved", "Fresh", "Unknown", "Paused", "Pinned",
        "Failed",
    ] {
        fake.add_cluster(g, cluster);
        fake.set_cluster_created(g, cluster, ago(400.0));
    }
    // Exported by hand long ago; no auto-export, nothing configured.
    export(
        &fake,
        g,
        "Manual",
        "a00000000000000000000001",
        BUCKET,
        ago(200.0),
    );
    // Auto-export switched off; the last export long ago.
    export(
        &fake,
        g,
        "Off",
        "a00000000000000000000002",
        BUCKET,
        ago(90.0),
    );
    // Monthly, on time, to its bucket; an export to another bucket since does not count.
    fake.set_auto_export(g, "Monthly", BUCKET, "monthly");
    let monthly = ago(10.0);
    let monthly_snapshot = export(
        &fake,
        g,
        "Monthly",
        "a00000000000000000000003",
        BUCKET,
        monthly,
    );
    export(
        &fake,
        g,
        "Monthly",
        "a00000000000000000000004",
        NEW_BUCKET,
        ago(1.0),
    );
    // Monthly, its last export to its bucket 40 days old.
    fake.set_auto_export(g, "Late", BUCKET, "monthly");
    export(
        &fake,
        g,
        "Late",
        "a00000000000000000000005",
        BUCKET,
        ago(40.0),
    );
    // The schedule moved to a new bucket; nothing reached it yet: the old bucket's export counts.
    fake.set_auto_export(g, "Moved", NEW_BUCKET, "monthly");
    let moved = ago(3.0);
    let moved_snapshot = export(&fake, g, "Moved", "a00000000000000000000006", BUCKET, moved);
    // Monthly, created days ago, no export yet: due one interval after the creation.
    fake.set_auto_export(g, "Fresh", BUCKET, "monthly");
    fake.set_cluster_created(g, "Fresh", ago(5.0));
    // The same, but Atlas does not say when it was created: counted from the first sight.
    fake.set_auto_export(g, "Unknown", BUCKET, "monthly");
    fake.clear_cluster_created(g, "Unknown");
    // Paused: no snapshots are taken, nothing is expected.
    fake.add_cluster_of_kind(g, "Paused", ClusterKind::Paused);
    fake.set_auto_export(g, "Paused", BUCKET, "monthly");
    export(
        &fake,
        g,
        "Paused",
        "a00000000000000000000007",
        BUCKET,
        ago(90.0),
    );
    // Watched through one job only: that is not its whole history.
    fake.set_auto_export(g, "Pinned", BUCKET, "monthly");
    export(
        &fake,
        g,
        "Pinned",
        "a00000000000000000000008",
        BUCKET,
        ago(90.0),
    );
    // Created long ago, only a failed export: due long since.
    fake.set_auto_export(g, "Failed", BUCKET, "monthly");
    fake.put_job(
        g,
        "Failed",
        job("a00000000000000000000009")
            .state("Failed")
            .created(ago(1.0))
            .finished(ago(0.9))
            .state_reason("EXPORT_FAILED", "x")
            .build(),
    );
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {g}\n    clusters:\n      \
         - Manual\n      - Off\n      - Monthly\n      - Late\n      - Moved\n      - Fresh\n      \
         - Unknown\n      - Paused\n      - name: Pinned\n        export_job_ids: \
         [a00000000000000000000008]\n      - Failed\n"
    );
    // Whole seconds: the first sight falls in [before, after].
    let before = unix(OffsetDateTime::now_utc());
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let after = unix(OffsetDateTime::now_utc()) + 1.0;

    for nothing_expected in ["Manual", "Off", "Paused", "Pinned"] {
        assert_eq!(
            expected(&scrape, nothing_expected),
            None,
            "{nothing_expected}"
        );
        assert_eq!(due(&scrape, nothing_expected), None, "{nothing_expected}");
    }
    for cluster in ["Monthly", "Late", "Moved", "Fresh", "Unknown", "Failed"] {
        assert_eq!(expected(&scrape, cluster), auto(MONTH), "{cluster}");
    }
    assert_eq!(
        due(&scrape, "Monthly"),
        basis("schedule_bucket", unix(monthly) + MONTH)
    );
    assert_eq!(
        due(&scrape, "Late"),
        basis("schedule_bucket", unix(ago(40.0)) + MONTH)
    );
    assert!(unix(ago(40.0)) + MONTH < unix(now), "overdue");
    assert_eq!(
        due(&scrape, "Moved"),
        basis("any_bucket", unix(moved) + MONTH)
    );
    assert_eq!(
        due(&scrape, "Fresh"),
        basis("created", unix(ago(5.0)) + MONTH)
    );
    assert_eq!(
        due(&scrape, "Failed"),
        basis("created", unix(ago(400.0)) + MONTH)
    );
    let (first_basis, first_seen) = due(&scrape, "Unknown").expect("a due time");
    assert_eq!(first_basis, "created");
    assert!(
        (before + MONTH..=after + MONTH).contains(&first_seen),
        "{before} {first_seen} {after}"
    );
    // The snapshot shown is the one of the success that counts.
    assert_eq!(
        scrape.value(SNAPSHOT, &[("cluster_name", "Monthly")]),
        Some(monthly_snapshot)
    );
    assert_eq!(
        scrape.value(SNAPSHOT, &[("cluster_name", "Moved")]),
        Some(moved_snapshot)
    );
    // Paused has its own 0/1 series.
    assert_eq!(
        scrape.value(PAUSED, &[("cluster_name", "Paused")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(PAUSED, &[("cluster_name", "Monthly")]),
        Some(0.0)
    );

    // The first sight is kept: a later scrape counts from the same time.
    let again = exporter.scrape().await;
    assert_eq!(due(&again, "Unknown"), basis("created", first_seen));

    // Atlas switches Monthly's auto-export off: nothing is expected of it any more, at the
    // next refresh of its schedule (a new exporter here, whose refresh is due at once).
    fake.disable_auto_export(g, "Monthly");
    let restarted = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = restarted.scrape().await;
    assert_eq!(expected(&scrape, "Monthly"), None);
    assert_eq!(due(&scrape, "Monthly"), None);
}

#[tokio::test]
async fn the_cluster_wins_over_the_target_which_wins_over_the_schedule_and_zero_removes() {
    let fake = fake();
    let (_now, ago) = clock();
    let tooling = ago(0.8);
    for (group, cluster, schedule) in [
        (GROUP, "Own", false),
        (GROUP, "Inherit", false),
        (GROUP, "Zero", true),
        (GROUP, "ZeroNone", false),
        (GROUP2, "Tool", false),
        (GROUP2, "Sched", true),
        (GROUP3, "Defaulted", false),
        (GROUP3, "Sched3", true),
    ] {
        fake.add_cluster(group, cluster);
        if schedule {
            fake.set_auto_export(group, cluster, BUCKET, "monthly");
            export(
                &fake,
                group,
                cluster,
                "b00000000000000000000001",
                BUCKET,
                ago(20.0),
            );
        }
        export(
            &fake,
            group,
            cluster,
            "b00000000000000000000002",
            NEW_BUCKET,
            tooling,
        );
    }
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\nexport_jobs:\n  expect_export_every: 1w\ntargets:\n  \
         - group_id: {GROUP}\n    expect_export_every: 2d\n    clusters:\n      \
         - name: Own\n        expect_export_every: 12h\n      - Inherit\n      \
         - name: Zero\n        expect_export_every: 0\n      \
         - name: ZeroNone\n        expect_export_every: 0\n  \
         - group_id: {GROUP2}\n    expect_export_every: 1d\n  - group_id: {GROUP3}\n\
         discovery:\n  interval: 0\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;

    assert_eq!(expected(&scrape, "Own"), config(12.0 * 3600.0));
    assert_eq!(expected(&scrape, "Inherit"), config(2.0 * DAY));
    assert_eq!(
        expected(&scrape, "Zero"),
        auto(MONTH),
        "the schedule still counts"
    );
    assert_eq!(
        expected(&scrape, "ZeroNone"),
        None,
        "the default is removed too"
    );
    // The target's value reaches its discovered clusters, and wins over their schedule.
    assert_eq!(expected(&scrape, "Tool"), config(DAY));
    assert_eq!(expected(&scrape, "Sched"), config(DAY));
    // export_jobs' default only for clusters without a schedule.
    assert_eq!(expected(&scrape, "Defaulted"), config(7.0 * DAY));
    assert_eq!(expected(&scrape, "Sched3"), auto(MONTH));

    // A configured expectation counts the newest export to any bucket; the schedule's its own.
    let t = unix(tooling);
    assert_eq!(due(&scrape, "Own"), basis("any_bucket", t + 12.0 * 3600.0));
    assert_eq!(due(&scrape, "Sched"), basis("any_bucket", t + DAY));
    assert_eq!(
        due(&scrape, "Zero"),
        basis("schedule_bucket", unix(ago(20.0)) + MONTH)
    );
    assert_eq!(due(&scrape, "ZeroNone"), None);
}

#[tokio::test]
async fn the_changed_series_have_their_new_names_and_labels() {
    let fake = fake();
    let (_now, ago) = clock();
    fake.add_cluster(GROUP, "Cluster0");
    fake.set_auto_export(GROUP, "Cluster0", BUCKET, "weekly");
    export(
        &fake,
        GROUP,
        "Cluster0",
        "c00000000000000000000001",
        BUCKET,
        ago(2.0),
    );
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    labels: {{env: prod}}\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let names = |name: &str| -> Vec<String> {
        let found = scrape.find(name, &[("cluster_name", "Cluster0")]);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0].labels.keys().cloned().collect()
    };
    assert_eq!(
        names("atlas_backup_export_auto_export_interval_seconds"),
        ["cluster_name", "env", "group_id"]
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_auto_export_info",
            &[
                ("export_bucket_id", BUCKET),
                ("frequency_type", "weekly"),
                ("env", "prod")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        names("atlas_backup_export_cluster_info"),
        [
            "cluster_name",
            "cluster_type",
            "env",
            "group_id",
            "mongodb_version"
        ]
    );
    assert_eq!(
        names("atlas_backup_export_collection_duration_seconds"),
        ["cluster_name", "env", "group_id"]
    );
    assert!(
        scrape
            .find("atlas_backup_export_scrape_duration_seconds", &[])
            .is_empty()
    );
    assert_eq!(expected(&scrape, "Cluster0"), auto(604_800.0));
    assert_eq!(
        names(EXPECTED),
        ["cluster_name", "env", "group_id", "source"]
    );
    assert_eq!(names(DUE), ["basis", "cluster_name", "env", "group_id"]);
    assert_eq!(
        scrape.value(DENIED, &[("group_id", GROUP), ("env", "prod")]),
        Some(0.0)
    );
}

/// A stand-in with a cluster in each of two projects, and the config watching both.
fn two_projects() -> (FakeAtlas, String) {
    let fake = fake();
    for group in [GROUP, GROUP2] {
        fake.add_cluster(group, "Cluster0");
        fake.put_job(group, "Cluster0", job("d00000000000000000000001").build());
    }
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n  \
         - group_id: {GROUP2}\n    clusters: [Cluster0]\n"
    );
    (fake, yaml)
}

fn denied(scrape: &Scrape) -> [Option<f64>; 2] {
    [GROUP, GROUP2].map(|group| scrape.value(DENIED, &[("group_id", group)]))
}

#[tokio::test]
async fn access_is_denied_per_project_after_authentication_and_back_when_answered() {
    let (fake, yaml) = two_projects();
    // The credential lacks the role in the first project: 401 USER_UNAUTHORIZED.
    let exports = format!("/groups/{GROUP}/clusters/Cluster0/backup/exports");
    fake.inject(Fault::atlas_error(&exports, 401, "USER_UNAUTHORIZED"));
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(denied(&scrape), [Some(1.0), Some(0.0)]);

    // The role is granted: the next answer to the same call ends it.
    fake.clear_faults();
    assert_eq!(denied(&exporter.scrape().await), [Some(0.0), Some(0.0)]);

    // The second project's access list refuses the exporter's address, on a lookup only.
    let schedule = format!("/groups/{GROUP2}/clusters/Cluster0/backup/schedule");
    fake.inject(Fault::atlas_error(
        &schedule,
        403,
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
    ));
    let refused = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = refused.scrape().await;
    assert_eq!(denied(&scrape), [Some(0.0), Some(1.0)]);
    // The export jobs were read: a refused lookup fails no cluster.
    let up = scrape.value("atlas_backup_export_up", &[("group_id", GROUP2)]);
    assert_eq!(up, Some(1.0));
}

#[tokio::test]
async fn a_digest_challenge_is_no_refusal() {
    let (fake, yaml) = two_projects();
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    exporter.scrape().await;
    // Every nonce goes stale: each next call is challenged again, and answered.
    fake.expire_nonces();
    let challenged = fake.requests().challenges;
    let scrape = exporter.scrape().await;
    assert!(fake.requests().challenges > challenged, "challenged again");
    assert_eq!(denied(&scrape), [Some(0.0), Some(0.0)]);
}

#[tokio::test]
async fn a_rejected_digest_answer_denies_every_project_until_the_key_is_accepted() {
    let (fake, yaml) = two_projects();
    let wrong = Credentials::ApiKey {
        public_key: SecretString::from(PUBLIC_KEY),
        private_key: SecretString::from("0a1b2c3d-0000-0000-0000-000000000000"),
    };
    let exporter = Exporter::start(fake.clone(), &yaml, wrong).await;
    let scrape = exporter.scrape().await;
    assert_eq!(denied(&scrape), [Some(1.0), Some(1.0)]);
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("group_id", GROUP)]),
        Some(0.0)
    );
    // The key is fixed in Atlas: the next answer accepts it.
    fake.add_api_key(PUBLIC_KEY, "0a1b2c3d-0000-0000-0000-000000000000");
    assert_eq!(denied(&exporter.scrape().await), [Some(0.0), Some(0.0)]);
}

#[tokio::test]
async fn a_token_request_answered_invalid_client_denies_every_project() {
    let (fake, yaml) = two_projects();
    let wrong = Credentials::ServiceAccount {
        client_id: SecretString::from(CLIENT_ID),
        client_secret: SecretString::from("mdb_sa_sk_wrongwrongwrongwrongwrong"),
    };
    let exporter = Exporter::start(fake.clone(), &yaml, wrong).await;
    assert_eq!(denied(&exporter.scrape().await), [Some(1.0), Some(1.0)]);
    assert_eq!(
        fake.requests().endpoint("list_export_jobs"),
        0,
        "no token, no call"
    );
    fake.add_service_account(CLIENT_ID, "mdb_sa_sk_wrongwrongwrongwrongwrong");
    assert_eq!(denied(&exporter.scrape().await), [Some(0.0), Some(0.0)]);
}
