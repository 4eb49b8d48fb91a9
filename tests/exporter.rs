//! The exporter end to end against the stand-in Atlas: what a scrape shows, and what it costs.

use fake_atlas::{Fault, job, seed_examples};
use time::{Duration, OffsetDateTime};

use crate::support::{self, Exporter, GROUP, GROUP2};

fn one_cluster(cluster: &str, extra: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [{cluster}]\nexport_jobs:\n  max_age: 0\n{extra}"
    )
}

fn ago(d: Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() - d
}

#[tokio::test]
async fn the_seed_replica_set_example_has_exact_values() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let (replica_set, _) = seed_examples();
    fake.put_job(GROUP, "Cluster0", replica_set);
    let exporter = Exporter::start(fake, &one_cluster("Cluster0", ""), support::api_key()).await;
    let scrape = exporter.scrape().await;

    let job = [
        ("group_id", GROUP),
        ("cluster_name", "Cluster0"),
        ("export_job_id", "605ccba3c1c7613f423e1585"),
    ];
    let state = |s: &str| {
        let mut labels = job.to_vec();
        labels.push(("state", s));
        scrape.value("atlas_backup_export_job_state", &labels)
    };
    assert_eq!(state("Successful"), Some(1.0));
    for other in ["Queued", "InProgress", "Failed", "Cancelled"] {
        assert_eq!(state(other), Some(0.0), "{other}");
    }
    assert_eq!(scrape.find("atlas_backup_export_job_state", &job).len(), 5);
    assert_eq!(
        scrape.value("atlas_backup_export_job_duration_seconds", &job),
        Some(3537.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_components", &job),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_created_timestamp_seconds", &job),
        Some(1616690963.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_finished_timestamp_seconds", &job),
        Some(1616694500.0)
    );
    let info = scrape.find("atlas_backup_export_job_info", &job);
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels["snapshot_id"], "605cbac9b498841007af7d9f");
    assert_eq!(info[0].labels["export_bucket_id"], "{BUCKET-ID}");
    assert_eq!(info[0].value, 1.0);
    assert!(
        scrape
            .find("atlas_backup_export_job_failure_info", &[])
            .is_empty()
    );
    let cluster = [("cluster_name", "Cluster0")];
    assert_eq!(
        scrape.value(
            "atlas_backup_export_last_success_timestamp_seconds",
            &cluster
        ),
        Some(1616694500.0)
    );
    assert_eq!(scrape.value("atlas_backup_export_up", &cluster), Some(1.0));
    assert_eq!(
        scrape.value("atlas_backup_export_invalid_jobs", &cluster),
        Some(0.0)
    );
    let success = [("cluster_name", "Cluster0"), ("state", "Successful")];
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &success),
        Some(1.0)
    );
    let queued = [("cluster_name", "Cluster0"), ("state", "Queued")];
    assert_eq!(scrape.value("atlas_backup_export_jobs", &queued), Some(0.0));
    assert_eq!(scrape.find("atlas_backup_export_jobs", &cluster).len(), 5);
}

#[tokio::test]
async fn the_seed_sharded_example_has_components_and_no_finish() {
    let fake = support::fake();
    fake.add_sharded_cluster(GROUP, "Cluster1");
    let (_, sharded) = seed_examples();
    fake.put_job(GROUP, "Cluster1", sharded);
    let exporter = Exporter::start(fake, &one_cluster("Cluster1", ""), support::api_key()).await;
    let scrape = exporter.scrape().await;

    let job = [("export_job_id", "606758310d97065aabbe5bfd")];
    assert_eq!(
        scrape.value("atlas_backup_export_job_components", &job),
        Some(2.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_duration_seconds", &job),
        None
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_finished_timestamp_seconds", &job),
        None
    );
    assert_eq!(
        scrape.value("atlas_backup_export_job_created_timestamp_seconds", &job),
        Some(1617385521.0)
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_job_state",
            &[job[0], ("state", "Successful")]
        ),
        Some(1.0)
    );
    // Successful, but without finishedAt it cannot say when the last export succeeded.
    assert_eq!(
        scrape.value("atlas_backup_export_last_success_timestamp_seconds", &[]),
        None
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Successful")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn running_and_failed_jobs_show_what_they_have() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("aaaaaaaaaaaaaaaaaaaaaaa1")
            .state("InProgress")
            .created_at("2026-08-10T03:28:25Z")
            .build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("aaaaaaaaaaaaaaaaaaaaaaa2")
            .state("Failed")
            .created_at("2026-08-09T03:00:00Z")
            .finished_at("2026-08-09T03:10:00.5Z")
            .state_reason("EXPORT_BUCKET_NOT_ACCESSIBLE", "Access denied to bucket")
            .build(),
    );
    let exporter = Exporter::start(fake, &one_cluster("Cluster0", ""), support::api_key()).await;
    let scrape = exporter.scrape().await;

    let running = [("export_job_id", "aaaaaaaaaaaaaaaaaaaaaaa1")];
    assert_eq!(
        scrape.value("atlas_backup_export_job_duration_seconds", &running),
        None
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_job_finished_timestamp_seconds",
            &running
        ),
        None
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_job_state",
            &[running[0], ("state", "InProgress")]
        ),
        Some(1.0)
    );
    assert!(
        scrape
            .find("atlas_backup_export_job_failure_info", &running)
            .is_empty()
    );

    let failed = [("export_job_id", "aaaaaaaaaaaaaaaaaaaaaaa2")];
    assert_eq!(
        scrape.value("atlas_backup_export_job_duration_seconds", &failed),
        Some(600.5)
    );
    let failure = scrape.find("atlas_backup_export_job_failure_info", &failed);
    assert_eq!(failure.len(), 1);
    assert_eq!(
        failure[0].labels["error_code"],
        "EXPORT_BUCKET_NOT_ACCESSIBLE"
    );
    assert!(
        !scrape.text.contains("Access denied"),
        "the message is not a label"
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Failed")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "InProgress")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_last_success_timestamp_seconds", &[]),
        None
    );
}

