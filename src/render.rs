//! The Prometheus text format of a collection, written directly: with ten thousand jobs a scrape
//! holds about a hundred thousand samples, and building `prometheus` crate metric families for
//! them costs several times more than writing the lines. The crate still serves the exporter's
//! own metrics (see `metrics`).

use std::fmt::Write;

use crate::atlas::model::{ExportJob, KNOWN_STATES};
use crate::collect::{ClusterJobs, ClusterReport, Collection};

/// Name, type and help of every family written here, in output order.
const FAMILIES: [(&str, &str, &str); 14] = [
    (
        "atlas_backup_export_job_state",
        "gauge",
        "State of an export job: 1 for its current state, 0 for every other known state. Queued or InProgress for long means a stuck export; Failed or Cancelled needs a look in Atlas.",
    ),
    (
        "atlas_backup_export_job_duration_seconds",
        "gauge",
        "Seconds from the export job's creation to its finish (finishedAt - createdAt); absent until it finishes.",
    ),
    (
        "atlas_backup_export_job_components",
        "gauge",
        "Components of the export job, one per shard of a sharded cluster; 0 for a replica set.",
    ),
    (
        "atlas_backup_export_job_created_timestamp_seconds",
        "gauge",
        "When Atlas created the export job, as Unix seconds; time() minus this is how long a running job has been going.",
    ),
    (
        "atlas_backup_export_job_finished_timestamp_seconds",
        "gauge",
        "When the export job finished, as Unix seconds; absent until it finishes.",
    ),
    (
        "atlas_backup_export_job_info",
        "gauge",
        "Always 1; carries the snapshot and the export bucket of the export job, to look them up in Atlas.",
    ),
    (
        "atlas_backup_export_job_failure_info",
        "gauge",
        "Always 1, for export jobs with a stateReason; error_code is Atlas's errorCode (the message is in the exporter's log).",
    ),
    (
        "atlas_backup_export_jobs",
        "gauge",
        "Export jobs of the cluster in each state, over every job Atlas lists; falls when Atlas prunes old jobs, so do not take increase() of it.",
    ),
    (
        "atlas_backup_export_last_success_timestamp_seconds",
        "gauge",
        "Largest finishedAt among the cluster's successful export jobs, as Unix seconds; absent if none. time() minus this is the age of the newest export.",
    ),
    (
        "atlas_backup_export_invalid_jobs",
        "gauge",
        "Export jobs skipped in this listing because Atlas returned them malformed; the exporter's log names them.",
    ),
    (
        "atlas_backup_export_up",
        "gauge",
        "1 if this collection fetched the cluster's export jobs, 0 if it failed (credentials, IP access list, role, deleted cluster, Atlas errors: see the exporter's log).",
    ),
    (
        "atlas_backup_export_scrape_duration_seconds",
        "gauge",
        "Seconds spent fetching the cluster's export jobs from Atlas in this collection.",
    ),
    (
        "atlas_backup_export_collection_timestamp_seconds",
        "gauge",
        "When the cluster's export jobs were fetched, as Unix seconds; older than the scrape when a cached collection answers (collection.cache_ttl).",
    ),
    (
        "atlas_backup_export_discovery_up",
        "gauge",
        "1 if listing the project's clusters worked, 0 if it failed (the last list that worked is used). Without group_id: the listing of every project.",
    ),
];

/// Appends the text format of `collection` to `out`.
pub fn render(collection: &Collection, out: &mut String) {
    let clusters: Vec<ClusterLabels> = collection.clusters.iter().map(ClusterLabels::new).collect();
    for (name, kind, help) in FAMILIES {
        let start = out.len();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        let header = out.len();
        match name {
            "atlas_backup_export_discovery_up" => discovery(collection, name, out),
            _ => {
                for cluster in &clusters {
                    write_family(name, cluster, out);
                }
            }
        }
        if out.len() == header {
            // A family without samples is left out altogether.
            out.truncate(start);
        }
    }
}

