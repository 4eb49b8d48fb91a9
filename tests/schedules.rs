//! Auto-export schedules and the age of the exported data: the five series on the demo's data,
//! the snapshot lookups (once per snapshot id, the sharded path, the 404 fallback across a
//! restart), the schedule's refresh, each lookup turned off, and the v1.0 paths.

use std::time::Duration;

use atlas_backup_exporter::atlas::{AtlasClient, Deadline};
use atlas_backup_exporter::clock::{Clock, ManualClock};
use atlas_backup_exporter::config;
use atlas_backup_exporter::metrics::OwnMetrics;
use fake_atlas::{DEMO_EXPIRED_SNAPSHOT_ID, DemoTimings, FakeAtlas, Fault, job};
use time::OffsetDateTime;

use crate::support::{self, Captured, Exporter, GROUP, Scrape, api_key, fake};

/// The demo's bucket on AWS, where `Cluster0` and `Cluster2` export by schedule.
const AWS_BUCKET: &str = "6a794342c0eb9e7a17729455";
const HOUR: Duration = Duration::from_secs(3600);

const ENABLED: &str = "atlas_backup_export_auto_export_enabled";
const INTERVAL: &str = "atlas_backup_export_auto_export_interval_seconds";
const SCHEDULED_SUCCESS: &str = "atlas_backup_export_auto_export_last_success_timestamp_seconds";
const SNAPSHOT: &str = "atlas_backup_export_last_success_snapshot_timestamp_seconds";
const CREATED: &str = "atlas_backup_export_cluster_created_timestamp_seconds";
const AUTO_EXPORT_INFO: &str = "atlas_backup_export_auto_export_info";

/// The demo, its moving job held `Queued` for the whole test, seeded at a whole second.
fn demo() -> (FakeAtlas, f64, fake_atlas::DemoHandle) {
    let fake = fake();
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let timings = DemoTimings {
        queued_for: Duration::from_secs(86_400),
        in_progress_until: Duration::from_secs(2 * 86_400),
    };
    let handle = fake.seed_demo_with_timings(now, timings);
    (fake, now.unix_timestamp() as f64, handle)
}

fn yaml(metadata: &str) -> String {
    format!("atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n{metadata}")
}

async fn start(fake: FakeAtlas, metadata: &str) -> (Exporter, ManualClock) {
    let clock = ManualClock::new();
    let credentials = support::service_account();
    let exporter =
        Exporter::start_with_clock(fake, &yaml(metadata), credentials, clock.clock()).await;
    (exporter, clock)
}

fn of(cluster: &str) -> [(&str, &str); 1] {
    [("cluster_name", cluster)]
}

const DAY: f64 = 86_400.0;

#[tokio::test]
async fn the_demo_shows_the_five_series_with_the_values_its_data_implies() {
    let (fake, now, _demo) = demo();
    let (exporter, _clock) = start(fake, "").await;
    let scrape = exporter.scrape().await;

    assert_eq!(scrape.value(ENABLED, &of("Cluster0")), Some(1.0));
    assert_eq!(scrape.value(ENABLED, &of("Cluster1")), Some(0.0));
    assert_eq!(scrape.value(ENABLED, &of("Cluster2")), Some(1.0));

    for cluster in ["Cluster0", "Cluster2"] {
        // The interval has the cluster's labels only: the schedule's bucket and frequency are
        // on auto_export_info, so rules join the two without ignoring().
        let found = scrape.find(INTERVAL, &of(cluster));
        assert_eq!(found.len(), 1, "{cluster}");
        let names: Vec<&str> = found[0].labels.keys().map(String::as_str).collect();
        assert_eq!(names, ["cluster_name", "group_id"]);
        assert_eq!(found[0].value, 2_678_400.0);
        let labels = [
            ("cluster_name", cluster),
            ("export_bucket_id", AWS_BUCKET),
            ("frequency_type", "monthly"),
        ];
        assert_eq!(scrape.value(AUTO_EXPORT_INFO, &labels), Some(1.0));
    }
    assert_eq!(
        scrape.find(INTERVAL, &[]).len(),
        2,
        "none without auto-export"
    );
    assert_eq!(scrape.find(AUTO_EXPORT_INFO, &[]).len(), 2);

    // Cluster0: the seed's replica-set job, 2 h ago plus its 3,537 s. Cluster2: the scheduled
    // export 40 days ago, not the on-demand one to the other bucket 2 days ago.
    let c0_finished = now - 2.0 * 3600.0 + 3537.0;
    assert_eq!(
        scrape.value(SCHEDULED_SUCCESS, &of("Cluster0")),
        Some(c0_finished)
    );
    let c2_scheduled = now - 40.0 * DAY + 20.0 * 60.0;
    assert_eq!(
        scrape.value(SCHEDULED_SUCCESS, &of("Cluster2")),
        Some(c2_scheduled)
    );
    assert_eq!(scrape.value(SCHEDULED_SUCCESS, &of("Cluster1")), None);
    let any_bucket = "atlas_backup_export_last_success_timestamp_seconds";
    let c2_on_demand = now - 2.0 * DAY + 20.0 * 60.0;
    assert_eq!(
        scrape.value(any_bucket, &of("Cluster2")),
        Some(c2_on_demand)
    );

    // The snapshots: taken 30 min before Cluster0's job; Cluster1's expired, so the time its
    // id carries; Cluster2's scheduled export's, an hour before it.
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster0")),
        Some(now - 2.0 * 3600.0 - 30.0 * 60.0)
    );
    let from_id = u32::from_str_radix(&DEMO_EXPIRED_SNAPSHOT_ID[..8], 16).unwrap();
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster1")),
        Some(f64::from(from_id))
    );
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster2")),
        Some(now - 40.0 * DAY - 3600.0)
    );

    for cluster in ["Cluster0", "Cluster1", "Cluster2", "Cluster3"] {
        assert_eq!(scrape.value(CREATED, &of(cluster)), Some(now - 400.0 * DAY));
    }
    assert_eq!(scrape.find(CREATED, &of("Archive")).len(), 0, "not watched");
}

