//! The check's answer: one line per project and per cluster, built from what the collection
//! found and how each of its calls ended, then written as an aligned table.

use std::collections::BTreeSet;
use std::fmt;

use super::diagnosis::{Note, Problem, Verdict};
use crate::atlas::Endpoint;
use crate::atlas::model::Unwatched;
use crate::collect::{ClusterReport, Collection, Skipped};
use crate::config::Config;

/// How one call ended, and what it was about.
#[derive(Clone, Debug)]
pub struct Record {
    pub endpoint: Endpoint,
    /// `None` for the calls outside a project (the project listing).
    pub group_id: Option<String>,
    /// `None` for the calls about a whole project.
    pub cluster: Option<String>,
    pub verdict: Verdict,
}

/// Where a line stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    /// Not looked at: the collection makes a project's lookups only once it read some
    /// cluster's export jobs.
    Unchecked,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Unchecked => "unchecked",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The project's `group_id`; `discovery.all_projects` for the project listing.
    pub subject: String,
    /// The project's name, when Atlas gave it.
    pub project_name: Option<String>,
    /// `None` on a project's line.
    pub cluster: Option<String>,
    pub status: Status,
    /// What was found, or what failed and the fix.
    pub text: String,
}

/// What the check found, line by line.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    /// The report of one collection (`None` when it did not end in time) and of its calls.
    pub fn build(config: &Config, collection: Option<&Collection>, records: &[Record]) -> Report {
        let empty = Collection::default();
        let collection = collection.unwrap_or(&empty);
        let mut lines = Vec::new();
        if config.discovery.all_projects {
            lines.push(listing_line(records));
        }
        // Whether the collection made its lookups: only after reading some cluster's jobs.
        let looked_up = collection.clusters.iter().any(|c| c.jobs.is_some());
        let is_global = |r: &&Record| matches!(&r.verdict, Verdict::Failed(p) if p.global);
        let global_anywhere = problems(records.iter().filter(is_global));
        for group_id in projects(config, collection, records) {
            let name = collection
                .metadata
                .projects
                .iter()
                .find(|p| p.group_id == group_id)
                .map(|p| p.name.clone());
            let clusters = clusters_of(&group_id, config, collection, records);
            let project = project_line(&group_id, clusters.len(), collection, records);
            // A credential refused, or a host not on its access list, stops the project too.
            let in_project = |r: &&Record| r.group_id.as_deref() == Some(group_id.as_str());
            let global = match problems(records.iter().filter(is_global).filter(in_project)) {
                here if here.is_empty() => global_anywhere.clone(),
                here => here,
            };
            let project = match project {
                Some(line) => line,
                None if looked_up => (Status::Ok, found_in_project(clusters.len(), None)),
                None if !global.is_empty() => (Status::Failed, describe(&global)),
                None => (
                    Status::Unchecked,
                    "not looked up: the exporter looks projects up once it has read some cluster's export jobs"
                        .to_owned(),
                ),
            };
            lines.push(Line {
                subject: group_id.clone(),
                project_name: name.clone(),
                cluster: None,
                status: project.0,
                text: project.1,
            });
            for cluster in clusters {
                let (status, text) = cluster_line(&group_id, &cluster, collection, records);
                lines.push(Line {
                    subject: group_id.clone(),
                    project_name: name.clone(),
                    cluster: Some(cluster),
                    status,
                    text,
                });
            }
        }
        Report { lines }
    }

    /// Whether everything the exporter needs is readable.
    pub fn passed(&self) -> bool {
        self.lines.iter().all(|line| line.status == Status::Ok)
    }

    /// The closing line: the verdict and what it covers.
    pub fn summary(&self) -> String {
        let count = |cluster: bool, status: Option<Status>| {
            let lines = self.lines.iter().filter(|l| l.subject != LISTING);
            lines
                .filter(|l| l.cluster.is_some() == cluster)
                .filter(|l| status.is_none_or(|s| l.status == s))
                .count()
        };
        let (projects, clusters) = (count(false, None), count(true, None));
        let scope = format!(
            "{}, {}",
            plural(projects, "project"),
            plural(clusters, "cluster")
        );
        if self.passed() {
            return format!("atlas.check: OK: everything the exporter needs is readable ({scope})");
        }
        let not_ok = |cluster| count(cluster, None) - count(cluster, Some(Status::Ok));
        let listing = self
            .lines
            .iter()
            .any(|l| l.subject == LISTING && l.status != Status::Ok);
        let mut parts: Vec<String> = Vec::new();
        if listing {
            parts.push("the project listing".to_owned());
        }
        for (failed, all, noun) in [
            (not_ok(false), projects, "projects"),
            (not_ok(true), clusters, "clusters"),
        ] {
            if failed > 0 {
                parts.push(format!("{failed} of {all} {noun}"));
            }
        }
        format!("atlas.check: FAILED: not ok: {}", parts.join(", "))
    }
}