#[tokio::test]
async fn every_page_arrives_and_max_age_trims_only_the_per_job_series() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    // 1,234 old successful jobs, a day apart going back from 10 days ago.
    for i in 0..1234 {
        let created = ago(Duration::days(10) + Duration::hours(i));
        fake.put_job(
            GROUP,
            "Cluster0",
            job(&format!("{i:024x}"))
                .state("Successful")
                .created(created)
                .finished(created + Duration::minutes(15))
                .build(),
        );
    }
    // An old job still running, and two recent ones.
    fake.put_job(
        GROUP,
        "Cluster0",
        job("bbbbbbbbbbbbbbbbbbbbbbb1")
            .state("InProgress")
            .created(ago(Duration::days(30)))
            .build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("bbbbbbbbbbbbbbbbbbbbbbb2")
            .state("Successful")
            .created(ago(Duration::days(2)))
            .finished(ago(Duration::days(2) - Duration::minutes(20)))
            .build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("bbbbbbbbbbbbbbbbbbbbbbb3")
            .state("Queued")
            .created(ago(Duration::minutes(5)))
            .build(),
    );
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\nexport_jobs:\n  max_age: 7d\n"
    );
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let before = fake.requests();
    let scrape = exporter.scrape().await;

    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Successful")]),
        Some(1235.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "InProgress")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Queued")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.job_ids("Cluster0"),
        [
            "bbbbbbbbbbbbbbbbbbbbbbb1",
            "bbbbbbbbbbbbbbbbbbbbbbb2",
            "bbbbbbbbbbbbbbbbbbbbbbb3"
        ]
    );
    // 1,237 jobs are three pages of 500.
    let after = fake.requests();
    let authenticated = after.endpoint("list_export_jobs")
        - before.endpoint("list_export_jobs")
        - (after.challenges - before.challenges);
    assert_eq!(authenticated, 3);
}