#[tokio::test]
async fn each_snapshot_is_read_once_and_the_expired_one_again_after_a_restart_with_the_same_value()
{
    let (fake, _now, _demo) = demo();
    let (first, _clock) = start(fake.clone(), "").await;
    let mut scrape = first.scrape().await;
    for _ in 0..4 {
        scrape = first.scrape().await;
    }
    // One snapshot per cluster, each read once over five scrapes, the expired one included.
    assert_eq!(fake.requests().endpoint("get_snapshot"), 4);
    let expired = scrape.value(SNAPSHOT, &of("Cluster1"));
    assert!(expired.is_some());

    // A new exporter has nothing in memory: it asks once more, gets 404 again, and shows the
    // same time.
    let (second, _clock) = start(fake.clone(), "").await;
    let after_restart = second.scrape().await;
    assert_eq!(fake.requests().endpoint("get_snapshot"), 8);
    assert_eq!(after_restart.value(SNAPSHOT, &of("Cluster1")), expired);
}

#[tokio::test]
async fn a_new_newest_success_reads_its_snapshot_and_forgets_the_old_one() {
    let fake = fake();
    fake.add_cluster(GROUP, "Cluster0");
    let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
    fake.add_snapshot(
        GROUP,
        "Cluster0",
        "6a7943462c88faeba59ccf01",
        at(1_786_000_000),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("6a7945592c88faeba59d5e01")
            .state("Successful")
            .created(at(1_786_000_100))
            .finished(at(1_786_000_200))
            .snapshot_id("6a7943462c88faeba59ccf01")
            .build(),
    );
    let (exporter, _clock) = start(fake.clone(), "").await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster0")),
        Some(1_786_000_000.0)
    );

    fake.add_snapshot(
        GROUP,
        "Cluster0",
        "6a7943462c88faeba59ccf02",
        at(1_786_100_000),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("6a7945592c88faeba59d5e02")
            .state("Successful")
            .created(at(1_786_100_100))
            .finished(at(1_786_100_200))
            .snapshot_id("6a7943462c88faeba59ccf02")
            .build(),
    );
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster0")),
        Some(1_786_100_000.0)
    );
    exporter.scrape().await;
    assert_eq!(fake.requests().endpoint("get_snapshot"), 2);
}

#[tokio::test]
async fn a_sharded_clusters_snapshot_is_read_at_the_sharded_path() {
    let fake = fake();
    fake.add_sharded_cluster(GROUP, "Cluster1");
    // The id carries 2026-08-10; the snapshot says a day later: only the sharded path, which
    // the stand-in alone answers for a sharded cluster, gives the snapshot's own time.
    let snapshot = "6a7943472c88faeba59ccf70";
    let taken = OffsetDateTime::from_unix_timestamp(1_786_419_399).unwrap();
    fake.add_snapshot(GROUP, "Cluster1", snapshot, taken);
    fake.put_job(
        GROUP,
        "Cluster1",
        job("6a79455a2c88faeba59d5f00")
            .state("Successful")
            .created_at("2026-08-11T10:00:00Z")
            .finished_at("2026-08-11T10:41:00Z")
            .snapshot_id(snapshot)
            .components(2)
            .build(),
    );
    let (exporter, _clock) = start(fake, "").await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(SNAPSHOT, &of("Cluster1")),
        Some(1_786_419_399.0)
    );
}

