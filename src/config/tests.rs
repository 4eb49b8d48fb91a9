//! Parsing whole config files: what is accepted, and the message for each mistake.

use super::credentials::tests::{api_key, env, service_account};
use super::*;
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

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
struct TempFile(PathBuf);

impl TempFile {
    fn new(content: &str) -> Self {
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

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- valid configs ---------------------------------------------------------------------------------

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
    assert!(config.atlas.auth.is_none());
    assert_eq!(
        config.targets,
        vec![Target {
            group_id: GROUP.to_owned(),
            clusters: None,
            labels: vec![],
        }]
    );
    assert_eq!(
        config.export_jobs,
        ExportJobsConfig {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_pages: 100,
            max_per_cluster: 50,
        }
    );
    assert_eq!(
        config.collection,
        CollectionConfig {
            timeout: Duration::from_secs(30),
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
}

#[test]
fn empty_sections_mean_defaults() {
    let config = ok(r"
atlas:
export_jobs: {}
collection:
discovery: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
");
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
    labels: {team: data, env: prod}
  - group_id: 0123456789abcdef01234567
export_jobs:
  max_age: 36h
  max_pages: 10
  max_per_cluster: 0
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
                    },
                    ListedCluster {
                        name: "Cluster1".to_owned(),
                        export_job_ids: Some(vec![
                            "605ccba3c1c7613f423e1585".to_owned(),
                            "605ccba3c1c7613f423e1586".to_owned(),
                        ]),
                    },
                    ListedCluster {
                        name: "analytics-2".to_owned(),
                        export_job_ids: None,
                    },
                ]),
                labels: vec![
                    ("env".to_owned(), "prod".to_owned()),
                    ("team".to_owned(), "data".to_owned()),
                ],
            },
            Target {
                group_id: "0123456789abcdef01234567".to_owned(),
                clusters: None,
                labels: vec![],
            },
        ]
    );
    assert_eq!(
        config.export_jobs,
        ExportJobsConfig {
            max_age: Duration::from_secs(36 * 3600),
            max_pages: 10,
            max_per_cluster: 0,
        }
    );
    assert_eq!(
        config.collection,
        CollectionConfig {
            timeout: Duration::from_secs(60),
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
fn a_service_account_is_read_from_files_trimmed() {
    let id = TempFile::new("mdb_sa_id_1234\n");
    let secret = TempFile::new("  mdb_sa_sk_5678 \n\n");
    let config = ok(&format!(
        r"
atlas:
  auth:
    service_account:
      client_id_file: {}
      client_secret_file: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
",
        id.path(),
        secret.path()
    ));
    let auth = config.atlas.auth.as_ref().expect("auth");
    assert_eq!(service_account(auth), ("mdb_sa_id_1234", "mdb_sa_sk_5678"));
}

#[test]
fn an_api_key_may_mix_inline_and_file() {
    let private = TempFile::new("private-from-file\n");
    let config = ok(&format!(
        r"
atlas:
  auth:
    api_key:
      public_key: public-inline
      private_key_file: {}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
",
        private.path()
    ));
    let auth = config.atlas.auth.as_ref().expect("auth");
    assert_eq!(api_key(auth), ("public-inline", "private-from-file"));
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
fn values_that_look_like_numbers_stay_text() {
    let config = ok(r"
targets:
  - group_id: 123456789012345678901234
    clusters: [0123]
    labels: {version_major: 1.50, flag: true}
");
    let target = &config.targets[0];
    assert_eq!(target.group_id, "123456789012345678901234");
    assert_eq!(target.clusters.as_ref().expect("clusters")[0].name, "0123");
    assert_eq!(
        target.labels,
        vec![
            ("flag".to_owned(), "true".to_owned()),
            ("version_major".to_owned(), "1.50".to_owned()),
        ]
    );
}

// --- the document as a whole -----------------------------------------------------------------------

#[test]
fn an_empty_file_is_refused() {
    for text in ["", "\n  \n", "# nothing but a comment\n", "---\n"] {
        assert_eq!(
            error(text),
            "atlas-backup-exporter.yml: the file is empty: it needs at least a targets list"
        );
    }
}

#[test]
fn a_file_that_is_not_a_mapping_is_refused() {
    assert_eq!(
        error("# comment\n- group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n"),
        "atlas-backup-exporter.yml: line 2: the file must be a mapping of keys such as atlas: and \
             targets:, not a list"
    );
    assert_eq!(
        error("targets\n"),
        "atlas-backup-exporter.yml: line 1: the file must be a mapping of keys such as atlas: and \
             targets:, not a single value"
    );
}

#[test]
fn broken_yaml_is_refused_with_its_line() {
    assert_eq!(
        error(
            r"
targets: [
  {group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
        ),
        "atlas-backup-exporter.yml: line 3: not valid YAML: did not find expected ',' or '}', while \
             parsing a flow mapping at line 2 column 3"
    );
}

#[test]
fn targets_must_be_present_and_not_empty() {
    assert_eq!(
        error("atlas:\n  api_version: v2\n"),
        "atlas-backup-exporter.yml: line 1: targets: is missing: list the Atlas projects to watch, each \
             with its group_id (or set discovery.all_projects: true)"
    );
    assert_eq!(
        error("atlas: {}\ntargets: []\n"),
        "atlas-backup-exporter.yml: line 2: targets: is empty: list at least one Atlas project (group_id)"
    );
    // Unless every project is discovered.
    let config = parse("discovery:\n  all_projects: true\n", "x.yml").unwrap();
    assert!(config.targets.is_empty() && config.discovery.all_projects);
}

// --- unknown keys and wrong types --------------------------------------------------------------------

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
scrape_interval: 30s
"
        ),
        "atlas-backup-exporter.yml: line 3: scrape_interval: unknown key (allowed keys: atlas, targets, \
             export_jobs, collection, discovery)"
    );
    assert_eq!(
        error(
            r"
atlas:
  base_url: https://cloud.mongodb.com
  timeout: 10s
"
        ),
        "atlas-backup-exporter.yml: line 3: atlas.timeout: unknown key (allowed keys: base_url, \
             api_version, request_timeout, max_concurrent_requests, auth)"
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        job_ids: [605ccba3c1c7613f423e1585]
"
        ),
        "atlas-backup-exporter.yml: line 5: targets[0].clusters[0].job_ids: unknown key (allowed keys: \
             name, export_job_ids)"
    );
    assert_eq!(
        error(
            r"
atlas:
  auth:
    api_key:
      public_key: abc
      privat_key: def
"
        ),
        "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.privat_key: unknown key (allowed keys: \
             public_key, public_key_file, private_key, private_key_file)"
    );
}

#[test]
fn wrong_types_name_what_was_expected() {
    assert_eq!(
        error(
            r"
atlas:
  max_concurrent_requests: many
"
        ),
        r#"atlas-backup-exporter.yml: line 2: atlas.max_concurrent_requests: invalid type: string "many", expected a whole number of at least 1"#
    );
    assert_eq!(
        error(
            r"
collection:
  on_metrics: yes
"
        ),
        r#"atlas-backup-exporter.yml: line 2: collection.on_metrics: invalid type: string "yes", expected a boolean"#
    );
    assert_eq!(
        error(
            r"
targets:
  group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
        ),
        "atlas-backup-exporter.yml: line 2: targets: invalid type: map, expected a sequence"
    );
    assert_eq!(
        error(
            r"
targets:
  - 5f1a2b3c4d5e6f7a8b9c0d1e
"
        ),
        "atlas-backup-exporter.yml: line 2: targets[0]: expected a mapping (indented `key: value` \
             lines), found a string"
    );
    assert_eq!(
        error("atlas: https://cloud.mongodb.com\n"),
        "atlas-backup-exporter.yml: line 1: atlas: expected a mapping (indented `key: value` lines), \
             found a string"
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: [5f1a2b3c4d5e6f7a8b9c0d1e]
"
        ),
        "atlas-backup-exporter.yml: line 2: targets[0].group_id: invalid type: sequence, expected a \
             project id (24 hexadecimal digits)"
    );
}

#[test]
fn a_key_set_twice_is_refused() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
    group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
"
        ),
        "atlas-backup-exporter.yml: line 2: targets[0].group_id: is set twice"
    );
}

