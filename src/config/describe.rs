//! The summary `--config.check` prints: what the exporter would scrape, and how.

use std::fmt::{self, Write as _};

use super::credentials::{
    Credentials, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_PRIVATE_KEY, ENV_PUBLIC_KEY,
};
use super::duration::format_duration;
use super::settings::{Config, Target};
use super::size::format_size;

/// `; expected to export every 1d` (or that none is expected) for a configured expectation.
fn expectation_note(every: Option<std::time::Duration>) -> String {
    match every {
        None => String::new(),
        Some(every) if every.is_zero() => {
            "; no configured expectation (an auto-export schedule still counts)".to_owned()
        }
        Some(every) => format!("; expected to export every {}", format_duration(every)),
    }
}

impl Config {
    /// A human summary of what the exporter would scrape, for `--config.check`. Holds no secret.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_description(&mut out);
        out
    }

    fn write_description(&self, out: &mut String) -> fmt::Result {
        let atlas = &self.atlas;
        writeln!(
            out,
            "Atlas API: {} ({}), request timeout {}, at most {} requests at once, answers up to {}",
            atlas.base_url,
            atlas.api_version.as_str(),
            format_duration(atlas.request_timeout),
            atlas.max_concurrent_requests,
            format_size(atlas.max_response_size)
        )?;
        let credentials = match &atlas.auth {
            Some(Credentials::ApiKey { .. }) => "API key (digest) from the config file".to_owned(),
            Some(Credentials::ServiceAccount { .. }) => {
                "service account (OAuth) from the config file".to_owned()
            }
            None => format!(
                "from the environment: {ENV_CLIENT_ID}/{ENV_CLIENT_SECRET} (service account) or \
                 {ENV_PUBLIC_KEY}/{ENV_PRIVATE_KEY} (API key)"
            ),
        };
        writeln!(out, "Credentials: {credentials}")?;
        writeln!(out, "Targets: {}", self.targets.len())?;
        for target in &self.targets {
            self.write_target(out, target)?;
        }
        if self.discovery.all_projects {
            writeln!(
                out,
                "  and every cluster of every project the credential can see, discovered {}",
                self.discovery_cadence()
            )?;
        }
        let jobs = &self.export_jobs;
        let age = if jobs.max_age.is_zero() {
            "every job (no age limit)".to_owned()
        } else {
            format!("jobs created within {}", format_duration(jobs.max_age))
        };
        let cap = match jobs.max_per_cluster {
            0 => "no cap per cluster".to_owned(),
            n => format!("at most {n} per cluster"),
        };
        writeln!(
            out,
            "Per-job series: unfinished jobs, the newest job, listed job ids, and {age} ({cap}); \
             at most {} pages per cluster",
            jobs.max_pages
        )?;
        if !jobs.expect_export_every.is_zero() {
            writeln!(
                out,
                "Expected exports: every {} for clusters without an auto-export schedule",
                format_duration(jobs.expect_export_every)
            )?;
        }
        self.write_metadata(out)?;
        let collection = &self.collection;
        let serves = if collection.on_metrics {
            "/metrics serves the export jobs"
        } else {
            "/metrics serves only the exporter's own metrics (export jobs on /probe)"
        };
        if collection.in_background() {
            let bound = if collection.timeout_is_set {
                "collection.timeout"
            } else {
                "the interval"
            };
            return writeln!(
                out,
                "Collection: in the background every {}, each bounded by {bound} ({}); scrapes, \
                 /probe and /sd answer from the newest collection without calling Atlas; {serves}",
                format_duration(collection.interval),
                format_duration(collection.background_timeout()),
            );
        }
        let cache = if collection.cache_ttl.is_zero() {
            "no cache".to_owned()
        } else {
            format!(
                "results reused for {}",
                format_duration(collection.cache_ttl)
            )
        };
        writeln!(
            out,
            "Collection: deadline is Prometheus's scrape timeout minus {}, or {} without it; {cache}; {}",
            format_duration(collection.timeout_offset),
            format_duration(collection.timeout),
            serves
        )
    }

    fn write_target(&self, out: &mut String, target: &Target) -> fmt::Result {
        writeln!(out, "  project {}", target.group_id)?;
        match &target.clusters {
            None => writeln!(
                out,
                "    clusters: all clusters, discovered {}",
                self.discovery_cadence()
            )?,
            Some(clusters) => {
                for cluster in clusters {
                    let expect = expectation_note(cluster.expect_export_every);
                    match &cluster.export_job_ids {
                        None => {
                            writeln!(out, "    cluster {}: all export jobs{expect}", cluster.name)?
                        }
                        Some(ids) => writeln!(
                            out,
                            "    cluster {}: export jobs {}",
                            cluster.name,
                            ids.join(", ")
                        )?,
                    }
                }
            }
        }
        match target.expect_export_every {
            None => {}
            Some(every) if every.is_zero() => writeln!(
                out,
                "    no configured expectation for its clusters (an auto-export schedule still counts)"
            )?,
            Some(every) => writeln!(
                out,
                "    its clusters expected to export every {}, auto-export schedule or not, unless \
                 their entry says otherwise",
                format_duration(every)
            )?,
        }
        if !target.labels.is_empty() {
            let labels: Vec<String> = target
                .labels
                .iter()
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect();
            writeln!(out, "    labels: {}", labels.join(", "))?;
        }
        Ok(())
    }

    fn write_metadata(&self, out: &mut String) -> fmt::Result {
        let metadata = &self.metadata;
        let tags = if metadata.cluster_tags.is_empty() {
            "no tags".to_owned()
        } else {
            let tags: Vec<String> = metadata
                .cluster_tags
                .iter()
                .map(|t| format!("{:?} as {}", t.key, t.label))
                .collect();
            format!("tags {}", tags.join(", "))
        };
        let lookups: Vec<String> = [
            (metadata.projects, "project names".to_owned()),
            (metadata.clusters, format!("cluster details ({tags})")),
            (metadata.buckets, "export buckets".to_owned()),
            (metadata.schedules, "backup schedules".to_owned()),
            (metadata.snapshots, "exported snapshots' times".to_owned()),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect();
        if lookups.is_empty() {
            return writeln!(out, "Metadata: no lookups");
        }
        writeln!(
            out,
            "Metadata: {}, read again every {}",
            lookups.join(", "),
            format_duration(metadata.refresh_interval)
        )
    }

    fn discovery_cadence(&self) -> String {
        if self.discovery.interval.is_zero() {
            "on every scrape".to_owned()
        } else {
            format!("every {}", format_duration(self.discovery.interval))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::ok;

    #[test]
    fn describe_summarizes_what_would_be_scraped() {
        let config = ok(r"
atlas:
  auth:
    service_account: {client_id: mdb_sa_id_x, client_secret: mdb_sa_sk_y}
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
    clusters:
      - Cluster0
      - name: Cluster1
        export_job_ids: [605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586]
    labels: {team: data, env: prod}
  - group_id: 0123456789abcdef01234567
collection:
  cache_ttl: 15s
");
        assert_eq!(
            config.describe(),
            "\
Atlas API: https://cloud.mongodb.com (v2), request timeout 10s, at most 8 requests at once, answers up \
to 16MiB
Credentials: service account (OAuth) from the config file
Targets: 2
  project 5f1a2b3c4d5e6f7a8b9c0d1e
    cluster Cluster0: all export jobs
    cluster Cluster1: export jobs 605ccba3c1c7613f423e1585, 605ccba3c1c7613f423e1586
    labels: env=\"prod\", team=\"data\"
  project 0123456789abcdef01234567
    clusters: all clusters, discovered every 5m
Per-job series: unfinished jobs, the newest job, listed job ids, and jobs created within 7d (at most 50 per \
cluster); at most 100 pages per cluster
Metadata: project names, cluster details (no tags), export buckets, backup schedules, exported \
snapshots' times, read again every 1h
Collection: deadline is Prometheus's scrape timeout minus 500ms, or 30s without it; results reused for 15s; \
/metrics serves the export jobs
"
        );
    }

    #[test]
    fn describe_spells_out_zero_meanings() {
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
export_jobs: {max_age: 0, max_per_cluster: 0}
collection: {on_metrics: false}
discovery: {interval: 0, all_projects: true}
metadata: {projects: false, buckets: false, snapshots: false, refresh_interval: 30m, cluster_tags: [team, cost-center]}
");
        let description = config.describe();
        for expected in [
            "Credentials: from the environment: MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET (service \
             account) or MONGODB_ATLAS_PUBLIC_API_KEY/MONGODB_ATLAS_PRIVATE_API_KEY (API key)\n",
            "    clusters: all clusters, discovered on every scrape\n",
            "  and every cluster of every project the credential can see, discovered on every scrape\n",
            "and every job (no age limit) (no cap per cluster)",
            "Metadata: cluster details (tags \"team\" as tag_team, \"cost-center\" as tag_cost_center), \
             backup schedules, read again every 30m\n",
            "; no cache; /metrics serves only the exporter's own metrics (export jobs on /probe)\n",
        ] {
            assert!(
                description.contains(expected),
                "{expected:?} not in:\n{description}"
            );
        }
        let off = ok(
            "targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\nmetadata: {projects: false, \
                      clusters: false, buckets: false, schedules: false, snapshots: false}\n",
        );
        assert!(off.describe().contains("\nMetadata: no lookups\n"));
    }

    #[test]
    fn describe_says_collections_run_in_the_background_and_what_bounds_them() {
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection: {interval: 5m}
");
        assert!(
            config.describe().ends_with(
                "\nCollection: in the background every 5m, each bounded by the interval (5m); \
                 scrapes, /probe and /sd answer from the newest collection without calling Atlas; \
                 /metrics serves the export jobs\n"
            ),
            "{}",
            config.describe()
        );
        let config = ok(r"
targets:
  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e
collection: {interval: 5m, timeout: 4m, on_metrics: false}
");
        assert!(config.describe().contains(
            "each bounded by collection.timeout (4m); scrapes, /probe and /sd answer from the \
             newest collection without calling Atlas; /metrics serves only the exporter's own \
             metrics (export jobs on /probe)\n"
        ));
    }
}
