//! The endpoint table against Atlas's published specification: each endpoint asks for a
//! version the specification lists for its path, without a sunset date, the newest such, and
//! names the role the specification requires; and the stand-in answers every call of the table.
//!
//! `fixtures/atlas-openapi-versions.json` is the part of the specification these facts come
//! from (its `source` says which file and commit).

use std::time::Duration;

use atlas_backup_exporter::atlas::{AtlasClient, Deadline, Endpoint, Path};
use atlas_backup_exporter::clock::Clock;
use atlas_backup_exporter::config;
use atlas_backup_exporter::metrics::OwnMetrics;
use fake_atlas::job;
use serde_json::Value;

use crate::support::{GROUP, api_key, fake};

const SPEC: &str = include_str!("fixtures/atlas-openapi-versions.json");

/// The fixture's entry for an endpoint's v2 path.
fn spec_entry<'a>(spec: &'a Value, path: &str) -> &'a Value {
    let key = format!("GET /api/atlas/v2{path}");
    spec["endpoints"]
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is not in the specification's extract"))
}

#[test]
fn every_endpoint_uses_the_newest_version_without_a_sunset_and_names_its_role() {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let mut checked = 0;
    for endpoint in Endpoint::ALL {
        let route = endpoint.route();
        let Some(path) = route.path else {
            assert_eq!(
                endpoint,
                Endpoint::OAuthToken,
                "only the token is outside the API"
            );
            continue;
        };
        let entry = spec_entry(&spec, path);
        let versions = entry["versions"].as_object().unwrap();
        let media_type = endpoint.media_type();
        let listed = versions
            .get(&media_type)
            .unwrap_or_else(|| panic!("{path}: {media_type} is not listed: {versions:?}"));
        assert!(
            listed.get("x-sunset").is_none(),
            "{path}: {media_type} is sunset on {}",
            listed["x-sunset"]
        );
        let newest = versions
            .iter()
            .filter(|(_, v)| v.get("x-sunset").is_none())
            .map(|(m, _)| m.as_str())
            .filter(|m| !m.contains("preview"))
            .max();
        assert_eq!(newest, Some(media_type.as_str()), "{path}");
        let role = entry["required_role"][0].as_str();
        assert_eq!(route.role, role, "{path}");
        checked += 1;
    }
    assert_eq!(checked, Endpoint::ALL.len() - 1);
}

#[test]
fn the_cluster_listing_leaves_the_sunset_versions() {
    // The reason the table exists: 2023-01-01 and 2023-02-01 of the cluster listing stop
    // working on 2027-07-01 and cannot describe asymmetric shards today.
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let entry = spec_entry(&spec, "/groups/{groupId}/clusters");
    let sunset = &entry["versions"]["application/vnd.atlas.2023-01-01+json"]["x-sunset"];
    assert_eq!(sunset, "2027-07-01");
    assert_eq!(
        Endpoint::ListClusters.media_type(),
        "application/vnd.atlas.2024-08-05+json"
    );
}

#[tokio::test]
async fn the_stand_in_answers_every_call_of_the_table_in_its_version() {
    let fake = fake();
    let base_url = fake.start().await.unwrap();
    fake.add_cluster(GROUP, "Cluster0");
    fake.add_sharded_cluster(GROUP, "Cluster1");
    const SNAPSHOT: &str = "6a7943462c88faeba59ccf5f";
    let taken = time::OffsetDateTime::from_unix_timestamp(1_786_000_000).unwrap();
    fake.add_snapshot(GROUP, "Cluster0", SNAPSHOT, taken);
    fake.add_snapshot(GROUP, "Cluster1", SNAPSHOT, taken);
    let job_id = "605ccba3c1c7613f423e1585";
    fake.put_job(GROUP, "Cluster0", job(job_id).build());
    let yaml = format!("atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\n");
    let config = config::parse(&yaml, "test.yml").unwrap();
    let requests = OwnMetrics::new().api_requests;
    let client =
        AtlasClient::new(&config.atlas, api_key(), requests.clone(), Clock::real()).unwrap();
    let deadline = Deadline::after(Duration::from_secs(10));
    for endpoint in Endpoint::ALL {
        let (group_id, cluster) = (GROUP, "Cluster0");
        let path = match endpoint {
            Endpoint::OAuthToken => continue,
            Endpoint::ListProjects => Path::ListProjects,
            Endpoint::GetProject => Path::GetProject { group_id },
            Endpoint::ListClusters => Path::ListClusters { group_id },
            Endpoint::GetCluster => Path::GetCluster { group_id, cluster },
            Endpoint::ListExportJobs => Path::ListExportJobs { group_id, cluster },
            Endpoint::GetExportJob => Path::GetExportJob {
                group_id,
                cluster,
                job_id,
            },
            Endpoint::ListExportBuckets => Path::ListExportBuckets { group_id },
            Endpoint::GetBackupSchedule => Path::GetBackupSchedule { group_id, cluster },
            Endpoint::GetSnapshot => Path::GetSnapshot {
                group_id,
                cluster,
                snapshot_id: SNAPSHOT,
            },
            Endpoint::GetShardedSnapshot => Path::GetShardedSnapshot {
                group_id,
                cluster: "Cluster1",
                snapshot_id: SNAPSHOT,
            },
        };
        assert_eq!(path.endpoint(), endpoint);
        let body = client
            .get(path, "", endpoint.label(), deadline)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", endpoint.label()));
        let version = endpoint.route().version;
        assert!(body.content_type.contains(version), "{}", body.content_type);
        let count = requests.with_label_values(&[endpoint.label(), "200"]).get();
        // The two snapshot paths share their label.
        let expected = match endpoint {
            Endpoint::GetShardedSnapshot => 2,
            _ => 1,
        };
        assert_eq!(count, expected, "{}", endpoint.label());
    }
}