/// A cluster with its label text escaped once, since every sample of it repeats it.
struct ClusterLabels<'a> {
    report: &'a ClusterReport,
    /// `group_id="…",cluster_name="…"`
    base: String,
    /// `,env="prod"` for the target's static labels, or empty.
    statics: String,
}

impl<'a> ClusterLabels<'a> {
    fn new(report: &'a ClusterReport) -> ClusterLabels<'a> {
        let mut base = String::with_capacity(64);
        base.push_str("group_id=\"");
        escape(&report.group_id, &mut base);
        base.push_str("\",cluster_name=\"");
        escape(&report.cluster_name, &mut base);
        base.push('"');
        let mut statics = String::new();
        for (name, value) in report.labels.iter() {
            statics.push(',');
            statics.push_str(name);
            statics.push_str("=\"");
            escape(value, &mut statics);
            statics.push('"');
        }
        ClusterLabels {
            report,
            base,
            statics,
        }
    }

    fn jobs(&self) -> Option<&'a ClusterJobs> {
        self.report.jobs.as_ref()
    }
}

fn write_family(name: &str, cluster: &ClusterLabels, out: &mut String) {
    let report = cluster.report;
    match name {
        "atlas_backup_export_up" => {
            cluster_sample(name, cluster, &[], u8::from(report.jobs.is_some()), out)
        }
        "atlas_backup_export_scrape_duration_seconds" => {
            cluster_sample(name, cluster, &[], report.duration, out)
        }
        "atlas_backup_export_collection_timestamp_seconds" => {
            cluster_sample(name, cluster, &[], report.collected_at, out)
        }
        _ => {}
    }
    let Some(jobs) = cluster.jobs() else {
        return;
    };
    match name {
        "atlas_backup_export_jobs" => {
            for (state, count) in &jobs.counts {
                cluster_sample(name, cluster, &[("state", state)], count, out);
            }
        }
        "atlas_backup_export_last_success_timestamp_seconds" => {
            if let Some(last) = jobs.last_success {
                cluster_sample(name, cluster, &[], last, out);
            }
        }
        "atlas_backup_export_invalid_jobs" => cluster_sample(name, cluster, &[], jobs.invalid, out),
        _ => {
            for job in &jobs.shown {
                job_samples(name, cluster, job, out);
            }
        }
    }
}

fn job_samples(name: &str, cluster: &ClusterLabels, job: &ExportJob, out: &mut String) {
    match name {
        "atlas_backup_export_job_state" => {
            for state in KNOWN_STATES {
                let value = u8::from(job.state == state);
                job_sample(name, cluster, job, &[("state", state)], value, out);
            }
            if !KNOWN_STATES.contains(&job.state.as_str()) {
                job_sample(name, cluster, job, &[("state", &job.state)], 1u8, out);
            }
        }
        "atlas_backup_export_job_duration_seconds" => {
            if let Some(duration) = job.duration() {
                job_sample(name, cluster, job, &[], duration, out);
            }
        }
        "atlas_backup_export_job_components" => {
            job_sample(name, cluster, job, &[], job.components, out)
        }
        "atlas_backup_export_job_created_timestamp_seconds" => {
            job_sample(name, cluster, job, &[], job.created_at, out)
        }
        "atlas_backup_export_job_finished_timestamp_seconds" => {
            if let Some(finished) = job.finished_at {
                job_sample(name, cluster, job, &[], finished, out);
            }
        }
        "atlas_backup_export_job_info" => {
            let labels = [
                ("snapshot_id", job.snapshot_id.as_deref().unwrap_or("")),
                (
                    "export_bucket_id",
                    job.export_bucket_id.as_deref().unwrap_or(""),
                ),
            ];
            job_sample(name, cluster, job, &labels, 1u8, out);
        }
        "atlas_backup_export_job_failure_info" => {
            if let Some(reason) = &job.state_reason {
                job_sample(
                    name,
                    cluster,
                    job,
                    &[("error_code", &reason.error_code)],
                    1u8,
                    out,
                );
            }
        }
        _ => {}
    }
}

