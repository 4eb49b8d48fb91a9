//! The metadata lookups (project names, cluster details and tags, export buckets) against the
//! stand-in, on v2 and v1.0, and what a failing lookup returns.

use std::time::Duration;

use atlas_backup_exporter::atlas::{AtlasClient, AtlasError, Deadline};
use atlas_backup_exporter::clock::{Clock, ManualClock};
use atlas_backup_exporter::config;
use atlas_backup_exporter::metrics::OwnMetrics;
use fake_atlas::{FakeAtlas, Fault, job};
use prometheus::IntCounterVec;

use crate::support::{self, Exporter, GROUP, GROUP2, Scrape, api_key, fake};

const BUCKET: &str = "32b6e34b3d91647abb20e7b8";
const BUCKET2: &str = "32b6e34b3d91647abb20e7b9";

/// A stand-in with a named project, a tagged sharded cluster and buckets on two clouds.
async fn named_atlas() -> (FakeAtlas, String) {
    let fake = fake();
    let base_url = fake.start().await.unwrap();
    fake.set_group_name(GROUP, "payments-prod");
    fake.add_sharded_cluster(GROUP, "Cluster1");
    fake.set_cluster_tags(
        GROUP,
        "Cluster1",
        &[("team", "payments"), ("cost-center", "42")],
    );
    fake.add_export_bucket(GROUP, BUCKET, "acme-backups", "AWS");
    fake.add_export_bucket(GROUP, BUCKET2, "acme-gcs", "GCP");
    (fake, base_url)
}

fn client(base_url: &str, api_version: &str) -> (AtlasClient, IntCounterVec) {
    let yaml = format!(
        "atlas:\n  base_url: {base_url}\n  api_version: {api_version}\ntargets:\n  - group_id: {GROUP}\n"
    );
    let config = config::parse(&yaml, "test.yml").unwrap();
    let requests = OwnMetrics::new().api_requests;
    let client =
        AtlasClient::new(&config.atlas, api_key(), requests.clone(), Clock::real()).unwrap();
    (client, requests)
}

fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

#[tokio::test]
async fn each_lookup_reads_names_details_tags_and_buckets_on_v2_and_v1() {
    let (fake, base_url) = named_atlas().await;
    for api_version in ["v2", "v1"] {
        let (client, requests) = client(&base_url, api_version);
        let name = client.get_project(GROUP, deadline()).await.unwrap();
        assert_eq!(name.as_deref(), Some("payments-prod"), "{api_version}");

        let details = client
            .get_cluster(GROUP, "Cluster1", deadline())
            .await
            .unwrap();
        assert_eq!(details.cluster_type, "SHARDED", "{api_version}");
        assert_eq!(details.mongodb_version, "8.0.12");
        assert_eq!(details.state_name, "IDLE");
        assert_eq!(details.paused, Some(false));
        assert_eq!(details.tag("team"), "payments");
        assert_eq!(details.tag("cost-center"), "42");
        assert_eq!(details.tag("absent"), "");

        let buckets = client
            .list_export_buckets(GROUP, 10, deadline())
            .await
            .unwrap();
        let seen: Vec<_> = buckets
            .iter()
            .map(|b| {
                (
                    b.id.as_deref().unwrap(),
                    b.bucket_name.as_deref().unwrap(),
                    b.cloud_provider.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (BUCKET, "acme-backups", "AWS"),
                (BUCKET2, "acme-gcs", "GCP")
            ]
        );
        for endpoint in ["get_project", "get_cluster", "list_export_buckets"] {
            let count = requests.with_label_values(&[endpoint, "200"]).get();
            assert_eq!(count, 1, "{api_version} {endpoint}");
        }
    }
    // Each lookup reached the stand-in under its own name, once per API version.
    let counts = fake.requests();
    assert!(counts.endpoint("get_project") >= 2);
    assert!(counts.endpoint("get_cluster") >= 2);
    assert!(counts.endpoint("list_export_buckets") >= 2);
}

#[tokio::test]
async fn a_failed_lookup_is_an_error_named_by_its_call_and_counted_under_its_endpoint() {
    let (fake, base_url) = named_atlas().await;
    let (client, requests) = client(&base_url, "v2");
    fake.inject(Fault::status("/exportBuckets", 403));
    let error = client
        .list_export_buckets(GROUP, 10, deadline())
        .await
        .unwrap_err();
    assert!(matches!(error, AtlasError::Status { status: 403, .. }));
    assert!(
        error
            .to_string()
            .contains(&format!("listing the export buckets of project {GROUP}")),
        "{error}"
    );
    let count = requests.with_label_values(&["list_export_buckets", "403"]);
    assert_eq!(count.get(), 1);

    let error = client
        .get_cluster(GROUP, "Gone", deadline())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AtlasError::Status { status: 404, .. }),
        "{error}"
    );
    let count = requests.with_label_values(&["get_cluster", "404"]);
    assert_eq!(count.get(), 1);

    fake.inject(Fault::raw(&format!("/groups/{GROUP}"), 200, "text/html", "<html>").at_path_end());
    let error = client.get_project(GROUP, deadline()).await.unwrap_err();
    assert!(matches!(error, AtlasError::Body { .. }), "{error}");
}

