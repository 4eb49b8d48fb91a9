//! From the file as written to the checked config: the checks that involve several keys, and reading
//! `*_file` secrets.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use super::credentials::Credentials;
use super::error::ConfigError;
use super::raw::check_document_root;
use super::raw::{
    FilePathRule, RawAtlas, RawAuth, RawCluster, RawCollection, RawConfig, RawDiscovery,
    RawExportJobs, RawMetadata, RawTarget, SecretRule,
};
use super::settings::{
    AtlasConfig, ClusterTag, CollectionConfig, Config, DiscoveryConfig, ExportJobsConfig,
    ListedCluster, MetadataConfig, Target,
};
use crate::yaml::{Checked, KeyPath, Locator, Mapping, yaml_error};

pub(super) fn build(raw: RawConfig, at: &Locator) -> Result<Config, ConfigError> {
    let discovery = raw.discovery.map(|m| build_discovery(m.0));
    let discovery = discovery.unwrap_or_default();
    let export_jobs = raw.export_jobs.map(|m| build_export_jobs(m.0));
    // The order of the checks decides which of several mistakes is reported: atlas, collection,
    // metadata, then targets.
    Ok(Config {
        atlas: section(raw.atlas, |raw| build_atlas(raw, at))?,
        export_jobs: export_jobs.unwrap_or_default(),
        collection: section(raw.collection, |raw| build_collection(raw, at))?,
        metadata: section(raw.metadata, |raw| build_metadata(raw, at))?,
        targets: build_targets(raw.targets, discovery.all_projects, at)?,
        discovery,
    })
}

/// A section checked by `build`, or its defaults when the file leaves it out.
fn section<R, T: Default>(
    raw: Option<Mapping<R>>,
    build: impl FnOnce(R) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    raw.map_or_else(|| Ok(T::default()), |Mapping(raw)| build(raw))
}

fn build_atlas(raw: RawAtlas, at: &Locator) -> Result<AtlasConfig, ConfigError> {
    let defaults = AtlasConfig::default();
    let auth = raw.auth.map(|Mapping(auth)| build_auth(auth, at));
    Ok(AtlasConfig {
        base_url: raw.base_url.map_or(defaults.base_url, |v| v.0),
        api_version: raw.api_version.map_or(defaults.api_version, |v| v.0),
        request_timeout: raw
            .request_timeout
            .map_or(defaults.request_timeout, |v| v.0),
        max_concurrent_requests: raw
            .max_concurrent_requests
            .map_or(defaults.max_concurrent_requests, |v| v.0 as usize),
        max_response_size: raw
            .max_response_size
            .map_or(defaults.max_response_size, |v| v.0),
        auth: auth.transpose()?,
    })
}

fn build_auth(raw: RawAuth, at: &Locator) -> Result<Credentials, ConfigError> {
    let path = KeyPath::root().key("atlas").key("auth");
    let secret =
        |path: &KeyPath, name, value, file| inline_or_file_secret(at, path, name, value, file);
    match (raw.api_key, raw.service_account) {
        (Some(Mapping(key)), None) => {
            let path = path.key("api_key");
            Ok(Credentials::ApiKey {
                public_key: secret(&path, "public_key", key.public_key, key.public_key_file)?,
                private_key: secret(&path, "private_key", key.private_key, key.private_key_file)?,
            })
        }
        (None, Some(Mapping(account))) => {
            let path = path.key("service_account");
            Ok(Credentials::ServiceAccount {
                client_id: secret(
                    &path,
                    "client_id",
                    account.client_id,
                    account.client_id_file,
                )?,
                client_secret: secret(
                    &path,
                    "client_secret",
                    account.client_secret,
                    account.client_secret_file,
                )?,
            })
        }
        (Some(_), Some(_)) => {
            Err(at.error(&path, "both api_key and service_account are set; keep one"))
        }
        (None, None) => Err(at.error(
            &path,
            "set api_key or service_account (or remove auth to use the environment)",
        )),
    }
}

/// One secret given either inline (`name`) or by file (`name_file`), exactly one of the two.
fn inline_or_file_secret(
    at: &Locator,
    path: &KeyPath,
    name: &str,
    value: Option<Checked<SecretRule>>,
    file: Option<Checked<FilePathRule>>,
) -> Result<SecretString, ConfigError> {
    match (value, file) {
        (Some(value), None) => Ok(value.0),
        (None, Some(file)) => read_secret_file(&file.0)
            .map_err(|message| at.error(&path.key(&format!("{name}_file")), message)),
        (Some(_), Some(_)) => Err(at.error(
            path,
            format_args!("both {name} and {name}_file are set; keep one"),
        )),
        (None, None) => Err(at.error(
            path,
            format_args!("{name} is missing: set {name} or {name}_file"),
        )),
    }
}

