//! Beyond one exporter: `/probe`, `/sd`, gzip, `collection.on_metrics`, `discovery.all_projects`
//! and the cap on per-job series.

use std::io::Read;

use fake_atlas::{ClusterKind, Fault, job};
use time::{Duration, OffsetDateTime};

use crate::support::{self, Exporter, GROUP, GROUP2, Scrape};

/// A project without clusters.
const EMPTY: &str = "7b8a9c0d1e2f3a4b5c6d7e8f";
/// A project whose clusters the credential may not read.
const DENIED: &str = "8c9d0e1f2a3b4c5d6e7f8a9b";

fn two_projects() -> fake_atlas::FakeAtlas {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.add_cluster(GROUP, "Cluster1");
    fake.add_cluster(GROUP2, "Other");
    fake.put_job(
        GROUP,
        "Cluster0",
        job("aaaaaaaaaaaaaaaaaaaaaa01").state("Queued").build(),
    );
    fake.put_job(
        GROUP2,
        "Other",
        job("aaaaaaaaaaaaaaaaaaaaaa02").state("InProgress").build(),
    );
    fake
}

fn yaml(extra: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n    labels: {{team: data}}\n  - group_id: {GROUP2}\n{extra}"
    )
}

#[tokio::test]
async fn probe_serves_one_cluster_and_nothing_process_wide() {
    let exporter = Exporter::start(two_projects(), &yaml(""), support::api_key()).await;
    let (status, body) = exporter
        .get(&format!("/probe?group_id={GROUP}&cluster_name=Cluster0"))
        .await;
    assert_eq!(status, 200, "{body}");
    let scrape = Scrape::parse(&body);
    assert_eq!(
        scrape.value("atlas_backup_export_up", &[("team", "data")]),
        Some(1.0)
    );
    assert_eq!(scrape.job_ids("Cluster0"), ["aaaaaaaaaaaaaaaaaaaaaa01"]);
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels["cluster_name"] == "Cluster0")
    );
    assert!(
        !body.contains("process_") && !body.contains("atlas_backup_exporter_"),
        "{body}"
    );
    assert!(!body.contains("discovery_up"));

    // A discovered cluster can be probed too.
    let (status, body) = exporter
        .get(&format!("/probe?group_id={GROUP2}&cluster_name=Other"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        Scrape::parse(&body).job_ids("Other"),
        ["aaaaaaaaaaaaaaaaaaaaaa02"]
    );

    // Only watched clusters: Cluster1 exists in Atlas but is not configured.
    let (status, _) = exporter
        .get(&format!("/probe?group_id={GROUP}&cluster_name=Cluster1"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(exporter.get("/probe?group_id=x").await.0, 400);
}

#[tokio::test]
async fn sd_lists_every_watched_cluster_as_a_probe_target() {
    let exporter = Exporter::start(two_projects(), &yaml(""), support::api_key()).await;
    let (status, body) = exporter.get("/sd").await;
    assert_eq!(status, 200);
    let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
    let host = exporter.addr.to_string();
    assert_eq!(
        groups,
        serde_json::json!([
            {"targets": [host], "labels": {
                "__param_group_id": GROUP, "__param_cluster_name": "Cluster0",
                "__metrics_path__": "/probe", "__scheme__": "http",
                "group_id": GROUP, "cluster_name": "Cluster0", "team": "data"}},
            {"targets": [host], "labels": {
                "__param_group_id": GROUP2, "__param_cluster_name": "Other",
                "__metrics_path__": "/probe", "__scheme__": "http",
                "group_id": GROUP2, "cluster_name": "Other"}},
        ])
    );
}

#[tokio::test]
async fn sd_uses_the_external_url_when_given() {
    let fake = two_projects();
    let base_url = fake.start().await.unwrap();
    let yaml = yaml("").replace("BASE_URL", &base_url);
    let config = atlas_backup_exporter::config::parse(&yaml, "test.yml").unwrap();
    let options = atlas_backup_exporter::Options {
        external_url: Some("https://exporter.example.com:9443/atlas/".into()),
        ..Default::default()
    };
    let app = atlas_backup_exporter::build(&config, support::api_key(), options).unwrap();
    let response = tower_oneshot(app, "/sd").await;
    let groups: serde_json::Value = serde_json::from_str(&response).unwrap();
    assert_eq!(groups[0]["targets"][0], "exporter.example.com:9443");
    assert_eq!(groups[0]["labels"]["__scheme__"], "https");
    assert_eq!(groups[0]["labels"]["__metrics_path__"], "/atlas/probe");
}

async fn tower_oneshot(app: atlas_backup_exporter::App, path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, std::future::pending()));
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn scrapes_are_gzipped_when_asked() {
    let exporter = Exporter::start(two_projects(), &yaml(""), support::api_key()).await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = client
        .get(exporter.url("/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .unwrap();
    let scrape = Scrape::parse(&text);
    assert_eq!(scrape.job_ids("Cluster0"), ["aaaaaaaaaaaaaaaaaaaaaa01"]);
    assert!(
        compressed.len() * 3 < text.len(),
        "{} vs {}",
        compressed.len(),
        text.len()
    );
    // Without asking, plain text.
    let plain = client.get(exporter.url("/metrics")).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn on_metrics_false_leaves_only_the_exporters_own_metrics() {
    let fake = two_projects();
    let exporter = Exporter::start(
        fake.clone(),
        &yaml("collection:\n  on_metrics: false\n"),
        support::api_key(),
    )
    .await;
    let scrape = exporter.scrape().await;
    assert!(scrape.find("atlas_backup_export_up", &[]).is_empty());
    assert!(
        !scrape
            .find("atlas_backup_exporter_build_info", &[])
            .is_empty()
    );
    assert!(
        scrape
            .find("atlas_backup_export_discovery_up", &[])
            .is_empty(),
        "nothing discovered yet"
    );
    assert_eq!(fake.requests().total, 0, "no Atlas call for /metrics");
    let (status, _) = exporter
        .get(&format!("/probe?group_id={GROUP}&cluster_name=Cluster0"))
        .await;
    assert_eq!(status, 200);
    // /sd discovered GROUP2's clusters; /metrics reports how that went, without calling Atlas.
    assert_eq!(exporter.get("/sd").await.0, 200);
    let calls = fake.requests().total;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP2)]),
        Some(1.0)
    );
    assert!(
        scrape
            .find("atlas_backup_export_discovery_up", &[("group_id", GROUP)])
            .is_empty()
    );
    assert_eq!(fake.requests().total, calls);
}