const HOUR: Duration = Duration::from_secs(3600);

/// The stand-in for the exporter: GROUP ("payments-prod") with Cluster0 configured (tagged)
/// and two buckets; GROUP2 ("analytics") discovered, with Cluster9 and one Azure bucket.
fn two_projects() -> FakeAtlas {
    let fake = fake();
    fake.set_group_name(GROUP, "payments-prod");
    fake.set_group_name(GROUP2, "analytics");
    fake.add_cluster(GROUP, "Cluster0");
    fake.set_cluster_tags(
        GROUP,
        "Cluster0",
        &[("team", "payments"), ("cost-center", "42")],
    );
    fake.put_job(GROUP, "Cluster0", job("605ccba3c1c7613f423e1585").build());
    fake.add_sharded_cluster(GROUP2, "Cluster9");
    fake.put_job(GROUP2, "Cluster9", job("605ccba3c1c7613f423e1586").build());
    fake.add_export_bucket(GROUP, BUCKET, "acme-backups", "AWS");
    fake.add_export_bucket(GROUP, BUCKET2, "acme-gcs", "GCP");
    fake.add_export_bucket(GROUP2, "32b6e34b3d91647abb20e7c0", "acmeblob", "AZURE");
    fake
}

fn yaml(metadata: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n    \
         labels: {{env: prod}}\n  - group_id: {GROUP2}\n{metadata}"
    )
}

async fn start(fake: FakeAtlas, metadata: &str) -> (Exporter, ManualClock) {
    let clock = ManualClock::new();
    // A service account: no digest challenge legs in the stand-in's request counts.
    let credentials = support::service_account();
    let exporter =
        Exporter::start_with_clock(fake, &yaml(metadata), credentials, clock.clock()).await;
    (exporter, clock)
}

/// The lookups the stand-in has answered: projects, clusters, buckets.
fn lookups(fake: &FakeAtlas) -> [u64; 3] {
    let counts = fake.requests();
    ["get_project", "get_cluster", "list_export_buckets"].map(|e| counts.endpoint(e))
}