#[tokio::test]
async fn the_schedule_is_read_once_per_refresh_interval_and_a_failure_keeps_the_last_one() {
    let (fake, _now, _demo) = demo();
    let (exporter, clock) = start(fake.clone(), "metadata:\n  refresh_interval: 1h\n").await;
    for _ in 0..5 {
        exporter.scrape().await;
    }
    assert_eq!(
        fake.requests().endpoint("get_backup_schedule"),
        4,
        "one per cluster"
    );

    // Atlas turns Cluster2's auto-export off, and Cluster0's schedule starts failing.
    fake.disable_auto_export(GROUP, "Cluster2");
    fake.inject(Fault::status("/clusters/Cluster0/backup/schedule", 500));
    clock.advance(HOUR - Duration::from_secs(1));
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(ENABLED, &of("Cluster2")),
        Some(1.0),
        "not due yet"
    );

    clock.advance(Duration::from_secs(1));
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value(ENABLED, &of("Cluster2")), Some(0.0));
    assert_eq!(scrape.value(SCHEDULED_SUCCESS, &of("Cluster2")), None);
    assert_eq!(scrape.find(INTERVAL, &of("Cluster2")).len(), 0);
    // The failed lookup keeps Cluster0's last schedule, and the cluster is up.
    assert_eq!(scrape.value(ENABLED, &of("Cluster0")), Some(1.0));
    let up = "atlas_backup_export_up";
    assert_eq!(scrape.value(up, &of("Cluster0")), Some(1.0));
    assert!(scrape.value(SCHEDULED_SUCCESS, &of("Cluster0")).is_some());
    exporter.scrape().await;
    let calls = fake.requests().endpoint("get_backup_schedule");
    assert!(
        (8..=11).contains(&calls),
        "{calls}: retried within one refresh only"
    );
}

#[tokio::test]
async fn each_lookup_turned_off_costs_no_request_and_shows_no_series() {
    let (fake, _now, _demo) = demo();
    let (exporter, _clock) = start(fake.clone(), "metadata:\n  schedules: false\n").await;
    let scrape = exporter.scrape().await;
    assert_eq!(fake.requests().endpoint("get_backup_schedule"), 0);
    for name in [ENABLED, INTERVAL, SCHEDULED_SUCCESS] {
        assert!(scrape.find(name, &[]).is_empty(), "{name}");
    }
    // Without the schedule, Cluster2's snapshot is the newest success's: the on-demand one.
    let on_demand = scrape.value(SNAPSHOT, &of("Cluster2")).unwrap();
    let scheduled = scrape
        .value(
            "atlas_backup_export_last_success_timestamp_seconds",
            &of("Cluster2"),
        )
        .unwrap();
    assert_eq!(scheduled - on_demand, 3600.0 + 20.0 * 60.0);

    let (fake, _now, _demo) = demo();
    let (exporter, _clock) = start(fake.clone(), "metadata:\n  snapshots: false\n").await;
    let scrape = exporter.scrape().await;
    assert_eq!(fake.requests().endpoint("get_snapshot"), 0);
    assert!(scrape.find(SNAPSHOT, &[]).is_empty());
    assert_eq!(scrape.value(ENABLED, &of("Cluster0")), Some(1.0));
}

// One thread: the scrapes, and so the lookups, run where the log is captured.
#[tokio::test(flavor = "current_thread")]
async fn an_unknown_frequency_shows_auto_export_on_without_an_interval_and_is_logged_once_per_refresh()
 {
    let (captured, _log) = Captured::on_this_thread(atlas_backup_exporter::logging::LogLevel::Info);
    let (fake, _now, _demo) = demo();
    fake.set_auto_export(GROUP, "Cluster1", AWS_BUCKET, "fortnightly");
    let (exporter, clock) = start(fake, "").await;
    let unknown = "frequency is not one the exporter knows";
    for _ in 0..5 {
        let scrape: Scrape = exporter.scrape().await;
        assert_eq!(scrape.value(ENABLED, &of("Cluster1")), Some(1.0));
        assert!(scrape.find(INTERVAL, &of("Cluster1")).is_empty());
        assert!(scrape.find(INTERVAL, &of("Cluster0")).len() == 1);
    }
    assert_eq!(captured.count(unknown), 1);
    assert_eq!(captured.count("frequency_type=fortnightly"), 1);
    clock.advance(HOUR);
    exporter.scrape().await;
    assert_eq!(captured.count(unknown), 2, "once per refresh");
}