#[tokio::test]
async fn the_newest_job_keeps_its_series_however_old() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    for (id, days) in [
        ("cccccccccccccccccccccc01", 40),
        ("cccccccccccccccccccccc02", 50),
    ] {
        let created = ago(Duration::days(days));
        fake.put_job(
            GROUP,
            "Cluster0",
            job(id)
                .state("Successful")
                .created(created)
                .finished(created + Duration::hours(1))
                .build(),
        );
    }
    let yaml = one_cluster("Cluster0", "").replace("max_age: 0", "max_age: 7d");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.job_ids("Cluster0"), ["cccccccccccccccccccccc01"]);
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Successful")]),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_malformed_job_is_skipped_and_counted() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("dddddddddddddddddddddd01").state("Queued").build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        serde_json::json!({"id": "dddddddddddddddddddddd02", "state": "Queued", "createdAt": "last tuesday"}),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        serde_json::json!({"id": "dddddddddddddddddddddd03", "createdAt": "2026-08-10T03:28:25Z"}),
    );
    let exporter = Exporter::start(fake, &one_cluster("Cluster0", ""), support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_invalid_jobs", &[]),
        Some(2.0)
    );
    assert_eq!(scrape.value("atlas_backup_export_up", &[]), Some(1.0));
    assert_eq!(scrape.job_ids("Cluster0"), ["dddddddddddddddddddddd01"]);
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Queued")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn digest_auth_costs_one_request_per_call_once_the_nonce_is_known() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.add_cluster(GROUP, "Cluster1");
    fake.put_job(GROUP, "Cluster0", job("eeeeeeeeeeeeeeeeeeeeee01").build());
    let yaml = one_cluster("Cluster0, Cluster1", "");
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let first = exporter.scrape().await;
    assert_eq!(
        first.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]),
        Some(1.0)
    );
    assert_eq!(
        first.value("atlas_backup_export_up", &[("cluster_name", "Cluster1")]),
        Some(1.0)
    );

    for _ in 0..3 {
        let before = fake.requests();
        let scrape = exporter.scrape().await;
        let after = fake.requests();
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]),
            Some(1.0)
        );
        assert_eq!(after.total - before.total, 2, "one request per cluster");
        assert_eq!(after.challenges, before.challenges, "no new challenge");
    }
    // The counter counts one per exchange, by final status.
    let scrape = exporter.scrape().await;
    let ok = scrape.value(
        "atlas_backup_exporter_api_requests_total",
        &[("endpoint", "list_export_jobs"), ("code", "200")],
    );
    assert_eq!(ok, Some(10.0));
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", "list_export_jobs"), ("code", "401")]
        ),
        None
    );
}

#[tokio::test]
async fn a_wrong_key_gives_up_zero() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let wrong = atlas_backup_exporter::config::Credentials::ApiKey {
        public_key: support::PUBLIC_KEY.to_string().into(),
        private_key: "not-the-key".to_string().into(),
    };
    let exporter = Exporter::start(fake, &one_cluster("Cluster0", ""), wrong).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]),
        Some(0.0)
    );
    assert!(scrape.find("atlas_backup_export_jobs", &[]).is_empty());
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", "list_export_jobs"), ("code", "401")]
        ),
        Some(1.0),
        "a 401 is not retried"
    );
}

#[tokio::test]
async fn a_service_account_fetches_one_token_for_many_scrapes() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.add_cluster(GROUP, "Cluster1");
    fake.put_job(GROUP, "Cluster0", job("ffffffffffffffffffffff01").build());
    let yaml = one_cluster("Cluster0, Cluster1", "");
    let exporter = Exporter::start(fake.clone(), &yaml, support::service_account()).await;
    for _ in 0..5 {
        let scrape = exporter.scrape().await;
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]),
            Some(1.0)
        );
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster1")]),
            Some(1.0)
        );
    }
    let counts = fake.requests();
    assert_eq!(counts.endpoint("oauth_token"), 1);
    assert_eq!(counts.endpoint("list_export_jobs"), 10);
    assert_eq!(counts.challenges, 0);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_without_a_failed_scrape() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let exporter = Exporter::start(
        fake.clone(),
        &one_cluster("Cluster0", ""),
        support::service_account(),
    )
    .await;
    assert_eq!(
        exporter.scrape().await.value("atlas_backup_export_up", &[]),
        Some(1.0)
    );
    fake.revoke_tokens();
    assert_eq!(
        exporter.scrape().await.value("atlas_backup_export_up", &[]),
        Some(1.0)
    );
    assert_eq!(fake.requests().endpoint("oauth_token"), 2);
}

#[tokio::test]
async fn v1_uses_its_own_paths_and_media_type() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("abababababababababab0001").state("Queued").build(),
    );
    let yaml = one_cluster("Cluster0", "").replace(
        "base_url: BASE_URL",
        "base_url: BASE_URL\n  api_version: v1",
    );
    // Every v2 path fails: only v1 paths can give the answer.
    fake.inject(Fault::status("/api/atlas/v2/", 500));
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value("atlas_backup_export_up", &[]), Some(1.0));
    assert_eq!(scrape.job_ids("Cluster0"), ["abababababababababab0001"]);
    // And the stand-in answers v1 only to `Accept: application/json` (406 to v2's media type).
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", "list_export_jobs"), ("code", "200")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn v2_uses_the_versioned_media_type() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.inject(Fault::status("/api/atlas/v1.0/", 500));
    let exporter = Exporter::start(fake, &one_cluster("Cluster0", ""), support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value("atlas_backup_export_up", &[]), Some(1.0));
    // The stand-in answers v2 only to its versioned media type (its own tests show the 406
    // otherwise), so this up 1 also proves the header.
}

