//! Issue 21's table of behaviour on the real servers: the stand-in Atlas seeded with one cluster per
//! row, the exporter's binary reading it, and a real Prometheus scraping the binary and evaluating
//! `examples/alerts.yml` every second.
//! Exactly the rows that ask for an alert have one, with the labels and links the rules promise; every
//! other cluster has no alert at all, pending or firing, of any severity.

use std::collections::{BTreeMap, BTreeSet};

use fake_atlas::{FakeAtlas, Fault, job};
use serde_json::Value as Json;
use time::{Duration, OffsetDateTime};

use crate::e2e_prometheus::{alerts, json_label, start_prometheus};
use crate::servers::{Server, TempDir, repo_path, wait_until};
use crate::support::{self, Binary};
use crate::tools::tool;

/// Clusters whose auto-export schedule pages for them (discovered).
const SCHEDULED: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
/// A target with `expect_export_every: 1d` (discovered).
const DECLARED: &str = "6a7945592c88faeba59d5e00";
/// A project that refuses every call with 401 `USER_UNAUTHORIZED` (a missing role).
const REFUSED: &str = "6a799efbc0eb9e7a177d7e0e";
/// A project that refuses every call with 403 `IP_ADDRESS_NOT_ON_ACCESS_LIST`.
const NOT_LISTED: &str = "6a799efbc0eb9e7a177d7e0f";
const BUCKET: &str = "62a0000000000000000000b1";
const NEW_BUCKET: &str = "62a0000000000000000000b2";