/// The subject of the project listing's line.
const LISTING: &str = "discovery.all_projects";

/// Every project of the report: the config's in its order, then any other the collection met
/// (with `discovery.all_projects`), by id.
fn projects(config: &Config, collection: &Collection, records: &[Record]) -> Vec<String> {
    let mut projects: Vec<String> = config.targets.iter().map(|t| t.group_id.clone()).collect();
    let met: BTreeSet<&String> = collection
        .clusters
        .iter()
        .map(|c| &c.cluster.group_id)
        .chain(records.iter().filter_map(|r| r.group_id.as_ref()))
        .filter(|g| !projects.contains(g))
        .collect();
    projects.extend(met.into_iter().cloned());
    projects
}

/// A project's clusters, by name: those the collection collected, or the ones the config
/// names and the calls met when it did not end.
fn clusters_of(
    group_id: &str,
    config: &Config,
    collection: &Collection,
    records: &[Record],
) -> Vec<String> {
    let collected = collection.clusters.iter().map(|c| &c.cluster);
    let configured = config.targets.iter().filter(|t| t.group_id == group_id);
    let names: BTreeSet<String> = collected
        .filter(|c| c.group_id == group_id)
        .map(|c| c.cluster_name.clone())
        .chain(configured.flat_map(|t| t.clusters.iter().flatten().map(|c| c.name.clone())))
        .chain(
            records
                .iter()
                .filter(|r| r.group_id.as_deref() == Some(group_id))
                .filter_map(|r| r.cluster.clone()),
        )
        .collect();
    names.into_iter().collect()
}

fn listing_line(records: &[Record]) -> Line {
    let listing = records
        .iter()
        .filter(|r| r.endpoint == Endpoint::ListProjects);
    let failed = problems(listing.clone());
    let (status, text) = match (failed.is_empty(), listing.count()) {
        (false, _) => (Status::Failed, describe(&failed)),
        (true, 0) => (Status::Failed, "the projects were not listed".to_owned()),
        (true, _) => (Status::Ok, "listed the projects".to_owned()),
    };
    Line {
        subject: LISTING.to_owned(),
        project_name: None,
        cluster: None,
        status,
        text,
    }
}

/// A project's line from the calls about the whole project; `None` when none was made.
fn project_line(
    group_id: &str,
    clusters: usize,
    collection: &Collection,
    records: &[Record],
) -> Option<(Status, String)> {
    let own: Vec<&Record> = records
        .iter()
        .filter(|r| r.group_id.as_deref() == Some(group_id) && r.cluster.is_none())
        .collect();
    if own.is_empty() {
        return None;
    }
    let failed = problems(own.iter().copied());
    if !failed.is_empty() {
        return Some((Status::Failed, describe(&failed)));
    }
    let buckets_read = own
        .iter()
        .any(|r| r.endpoint == Endpoint::ListExportBuckets);
    let buckets = buckets_read.then(|| {
        let buckets = collection.metadata.buckets.iter();
        buckets.filter(|b| b.group_id == group_id).count()
    });
    let skipped = collection
        .discoveries
        .iter()
        .find(|d| d.group_id.as_deref() == Some(group_id))
        .and_then(|d| d.skipped.as_ref());
    let mut found = found_in_project(clusters, buckets);
    if let Some(skipped) = skipped {
        found.push_str(&not_watched(skipped));
    }
    Some((Status::Ok, found))
}

