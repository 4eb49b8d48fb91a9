//! The metadata lookups (project names, cluster details and tags, export buckets) against the
//! stand-in, on v2 and v1.0, and what a failing lookup returns.

use std::time::Duration;

use atlas_backup_exporter::atlas::{AtlasClient, AtlasError, Deadline};
use atlas_backup_exporter::config;
use atlas_backup_exporter::metrics::OwnMetrics;
use fake_atlas::{FakeAtlas, Fault};
use prometheus::IntCounterVec;

use crate::support::{GROUP, api_key, fake};

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
    let client = AtlasClient::new(&config.atlas, api_key(), requests.clone()).unwrap();
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
        assert_eq!(details.paused, "false");
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
