//! Whole config files, read end to end; and the helpers the other modules' tests share.

use super::credentials::tests::{api_key, env};
use super::*;
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(super) const FILE: &str = "atlas-backup-exporter.yml";
pub(super) const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";

/// Test YAML is written as raw strings starting on the line after `r"`: the first newline is dropped.
pub(super) fn yaml(text: &str) -> &str {
    text.strip_prefix('\n').unwrap_or(text)
}

pub(super) fn ok(text: &str) -> Config {
    match parse(yaml(text), FILE) {
        Ok(config) => config,
        Err(error) => panic!("refused: {error}\n{text}"),
    }
}

pub(super) fn error(text: &str) -> String {
    match parse(yaml(text), FILE) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// A file in the system's temporary directory, removed when dropped.
pub(super) struct TempFile(PathBuf);

impl TempFile {
    pub(super) fn new(content: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "atlas-backup-exporter-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, content).expect("write a temporary file");
        TempFile(path)
    }

    pub(super) fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_single_target_gets_every_default() {
    let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
    assert_eq!(config.atlas.base_url, "https://cloud.mongodb.com");
    assert_eq!(config.atlas.api_version, ApiVersion::V2);
    assert_eq!(config.atlas.request_timeout, Duration::from_secs(10));
    assert_eq!(config.atlas.max_concurrent_requests, 8);
    assert_eq!(config.atlas.max_response_size, 16 * 1024 * 1024);
    assert!(config.atlas.auth.is_none());
    assert_eq!(
        config.targets,
        vec![Target {
            group_id: GROUP.to_owned(),
            clusters: None,
            labels: vec![],
            expect_export_every: None,
        }]
    );
    assert_eq!(
        config.export_jobs,
        ExportJobsConfig {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_pages: 100,
            max_per_cluster: 50,
            expect_export_every: Duration::ZERO,
        }
    );
    assert_eq!(
        config.collection,
        CollectionConfig {
            timeout: Duration::from_secs(30),
            timeout_is_set: false,
            interval: Duration::ZERO,
            timeout_offset: Duration::from_millis(500),
            cache_ttl: Duration::ZERO,
            on_metrics: true,
        }
    );
    assert_eq!(
        config.discovery,
        DiscoveryConfig {
            interval: Duration::from_secs(300),
            all_projects: false,
        }
    );
    assert_eq!(
        config.metadata,
        MetadataConfig {
            refresh_interval: Duration::from_secs(3600),
            projects: true,
            clusters: true,
            buckets: true,
            schedules: true,
            snapshots: true,
            cluster_tags: vec![],
        }
    );
}

#[test]
fn empty_sections_mean_defaults() {
    let config = ok(r"
atlas:
export_jobs: {}
collection:
discovery: {}
metadata:
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
    assert_eq!(config.metadata, MetadataConfig::default());
    assert_eq!(config.atlas.base_url, DEFAULT_BASE_URL);
    assert_eq!(config.export_jobs, ExportJobsConfig::default());
    assert_eq!(config.collection, CollectionConfig::default());
    assert_eq!(config.discovery, DiscoveryConfig::default());
}

#[test]
fn a_full_config_is_read_as_written() {
    let config = ok(r"
# Every key, none at its default.
atlas:
  base_url: http://127.0.0.1:8080/atlas/
  api_version: v1
  request_timeout: 2s
  max_concurrent_requests: 32
  max_response_size: 512KiB
  auth:
    api_key:
      public_key: abcdefgh
      private_key: 00000000-1111-2222-3333-444444444444
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
        export_job_ids: [605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586]
      - name: analytics-2
        expect_export_every: 12h
    labels: {team: data, env: prod}
    expect_export_every: 2d
  - group_id: 0123456789abcdef01234567
    expect_export_every: 0
export_jobs:
  max_age: 36h
  max_pages: 10
  max_per_cluster: 0
  expect_export_every: 1w
collection:
  timeout: 1m
  timeout_offset: 250ms
  cache_ttl: 15s
  on_metrics: false
discovery:
  interval: 0
  all_projects: true
");
    assert_eq!(config.atlas.base_url, "http://127.0.0.1:8080/atlas");
    assert_eq!(config.atlas.api_version, ApiVersion::V1);
    assert_eq!(config.atlas.request_timeout, Duration::from_secs(2));
    assert_eq!(config.atlas.max_concurrent_requests, 32);
    assert_eq!(config.atlas.max_response_size, 512 * 1024);
    let auth = config.atlas.auth.as_ref().expect("auth");
    assert_eq!(
        api_key(auth),
        ("abcdefgh", "00000000-1111-2222-3333-444444444444")
    );
    assert_eq!(
        config.targets,
        vec![
            Target {
                group_id: GROUP.to_owned(),
                clusters: Some(vec![
                    ListedCluster {
                        name: "Cluster0".to_owned(),
                        export_job_ids: None,
                        expect_export_every: None,
                    },
                    ListedCluster {
                        name: "Cluster1".to_owned(),
                        export_job_ids: Some(vec![
                            "605ccba3c1c7613f423e1585".to_owned(),
                            "605ccba3c1c7613f423e1586".to_owned(),
                        ]),
                        expect_export_every: None,
                    },
                    ListedCluster {
                        name: "analytics-2".to_owned(),
                        export_job_ids: None,
                        expect_export_every: Some(Duration::from_secs(12 * 3600)),
                    },
                ]),
                labels: vec![
                    ("env".to_owned(), "prod".to_owned()),
                    ("team".to_owned(), "data".to_owned()),
                ],
                expect_export_every: Some(Duration::from_secs(2 * 86_400)),
            },
            Target {
                group_id: "0123456789abcdef01234567".to_owned(),
                clusters: None,
                labels: vec![],
                expect_export_every: Some(Duration::ZERO),
            },
        ]
    );
    assert_eq!(
        config.export_jobs,
        ExportJobsConfig {
            max_age: Duration::from_secs(36 * 3600),
            max_pages: 10,
            max_per_cluster: 0,
            expect_export_every: Duration::from_secs(7 * 86_400),
        }
    );
    assert_eq!(
        config.collection,
        CollectionConfig {
            timeout: Duration::from_secs(60),
            timeout_is_set: true,
            interval: Duration::ZERO,
            timeout_offset: Duration::from_millis(250),
            cache_ttl: Duration::from_secs(15),
            on_metrics: false,
        }
    );
    assert_eq!(
        config.discovery,
        DiscoveryConfig {
            interval: Duration::ZERO,
            all_projects: true,
        }
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let file = TempFile::new("targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n");
    let config = load(&file.0).expect("valid config");
    assert_eq!(config.targets[0].group_id, GROUP);

    let bad = TempFile::new("targets:\n  - group_id: 5f1a\n");
    assert_eq!(
        load(&bad.0).expect_err("bad group id").to_string(),
        format!(
            r#"{}: line 2: targets[0].group_id: "5f1a" is not a project id (24 hexadecimal digits)"#,
            bad.path()
        )
    );

    let missing = std::env::temp_dir().join("atlas-backup-exporter-no-such-config.yml");
    let os_error = std::fs::read_to_string(&missing).expect_err("missing file");
    assert_eq!(
        load(&missing).expect_err("missing file").to_string(),
        format!(
            "cannot read the config file {}: {os_error}",
            missing.display()
        )
    );
}

#[test]
fn secrets_never_show_in_debug_describe_or_errors() {
    let secrets = [
        "PUBLIC-7f3a",
        "PRIVATE-91bc",
        "CLIENT-ID-44d2",
        "CLIENT-SECRET-e5f6",
    ];
    let config = ok(r"
atlas:
  auth:
    api_key:
      public_key: PUBLIC-7f3a
      private_key: PRIVATE-91bc
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
    let account = Credentials::ServiceAccount {
        client_id: SecretString::from("CLIENT-ID-44d2"),
        client_secret: SecretString::from("CLIENT-SECRET-e5f6"),
    };
    let resolved = resolve_credentials(
        None,
        env(&[
            ("MONGODB_ATLAS_CLIENT_ID", "CLIENT-ID-44d2"),
            ("MONGODB_ATLAS_CLIENT_SECRET", "CLIENT-SECRET-e5f6"),
        ]),
    )
    .expect("resolved");
    let mut texts = vec![
        format!("{config:?}"),
        config.describe(),
        format!("{account:?}"),
        format!("{resolved:?}"),
    ];
    assert_eq!(format!("{account:?}"), "ServiceAccount { .. }");
    let bad_configs = [
        // A secret where a mapping belongs.
        "atlas:\n  auth:\n    api_key: PRIVATE-91bc\n",
        "atlas:\n  auth: PRIVATE-91bc\n",
        // Secrets beside a mistake.
        "atlas:\n  auth:\n    api_key: {public_key: PUBLIC-7f3a, private_key: PRIVATE-91bc, private_key_file: /x}\n",
        "atlas:\n  auth:\n    service_account: {client_id: CLIENT-ID-44d2}\n",
        "atlas:\n  auth:\n    api_key: {public_key: PUBLIC-7f3a}\n    service_account: {client_secret: CLIENT-SECRET-e5f6}\n",
        // Secrets of the wrong type.
        "atlas:\n  auth:\n    api_key: {public_key: [PUBLIC-7f3a], private_key: x}\n",
        "atlas:\n  auth:\n    api_key: {public_key: {PUBLIC-7f3a: 1}, private_key: x}\n",
    ];
    for text in bad_configs {
        let error = parse(text, FILE).expect_err(text);
        texts.push(error.to_string());
        texts.push(format!("{error:?}"));
    }
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} shows in: {text}");
        }
    }
}

#[test]
fn metadata_is_read_as_written_and_tag_keys_become_label_names() {
    let config = ok(r#"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
metadata:
  refresh_interval: 15m
  projects: false
  clusters: true
  buckets: false
  cluster_tags: [team, cost-center, "app.kubernetes.io/name", Équipe]
"#);
    let metadata = &config.metadata;
    assert_eq!(metadata.refresh_interval, Duration::from_secs(900));
    assert!(!metadata.projects && metadata.clusters && !metadata.buckets);
    let tags: Vec<(&str, &str)> = metadata
        .cluster_tags
        .iter()
        .map(|t| (t.key.as_str(), t.label.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("team", "tag_team"),
            ("cost-center", "tag_cost_center"),
            ("app.kubernetes.io/name", "tag_app_kubernetes_io_name"),
            ("Équipe", "tag__quipe"),
        ]
    );
}

#[test]
fn metadata_errors_name_the_key_and_the_line() {
    let metadata = |body: &str| {
        error(&format!(
            "targets:\n  - group_id: {GROUP}\nmetadata:\n{body}"
        ))
    };
    assert_eq!(
        metadata("  cluster_tags:\n    - cost-center\n    - team\n    - cost center\n"),
        "atlas-backup-exporter.yml: line 7: metadata.cluster_tags[2]: tag \"cost center\" becomes the \
         label tag_cost_center, as \"cost-center\" at metadata.cluster_tags[0] (line 5) does: allow one \
         of them"
    );
    assert_eq!(
        metadata("  cluster_tags: [team, team]\n"),
        "atlas-backup-exporter.yml: line 4: metadata.cluster_tags[1]: tag \"team\" becomes the label \
         tag_team, as \"team\" at metadata.cluster_tags[0] (line 4) does: allow one of them"
    );
    assert_eq!(
        metadata("  cluster_tags: [\"\"]\n"),
        "atlas-backup-exporter.yml: line 4: metadata.cluster_tags[0]: \"\" is not an Atlas tag key \
         (1 to 255 characters, no control characters)"
    );
    assert_eq!(
        metadata("  refresh_interval: 0s\n"),
        "atlas-backup-exporter.yml: line 4: metadata.refresh_interval: must be greater than 0, not \"0s\""
    );
    assert_eq!(
        metadata("  projects: yes please\n"),
        "atlas-backup-exporter.yml: line 4: metadata.projects: invalid type: string \"yes please\", \
         expected a boolean"
    );
    assert_eq!(
        metadata("  tags: [team]\n"),
        "atlas-backup-exporter.yml: line 4: metadata.tags: unknown key (allowed keys: \
         refresh_interval, projects, clusters, buckets, schedules, snapshots, cluster_tags)"
    );
}

#[test]
fn the_info_series_labels_and_tag_prefix_are_refused_as_static_labels() {
    for name in [
        "group_name",
        "cluster_type",
        "mongodb_version",
        "state_name",
        "paused",
        "bucket_name",
        "cloud_provider",
    ] {
        let text = format!("targets:\n  - group_id: {GROUP}\n    labels: {{{name}: x}}\n");
        assert_eq!(
            error(&text),
            format!(
                "atlas-backup-exporter.yml: line 3: targets[0].labels: {name:?} is a label the \
                 exporter or Prometheus sets itself; choose another name"
            )
        );
    }
    let text = format!("targets:\n  - group_id: {GROUP}\n    labels: {{tag_team: x}}\n");
    assert_eq!(
        error(&text),
        "atlas-backup-exporter.yml: line 3: targets[0].labels: \"tag_team\": labels starting with \
         tag_ are the Atlas cluster tags of atlas_backup_export_cluster_tags; choose another name"
    );
}

#[test]
fn expect_export_every_is_a_duration_and_not_for_clusters_watched_by_job_ids() {
    assert_eq!(
        error("export_jobs:\n  expect_export_every: monthly\n"),
        "atlas-backup-exporter.yml: line 2: export_jobs.expect_export_every: \"monthly\" is not a \
         duration: write for example 30s, 5m or 1h30m"
    );
    assert_eq!(
        error(&format!(
            "targets:\n  - group_id: {GROUP}\n    expect_export_every: -1d\n"
        )),
        "atlas-backup-exporter.yml: line 3: targets[0].expect_export_every: \"-1d\" is negative: a \
         duration must be 0 or more"
    );
    assert_eq!(
        error(&format!(
            "targets:\n  - group_id: {GROUP}\n    clusters:\n      - Cluster0\n      - name: Cluster1\n        \
             export_job_ids: [605ccba3c1c7613f423e1585]\n        expect_export_every: 1d\n"
        )),
        "atlas-backup-exporter.yml: line 7: targets[0].clusters[1].expect_export_every: a cluster \
         watched through export_job_ids has no expectation (those jobs are not its whole history); \
         remove expect_export_every, or export_job_ids to watch all its jobs"
    );
    // Zero there says the same as nothing: no expectation.
    let config = ok(&format!(
        "targets:\n  - group_id: {GROUP}\n    clusters:\n      - name: Cluster1\n        \
         export_job_ids: [605ccba3c1c7613f423e1585]\n        expect_export_every: 0\n"
    ));
    let clusters = config.targets[0].clusters.as_ref().expect("clusters");
    assert_eq!(clusters[0].expect_export_every, Some(Duration::ZERO));
    for reserved in ["source", "basis", "state_name", "paused"] {
        assert!(crate::labels::is_reserved(reserved), "{reserved}");
        assert_eq!(
            error(&format!(
                "targets:\n  - group_id: {GROUP}\n    labels:\n      {reserved}: x\n"
            )),
            format!(
                "atlas-backup-exporter.yml: line 4: targets[0].labels: {reserved:?} is a label the \
                 exporter or Prometheus sets itself; choose another name"
            )
        );
    }
}

#[test]
fn an_interval_collects_in_the_background_bounded_by_it_or_by_an_explicit_timeout() {
    let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection:
  interval: 2m
");
    assert!(config.collection.in_background());
    assert_eq!(config.collection.interval, Duration::from_secs(120));
    assert_eq!(
        config.collection.background_timeout(),
        Duration::from_secs(120)
    );
    let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection:
  interval: 2m
  timeout: 90s
");
    assert_eq!(
        config.collection.background_timeout(),
        Duration::from_secs(90)
    );
    let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection:
  interval: 0
  cache_ttl: 15s
");
    assert!(
        !config.collection.in_background(),
        "0 is the per-scrape mode"
    );
    assert_eq!(config.collection.cache_ttl, Duration::from_secs(15));
}

#[test]
fn cache_ttl_with_an_interval_is_refused_naming_both_keys_and_their_lines() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection:
  interval: 1m
  timeout: 50s
  cache_ttl: 30s
"
        ),
        "atlas-backup-exporter.yml: line 6: collection.cache_ttl: cannot be used with \
         collection.interval (line 4): background collection answers every scrape from its \
         newest collection already; remove cache_ttl"
    );
    // The order of the keys does not matter; a cache_ttl of 0 is the default, no contradiction.
    assert!(
        error("collection:\n  cache_ttl: 1m\n  interval: 5m\ntargets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n")
            .starts_with("atlas-backup-exporter.yml: line 2: collection.cache_ttl: cannot be used with collection.interval (line 3)")
    );
    ok(
        "collection:\n  cache_ttl: 0s\n  interval: 5m\ntargets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n",
    );
}

#[test]
fn an_interval_under_a_second_or_without_a_unit_is_refused() {
    assert_eq!(
        error("collection:\n  interval: 500ms\n"),
        "atlas-backup-exporter.yml: line 2: collection.interval: must be 0 (collect on each \
         scrape) or at least 1s, not \"500ms\""
    );
    assert_eq!(
        error("collection:\n  interval: 60\n"),
        "atlas-backup-exporter.yml: line 2: collection.interval: \"60\" has no unit: write for \
         example 60s or 60m"
    );
}

#[test]
fn config_check_tells_what_each_cluster_is_expected_to_export() {
    let config = ok(&format!(
        "targets:\n  - group_id: {GROUP}\n    expect_export_every: 2d\n    clusters:\n      \
         - name: Own\n        expect_export_every: 12h\n      - name: Zero\n        \
         expect_export_every: 0\n      - Plain\nexport_jobs:\n  expect_export_every: 1w\n"
    ));
    let text = config.describe();
    for line in [
        "    cluster Own: all export jobs; expected to export every 12h\n",
        "    cluster Zero: all export jobs; no configured expectation (an auto-export schedule \
         still counts)\n",
        "    cluster Plain: all export jobs\n",
        "    its clusters expected to export every 2d, auto-export schedule or not, unless their \
         entry says otherwise\n",
        "Expected exports: every 7d for clusters without an auto-export schedule\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}