fn info(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> usize {
    let found = scrape.find(name, labels);
    assert!(found.iter().all(|s| s.value == 1.0), "{found:?}");
    found.len()
}

#[tokio::test]
async fn names_details_tags_and_buckets_are_served_and_read_once_per_refresh_interval() {
    let fake = two_projects();
    let (exporter, clock) = start(
        fake.clone(),
        "metadata:\n  cluster_tags: [team, cost-center, owner]\n",
    )
    .await;
    let mut scrape = exporter.scrape().await;
    for _ in 0..9 {
        scrape = exporter.scrape().await;
    }
    // One name and one bucket listing per project, one details call for the configured cluster
    // (the discovered one came with its project's cluster listing), over ten scrapes.
    assert_eq!(lookups(&fake), [2, 1, 2]);

    let project = "atlas_backup_export_project_info";
    assert_eq!(
        info(
            &scrape,
            project,
            &[
                ("group_id", GROUP),
                ("group_name", "payments-prod"),
                ("env", "prod")
            ]
        ),
        1
    );
    assert_eq!(
        info(
            &scrape,
            project,
            &[("group_id", GROUP2), ("group_name", "analytics")]
        ),
        1
    );
    assert_eq!(scrape.find(project, &[]).len(), 2);

    let cluster = "atlas_backup_export_cluster_info";
    let labels = [
        ("group_id", GROUP),
        ("cluster_name", "Cluster0"),
        ("cluster_type", "REPLICASET"),
        ("mongodb_version", "8.0.12"),
        ("env", "prod"),
    ];
    assert_eq!(info(&scrape, cluster, &labels), 1);
    // Only the labels that rarely change: the state churned series, pausing has its own.
    let found = scrape.find(cluster, &[("cluster_name", "Cluster0")]);
    let names: Vec<&str> = found[0].labels.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "cluster_name",
            "cluster_type",
            "env",
            "group_id",
            "mongodb_version"
        ]
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_cluster_paused",
            &[
                ("group_id", GROUP),
                ("cluster_name", "Cluster0"),
                ("env", "prod")
            ]
        ),
        Some(0.0)
    );
    let labels = [
        ("group_id", GROUP2),
        ("cluster_name", "Cluster9"),
        ("cluster_type", "SHARDED"),
    ];
    assert_eq!(info(&scrape, cluster, &labels), 1);

    let tags = scrape.find(
        "atlas_backup_export_cluster_tags",
        &[("cluster_name", "Cluster0")],
    );
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].labels["tag_team"], "payments");
    assert_eq!(tags[0].labels["tag_cost_center"], "42");
    assert!(
        scrape.text.contains("tag_owner=\"\""),
        "an allowed tag the cluster lacks is empty"
    );
    assert!(!scrape.text.contains("tag_owner=\"x"));

    let bucket = "atlas_backup_export_bucket_info";
    let labels = [
        ("group_id", GROUP),
        ("export_bucket_id", BUCKET),
        ("bucket_name", "acme-backups"),
        ("cloud_provider", "AWS"),
    ];
    assert_eq!(info(&scrape, bucket, &labels), 1);
    assert_eq!(
        info(
            &scrape,
            bucket,
            &[("bucket_name", "acme-gcs"), ("cloud_provider", "GCP")]
        ),
        1
    );
    assert_eq!(
        info(
            &scrape,
            bucket,
            &[
                ("group_id", GROUP2),
                ("bucket_name", "acmeblob"),
                ("cloud_provider", "AZURE")
            ]
        ),
        1
    );

    // A rename shows after the next refresh, not before.
    fake.set_group_name(GROUP, "payments-production");
    clock.advance(HOUR - Duration::from_millis(1));
    let scrape = exporter.scrape().await;
    assert_eq!(
        info(&scrape, project, &[("group_name", "payments-prod")]),
        1
    );
    assert_eq!(lookups(&fake), [2, 1, 2]);
    clock.advance(Duration::from_millis(1));
    let scrape = exporter.scrape().await;
    assert_eq!(
        info(&scrape, project, &[("group_name", "payments-production")]),
        1
    );
    assert_eq!(lookups(&fake), [4, 2, 4]);
}