#[tokio::test]
async fn all_projects_adds_every_visible_cluster() {
    let fake = two_projects();
    // GET /clusters would leave this one out; each project's own listing does not.
    fake.add_cluster_of_kind(GROUP2, "Multi", ClusterKind::MultiCloud);
    // The sunset cluster versions refuse a project holding asymmetric shards; 2024-08-05 does not.
    fake.add_cluster_of_kind(GROUP2, "Asym", ClusterKind::AsymmetricSharded);
    // A project without clusters is not listed; one the credential cannot read fails alone.
    fake.add_group(EMPTY);
    fake.add_cluster(DENIED, "Secret");
    fake.inject(Fault::status(&format!("/groups/{DENIED}/clusters"), 403));
    let only_one = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n    labels: {{team: data}}\ndiscovery:\n  all_projects: true\n"
    );
    let exporter = Exporter::start(fake.clone(), &only_one, support::api_key()).await;
    let scrape = exporter.scrape().await;
    let discovery = scrape.find("atlas_backup_export_discovery_up", &[]);
    let mut found: Vec<(String, f64)> = discovery
        .iter()
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (labels.join(","), s.value)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    // The projects' listing without group_id; one series per project listed, a project that
    // is also a target once, with the target's labels.
    assert_eq!(
        found,
        [
            (String::new(), 1.0),
            (format!("group_id={GROUP},team=data"), 1.0),
            (format!("group_id={GROUP2}"), 1.0),
            (format!("group_id={DENIED}"), 0.0),
        ]
    );
    for (group, cluster) in [
        (GROUP, "Cluster0"),
        (GROUP, "Cluster1"),
        (GROUP2, "Other"),
        (GROUP2, "Multi"),
        (GROUP2, "Asym"),
    ] {
        let up = scrape.value(
            "atlas_backup_export_up",
            &[("group_id", group), ("cluster_name", cluster)],
        );
        assert_eq!(up, Some(1.0), "{group}/{cluster}");
    }
    assert_eq!(scrape.find("atlas_backup_export_up", &[]).len(), 5);
    // A cluster of a configured project keeps that project's labels.
    assert_eq!(
        scrape.value(
            "atlas_backup_export_up",
            &[("cluster_name", "Cluster1"), ("team", "data")]
        ),
        Some(1.0)
    );
    let count = |endpoint: &str, code: &str| {
        scrape.value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", endpoint), ("code", code)],
        )
    };
    assert_eq!(count("list_projects", "200"), Some(1.0));
    assert_eq!(
        count("list_clusters", "200"),
        Some(2.0),
        "not the empty project"
    );
    assert_eq!(count("list_clusters", "403"), Some(1.0));
    assert_eq!(fake.requests().endpoint("list_all_clusters"), 0);
    // Within discovery.interval (5m by default) the lists that worked are reused; only the
    // project that failed is asked again.
    let before = fake.requests();
    let again = exporter.scrape().await;
    let after = fake.requests();
    let calls = |endpoint| after.endpoint(endpoint) - before.endpoint(endpoint);
    assert_eq!((calls("list_projects"), calls("list_clusters")), (0, 1));
    assert_eq!(again.find("atlas_backup_export_up", &[]).len(), 5);
    let denied = [("group_id", DENIED)];
    assert_eq!(
        again.value("atlas_backup_export_discovery_up", &denied),
        Some(0.0)
    );
}