fn cluster_sample(
    name: &str,
    cluster: &ClusterLabels,
    extra: &[(&str, &str)],
    value: impl Value,
    out: &mut String,
) {
    sample(name, cluster, None, extra, value, out);
}

fn job_sample(
    name: &str,
    cluster: &ClusterLabels,
    job: &ExportJob,
    extra: &[(&str, &str)],
    value: impl Value,
    out: &mut String,
) {
    sample(name, cluster, Some(&job.id), extra, value, out);
}

/// One line: `name{group_id=…,cluster_name=…[,export_job_id=…][,extra…][,static…]} value`.
fn sample(
    name: &str,
    cluster: &ClusterLabels,
    job_id: Option<&str>,
    extra: &[(&str, &str)],
    value: impl Value,
    out: &mut String,
) {
    out.push_str(name);
    out.push('{');
    out.push_str(&cluster.base);
    if let Some(id) = job_id {
        out.push_str(",export_job_id=\"");
        escape(id, out);
        out.push('"');
    }
    labels(extra, out);
    out.push_str(&cluster.statics);
    out.push_str("} ");
    value.write(out);
    out.push('\n');
}

fn discovery(collection: &Collection, name: &str, out: &mut String) {
    for report in &collection.discoveries {
        out.push_str(name);
        out.push('{');
        let mut first = true;
        if let Some(group_id) = &report.group_id {
            out.push_str("group_id=\"");
            escape(group_id, out);
            out.push('"');
            first = false;
        }
        for (label, value) in report.labels.iter() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(label);
            out.push_str("=\"");
            escape(value, out);
            out.push('"');
        }
        out.push_str("} ");
        u8::from(report.up).write(out);
        out.push('\n');
    }
}

fn labels(extra: &[(&str, &str)], out: &mut String) {
    for (name, value) in extra {
        out.push(',');
        out.push_str(name);
        out.push_str("=\"");
        escape(value, out);
        out.push('"');
    }
}

/// Escapes a label value as the text format requires: backslash, double quote and newline.
fn escape(value: &str, out: &mut String) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the text format writes it.
trait Value {
    fn write(self, out: &mut String);
}