#[test]
fn zero_is_refused_where_it_makes_no_sense() {
    assert_eq!(
        error("atlas:\n  request_timeout: 0s\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.request_timeout: must be greater than 0, not "0s""#
    );
    assert_eq!(
        error("atlas:\n  max_concurrent_requests: 0\n"),
        "atlas-backup-exporter.yml: line 2: atlas.max_concurrent_requests: must be at least 1, not 0"
    );
    assert_eq!(
        error("collection:\n  timeout: 0\n"),
        r#"atlas-backup-exporter.yml: line 2: collection.timeout: must be greater than 0, not "0""#
    );
    assert_eq!(
        error("export_jobs:\n  max_pages: 0\n"),
        "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: must be at least 1, not 0"
    );
    assert_eq!(
        error("export_jobs:\n  max_pages: -1\n"),
        "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: invalid type: integer `-1`, expected \
             a whole number of at least 1"
    );
    assert_eq!(
        error("export_jobs:\n  max_pages: 4294967296\n"),
        "atlas-backup-exporter.yml: line 2: export_jobs.max_pages: 4294967296 is too large (at most \
             4294967295)"
    );
}

#[test]
fn bad_durations_are_refused_with_their_key() {
    assert_eq!(
        error("export_jobs:\n  max_age: 7 days\n"),
        r#"atlas-backup-exporter.yml: line 2: export_jobs.max_age: "7 days" has an unknown unit " days" (use ms, s, m, h, d, w or y)"#
    );
    assert_eq!(
        error("collection:\n  cache_ttl: 30\n"),
        r#"atlas-backup-exporter.yml: line 2: collection.cache_ttl: "30" has no unit: write for example 30s or 30m"#
    );
    assert_eq!(
        error("discovery:\n  interval: -5m\n"),
        r#"atlas-backup-exporter.yml: line 2: discovery.interval: "-5m" is negative: a duration must be 0 or more"#
    );
}

// --- atlas ---------------------------------------------------------------------------------------------

#[test]
fn base_url_needs_an_http_scheme_and_a_host() {
    assert_eq!(
        error("atlas:\n  base_url: cloud.mongodb.com\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "cloud.mongodb.com" is not an http:// or https:// URL (for example https://cloud.mongodb.com)"#
    );
    assert_eq!(
        error("atlas:\n  base_url: ftp://cloud.mongodb.com\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "ftp://cloud.mongodb.com" is not an http:// or https:// URL (for example https://cloud.mongodb.com)"#
    );
    assert_eq!(
        error("atlas:\n  base_url: https:///api\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https:///api" has no host"#
    );
    assert_eq!(
        error("atlas:\n  base_url: https://:443\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://:443" has no host"#
    );
    assert_eq!(
        error("atlas:\n  base_url: https://cloud.mongodb.com:https\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud.mongodb.com:https" has an invalid port"#
    );
    assert_eq!(
        error("atlas:\n  base_url: https://cloud.mongodb.com?x=1\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.base_url: "https://cloud.mongodb.com?x=1": a base URL has no spaces, query or fragment"#
    );
    assert_eq!(
        error("atlas:\n  base_url: https://user:hunter2@cloud.mongodb.com\n"),
        "atlas-backup-exporter.yml: line 2: atlas.base_url: must not hold credentials; put them under \
             atlas.auth"
    );
    assert_eq!(
            ok("atlas:\n  base_url: HTTPS://[::1]:8443//\ntargets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]\n")
                .atlas
                .base_url,
            "HTTPS://[::1]:8443"
        );
}

#[test]
fn api_version_is_v1_or_v2() {
    assert_eq!(
        error("atlas:\n  api_version: 2\n"),
        r#"atlas-backup-exporter.yml: line 2: atlas.api_version: "2" is not an API version (v2 or v1)"#
    );
}

#[test]
fn auth_needs_exactly_one_kind_of_credential() {
    assert_eq!(
        error(
            r"
atlas:
  auth:
    api_key: {public_key: a, private_key: b}
    service_account: {client_id: c, client_secret: d}
"
        ),
        "atlas-backup-exporter.yml: line 3: atlas.auth: both api_key and service_account are set; keep \
             one"
    );
    assert_eq!(
        error(
            r"
atlas:
  auth: {}
"
        ),
        "atlas-backup-exporter.yml: line 2: atlas.auth: set api_key or service_account (or remove auth \
             to use the environment)"
    );
}

#[test]
fn each_secret_is_given_inline_or_by_file_not_both() {
    assert_eq!(
        error(
            r"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key: def
      private_key_file: /run/secrets/atlas
targets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]
"
        ),
        "atlas-backup-exporter.yml: line 4: atlas.auth.api_key: both private_key and private_key_file \
             are set; keep one"
    );
    assert_eq!(
        error(
            r"
atlas:
  auth:
    service_account:
      client_secret: def
targets: [{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}]
"
        ),
        "atlas-backup-exporter.yml: line 4: atlas.auth.service_account: client_id is missing: set \
             client_id or client_id_file"
    );
}

#[test]
fn an_unreadable_secret_file_names_the_path_and_the_os_error() {
    let missing = std::env::temp_dir().join("atlas-backup-exporter-no-such-secret");
    let os_error = std::fs::read_to_string(&missing).expect_err("missing file");
    assert_eq!(
        error(&format!(
            r"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key_file: {}
targets: [{{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}}]
",
            missing.display()
        )),
        format!(
            "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.private_key_file: cannot read {:?}: \
                 {os_error}",
            missing.display().to_string()
        )
    );
}

#[test]
fn an_empty_secret_is_refused() {
    let blank = TempFile::new(" \n\n");
    assert_eq!(
        error(&format!(
            r"
atlas:
  auth:
    service_account:
      client_id: abc
      client_secret_file: {}
targets: [{{group_id: 5f1a2b3c4d5e6f7a8b9c0d1e}}]
",
            blank.path()
        )),
        format!(
            "atlas-backup-exporter.yml: line 5: atlas.auth.service_account.client_secret_file: {:?} is \
                 empty",
            blank.path()
        )
    );
    assert_eq!(
        error(
            r#"
atlas:
  auth:
    api_key:
      public_key: "   "
      private_key: def
"#
        ),
        "atlas-backup-exporter.yml: line 4: atlas.auth.api_key.public_key: is empty"
    );
    assert_eq!(
        error(
            r#"
atlas:
  auth:
    api_key:
      public_key: abc
      private_key_file: ""
"#
        ),
        "atlas-backup-exporter.yml: line 5: atlas.auth.api_key.private_key_file: is empty: give the path \
             of the file holding the secret"
    );
}

// --- targets -------------------------------------------------------------------------------------------

#[test]
fn group_id_must_be_24_hex_digits() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a
"
        ),
        r#"atlas-backup-exporter.yml: line 2: targets[0].group_id: "5f1a" is not a project id (24 hexadecimal digits)"#
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1g
"
        ),
        r#"atlas-backup-exporter.yml: line 2: targets[0].group_id: "5f1a2b3c4d5e6f7a8b9c0d1g" is not a project id (24 hexadecimal digits)"#
    );
    let config = parse(
        "targets:\n  - group_id: 5F1A2B3C4D5E6F7A8B9C0D1E\n",
        "x.yml",
    )
    .unwrap();
    assert_eq!(config.targets[0].group_id, "5f1a2b3c4d5e6f7a8b9c0d1e");
    assert_eq!(
        error(
            r"
targets:
  - clusters: [Cluster0]
"
        ),
        "atlas-backup-exporter.yml: line 2: targets[0].group_id: required key is missing"
    );
}

#[test]
fn the_same_project_twice_names_both_lines() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
  - group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
  - labels: {env: prod}
    group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
"
        ),
        "atlas-backup-exporter.yml: line 6: targets[2].group_id: project 5f1a2b3c4d5e6f7a8b9c0d1e is \
             already targets[0].group_id (line 2); merge the two targets"
    );
}

