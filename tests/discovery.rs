//! Discovery against the kinds of cluster Atlas lists: clusters without Cloud Backup snapshots
//! are not watched unless the config names them, in the v2 and the v1.0 shapes alike.

use std::time::Duration;

use atlas_backup_exporter::clock::ManualClock;
use fake_atlas::{ClusterKind, job};

use crate::support::{self, Exporter, GROUP, GROUP2, Spawn};

/// A project of every kind of cluster (but asymmetric shards, which v1.0 cannot describe),
/// each with one job, and a second project with a tenant cluster the config names.
fn every_kind() -> fake_atlas::FakeAtlas {
    let fake = support::fake();
    for (name, kind) in [
        ("Dedicated", ClusterKind::ReplicaSet),
        ("Flex", ClusterKind::Tenant),
        ("NoBackup", ClusterKind::BackupDisabled),
        ("Asleep", ClusterKind::Paused),
        ("Multi", ClusterKind::MultiCloud),
    ] {
        fake.add_cluster_of_kind(GROUP, name, kind);
        fake.put_job(GROUP, name, job("aaaaaaaaaaaaaaaaaaaaaa01").build());
    }
    fake.add_cluster_of_kind(GROUP2, "Named", ClusterKind::Tenant);
    fake.add_cluster_of_kind(GROUP2, "AlsoFlex", ClusterKind::Tenant);
    fake
}

async fn check(api_version: &str, fake: fake_atlas::FakeAtlas, watched: &[&str]) {
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\n  api_version: {api_version}\ntargets:\n  - group_id: {GROUP}\n  - group_id: {GROUP2}\n    clusters: [Named]\ndiscovery:\n  all_projects: true\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let mut up: Vec<String> = scrape
        .find("atlas_backup_export_up", &[])
        .iter()
        .filter(|s| s.value == 1.0)
        .map(|s| s.labels["cluster_name"].clone())
        .collect();
    up.sort();
    assert_eq!(up, watched, "{api_version}");
    assert_eq!(
        scrape.find("atlas_backup_export_up", &[]).len(),
        watched.len()
    );
    let unwatched = |group: &str, reason: &str| {
        let labels = [("group_id", group), ("reason", reason)];
        scrape.value("atlas_backup_export_unwatched_clusters", &labels)
    };
    assert_eq!(unwatched(GROUP, "tenant"), Some(1.0), "{api_version}");
    assert_eq!(
        unwatched(GROUP, "backup_disabled"),
        Some(1.0),
        "{api_version}"
    );
    // The named tenant cluster is watched; its neighbour is not.
    assert_eq!(unwatched(GROUP2, "tenant"), Some(1.0), "{api_version}");
    assert_eq!(
        unwatched(GROUP2, "backup_disabled"),
        Some(0.0),
        "{api_version}"
    );
    let invalid = [("group_id", GROUP)];
    let invalid = scrape.value("atlas_backup_export_invalid_clusters", &invalid);
    assert_eq!(invalid, Some(0.0));
}

#[tokio::test]
async fn tenant_and_backup_disabled_clusters_are_not_watched_unless_named() {
    // The paused, multi-cloud and asymmetric clusters are watched, and so is the tenant
    // cluster the config names.
    let fake = every_kind();
    fake.add_cluster_of_kind(GROUP, "Asym", ClusterKind::AsymmetricSharded);
    let watched = ["Asleep", "Asym", "Dedicated", "Multi", "Named"];
    check("v2", fake, &watched).await;
}

#[tokio::test]
async fn v1_reads_cloud_backup_from_provider_backup_enabled() {
    // v1.0's backupEnabled (legacy backup) is false for every cluster: it must not matter.
    let watched = ["Asleep", "Dedicated", "Multi", "Named"];
    check("v1", every_kind(), &watched).await;
}

#[tokio::test]
async fn v1_cannot_discover_a_project_with_asymmetric_shards() {
    let fake = every_kind();
    fake.add_cluster_of_kind(GROUP, "Asym", ClusterKind::AsymmetricSharded);
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\n  api_version: v1\ntargets:\n  - group_id: {GROUP}\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let up = scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP)]);
    assert_eq!(up, Some(0.0));
    assert!(scrape.find("atlas_backup_export_up", &[]).is_empty());
}