#[tokio::test]
async fn failed_lookups_keep_up_the_jobs_and_the_last_good_names() {
    let fake = two_projects();
    let (exporter, clock) = start(fake.clone(), "").await;
    let first = exporter.scrape().await;
    assert_eq!(
        info(
            &first,
            "atlas_backup_export_project_info",
            &[("group_id", GROUP)]
        ),
        1
    );

    // No role, a deleted project, Atlas down, a timeout: each lookup fails its own way.
    fake.inject(Fault::status("/exportBuckets", 403));
    fake.inject(Fault::status(&format!("/groups/{GROUP}"), 500).at_path_end());
    fake.inject(Fault::status(&format!("/groups/{GROUP2}"), 404).at_path_end());
    fake.inject(Fault::status("/clusters/Cluster0", 503).at_path_end());
    clock.advance(HOUR);
    for _ in 0..3 {
        let scrape = exporter.scrape().await;
        for cluster in ["Cluster0", "Cluster9"] {
            let up = scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)]);
            assert_eq!(up, Some(1.0), "{cluster}");
            assert_eq!(scrape.job_ids(cluster).len(), 1, "{cluster}");
        }
        for (name, count) in [
            ("atlas_backup_export_project_info", 2),
            ("atlas_backup_export_cluster_info", 2),
            ("atlas_backup_export_bucket_info", 3),
        ] {
            assert_eq!(
                scrape.find(name, &[]).len(),
                count,
                "{name} keeps its last good value"
            );
        }
        let requests = |endpoint: &str, code: &str| {
            let labels = [("endpoint", endpoint), ("code", code)];
            scrape.value("atlas_backup_exporter_api_requests_total", &labels)
        };
        assert_eq!(
            requests("list_export_buckets", "403"),
            Some(2.0),
            "once per project per refresh"
        );
        assert_eq!(requests("get_project", "404"), Some(1.0));
        assert!(requests("get_project", "500").is_some_and(|n| n >= 1.0));
        assert!(requests("get_cluster", "503").is_some_and(|n| n >= 1.0));
    }
}

#[tokio::test]
async fn each_lookup_can_be_turned_off() {
    for (metadata, expected, absent) in [
        (
            "metadata: {projects: false}\n",
            [0, 1, 2],
            "atlas_backup_export_project_info",
        ),
        (
            "metadata: {clusters: false, cluster_tags: [team]}\n",
            [2, 0, 2],
            "atlas_backup_export_cluster_info",
        ),
        (
            "metadata: {buckets: false}\n",
            [2, 1, 0],
            "atlas_backup_export_bucket_info",
        ),
    ] {
        let fake = two_projects();
        let (exporter, _clock) = start(fake.clone(), metadata).await;
        let scrape = exporter.scrape().await;
        assert_eq!(lookups(&fake), expected, "{metadata}");
        assert!(scrape.find(absent, &[]).is_empty(), "{metadata}");
        if absent == "atlas_backup_export_cluster_info" {
            assert!(
                scrape
                    .find("atlas_backup_export_cluster_tags", &[])
                    .is_empty()
            );
        }
        assert_eq!(scrape.find("atlas_backup_export_up", &[]).len(), 2);
    }
}

#[tokio::test]
async fn the_project_listing_gives_the_names_without_a_lookup() {
    let fake = two_projects();
    let clock = ManualClock::new();
    let yaml = "atlas:\n  base_url: BASE_URL\ndiscovery:\n  all_projects: true\n  interval: 0\n";
    let exporter = Exporter::start_with_clock(
        fake.clone(),
        yaml,
        support::service_account(),
        clock.clock(),
    )
    .await;
    let mut scrape = exporter.scrape().await;
    for _ in 0..4 {
        scrape = exporter.scrape().await;
    }
    // Discovery on every scrape lists projects and clusters anyway; the lookups of their own
    // (buckets) still come once per refresh.
    assert_eq!(lookups(&fake), [0, 0, 2]);
    let project = "atlas_backup_export_project_info";
    assert_eq!(
        info(
            &scrape,
            project,
            &[("group_id", GROUP), ("group_name", "payments-prod")]
        ),
        1
    );
    assert_eq!(
        info(
            &scrape,
            project,
            &[("group_id", GROUP2), ("group_name", "analytics")]
        ),
        1
    );
    assert_eq!(
        scrape.find("atlas_backup_export_cluster_info", &[]).len(),
        2
    );
}