/// Reads a secret from a file, trimmed (files usually end with a newline). The path is no secret, so the
/// message names it; the content never appears.
fn read_secret_file(path: &Path) -> Result<SecretString, String> {
    let mut content = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {:?}: {error}", path.display().to_string()))?;
    let trimmed = content.trim();
    let secret = (!trimmed.is_empty()).then(|| SecretString::from(trimmed));
    content.zeroize();
    secret.ok_or_else(|| format!("{:?} is empty", path.display().to_string()))
}

/// The targets; none are needed when `discovery.all_projects` finds the clusters.
fn build_targets(
    raw: Option<Vec<Mapping<RawTarget>>>,
    all_projects: bool,
    at: &Locator,
) -> Result<Vec<Target>, ConfigError> {
    let path = KeyPath::root().key("targets");
    if all_projects && raw.as_ref().is_none_or(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let raw = raw.ok_or_else(|| {
        at.error::<ConfigError>(
            &path,
            "is missing: list the Atlas projects to watch, each with its group_id (or set discovery.all_projects: true)",
        )
    })?;
    if raw.is_empty() {
        return Err(at.error(
            &path,
            "is empty: list at least one Atlas project (group_id)",
        ));
    }
    let mut first_index: HashMap<String, usize> = HashMap::new();
    let mut targets = Vec::with_capacity(raw.len());
    for (index, Mapping(target)) in raw.into_iter().enumerate() {
        let target_path = path.index(index);
        let group_id = target.group_id.0;
        if let Some(&first) = first_index.get(&group_id) {
            let first_path = path.index(first).key("group_id");
            return Err(at.error(
                &target_path.key("group_id"),
                format_args!(
                    "project {group_id} is already {first_path}{}; merge the two targets",
                    at.line_note(&first_path)
                ),
            ));
        }
        first_index.insert(group_id.clone(), index);
        targets.push(Target {
            group_id,
            clusters: build_clusters(target.clusters, &target_path.key("clusters"), at)?,
            labels: target
                .labels
                .map(|labels| labels.0.into_iter().collect())
                .unwrap_or_default(),
            expect_export_every: target.expect_export_every.map(|v| v.0),
        });
    }
    Ok(targets)
}

fn build_clusters(
    raw: Option<Vec<RawCluster>>,
    path: &KeyPath,
    at: &Locator,
) -> Result<Option<Vec<ListedCluster>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(at.error(
            path,
            "is empty: list clusters, or remove clusters to watch every cluster of the project",
        ));
    }
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in raw.iter().enumerate() {
        let name = entry.name.0.as_str();
        if let Some(&first) = first_index.get(name) {
            let first_path = path.index(first);
            return Err(at.error(
                &path.index(index),
                format_args!(
                    "cluster {name:?} is listed twice: first at {first_path}{}",
                    at.line_note(&first_path)
                ),
            ));
        }
        first_index.insert(name, index);
    }
    let clusters = raw
        .into_iter()
        .enumerate()
        .map(|(index, entry)| build_cluster(entry, &path.index(index), at))
        .collect::<Result<_, _>>()?;
    Ok(Some(clusters))
}

fn build_cluster(
    raw: RawCluster,
    path: &KeyPath,
    at: &Locator,
) -> Result<ListedCluster, ConfigError> {
    let expect_export_every = raw.expect_export_every.map(|v| v.0);
    let Some(ids) = raw.export_job_ids else {
        return Ok(ListedCluster {
            name: raw.name.0,
            export_job_ids: None,
            expect_export_every,
        });
    };
    if expect_export_every.is_some_and(|every| !every.is_zero()) {
        // A cluster watched through some of its jobs has no expectation: those jobs are not
        // its whole history, so the age of its last export cannot be told.
        return Err(at.error(
            &path.key("expect_export_every"),
            "a cluster watched through export_job_ids has no expectation (those jobs are not its \
             whole history); remove expect_export_every, or export_job_ids to watch all its jobs",
        ));
    }
    let path = path.key("export_job_ids");
    if ids.is_empty() {
        return Err(at.error(
            &path,
            "is empty: list job ids, or write the cluster as a plain name to watch all its jobs",
        ));
    }
    let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
    if let Some(index) = (1..ids.len()).find(|&i| ids[..i].contains(&ids[i])) {
        return Err(at.error(
            &path.index(index),
            format_args!("export job {:?} is listed twice", ids[index]),
        ));
    }
    Ok(ListedCluster {
        name: raw.name.0,
        export_job_ids: Some(ids),
        expect_export_every,
    })
}