#[test]
fn the_log_names_each_unwatched_cluster_and_the_role_a_project_lacks() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = every_kind();
    fake.inject(fake_atlas::Fault::status(
        &format!("/groups/{GROUP2}/clusters"),
        403,
    ));
    let base_url = runtime.block_on(fake.start()).unwrap();
    let dir = support::TempDir::new("discovery-log");
    let config = dir.write(
        "exporter.yml",
        &format!(
            "atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\n  - group_id: {GROUP2}\n"
        ),
    );
    let exporter = runtime.block_on(Spawn::exporter().config(&config).api_key_env().serve());
    let log = &exporter.log;
    let (tenant, disabled, denied) = runtime.block_on(async {
        let address = exporter.addr;
        let url = format!("http://{address}/metrics");
        reqwest::get(&url).await.unwrap().text().await.unwrap();
        (
            log.line_with("cluster_name=Flex").await,
            log.line_with("cluster_name=NoBackup").await,
            log.line_with("missing_role").await,
        )
    });
    let (_, text) = exporter.into_running().stop();
    assert!(tenant.contains("reason=tenant"), "{tenant}");
    assert!(disabled.contains("reason=backup_disabled"), "{disabled}");
    assert!(denied.contains(GROUP2), "{denied}");
    assert!(
        denied.contains("missing_role=\"Project Read Only\""),
        "{denied}"
    );
    assert_eq!(
        text.matches("cluster_name=Flex").count(),
        1,
        "once per discovery"
    );
    assert!(!text.contains(support::PRIVATE_KEY));
}

#[tokio::test]
async fn a_cluster_listed_without_a_name_is_counted_and_the_rest_is_watched() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(GROUP, "Cluster0", job("aaaaaaaaaaaaaaaaaaaaaa01").build());
    // Atlas's page as the specification allows it: only `results` required, no item field
    // required. One item has no name, one a null name.
    let page = serde_json::json!({
        "results": [
            {"name": "Cluster0", "backupEnabled": true, "stateName": "IDLE"},
            {"backupEnabled": true, "stateName": "CREATING"},
            {"name": null},
        ]
    });
    let clusters = format!("/groups/{GROUP}/clusters");
    fake.inject(
        fake_atlas::Fault::raw(
            &clusters,
            200,
            "application/vnd.atlas.2024-08-05+json;charset=utf-8",
            page.to_string(),
        )
        .at_path_end(),
    );
    let yaml = format!("atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let project = [("group_id", GROUP)];
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &project),
        Some(1.0)
    );
    let invalid = scrape.value("atlas_backup_export_invalid_clusters", &project);
    assert_eq!(invalid, Some(2.0));
    let up = [("cluster_name", "Cluster0")];
    assert_eq!(scrape.value("atlas_backup_export_up", &up), Some(1.0));
    assert_eq!(scrape.find("atlas_backup_export_up", &[]).len(), 1);
}

/// A discovered cluster list is reused for `discovery.interval` on the exporter's clock, and
/// listed again the moment it has passed: the test moves the clock, it does not wait.
#[tokio::test]
async fn a_cluster_list_is_reused_until_discovery_interval_has_passed() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\ndiscovery:\n  interval: 5m\n"
    );
    let clock = ManualClock::new();
    // A service account: no digest challenge legs in the stand-in's request counts.
    let credentials = support::service_account();
    let exporter =
        Exporter::start_with_clock(fake.clone(), &yaml, credentials, clock.clock()).await;
    let watched = |scrape: &support::Scrape| {
        let mut names: Vec<String> = scrape
            .find("atlas_backup_export_up", &[])
            .iter()
            .map(|s| s.labels["cluster_name"].clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(watched(&exporter.scrape().await), ["Cluster0"]);
    assert_eq!(fake.requests().endpoint("list_clusters"), 1);

    // A cluster created now is not seen while the list is fresh, to the last millisecond.
    fake.add_cluster(GROUP, "Cluster1");
    assert_eq!(watched(&exporter.scrape().await), ["Cluster0"]);
    clock.advance(Duration::from_secs(300) - Duration::from_millis(1));
    assert_eq!(watched(&exporter.scrape().await), ["Cluster0"]);
    assert_eq!(fake.requests().endpoint("list_clusters"), 1);

    // Five minutes after the listing, the next scrape lists the project again.
    clock.advance(Duration::from_millis(1));
    assert_eq!(watched(&exporter.scrape().await), ["Cluster0", "Cluster1"]);
    assert_eq!(fake.requests().endpoint("list_clusters"), 2);
}