#[tokio::test]
async fn discovered_clusters_are_listed_and_a_failed_discovery_reuses_the_last_list() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Alpha");
    fake.add_cluster(GROUP, "Beta");
    fake.put_job(GROUP, "Alpha", job("acacacacacacacacacac0001").build());
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    labels: {{env: prod}}\ndiscovery:\n  interval: 0s\n"
    );
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP)]),
        Some(1.0)
    );
    assert_eq!(
        scrape.find("atlas_backup_export_discovery_up", &[])[0].labels["env"],
        "prod"
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_export_up",
            &[("cluster_name", "Alpha"), ("env", "prod")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Beta")]),
        Some(1.0)
    );

    // A cluster added in Atlas shows up on the next scrape (interval 0: listed every scrape).
    fake.add_cluster(GROUP, "Gamma");
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Gamma")]),
        Some(1.0)
    );

    // Discovery fails: the last list is used, and says so.
    fake.inject(Fault::status(&format!("/groups/{GROUP}/clusters"), 403).at_path_end());
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP)]),
        Some(0.0)
    );
    for cluster in ["Alpha", "Beta", "Gamma"] {
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)]),
            Some(1.0),
            "{cluster}"
        );
    }
}

#[tokio::test]
async fn a_failed_first_discovery_has_no_cluster_series() {
    let fake = support::fake();
    let yaml = format!("atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP2}\n");
    // The project does not exist: 404 GROUP_NOT_FOUND.
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP2)]),
        Some(0.0)
    );
    assert!(scrape.find("atlas_backup_export_up", &[]).is_empty());
}

#[tokio::test]
async fn discovery_is_reused_within_its_interval() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Alpha");
    let yaml = format!("atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n");
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    exporter.scrape().await;
    fake.add_cluster(GROUP, "Beta");
    let listed = fake.requests().endpoint("list_clusters");
    let scrape = exporter.scrape().await;
    // The default interval is 5m: the second scrape still uses the first list.
    assert!(
        scrape
            .find("atlas_backup_export_up", &[("cluster_name", "Beta")])
            .is_empty()
    );
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Alpha")]),
        Some(1.0)
    );
    assert_eq!(fake.requests().endpoint("list_clusters"), listed);
}

#[tokio::test]
async fn export_job_ids_use_the_get_one_endpoint() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster1");
    let (replica_set, _) = seed_examples();
    fake.put_job(GROUP, "Cluster1", replica_set);
    fake.put_job(
        GROUP,
        "Cluster1",
        job("aaaaaaaaaaaaaaaaaaaaaa99").state("Queued").build(),
    );
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters:\n      - name: Cluster1\n        export_job_ids: [605ccba3c1c7613f423e1585]\n"
    );
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    // Only the named job, although it is old and max_age is the default 7d.
    assert_eq!(scrape.job_ids("Cluster1"), ["605ccba3c1c7613f423e1585"]);
    assert_eq!(
        scrape.value("atlas_backup_export_job_duration_seconds", &[]),
        Some(3537.0)
    );
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 0);
    assert!(fake.requests().endpoint("get_export_job") >= 1);
}

#[tokio::test]
async fn an_unknown_configured_job_id_fails_its_cluster() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster1");
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(GROUP, "Cluster0", job("aaaaaaaaaaaaaaaaaaaaaa98").build());
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters:\n      - Cluster0\n      - name: Cluster1\n        export_job_ids: [ffffffffffffffffffffffff]\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster1")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Cluster0")]),
        Some(1.0)
    );
    assert!(
        scrape
            .find("atlas_backup_export_jobs", &[("cluster_name", "Cluster1")])
            .is_empty()
    );
}