fn found_in_project(clusters: usize, buckets: Option<usize>) -> String {
    let mut found = plural(clusters, "cluster");
    if let Some(buckets) = buckets {
        found.push_str(&format!(", {}", plural(buckets, "export bucket")));
    }
    found
}

/// The clusters discovery listed and leaves alone, and why: ` (not watched: 1 shared tier or
/// Flex)`, or nothing.
fn not_watched(skipped: &Skipped) -> String {
    let reasons = Unwatched::ALL
        .iter()
        .zip(skipped.unwatched)
        .map(|(reason, n)| {
            let why = match reason {
                Unwatched::Tenant => "shared tier or Flex",
                Unwatched::BackupDisabled => "without Cloud Backup",
            };
            (n, why)
        });
    let parts: Vec<String> = reasons
        .chain([(skipped.invalid, "without a name")])
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!(" (not watched: {})", parts.join(", ")),
    }
}

fn cluster_line(
    group_id: &str,
    cluster: &str,
    collection: &Collection,
    records: &[Record],
) -> (Status, String) {
    let own: Vec<&Record> = records
        .iter()
        .filter(|r| r.group_id.as_deref() == Some(group_id))
        .filter(|r| r.cluster.as_deref() == Some(cluster))
        .collect();
    let failed = problems(own.iter().copied());
    if !failed.is_empty() {
        return (Status::Failed, describe(&failed));
    }
    let report = collection
        .clusters
        .iter()
        .find(|c| c.cluster.key() == (group_id, cluster));
    let Some(ClusterReport {
        jobs: Some(jobs), ..
    }) = report
    else {
        return (
            Status::Failed,
            "export jobs not read: collection.timeout ran out first".to_owned(),
        );
    };
    let count = jobs.counts.total();
    let mut found = plural(count as usize, "export job");
    if jobs.invalid > 0 {
        found.push_str(&format!(" ({} malformed, skipped)", jobs.invalid));
    }
    let schedule = collection
        .metadata
        .schedules
        .iter()
        .find(|s| (s.group_id.as_str(), s.cluster_name.as_str()) == (group_id, cluster));
    if let Some(info) = schedule {
        found.push_str(match info.schedule.auto_export {
            true => ", auto-export on",
            false => ", auto-export off",
        });
    }
    let expired = own
        .iter()
        .any(|r| r.verdict == Verdict::Fine(Some(Note::SnapshotExpired)));
    if expired {
        found.push_str(", the newest export's snapshot has expired (fine: Atlas removes them)");
    }
    (Status::Ok, found)
}

/// The distinct problems among `records`, in the endpoint table's order.
fn problems<'a>(records: impl Iterator<Item = &'a Record>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    for record in records {
        if let Verdict::Failed(problem) = &record.verdict
            && !problems.contains(problem)
        {
            problems.push(problem.clone());
        }
    }
    let order = |p: &Problem| Endpoint::ALL.iter().position(|e| *e == p.endpoint);
    problems.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.what.cmp(&b.what)));
    problems
}