#[tokio::test]
async fn probes_carry_their_cluster_s_details_and_metrics_the_project_s() {
    let fake = two_projects();
    let metadata = "metadata:\n  cluster_tags: [team]\ncollection:\n  on_metrics: false\n";
    let (exporter, _clock) = start(fake.clone(), metadata).await;
    let (status, text) = exporter
        .get(&format!("/probe?group_id={GROUP}&cluster_name=Cluster0"))
        .await;
    assert_eq!(status, 200);
    let probe = Scrape::parse(&text);
    assert_eq!(
        info(
            &probe,
            "atlas_backup_export_cluster_info",
            &[("cluster_name", "Cluster0")]
        ),
        1
    );
    assert_eq!(probe.find("atlas_backup_export_cluster_info", &[]).len(), 1);
    assert_eq!(
        info(
            &probe,
            "atlas_backup_export_cluster_tags",
            &[("tag_team", "payments")]
        ),
        1
    );
    assert!(
        probe
            .find("atlas_backup_export_project_info", &[])
            .is_empty()
    );
    assert!(
        probe
            .find("atlas_backup_export_bucket_info", &[])
            .is_empty()
    );

    // /metrics serves what the probes read of the projects, once, without calling Atlas.
    let before = lookups(&fake);
    let scrape = exporter.scrape().await;
    assert_eq!(lookups(&fake), before);
    assert_eq!(
        info(
            &scrape,
            "atlas_backup_export_project_info",
            &[("group_id", GROUP), ("group_name", "payments-prod")]
        ),
        1
    );
    assert_eq!(
        scrape
            .find("atlas_backup_export_bucket_info", &[("group_id", GROUP)])
            .len(),
        2
    );
    assert!(
        scrape
            .find("atlas_backup_export_cluster_info", &[])
            .is_empty()
    );
    assert!(scrape.find("atlas_backup_export_up", &[]).is_empty());
    // Access is per project: on /metrics, as the probes' calls left it, never on a probe.
    let denied = "atlas_backup_export_access_denied";
    assert!(probe.find(denied, &[]).is_empty());
    assert_eq!(scrape.value(denied, &[("group_id", GROUP)]), Some(0.0));
}