#[tokio::test]
async fn one_cluster_failing_leaves_the_others_served() {
    let fake = support::fake();
    for cluster in ["Good", "Broken"] {
        fake.add_cluster(GROUP, cluster);
        fake.put_job(GROUP, cluster, job("aaaaaaaaaaaaaaaaaaaaaa01").build());
    }
    fake.inject(Fault::status("/clusters/Broken/", 500));
    // Missing is not in Atlas at all: 404 CLUSTER_NOT_FOUND.
    let exporter = Exporter::start(
        fake,
        &one_cluster("Good, Broken, Missing", ""),
        support::api_key(),
    )
    .await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Good")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Broken")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("cluster_name", "Missing")]),
        Some(0.0)
    );
    for failed in ["Broken", "Missing"] {
        let only: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.labels.get("cluster_name").map(String::as_str) == Some(failed))
            .map(|s| s.name.as_str())
            // The cluster's details are not its export jobs: a cluster Atlas describes keeps
            // its cluster_info whatever its exports do.
            .filter(|name| {
                *name != "atlas_backup_export_cluster_info"
                    && *name != "atlas_backup_export_cluster_created_timestamp_seconds"
                    && *name != "atlas_backup_export_cluster_paused"
            })
            .collect();
        assert_eq!(
            only,
            [
                "atlas_backup_export_up",
                "atlas_backup_export_collection_duration_seconds",
                "atlas_backup_export_collection_timestamp_seconds"
            ],
            "{failed}"
        );
    }
    assert_eq!(scrape.job_ids("Good"), ["aaaaaaaaaaaaaaaaaaaaaa01"]);
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", "list_export_jobs"), ("code", "404")]
        ),
        Some(1.0),
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn a_job_that_disappears_from_atlas_disappears_from_the_next_scrape() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("aaaaaaaaaaaaaaaaaaaaaa01")
            .state("Successful")
            .created_at("2026-08-01T00:00:00Z")
            .build(),
    );
    fake.put_job(
        GROUP,
        "Cluster0",
        job("aaaaaaaaaaaaaaaaaaaaaa02")
            .state("Failed")
            .created_at("2026-08-02T00:00:00Z")
            .state_reason("X", "y")
            .build(),
    );
    let exporter = Exporter::start(
        fake.clone(),
        &one_cluster("Cluster0", ""),
        support::api_key(),
    )
    .await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.job_ids("Cluster0"),
        ["aaaaaaaaaaaaaaaaaaaaaa01", "aaaaaaaaaaaaaaaaaaaaaa02"]
    );
    fake.remove_job(GROUP, "Cluster0", "aaaaaaaaaaaaaaaaaaaaaa02");
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.job_ids("Cluster0"), ["aaaaaaaaaaaaaaaaaaaaaa01"]);
    assert!(!scrape.text.contains("aaaaaaaaaaaaaaaaaaaaaa02"));
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Failed")]),
        Some(0.0)
    );
}

#[tokio::test]
async fn the_landing_page_health_and_unknown_paths() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let yaml = one_cluster("Cluster0", "").replace(
        "    clusters: [Cluster0]",
        "    clusters: [Cluster0]\n    labels: {team: data}",
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (status, body) = exporter.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("href=\"/metrics\""));
    assert!(body.contains("href=\"/-/healthy\"") && body.contains("href=\"/-/ready\""));
    assert!(body.contains(GROUP) && body.contains("Cluster0") && body.contains("team=data"));
    assert!(!body.contains(support::PRIVATE_KEY) && !body.contains(support::PUBLIC_KEY));
    assert_eq!(exporter.get("/-/healthy").await.0, 200);
    assert_eq!(exporter.get("/nope").await.0, 404);
    assert_eq!(exporter.get("/metrics/extra").await.0, 404);
}

/// The label names of the demo's scrape are exactly the table's written names (besides the
/// target's static labels and the cluster tags' `tag_…`): a name rendered without being in the
/// table, which the config would let a static label clash with, fails here, and so does a name
/// left in the table as written after its series went.
#[tokio::test]
async fn every_label_name_the_exporter_writes_is_in_the_label_table() {
    use fake_atlas::{DEMO_GROUP_ID, DEMO_TOOLING_GROUP_ID};
    let fake = support::fake();
    let _demo = fake.seed_demo(OffsetDateTime::now_utc());
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {DEMO_GROUP_ID}\n    labels: {{env: demo}}\n\
         \x20 - group_id: {DEMO_TOOLING_GROUP_ID}\n    labels: {{env: demo}}\n    clusters:\n      - name: Reports\n        expect_export_every: 1d\n\
         export_jobs:\n  max_age: 30d\nmetadata:\n  cluster_tags: [team, environment]\n"
    );
    // The binary: its own answers are counted (`handler`) as a user's are.
    let exporter = support::Binary::start(fake, &yaml).await;
    let scrape = || async {
        let text = reqwest::get(exporter.url("/metrics")).await.unwrap();
        support::Scrape::parse(&text.text().await.unwrap())
    };
    // The second scrape shows the first among the exporter's own answers.
    scrape().await;
    let scrape = scrape().await;
    let seen: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .flat_map(|s| s.labels.keys().map(String::as_str))
        .filter(|name| *name != "env" && !name.starts_with("tag_"))
        .collect();
    let written: std::collections::BTreeSet<&str> =
        atlas_backup_exporter::labels::written().collect();
    assert_eq!(seen, written, "{}", scrape.text);
}
