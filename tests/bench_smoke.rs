//! The scrape benchmark in miniature, as a correctness check only (no timings): the same fleet
//! generator and config as `benches/scrape`, three clusters of 600 jobs at no latency, against
//! the exporter's router in this process.

#[path = "../benches/scrape/fleet.rs"]
mod fleet;

use std::collections::BTreeMap;

use atlas_backup_exporter::config::Credentials;
use fake_atlas::FakeAtlas;
use secrecy::SecretString;

use crate::support::Exporter;
use fleet::{Fleet, Retention};

#[tokio::test]
async fn the_benchmark_fleet_is_counted_in_full_at_one_request_per_call() {
    let fake = FakeAtlas::new().with_api_key(fleet::PUBLIC_KEY, fleet::PRIVATE_KEY);
    let fleet = Fleet::new(0x5e, 3, 600);
    let now = time::OffsetDateTime::now_utc();
    fleet.seed(&fake, now);
    // 500 + 100 jobs: two pages per cluster.
    assert_eq!(fleet.full_listing_calls(), 6);
    assert_eq!(
        fleet::pages_for(5000),
        11,
        "a full last page is confirmed by one more"
    );

    let credentials = Credentials::ApiKey {
        public_key: SecretString::from(fleet::PUBLIC_KEY),
        private_key: SecretString::from(fleet::PRIVATE_KEY),
    };
    let yaml = fleet.config_yaml("BASE_URL", 8, Retention::Everything);
    let exporter = Exporter::start(fake.clone(), &yaml, credentials).await;

    // Warm-up: the first calls meet digest challenges.
    let first = exporter.scrape().await;
    // The warm-up also read the names, cluster details and buckets, once per project or
    // configured cluster: within metadata.refresh_interval the next scrapes do not.
    let warm = fake.requests();
    for lookup in ["get_project", "list_export_buckets"] {
        assert!(warm.endpoint(lookup) >= 1, "{lookup}: {warm:?}");
    }
    fake.reset_counts();
    let scrape = exporter.scrape().await;
    let seen = fake.requests();

    for cluster in &fleet.clusters {
        let mut expected: BTreeMap<String, f64> = BTreeMap::new();
        for job in fleet::history(cluster, now) {
            *expected
                .entry(job["state"].as_str().unwrap().to_owned())
                .or_default() += 1.0;
        }
        assert_eq!(expected["InProgress"], 1.0);
        assert!(expected["Failed"] >= 10.0 && expected["Successful"] > 500.0);
        let name = [("cluster_name", cluster.name.as_str())];
        for s in [&first, &scrape] {
            assert_eq!(s.value("atlas_backup_export_up", &name), Some(1.0));
            for state in ["Queued", "InProgress", "Successful", "Failed", "Cancelled"] {
                let labels = [("cluster_name", cluster.name.as_str()), ("state", state)];
                assert_eq!(
                    s.value("atlas_backup_export_jobs", &labels),
                    Some(expected.get(state).copied().unwrap_or(0.0)),
                    "{} {state}",
                    cluster.name
                );
            }
            // max_age 0 and max_per_cluster 0: every job has its series.
            assert_eq!(s.job_ids(&cluster.name).len(), 600);
            assert_eq!(
                s.find("atlas_backup_export_job_failure_info", &name).len() as f64,
                expected["Failed"]
            );
        }
    }

    // Steady state: one HTTP request per Atlas call, never more calls than a full listing, and
    // only export-job calls (the metadata lookups are not due again for an hour).
    assert_eq!(seen.challenges, 0, "{seen:?}");
    assert_eq!(seen.total, seen.endpoint("list_export_jobs"), "{seen:?}");
    let calls = seen.total;
    assert!(
        (fleet.clusters.len() as u64..=fleet.full_listing_calls()).contains(&calls),
        "{calls} calls for {} clusters of 600 jobs",
        fleet.clusters.len()
    );
}