/// The rows' clusters that must have no alert at all.
const QUIET: &[&str] = &[
    "hand-exported",
    "auto-export-off",
    "monthly-on-time",
    "moved-recent",
    "monthly-new",
    "retry-succeeded",
    "daily-on-time",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_pages_only_the_rows_that_ask_for_it() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };
    let fake = support::fake();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds");
    seed(&fake, now);
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {SCHEDULED}\n  \
         - group_id: {DECLARED}\n    expect_export_every: 1d\n  - group_id: {REFUSED}\n  \
         - group_id: {NOT_LISTED}\n"
    );
    // The binary as users run it, scraped by a real Prometheus.
    let exporter = Binary::start(fake, &yaml).await;

    let dir = TempDir::new("prometheus-table");
    // No Alertmanager here: the alerts are read from Prometheus. The config still names one.
    let prometheus = start_prometheus(
        (&prometheus, &promtool),
        &dir,
        exporter.addr,
        "http://127.0.0.1:9",
    )
    .await;
    let prometheus = &prometheus;

    // (alert, the cluster or project it is about, state): everything the table asks for, and no more.
    let wanted: BTreeSet<(String, String, String)> = [
        ("AtlasBackupExportOverdue", "monthly-overdue", "firing"),
        ("AtlasBackupExportOverdue", "moved-old", "firing"),
        ("AtlasBackupExportOverdue", "monthly-only-failed", "firing"),
        ("AtlasBackupExportOverdue", "daily-late", "firing"),
        ("AtlasBackupExportOverdue", "daily-never", "firing"),
        ("AtlasBackupExportFailed", "monthly-only-failed", "firing"),
        ("AtlasBackupExportFailed", "failed-since", "firing"),
        ("AtlasBackupExportedDataStale", "stale-snapshot", "firing"),
        ("AtlasBackupExportStuck", "stuck", "firing"),
        // `for: 5m`: pending within the test, once for the project.
        ("AtlasBackupExportAccessDenied", REFUSED, "pending"),
        ("AtlasBackupExportAccessDenied", NOT_LISTED, "pending"),
        // Their listings fail too (Alertmanager holds DiscoveryDown back once AccessDenied fires).
        ("AtlasBackupExportDiscoveryDown", REFUSED, "pending"),
        ("AtlasBackupExportDiscoveryDown", NOT_LISTED, "pending"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    .collect();
    let seen = |alerts: &[Json]| -> BTreeSet<(String, String, String)> {
        alerts
            .iter()
            .map(|a| {
                let cluster = json_label(a, "cluster_name");
                let about = if cluster.is_empty() {
                    json_label(a, "group_id")
                } else {
                    cluster
                };
                (
                    json_label(a, "alertname").to_owned(),
                    about.to_owned(),
                    a["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let wanted = &wanted;
    let firing = wait_until("exactly the table's alerts", || async move {
        let alerts = alerts(prometheus).await;
        let got = seen(&alerts);
        if &got == wanted {
            Ok(alerts)
        } else {
            Err(format!(
                "missing {:?}; unexpected {:?}",
                wanted.difference(&got).collect::<Vec<_>>(),
                got.difference(wanted).collect::<Vec<_>>()
            ))
        }
    })
    .await;

    // The same after more evaluations: nothing else turns up for the quiet rows.
    let evaluations = rule_evaluations(prometheus).await;
    wait_until("five more rule evaluations", || async move {
        let now = rule_evaluations(prometheus).await;
        if now >= evaluations + 5 {
            Ok(())
        } else {
            Err(format!("{now} evaluations"))
        }
    })
    .await;
    let again = alerts(prometheus).await;
    assert_eq!(&seen(&again), wanted, "{again:?}");
    for alert in &again {
        let cluster = json_label(alert, "cluster_name");
        assert!(!QUIET.contains(&cluster), "{cluster} has an alert: {alert}");
    }

    // Overdue: the only critical alert, with the basis its description explains.
    let by_cluster: BTreeMap<&str, &Json> = firing
        .iter()
        .filter(|a| json_label(a, "alertname") == "AtlasBackupExportOverdue")
        .map(|a| (json_label(a, "cluster_name"), a))
        .collect();
    for (cluster, basis, never) in [
        ("monthly-overdue", "schedule_bucket", false),
        ("moved-old", "any_bucket", false),
        ("monthly-only-failed", "created", true),
        ("daily-late", "any_bucket", false),
        ("daily-never", "created", true),
    ] {
        let alert = by_cluster[cluster];
        assert_eq!(json_label(alert, "basis"), basis, "{alert}");
        let description = alert["annotations"]["description"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            description.contains("It has never exported successfully"),
            never,
            "{description}"
        );
    }
    for alert in &firing {
        let name = json_label(alert, "alertname");
        assert_eq!(
            json_label(alert, "severity") == "critical",
            name == "AtlasBackupExportOverdue",
            "{alert}"
        );
        let url = alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            url,
            format!(
                "https://github.com/atlas-backup-exporter/atlas-backup-exporter/blob/main/docs/runbooks.md#{}",
                name.to_lowercase()
            ),
            "{alert}"
        );
    }
    // How long ago they were due: 9 days for the monthly ones (40 days ago plus 31), 7 hours for the
    // daily one exported 31 hours ago, 2 days for the daily one created 3 days ago.
    for (cluster, due_ago) in [
        ("monthly-overdue", 9 * 86_400),
        ("moved-old", 9 * 86_400),
        ("monthly-only-failed", 9 * 86_400),
        ("daily-late", 7 * 3600),
        ("daily-never", 2 * 86_400),
    ] {
        let value: f64 = by_cluster[cluster]["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let late = value - f64::from(due_ago);
        assert!((0.0..600.0).contains(&late), "{cluster}: due {value} s ago");
    }
    // Names: the project by its name where Atlas gives one, by its id otherwise.
    for project in [REFUSED, NOT_LISTED] {
        let denied = firing
            .iter()
            .find(|a| {
                json_label(a, "alertname") == "AtlasBackupExportAccessDenied"
                    && json_label(a, "group_id") == project
            })
            .expect("AccessDenied");
        let summary = denied["annotations"]["summary"]
            .as_str()
            .unwrap_or_default();
        assert!(summary.contains(project), "{summary}");
    }
    let stuck = firing
        .iter()
        .find(|a| json_label(a, "alertname") == "AtlasBackupExportStuck")
        .expect("Stuck");
    let description = stuck["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("cluster stuck in project payments-prod"),
        "{description}"
    );
}

/// How many times Prometheus has evaluated the first rule group: its last evaluation's time in
/// milliseconds over the evaluation interval (1 s) is a counter good enough to wait on.
async fn rule_evaluations(prometheus: &Server) -> u64 {
    let rules = prometheus.api("/api/v1/rules", &[]).await;
    let last = rules["groups"][0]["lastEvaluation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    OffsetDateTime::parse(&last, &time::format_description::well_known::Rfc3339)
        .map_or(0, |t| t.unix_timestamp().unsigned_abs())
}

/// One cluster per row of the table (see the module's doc).
fn seed(fake: &FakeAtlas, now: OffsetDateTime) {
    let days = Duration::days;
    let hours = Duration::hours;
    let mut ids = 0_u32;
    let mut next_id = move || {
        ids += 1;
        format!("6a79{ids:020x}")
    };
    fake.set_group_name(SCHEDULED, "payments-prod");
    fake.set_group_name(DECLARED, "reports");
    fake.add_group(REFUSED);
    fake.add_group(NOT_LISTED);
    for bucket in [BUCKET, NEW_BUCKET] {
        fake.add_export_bucket(SCHEDULED, bucket, bucket, "AWS");
    }
    let cluster = |group: &str, name: &str, created: OffsetDateTime| {
        fake.add_cluster(group, name);
        fake.set_cluster_created(group, name, created);
    };
    let old = now - days(400);
    for name in [
        "hand-exported",
        "auto-export-off",
        "monthly-on-time",
        "monthly-overdue",
        "moved-recent",
        "moved-old",
        "retry-succeeded",
        "failed-since",
        "stale-snapshot",
        "stuck",
    ] {
        cluster(SCHEDULED, name, old);
    }
    cluster(SCHEDULED, "monthly-new", now - days(3));
    cluster(SCHEDULED, "monthly-only-failed", now - days(40));
    cluster(DECLARED, "daily-on-time", old);
    cluster(DECLARED, "daily-late", old);
    cluster(DECLARED, "daily-never", now - days(3));
    cluster(REFUSED, "refused-a", old);
    cluster(REFUSED, "refused-b", old);
    cluster(NOT_LISTED, "not-listed", old);

    fake.disable_auto_export(SCHEDULED, "auto-export-off");
    for name in [
        "monthly-on-time",
        "monthly-overdue",
        "monthly-new",
        "monthly-only-failed",
        "retry-succeeded",
        "failed-since",
        "stale-snapshot",
        "stuck",
    ] {
        fake.set_auto_export(SCHEDULED, name, BUCKET, "monthly");
    }
    for name in ["moved-recent", "moved-old"] {
        fake.set_auto_export(SCHEDULED, name, NEW_BUCKET, "monthly");
    }

    // A successful export finished at `finished`, to `bucket`, of a snapshot taken at `taken`.
    let mut success = |group: &str, name: &str, finished: OffsetDateTime, bucket: &str, taken| {
        let snapshot = next_id();
        fake.add_snapshot(group, name, &snapshot, taken);
        fake.put_job(
            group,
            name,
            job(&next_id())
                .state("Successful")
                .created(finished - Duration::minutes(20))
                .finished(finished)
                .snapshot_id(&snapshot)
                .export_bucket_id(bucket)
                .build(),
        );
    };
    let before = |at: OffsetDateTime| at - hours(1);
    for (group, name, ago) in [
        (SCHEDULED, "hand-exported", days(200)),
        (SCHEDULED, "auto-export-off", days(100)),
        (SCHEDULED, "monthly-on-time", days(10)),
        (SCHEDULED, "monthly-overdue", days(40)),
        (SCHEDULED, "moved-recent", days(5)),
        (SCHEDULED, "moved-old", days(40)),
        (SCHEDULED, "retry-succeeded", hours(1)),
        (SCHEDULED, "failed-since", days(10)),
        (SCHEDULED, "stuck", days(10)),
        (DECLARED, "daily-on-time", hours(20)),
        (DECLARED, "daily-late", hours(31)),
    ] {
        success(group, name, now - ago, BUCKET, before(now - ago));
    }
    // On schedule two days ago, but of a snapshot 35 days old.
    success(
        SCHEDULED,
        "stale-snapshot",
        now - days(2),
        BUCKET,
        now - days(35),
    );

    let failed = |name: &str, id: &str, finished: OffsetDateTime| {
        fake.put_job(
            SCHEDULED,
            name,
            job(id)
                .state("Failed")
                .created(finished - Duration::minutes(30))
                .finished(finished)
                .export_bucket_id(BUCKET)
                .state_reason("EXPORT_FAILED", "Access denied to the export bucket.")
                .build(),
        );
    };
    failed(
        "monthly-only-failed",
        "6a7aa0000000000000000001",
        now - hours(2),
    );
    failed(
        "retry-succeeded",
        "6a7aa0000000000000000002",
        now - hours(3),
    );
    failed("failed-since", "6a7aa0000000000000000003", now - hours(2));
    fake.put_job(
        SCHEDULED,
        "stuck",
        job("6a7aa0000000000000000004")
            .state("InProgress")
            .created(now - hours(7))
            .export_bucket_id(BUCKET)
            .build(),
    );

    // Atlas refuses every call of the third project after authenticating it: a missing role.
    fake.inject(Fault::atlas_error(
        &format!("/groups/{REFUSED}"),
        401,
        "USER_UNAUTHORIZED",
    ));
    // And the fourth from an address its organization's API access list does not hold.
    fake.inject(Fault::atlas_error(
        &format!("/groups/{NOT_LISTED}"),
        403,
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
    ));
}

/// `examples/alertmanager.yml` on the real Alertmanager, with alerts as Prometheus would send them:
/// a refused project holds back its clusters' and listing's alerts (not another project's), a
/// refused credential is one notification for every project, the critical exporter alert holds back
/// its own warning, the overdue export pages, and info alerts reach nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_holds_back_and_groups_as_its_comments_say() {
    let Some(alertmanager) = tool("alertmanager") else {
        return;
    };
    let dir = TempDir::new("alertmanager-rules");
    std::fs::copy(
        repo_path("examples/alertmanager.yml"),
        dir.path().join("alertmanager.yml"),
    )
    .expect("copying alertmanager.yml");
    let server = Server::alertmanager(
        &alertmanager,
        &dir.path().join("alertmanager.yml"),
        dir.path(),
    )
    .await;
    let server = &server;
    let other = "5e0000000000000000000001";
    let exporter = [
        ("job", "atlas-backup-exporter"),
        ("instance", "exporter:9947"),
    ];
    let alert = |labels: &[(&str, &str)]| {
        let mut all: serde_json::Map<String, Json> = exporter
            .iter()
            .chain(labels)
            .map(|(k, v)| ((*k).to_owned(), Json::from(*v)))
            .collect();
        all.entry("severity").or_insert_with(|| "warning".into());
        serde_json::json!({
            "labels": all,
            "annotations": {"summary": "test"},
            "generatorURL": "http://prometheus.example/graph",
        })
    };
    let denied = "AtlasBackupExportAccessDenied";
    let alerts = [
        // An expired secret: both projects refused at once.
        alert(&[("alertname", denied), ("group_id", SCHEDULED)]),
        alert(&[("alertname", denied), ("group_id", REFUSED)]),
        alert(&[
            ("alertname", "AtlasBackupExportClusterDown"),
            ("group_id", SCHEDULED),
            ("cluster_name", "Cluster0"),
        ]),
        alert(&[
            ("alertname", "AtlasBackupExportClusterDown"),
            ("group_id", other),
            ("cluster_name", "Cluster9"),
        ]),
        alert(&[
            ("alertname", "AtlasBackupExportDiscoveryDown"),
            ("group_id", REFUSED),
        ]),
        // The listing of every project (no group_id) fails with the credential too.
        alert(&[("alertname", "AtlasBackupExportDiscoveryDown")]),
        alert(&[
            ("alertname", "AtlasBackupExporterDown"),
            ("severity", "critical"),
        ]),
        alert(&[("alertname", "AtlasBackupExporterDown")]),
        alert(&[
            ("alertname", "AtlasBackupExporterDown"),
            ("instance", "exporter-b:9947"),
        ]),
        alert(&[
            ("alertname", "AtlasBackupExportOverdue"),
            ("severity", "critical"),
            ("group_id", other),
            ("cluster_name", "Cluster9"),
            ("basis", "schedule_bucket"),
        ]),
        alert(&[
            ("alertname", "AtlasBackupExportInvalidJobs"),
            ("severity", "info"),
            ("group_id", other),
            ("cluster_name", "Cluster9"),
        ]),
    ];
    server
        .post_json("/api/v2/alerts", &Json::Array(alerts.to_vec()))
        .await;

    // (alertname, group_id, cluster_name, instance, severity) -> (state, receivers)
    type Key = (String, String, String, String, String);
    let wanted: BTreeMap<Key, (&str, Vec<&str>)> = [
        (
            (denied, SCHEDULED, "", "exporter:9947", "warning"),
            ("active", vec!["atlas-backups"]),
        ),
        (
            (denied, REFUSED, "", "exporter:9947", "warning"),
            ("active", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExportClusterDown",
                SCHEDULED,
                "Cluster0",
                "exporter:9947",
                "warning",
            ),
            ("suppressed", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExportClusterDown",
                other,
                "Cluster9",
                "exporter:9947",
                "warning",
            ),
            ("active", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExportDiscoveryDown",
                REFUSED,
                "",
                "exporter:9947",
                "warning",
            ),
            ("suppressed", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExportDiscoveryDown",
                "",
                "",
                "exporter:9947",
                "warning",
            ),
            ("suppressed", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExporterDown",
                "",
                "",
                "exporter:9947",
                "critical",
            ),
            ("active", vec!["atlas-backups-page"]),
        ),
        (
            (
                "AtlasBackupExporterDown",
                "",
                "",
                "exporter:9947",
                "warning",
            ),
            ("suppressed", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExporterDown",
                "",
                "",
                "exporter-b:9947",
                "warning",
            ),
            ("active", vec!["atlas-backups"]),
        ),
        (
            (
                "AtlasBackupExportOverdue",
                other,
                "Cluster9",
                "exporter:9947",
                "critical",
            ),
            ("active", vec!["atlas-backups-page"]),
        ),
        (
            (
                "AtlasBackupExportInvalidJobs",
                other,
                "Cluster9",
                "exporter:9947",
                "info",
            ),
            ("active", vec!["nobody"]),
        ),
    ]
    .into_iter()
    .map(|((a, g, c, i, s), v)| ((a.into(), g.into(), c.into(), i.into(), s.into()), v))
    .collect();
    let wanted = &wanted;
    wait_until("Alertmanager's verdict on every alert", || async move {
        let listed = server.get_json("/api/v2/alerts", &[]).await?;
        let got: BTreeMap<Key, (&str, Vec<&str>)> = listed
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let l = |name: &str| a["labels"][name].as_str().unwrap_or_default().to_owned();
                let receivers = a["receivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["name"].as_str())
                    .collect();
                let state = a["status"]["state"].as_str().unwrap_or_default();
                (
                    (
                        l("alertname"),
                        l("group_id"),
                        l("cluster_name"),
                        l("instance"),
                        l("severity"),
                    ),
                    (state, receivers),
                )
            })
            .collect();
        if &got == wanted {
            Ok(())
        } else {
            Err(format!("{got:#?}"))
        }
    })
    .await;

    // Both refused projects make one group, so one notification.
    let groups = server
        .get_json("/api/v2/alerts/groups", &[])
        .await
        .expect("groups");
    let denied_groups: Vec<&Json> = groups
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["labels"]["alertname"] == denied)
        .collect();
    assert_eq!(denied_groups.len(), 1, "{groups}");
    let projects: BTreeSet<&str> = denied_groups[0]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["labels"]["group_id"].as_str())
        .collect();
    assert_eq!(projects, BTreeSet::from([SCHEDULED, REFUSED]), "{groups}");
}