fn build_export_jobs(raw: RawExportJobs) -> ExportJobsConfig {
    let defaults = ExportJobsConfig::default();
    ExportJobsConfig {
        max_age: raw.max_age.map_or(defaults.max_age, |v| v.0),
        max_pages: raw.max_pages.map_or(defaults.max_pages, |v| v.0),
        max_per_cluster: raw
            .max_per_cluster
            .map_or(defaults.max_per_cluster, |v| v.0 as usize),
        expect_export_every: raw
            .expect_export_every
            .map_or(defaults.expect_export_every, |v| v.0),
    }
}

fn build_collection(raw: RawCollection, at: &Locator) -> Result<CollectionConfig, ConfigError> {
    let defaults = CollectionConfig::default();
    let collection = CollectionConfig {
        timeout_is_set: raw.timeout.is_some(),
        timeout: raw.timeout.map_or(defaults.timeout, |v| v.0),
        interval: raw.interval.map_or(defaults.interval, |v| v.0),
        timeout_offset: raw.timeout_offset.map_or(defaults.timeout_offset, |v| v.0),
        cache_ttl: raw.cache_ttl.map_or(defaults.cache_ttl, |v| v.0),
        on_metrics: raw.on_metrics.unwrap_or(defaults.on_metrics),
    };
    // A zero on either side is the key's default: only both at work contradict each other.
    if collection.in_background() && !collection.cache_ttl.is_zero() {
        let path = KeyPath::root().key("collection");
        let interval = path.key("interval");
        return Err(at.error(
            &path.key("cache_ttl"),
            format_args!(
                "cannot be used with collection.interval{}: background collection answers every \
                 scrape from its newest collection already; remove cache_ttl",
                at.line_note(&interval)
            ),
        ));
    }
    Ok(collection)
}

fn build_discovery(raw: RawDiscovery) -> DiscoveryConfig {
    let defaults = DiscoveryConfig::default();
    DiscoveryConfig {
        interval: raw.interval.map_or(defaults.interval, |v| v.0),
        all_projects: raw.all_projects.unwrap_or(defaults.all_projects),
    }
}

fn build_metadata(raw: RawMetadata, at: &Locator) -> Result<MetadataConfig, ConfigError> {
    let defaults = MetadataConfig::default();
    let path = KeyPath::root().key("metadata").key("cluster_tags");
    let mut cluster_tags: Vec<ClusterTag> = Vec::new();
    for (index, key) in raw.cluster_tags.unwrap_or_default().into_iter().enumerate() {
        let tag = ClusterTag::new(&key.0);
        if let Some(first) = cluster_tags.iter().position(|t| t.label == tag.label) {
            let first_path = path.index(first);
            return Err(at.error(
                &path.index(index),
                format_args!(
                    "tag {:?} becomes the label {}, as {:?} at {first_path}{} does: allow one of them",
                    tag.key,
                    tag.label,
                    cluster_tags[first].key,
                    at.line_note(&first_path)
                ),
            ));
        }
        cluster_tags.push(tag);
    }
    Ok(MetadataConfig {
        refresh_interval: raw
            .refresh_interval
            .map_or(defaults.refresh_interval, |v| v.0),
        projects: raw.projects.unwrap_or(defaults.projects),
        clusters: raw.clusters.unwrap_or(defaults.clusters),
        buckets: raw.buckets.unwrap_or(defaults.buckets),
        schedules: raw.schedules.unwrap_or(defaults.schedules),
        snapshots: raw.snapshots.unwrap_or(defaults.snapshots),
        cluster_tags,
    })
}

/// Reads and checks the config file; messages name the file as the user gave it.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Checks config text; `origin` names it in messages (usually the file name). Reads `*_file` secrets,
/// relative to the current directory.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let at = Locator::new(text, origin);
    check_document_root(text, &at)?;
    let raw: Mapping<RawConfig> =
        serde_yaml::from_str(text).map_err(|error| yaml_error::<ConfigError>(error, origin))?;
    build(raw.0, &at)
}

#[cfg(test)]
mod tests {
    use crate::config::credentials::tests::{api_key, service_account};
    use crate::config::parse;
    use crate::config::tests::{TempFile, error, ok};

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
}