/// Problems as one text: those with the same answer and fix share it, their endpoints listed.
fn describe(problems: &[Problem]) -> String {
    let mut groups: Vec<(Vec<&str>, &str, &str)> = Vec::new();
    for problem in problems {
        let label = problem.endpoint.label();
        match groups
            .iter_mut()
            .find(|(_, what, fix)| (*what, *fix) == (problem.what.as_str(), problem.fix.as_str()))
        {
            Some((labels, _, _)) if labels.contains(&label) => {}
            Some((labels, _, _)) => labels.push(label),
            None => groups.push((vec![label], &problem.what, &problem.fix)),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(labels, what, fix)| format!("{}: {what} (fix: {fix})", labels.join(", ")))
        .collect();
    parts.join("; ")
}

/// A name from Atlas as shown: as it is, unless a control character in it could break the line.
fn escaped(name: &str) -> String {
    match name.chars().any(char::is_control) {
        true => name.escape_debug().to_string(),
        false => name.to_owned(),
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// The lines, aligned in columns: the project (its `group_id`, then its quoted name when
/// known), the cluster, the status, then what was found or what failed and the fix.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                l.project_name
                    .as_ref()
                    .map(|n| format!("{n:?}"))
                    .unwrap_or_default()
            })
            .collect();
        let width = |column: &dyn Fn(usize) -> usize| (0..self.lines.len()).map(column).max();
        let chars = |text: &str| text.chars().count();
        let subject = width(&|i| chars(&self.lines[i].subject)).unwrap_or(0);
        let name = width(&|i| chars(&names[i])).unwrap_or(0);
        let clusters: Vec<String> = self
            .lines
            .iter()
            .map(|l| l.cluster.as_deref().map(escaped).unwrap_or_default())
            .collect();
        let cluster = width(&|i| chars(&clusters[i])).unwrap_or(0);
        let status = width(&|i| chars(self.lines[i].status.word())).unwrap_or(0);
        for ((line, quoted), shown) in self.lines.iter().zip(&names).zip(&clusters) {
            let mut text = format!("{:<subject$}", line.subject);
            if name > 0 {
                text.push_str(&format!("  {quoted:<name$}"));
            }
            if cluster > 0 {
                text.push_str(&format!("  {shown:<cluster$}"));
            }
            text.push_str(&format!("  {:<status$}  {}", line.status.word(), line.text));
            writeln!(f, "{}", text.trim_end())?;
        }
        writeln!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(subject: &str, name: Option<&str>, cluster: Option<&str>, status: Status) -> Line {
        Line {
            subject: subject.to_owned(),
            project_name: name.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
            status,
            text: "what was found".to_owned(),
        }
    }

    #[test]
    fn lines_are_aligned_and_names_from_atlas_cannot_break_them() {
        let report = Report {
            lines: vec![
                line(LISTING, None, None, Status::Failed),
                line(
                    "5f1a2b3c4d5e6f7a8b9c0d1e",
                    Some("Payments \"EU\""),
                    None,
                    Status::Ok,
                ),
                line(
                    "5f1a2b3c4d5e6f7a8b9c0d1e",
                    Some("Payments \"EU\""),
                    Some("A\nB"),
                    Status::Failed,
                ),
                line(
                    "6a799efbc0eb9e7a177d7e0e",
                    None,
                    Some("Cluster-10"),
                    Status::Unchecked,
                ),
            ],
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "discovery.all_projects                                   FAILED     what was found",
                "5f1a2b3c4d5e6f7a8b9c0d1e  \"Payments \\\"EU\\\"\"              ok         what was found",
                "5f1a2b3c4d5e6f7a8b9c0d1e  \"Payments \\\"EU\\\"\"  A\\nB        FAILED     what was found",
                "6a799efbc0eb9e7a177d7e0e                     Cluster-10  unchecked  what was found",
                "atlas.check: FAILED: not ok: the project listing, 2 of 2 clusters",
            ]
        );
        assert!(!report.passed());
    }

    #[test]
    fn problems_with_the_same_answer_and_fix_share_one_text() {
        let problem = |endpoint, what: &str, fix: &str| Problem {
            endpoint,
            what: what.to_owned(),
            fix: fix.to_owned(),
            global: false,
        };
        let problems = [
            problem(Endpoint::ListExportJobs, "HTTP 403 X", "fix x"),
            problem(Endpoint::GetCluster, "HTTP 403 X", "fix x"),
            problem(Endpoint::GetCluster, "HTTP 500", "fix y"),
        ];
        let records: Vec<Record> = problems
            .iter()
            .map(|p| Record {
                endpoint: p.endpoint,
                group_id: None,
                cluster: None,
                verdict: Verdict::Failed(p.clone()),
            })
            .collect();
        assert_eq!(
            describe(&super::problems(records.iter())),
            "get_cluster, list_export_jobs: HTTP 403 X (fix: fix x); get_cluster: HTTP 500 (fix: fix y)"
        );
    }
}