#[tokio::test]
async fn the_schedule_and_snapshots_are_read_on_v2_and_v1() {
    let (fake, _now, _demo) = demo();
    let base_url = fake.start().await.unwrap();
    for api_version in ["v2", "v1"] {
        let yaml = format!(
            "atlas:\n  base_url: {base_url}\n  api_version: {api_version}\ntargets:\n  - group_id: {GROUP}\n"
        );
        let config = config::parse(&yaml, "test.yml").unwrap();
        let requests = OwnMetrics::new().api_requests;
        let client =
            AtlasClient::new(&config.atlas, api_key(), requests.clone(), Clock::real()).unwrap();
        let deadline = Deadline::after(Duration::from_secs(10));
        let schedule = client
            .get_backup_schedule(GROUP, "Cluster0", deadline)
            .await
            .unwrap();
        assert!(schedule.auto_export, "{api_version}");
        assert_eq!(schedule.bucket_id.as_deref(), Some(AWS_BUCKET));
        assert_eq!(schedule.interval_seconds(), Some(2_678_400));
        let expired = client
            .get_snapshot(GROUP, "Cluster1", DEMO_EXPIRED_SNAPSHOT_ID, true, deadline)
            .await
            .unwrap();
        assert!(expired.from_id, "{api_version}");
        // A missing cluster is an error, not an expired snapshot.
        let gone = client
            .get_snapshot(GROUP, "Nowhere", DEMO_EXPIRED_SNAPSHOT_ID, false, deadline)
            .await;
        assert!(gone.is_err(), "{api_version}");
        // An expired snapshot whose id carries no time is an error that says so.
        let odd = client
            .get_snapshot(GROUP, "Cluster0", "snapshot-1", false, deadline)
            .await
            .unwrap_err();
        assert!(odd.to_string().contains("not an ObjectId"), "{odd}");
        let ok = requests
            .with_label_values(&["get_backup_schedule", "200"])
            .get();
        assert_eq!(ok, 1, "{api_version}");
    }
}

#[tokio::test]
async fn an_hour_of_scrapes_of_a_hundred_clusters_reads_each_schedule_and_snapshot_once() {
    let fake = fake();
    let mut yaml = "atlas:\n  base_url: BASE_URL\ntargets:\n".to_owned();
    let taken = OffsetDateTime::from_unix_timestamp(1_786_000_000).unwrap();
    for p in 0..10 {
        let group_id = format!("5f1a2b3c4d5e6f7a8b9c0d{p:02x}");
        let clusters: Vec<String> = (0..10).map(|c| format!("C{p}x{c}")).collect();
        for (c, cluster) in clusters.iter().enumerate() {
            fake.add_cluster(&group_id, cluster);
            fake.set_auto_export(&group_id, cluster, AWS_BUCKET, "monthly");
            let snapshot = format!("6a7943462c88faeba59c{p:02x}{c:02x}");
            fake.add_snapshot(&group_id, cluster, &snapshot, taken);
            let done = job(&format!("6a7945592c88faeba59d{p:02x}{c:02x}"))
                .state("Successful")
                .created_at("2026-08-11T10:00:00Z")
                .finished_at("2026-08-11T10:30:00Z")
                .snapshot_id(&snapshot)
                .export_bucket_id(AWS_BUCKET);
            fake.put_job(&group_id, cluster, done.build());
        }
        yaml.push_str(&format!(
            "  - group_id: {group_id}\n    clusters: [{}]\n",
            clusters.join(", ")
        ));
    }
    let clock = ManualClock::new();
    let exporter = Exporter::start_with_clock(
        fake.clone(),
        &yaml,
        support::service_account(),
        clock.clock(),
    )
    .await;
    // An hour of 30-second scrapes, the default refresh_interval (1h).
    let scrapes = 120;
    for _ in 0..scrapes {
        let scrape = exporter.scrape().await;
        assert_eq!(scrape.find(SNAPSHOT, &[]).len(), 100);
        assert_eq!(scrape.find(SCHEDULED_SUCCESS, &[]).len(), 100);
        clock.advance(Duration::from_secs(30));
    }
    let counts = fake.requests();
    let (schedules, snapshots) = (
        counts.endpoint("get_backup_schedule"),
        counts.endpoint("get_snapshot"),
    );
    assert_eq!((schedules, snapshots), (100, 100));
    let per_cluster_per_scrape = (schedules + snapshots) as f64 / (100.0 * scrapes as f64);
    assert!(per_cluster_per_scrape <= 0.017, "{per_cluster_per_scrape}");
    // The next hour reads the schedules again, the snapshots not: they never change.
    for _ in 0..scrapes {
        exporter.scrape().await;
        clock.advance(Duration::from_secs(30));
    }
    let counts = fake.requests();
    assert_eq!(counts.endpoint("get_backup_schedule"), 200);
    assert_eq!(counts.endpoint("get_snapshot"), 100);
}