#[tokio::test]
async fn the_demo_shows_every_info_series_with_its_data() {
    let fake = fake();
    let _demo = fake.seed_demo(time::OffsetDateTime::now_utc());
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    labels: {{env: demo}}\n\
         metadata:\n  cluster_tags: [team, environment]\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let project = [
        ("group_id", GROUP),
        ("group_name", "Demo Project"),
        ("env", "demo"),
    ];
    assert_eq!(
        info(&scrape, "atlas_backup_export_project_info", &project),
        1
    );
    let cluster = "atlas_backup_export_cluster_info";
    let c0 = [("cluster_name", "Cluster0"), ("cluster_type", "REPLICASET")];
    assert_eq!(info(&scrape, cluster, &c0), 1);
    let c1 = [
        ("cluster_name", "Cluster1"),
        ("cluster_type", "SHARDED"),
        ("mongodb_version", "8.0.12"),
    ];
    assert_eq!(info(&scrape, cluster, &c1), 1);
    // Archive is not watched (Cloud Backup off), so it has no details series; Cluster2 (the
    // overdue auto-export) and Cluster3 (exported by hand) have.
    assert_eq!(scrape.find(cluster, &[]).len(), 4);
    let tags = "atlas_backup_export_cluster_tags";
    let t0 = [
        ("cluster_name", "Cluster0"),
        ("tag_team", "payments"),
        ("tag_environment", "demo"),
    ];
    assert_eq!(info(&scrape, tags, &t0), 1);
    let t1 = [
        ("cluster_name", "Cluster1"),
        ("tag_team", "analytics"),
        ("tag_environment", ""),
    ];
    assert_eq!(info(&scrape, tags, &t1), 1);
    let bucket = "atlas_backup_export_bucket_info";
    let aws = [
        ("export_bucket_id", "6a794342c0eb9e7a17729455"),
        ("bucket_name", "acme-backups"),
        ("cloud_provider", "AWS"),
    ];
    let gcp = [
        ("export_bucket_id", "6a794342c0eb9e7a17729456"),
        ("bucket_name", "acme-backups-eu"),
        ("cloud_provider", "GCP"),
    ];
    assert_eq!(info(&scrape, bucket, &aws), 1);
    assert_eq!(info(&scrape, bucket, &gcp), 1);
    // Each job's bucket joins to a bucket_info series.
    for job in scrape.find("atlas_backup_export_job_info", &[]) {
        let id = job.labels["export_bucket_id"].as_str();
        assert_eq!(
            scrape.find(bucket, &[("export_bucket_id", id)]).len(),
            1,
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_hundred_clusters_in_ten_projects_cost_at_most_a_hundredth_of_a_request_per_cluster_per_scrape()
 {
    // The worst case: every cluster configured, so each needs a details call of its own.
    let fake = fake();
    let mut yaml = "atlas:\n  base_url: BASE_URL\ntargets:\n".to_owned();
    for p in 0..10 {
        let group_id = format!("5f1a2b3c4d5e6f7a8b9c0d{p:02x}");
        let clusters: Vec<String> = (0..10).map(|c| format!("C{p}x{c}")).collect();
        for cluster in &clusters {
            fake.add_cluster(&group_id, cluster);
        }
        fake.add_export_bucket(&group_id, BUCKET, "acme-backups", "AWS");
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
    // An hour of 30-second scrapes.
    let scrapes = 120;
    for _ in 0..scrapes {
        let scrape = exporter.scrape().await;
        assert_eq!(scrape.find("atlas_backup_export_up", &[]).len(), 100);
        clock.advance(Duration::from_secs(30));
    }
    let [names, details, buckets] = lookups(&fake);
    assert_eq!([names, details, buckets], [10, 100, 10]);
    let per_cluster_per_scrape = (names + details + buckets) as f64 / (100.0 * scrapes as f64);
    assert!(per_cluster_per_scrape <= 0.01, "{per_cluster_per_scrape}");
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 100 * scrapes);
}

#[tokio::test]
async fn the_binary_logs_a_failed_lookup_once_per_refresh_not_once_per_scrape() {
    let fake = two_projects();
    let base_url = fake.start().await.unwrap();
    // No role for buckets; and a cluster that is gone, whose failure is logged every scrape.
    fake.inject(Fault::status("/exportBuckets", 403));
    let dir = support::TempDir::new("metadata-log");
    let config = dir.write(
        "exporter.yml",
        &format!(
            "atlas:\n  base_url: {base_url}\n  auth:\n    api_key: {{public_key: {}, private_key: {}}}\n\
             targets:\n  - group_id: {GROUP}\n    clusters: [Cluster0, Gone]\n",
            support::PUBLIC_KEY,
            support::PRIVATE_KEY
        ),
    );
    let exporter = support::Spawn::exporter().config(&config).serve().await;
    let (log, address) = (&exporter.log, exporter.addr);
    for _ in 0..3 {
        let text = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let scrape = Scrape::parse(&text);
        let up = scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]);
        assert_eq!(up, Some(1.0));
    }
    // The third scrape's own failure line: everything logged before it is in.
    log.nth_line_with("collecting export jobs failed", 3).await;
    let failed = "looking up the project's export buckets failed";
    let line = log.line_with(failed).await;
    assert!(line.contains("403") && line.contains(GROUP), "{line}");
    let text = log.text();
    assert_eq!(
        text.lines().filter(|l| l.contains(failed)).count(),
        1,
        "{text}"
    );
    // The child is ours: stop it by its handle.
    exporter.into_running().kill();
}