impl Value for f64 {
    fn write(self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Value for u64 {
    fn write(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Value for &u64 {
    fn write(self, out: &mut String) {
        (*self).write(out)
    }
}

impl Value for usize {
    fn write(self, out: &mut String) {
        (self as u64).write(out)
    }
}

impl Value for u8 {
    fn write(self, out: &mut String) {
        out.push(char::from(b'0' + self.min(9)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlas::model::StateReason;
    use crate::collect::{ClusterJobs, DiscoveryReport, Labels};

    fn report(jobs: Option<ClusterJobs>) -> ClusterReport {
        ClusterReport {
            group_id: "5f1a2b3c4d5e6f7a8b9c0d1e".into(),
            cluster_name: "Cluster0".into(),
            labels: Labels::from([("env".to_string(), "pr\"od".to_string())]),
            duration: 0.25,
            collected_at: 1_800_000_000.5,
            jobs,
        }
    }

    #[test]
    fn a_failed_job_renders_every_family_with_escaped_labels() {
        let job = ExportJob {
            id: "605ccba3c1c7613f423e1585".into(),
            state: "Failed".into(),
            created_at: 1616690963.0,
            finished_at: Some(1616694500.0),
            snapshot_id: Some("605cbac9b498841007af7d9f".into()),
            export_bucket_id: None,
            components: 2,
            state_reason: Some(StateReason {
                error_code: "EXPORT_FAILED".into(),
                message: "the message stays in the log".into(),
            }),
        };
        let collection = Collection {
            clusters: vec![report(Some(ClusterJobs {
                shown: vec![std::sync::Arc::new(job)],
                counts: vec![("Queued".into(), 0), ("Failed".into(), 1)],
                last_success: None,
                invalid: 3,
            }))],
            discoveries: vec![DiscoveryReport {
                group_id: None,
                labels: Labels::from([]),
                up: false,
            }],
        };
        let mut out = String::new();
        render(&collection, &mut out);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        let l = r#"group_id="5f1a2b3c4d5e6f7a8b9c0d1e",cluster_name="Cluster0""#;
        let j = r#"export_job_id="605ccba3c1c7613f423e1585""#;
        let s = r#"env="pr\"od""#;
        let expected = [
            format!(r#"atlas_backup_export_job_state{{{l},{j},state="Queued",{s}}} 0"#),
            format!(r#"atlas_backup_export_job_state{{{l},{j},state="InProgress",{s}}} 0"#),
            format!(r#"atlas_backup_export_job_state{{{l},{j},state="Successful",{s}}} 0"#),
            format!(r#"atlas_backup_export_job_state{{{l},{j},state="Failed",{s}}} 1"#),
            format!(r#"atlas_backup_export_job_state{{{l},{j},state="Cancelled",{s}}} 0"#),
            format!(r#"atlas_backup_export_job_duration_seconds{{{l},{j},{s}}} 3537"#),
            format!(r#"atlas_backup_export_job_components{{{l},{j},{s}}} 2"#),
            format!(
                r#"atlas_backup_export_job_created_timestamp_seconds{{{l},{j},{s}}} 1616690963"#
            ),
            format!(
                r#"atlas_backup_export_job_finished_timestamp_seconds{{{l},{j},{s}}} 1616694500"#
            ),
            format!(
                r#"atlas_backup_export_job_info{{{l},{j},snapshot_id="605cbac9b498841007af7d9f",export_bucket_id="",{s}}} 1"#
            ),
            format!(
                r#"atlas_backup_export_job_failure_info{{{l},{j},error_code="EXPORT_FAILED",{s}}} 1"#
            ),
            format!(r#"atlas_backup_export_jobs{{{l},state="Queued",{s}}} 0"#),
            format!(r#"atlas_backup_export_jobs{{{l},state="Failed",{s}}} 1"#),
            format!(r#"atlas_backup_export_invalid_jobs{{{l},{s}}} 3"#),
            format!(r#"atlas_backup_export_up{{{l},{s}}} 1"#),
            format!(r#"atlas_backup_export_scrape_duration_seconds{{{l},{s}}} 0.25"#),
            format!(r#"atlas_backup_export_collection_timestamp_seconds{{{l},{s}}} 1800000000.5"#),
            "atlas_backup_export_discovery_up{} 0".to_string(),
        ];
        assert_eq!(samples, expected);
        assert!(!out.contains("the message stays in the log"));
        assert!(!out.contains("last_success"), "no success, no series");
    }

    #[test]
    fn a_failed_cluster_has_only_up_duration_and_collection_time() {
        let collection = Collection {
            clusters: vec![report(None)],
            discoveries: vec![],
        };
        let mut out = String::new();
        render(&collection, &mut out);
        let names: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('{').next().unwrap_or(""))
            .collect();
        assert_eq!(
            names,
            [
                "atlas_backup_export_up",
                "atlas_backup_export_scrape_duration_seconds",
                "atlas_backup_export_collection_timestamp_seconds"
            ]
        );
        assert!(out.contains("atlas_backup_export_up{group_id=\"5f1a2b3c4d5e6f7a8b9c0d1e\",cluster_name=\"Cluster0\",env=\"pr\\\"od\"} 0\n"));
        assert!(!out.contains("# HELP atlas_backup_export_jobs "));
    }

    #[test]
    fn escaping_covers_backslash_quote_and_newline() {
        let mut out = String::new();
        escape("a\\b\"c\nd", &mut out);
        assert_eq!(out, "a\\\\b\\\"c\\nd");
    }
}