#[tokio::test]
async fn max_per_cluster_caps_recent_jobs_but_counts_them_all() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Busy");
    let now = OffsetDateTime::now_utc();
    fake.put_jobs(
        GROUP,
        "Busy",
        (0..80).map(|i| {
            let created = now - Duration::hours(i + 1);
            job(&format!("{i:024x}"))
                .state("Successful")
                .created(created)
                .finished(created + Duration::minutes(5))
                .build()
        }),
    );
    fake.put_job(
        GROUP,
        "Busy",
        job("ffffffffffffffffffffff01")
            .state("InProgress")
            .created(now - Duration::days(3))
            .build(),
    );
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Busy]\nexport_jobs:\n  max_age: 30d\n  max_per_cluster: 10\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let scrape = exporter.scrape().await;
    // The newest job keeps its series anyway; ten more for being recent; the running one.
    let mut expected: Vec<String> = (0..=10).map(|i| format!("{i:024x}")).collect();
    expected.push("ffffffffffffffffffffff01".into());
    assert_eq!(scrape.job_ids("Busy"), expected);
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Successful")]),
        Some(80.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "InProgress")]),
        Some(1.0)
    );
}

/// The series of the collection in a scrape's text, without the exporter's own metrics (which
/// move from one scrape to the next).
fn collection_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            name.starts_with("atlas_backup_export_")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_answer_streams_the_same_text_plain_and_gzipped_to_scrapes_sharing_a_collection() {
    // 40 clusters of 60 jobs, every job shown: a text of many chunks.
    let fake = support::fake();
    let mut clusters = String::new();
    for c in 0..40 {
        let name = format!("Big{c:02}");
        fake.add_cluster(GROUP, &name);
        let jobs: Vec<_> = (0..60)
            .map(|j| {
                job(&format!("{c:012x}{j:012x}"))
                    .state(if j == 0 { "InProgress" } else { "Successful" })
                    .build()
            })
            .collect();
        fake.put_jobs(GROUP, &name, jobs);
        clusters.push_str(&format!("      - {name}\n"));
    }
    // Slow listings: every scrape below arrives while the one collection runs.
    fake.inject(Fault::delay(
        "/backup/exports",
        std::time::Duration::from_millis(800),
    ));
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\nexport_jobs:\n  max_age: 0\n  max_per_cluster: 0\ntargets:\n  - group_id: {GROUP}\n    clusters:\n{clusters}"
    );
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let http = reqwest::Client::builder().no_gzip().build().unwrap();
    let url = exporter.url("/metrics");
    let scrapes = (0..8).map(|i| {
        let mut request = http.get(&url);
        if i % 2 == 1 {
            request = request.header("Accept-Encoding", "gzip");
        }
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let gzipped = response.headers().get("content-encoding").is_some();
            let body = response.bytes().await.unwrap();
            let mut text = String::new();
            if gzipped {
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_string(&mut text)
                    .unwrap();
            } else {
                text = String::from_utf8(body.to_vec()).unwrap();
            }
            (gzipped, text)
        })
    });
    let scrapes: Vec<_> = scrapes.collect();
    let mut answers = Vec::new();
    for scrape in scrapes {
        answers.push(scrape.await.unwrap());
    }
    // One collection for all eight: their texts below are the same, down to each cluster's
    // collection timestamp and duration.
    let stamps = "atlas_backup_export_collection_timestamp_seconds{";
    let gzipped: Vec<bool> = answers.iter().map(|(g, _)| *g).collect();
    assert_eq!(
        gzipped,
        [false, true, false, true, false, true, false, true]
    );
    let (_, first) = &answers[0];
    assert!(
        first.len() > 4 * atlas_backup_exporter::render::CHUNK_SIZE,
        "only {} bytes: not enough to take several chunks",
        first.len()
    );
    let scrape = Scrape::parse(first);
    assert_eq!(scrape.job_ids("Big07").len(), 60);
    assert_eq!(scrape.job_ids("Big39").len(), 60);
    // Each family's header once, though the text was written in many pieces.
    assert_eq!(
        first
            .matches("# HELP atlas_backup_export_job_state ")
            .count(),
        1
    );
    let expected = collection_lines(first);
    assert_eq!(
        expected.iter().filter(|l| l.starts_with(stamps)).count(),
        40
    );
    for (gzipped, text) in &answers[1..] {
        assert!(
            collection_lines(text) == expected,
            "a {} answer differs",
            if *gzipped { "gzipped" } else { "plain" }
        );
        // The exporter's own metrics end every answer.
        assert!(text.contains("atlas_backup_exporter_build_info"));
    }
}