#[test]
fn the_same_cluster_twice_in_a_target_names_both_lines() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
      - name: Cluster0
        export_job_ids: [605ccba3c1c7613f423e1585]
"
        ),
        r#"atlas-backup-exporter.yml: line 6: targets[0].clusters[2]: cluster "Cluster0" is listed twice: first at targets[0].clusters[0] (line 4)"#
    );
}

#[test]
fn the_same_cluster_in_two_targets_is_fine() {
    let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
  - group_id: 6f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster0]
");
    assert_eq!(config.targets.len(), 2);
}

#[test]
fn cluster_names_are_checked() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: [Cluster_0]
"
        ),
        r#"atlas-backup-exporter.yml: line 3: targets[0].clusters[0]: "Cluster_0" is not a cluster name (ASCII letters, digits and '-', not starting with '-')"#
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: -analytics
"
        ),
        r#"atlas-backup-exporter.yml: line 4: targets[0].clusters[0].name: "-analytics" is not a cluster name (ASCII letters, digits and '-', not starting with '-')"#
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - 2024
"
        ),
        "atlas-backup-exporter.yml: line 4: targets[0].clusters[0]: 2024 reads as a number: write a \
             cluster name made of digits in quotes"
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - export_job_ids: [605ccba3c1c7613f423e1585]
"
        ),
        "atlas-backup-exporter.yml: line 4: targets[0].clusters[0].name: required key is missing"
    );
}

#[test]
fn an_empty_cluster_list_is_refused() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters: []
"
        ),
        "atlas-backup-exporter.yml: line 3: targets[0].clusters: is empty: list clusters, or remove \
             clusters to watch every cluster of the project"
    );
}

#[test]
fn export_job_ids_must_be_a_non_empty_list_of_distinct_ids() {
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids: []
"
        ),
        "atlas-backup-exporter.yml: line 5: targets[0].clusters[0].export_job_ids: is empty: list job \
             ids, or write the cluster as a plain name to watch all its jobs"
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids:
          - 605ccba3c1c7613f423e1585
          - 605ccba3c1c7613f423e1585
"
        ),
        r#"atlas-backup-exporter.yml: line 7: targets[0].clusters[0].export_job_ids[1]: export job "605ccba3c1c7613f423e1585" is listed twice"#
    );
    assert_eq!(
        error(
            r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - name: Cluster1
        export_job_ids: [..]
"
        ),
        r#"atlas-backup-exporter.yml: line 5: targets[0].clusters[0].export_job_ids[0]: ".." is not an export job id (up to 256 characters, no blanks or control characters, not . or ..)"#
    );
}

#[test]
fn static_labels_must_be_valid_and_not_the_exporters_own() {
    let label_error = |name: &str| {
        error(&format!(
            "targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n    labels:\n      env: prod\n      {name}: x\n"
        ))
    };
    assert_eq!(
        label_error("team-name"),
        r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "team-name" is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"#
    );
    assert_eq!(
        label_error("1st"),
        r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "1st" is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"#
    );
    assert_eq!(
        label_error("__meta"),
        r#"atlas-backup-exporter.yml: line 5: targets[0].labels: "__meta": label names starting with __ are reserved for Prometheus"#
    );
    assert_eq!(
        label_error("env"),
        r#"atlas-backup-exporter.yml: line 5: targets[0].labels: label "env" is set twice"#
    );
    for name in EXPORTER_LABELS {
        assert_eq!(
            label_error(name),
            format!(
                "atlas-backup-exporter.yml: line 5: targets[0].labels: {name:?} is a label the exporter \
                     or Prometheus sets itself; choose another name"
            )
        );
    }
    assert_eq!(
        error("targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n    labels: {env: \"\"}\n"),
        "atlas-backup-exporter.yml: line 3: targets[0].labels.env: label value is empty"
    );
}

// --- secrets -------------------------------------------------------------------------------------------

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
