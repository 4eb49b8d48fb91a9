//! The Prometheus text format of a collection, written directly: with ten thousand jobs a scrape
//! holds about a hundred thousand samples, and building `prometheus` crate metric families for
//! them costs several times more than writing the lines. The crate still serves the exporter's
//! own metrics (see `metrics`).

use std::fmt::Write;

use strum::VariantArray;

use crate::atlas::model::Unwatched;
use crate::atlas::model::{AtlasId, ExportJob, JobState};
use crate::collect::{ClusterReport, Collection, DiscoveryReport, JobSummary, MetadataReport};
use crate::labels::{
    BASIS, BUCKET_NAME, CLOUD_PROVIDER, CLUSTER_NAME, CLUSTER_TYPE, ENDPOINT, ERROR_CODE,
    EXPORT_BUCKET_ID, EXPORT_JOB_ID, FREQUENCY_TYPE, GROUP_ID, GROUP_NAME, MONGODB_VERSION, REASON,
    SNAPSHOT_ID, SOURCE, STATE,
};

/// A metric family written here. Its name, help and samples each come from an exhaustive match,
/// so a family cannot be added without being named, explained and written; and the list of
/// every family is derived from the enums themselves ([`VariantArray`]), so a family cannot be
/// added without being listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// A series per job shown.
    Job(JobFamily),
    /// A series per cluster (or per state of a cluster).
    Cluster(ClusterFamily),
    /// A series per discovery listing (a project, or the listing of the projects).
    Project(ProjectFamily),
    /// The names and details to join on the ids (`*_info`, `cluster_tags`).
    Info(InfoFamily),
    /// What should have happened: each cluster's auto-export schedule, its creation, and the
    /// age of the data its newest export holds.
    Schedule(ScheduleFamily),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
enum ScheduleFamily {
    AutoExportEnabled,
    AutoExportIntervalSeconds,
    AutoExportInfo,
    AutoExportLastSuccessTimestamp,
    LastSuccessSnapshotTimestamp,
    ClusterCreatedTimestamp,
    ClusterPaused,
    ExpectedIntervalSeconds,
    NextDueTimestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
enum InfoFamily {
    Project,
    Cluster,
    ClusterTags,
    Bucket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
enum JobFamily {
    State,
    DurationSeconds,
    Components,
    CreatedTimestamp,
    FinishedTimestamp,
    Info,
    FailureInfo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
enum ClusterFamily {
    Jobs,
    LastSuccessTimestamp,
    InvalidJobs,
    Up,
    CollectionDurationSeconds,
    CollectionTimestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
enum ProjectFamily {
    DiscoveryUp,
    UnwatchedClusters,
    InvalidClusters,
    AccessDenied,
}

impl Family {
    /// Every family, in output order: the per-job ones, the per-cluster ones, the per-project
    /// ones, each in the order its enum declares them.
    fn all() -> impl Iterator<Item = Family> {
        let jobs = JobFamily::VARIANTS.iter().map(|&f| Family::Job(f));
        let clusters = ClusterFamily::VARIANTS.iter().map(|&f| Family::Cluster(f));
        let projects = ProjectFamily::VARIANTS.iter().map(|&f| Family::Project(f));
        let infos = InfoFamily::VARIANTS.iter().map(|&f| Family::Info(f));
        let schedules = ScheduleFamily::VARIANTS
            .iter()
            .map(|&f| Family::Schedule(f));
        jobs.chain(clusters)
            .chain(projects)
            .chain(infos)
            .chain(schedules)
    }

    fn name(self) -> &'static str {
        match self {
            Family::Job(family) => family.name(),
            Family::Cluster(family) => family.name(),
            Family::Project(ProjectFamily::DiscoveryUp) => "atlas_backup_export_discovery_up",
            Family::Project(ProjectFamily::UnwatchedClusters) => {
                "atlas_backup_export_unwatched_clusters"
            }
            Family::Project(ProjectFamily::InvalidClusters) => {
                "atlas_backup_export_invalid_clusters"
            }
            Family::Project(ProjectFamily::AccessDenied) => "atlas_backup_export_access_denied",
            Family::Info(InfoFamily::Project) => "atlas_backup_export_project_info",
            Family::Info(InfoFamily::Cluster) => "atlas_backup_export_cluster_info",
            Family::Info(InfoFamily::ClusterTags) => "atlas_backup_export_cluster_tags",
            Family::Info(InfoFamily::Bucket) => "atlas_backup_export_bucket_info",
            Family::Schedule(ScheduleFamily::AutoExportEnabled) => {
                "atlas_backup_export_auto_export_enabled"
            }
            Family::Schedule(ScheduleFamily::AutoExportIntervalSeconds) => {
                "atlas_backup_export_auto_export_interval_seconds"
            }
            Family::Schedule(ScheduleFamily::AutoExportInfo) => {
                "atlas_backup_export_auto_export_info"
            }
            Family::Schedule(ScheduleFamily::AutoExportLastSuccessTimestamp) => {
                "atlas_backup_export_auto_export_last_success_timestamp_seconds"
            }
            Family::Schedule(ScheduleFamily::LastSuccessSnapshotTimestamp) => {
                "atlas_backup_export_last_success_snapshot_timestamp_seconds"
            }
            Family::Schedule(ScheduleFamily::ClusterCreatedTimestamp) => {
                "atlas_backup_export_cluster_created_timestamp_seconds"
            }
            Family::Schedule(ScheduleFamily::ClusterPaused) => "atlas_backup_export_cluster_paused",
            Family::Schedule(ScheduleFamily::ExpectedIntervalSeconds) => {
                "atlas_backup_export_expected_interval_seconds"
            }
            Family::Schedule(ScheduleFamily::NextDueTimestamp) => {
                "atlas_backup_export_next_due_timestamp_seconds"
            }
        }
    }

    /// Every family here is a gauge.
    fn help(self) -> &'static str {
        match self {
            Family::Job(JobFamily::State) => {
                "State of an export job: 1 for its current state, 0 for every other known state. Queued or InProgress for long means a stuck export; Failed or Cancelled needs a look in Atlas."
            }
            Family::Job(JobFamily::DurationSeconds) => {
                "Seconds from the export job's creation to its finish (finishedAt - createdAt); absent until it finishes."
            }
            Family::Job(JobFamily::Components) => {
                "Components of the export job, one per shard of a sharded cluster; 0 for a replica set."
            }
            Family::Job(JobFamily::CreatedTimestamp) => {
                "When Atlas created the export job, as Unix seconds; time() minus this is how long a running job has been going."
            }
            Family::Job(JobFamily::FinishedTimestamp) => {
                "When the export job finished, as Unix seconds; absent until it finishes."
            }
            Family::Job(JobFamily::Info) => {
                "Always 1; carries the snapshot and the export bucket of the export job, to look them up in Atlas."
            }
            Family::Job(JobFamily::FailureInfo) => {
                "Always 1, for export jobs with a stateReason; error_code is Atlas's errorCode (the message is in the exporter's log)."
            }
            Family::Cluster(ClusterFamily::Jobs) => {
                "Export jobs of the cluster in each state, over every job Atlas lists; falls when Atlas prunes old jobs, so do not take increase() of it."
            }
            Family::Cluster(ClusterFamily::LastSuccessTimestamp) => {
                "Largest finishedAt among the cluster's successful export jobs, as Unix seconds; absent if none. time() minus this is the age of the newest export."
            }
            Family::Cluster(ClusterFamily::InvalidJobs) => {
                "Export jobs skipped in this listing because Atlas returned them malformed; the exporter's log names them."
            }
            Family::Cluster(ClusterFamily::Up) => {
                "1 if this collection fetched the cluster's export jobs, 0 if it failed (credentials, IP access list, role, deleted cluster, Atlas errors: see the exporter's log)."
            }
            Family::Cluster(ClusterFamily::CollectionDurationSeconds) => {
                "Seconds spent fetching the cluster's export jobs from Atlas in this collection."
            }
            Family::Cluster(ClusterFamily::CollectionTimestamp) => {
                "When the cluster's export jobs were fetched, as Unix seconds; older than the scrape when a cached collection answers (collection.cache_ttl)."
            }
            Family::Project(ProjectFamily::DiscoveryUp) => {
                "1 if listing the project's clusters worked, 0 if it failed (the last list that worked is used). Without group_id: the listing of the projects (discovery.all_projects)."
            }
            Family::Project(ProjectFamily::UnwatchedClusters) => {
                "Clusters of a discovered project that discovery does not watch, by reason: tenant (shared tier or Flex) or backup_disabled (Cloud Backup off). Neither has snapshots to export."
            }
            Family::Project(ProjectFamily::InvalidClusters) => {
                "Clusters of a discovered project skipped because Atlas listed them without a name."
            }
            Family::Project(ProjectFamily::AccessDenied) => {
                "1 while Atlas refuses the exporter in the project: the latest call of some kind was refused after authentication (401 USER_UNAUTHORIZED: a missing role; 403: e.g. IP_ADDRESS_NOT_ON_ACCESS_LIST), or the credential itself is refused (then 1 for every project). 0 once those calls are answered again."
            }
            Family::Info(InfoFamily::Project) => {
                "Always 1; the project's name, to join on group_id. Read again every metadata.refresh_interval."
            }
            Family::Info(InfoFamily::Cluster) => {
                "Always 1; the cluster's type and MongoDB version, to join on group_id and cluster_name."
            }
            Family::Info(InfoFamily::ClusterTags) => {
                "Always 1; the cluster's Atlas resource tags allowed by metadata.cluster_tags, one tag_<key> label each (empty when the cluster lacks the tag)."
            }
            Family::Info(InfoFamily::Bucket) => {
                "Always 1; the export bucket's name and cloud provider, to join on group_id and export_bucket_id."
            }
            Family::Schedule(ScheduleFamily::AutoExportEnabled) => {
                "1 if the cluster's backup schedule exports snapshots automatically (autoExportEnabled), 0 if not. Read again every metadata.refresh_interval."
            }
            Family::Schedule(ScheduleFamily::AutoExportIntervalSeconds) => {
                "Seconds between automatic exports by the schedule's frequency (monthly 31 days, yearly 366 days, weekly, daily), while auto-export is on; none for a frequency the exporter does not know."
            }
            Family::Schedule(ScheduleFamily::AutoExportInfo) => {
                "Always 1, while auto-export is on; the schedule's export bucket and frequency, to join on group_id and cluster_name."
            }
            Family::Schedule(ScheduleFamily::AutoExportLastSuccessTimestamp) => {
                "finishedAt of the newest successful export job to the auto-export schedule's bucket, as Unix seconds, while auto-export is on; exports to other buckets do not count."
            }
            Family::Schedule(ScheduleFamily::LastSuccessSnapshotTimestamp) => {
                "When the snapshot that the success that counts holds was taken, as Unix seconds (with an auto-export expectation the newest success to the schedule's bucket, else the newest to any bucket): the point in time the newest copy restores. From the snapshot, or from its id once it expired."
            }
            Family::Schedule(ScheduleFamily::ClusterCreatedTimestamp) => {
                "When the cluster was created (createDate), as Unix seconds."
            }
            Family::Schedule(ScheduleFamily::ClusterPaused) => {
                "1 if Atlas says the cluster is paused, 0 if not; a paused cluster takes no snapshots and is expected no exports."
            }
            Family::Schedule(ScheduleFamily::ExpectedIntervalSeconds) => {
                "Seconds within which the cluster is expected to export, only for clusters with an expectation; source is auto_export (the backup schedule's frequency) or config (expect_export_every)."
            }
            Family::Schedule(ScheduleFamily::NextDueTimestamp) => {
                "When the cluster's next export is due, as Unix seconds: the success that counts (basis schedule_bucket or any_bucket), or its creation or first sight without one (basis created), plus the expected interval."
            }
        }
    }
}

impl JobFamily {
    fn name(self) -> &'static str {
        match self {
            JobFamily::State => "atlas_backup_export_job_state",
            JobFamily::DurationSeconds => "atlas_backup_export_job_duration_seconds",
            JobFamily::Components => "atlas_backup_export_job_components",
            JobFamily::CreatedTimestamp => "atlas_backup_export_job_created_timestamp_seconds",
            JobFamily::FinishedTimestamp => "atlas_backup_export_job_finished_timestamp_seconds",
            JobFamily::Info => "atlas_backup_export_job_info",
            JobFamily::FailureInfo => "atlas_backup_export_job_failure_info",
        }
    }
}

impl ClusterFamily {
    fn name(self) -> &'static str {
        match self {
            ClusterFamily::Jobs => "atlas_backup_export_jobs",
            ClusterFamily::LastSuccessTimestamp => {
                "atlas_backup_export_last_success_timestamp_seconds"
            }
            ClusterFamily::InvalidJobs => "atlas_backup_export_invalid_jobs",
            ClusterFamily::Up => "atlas_backup_export_up",
            ClusterFamily::CollectionDurationSeconds => {
                "atlas_backup_export_collection_duration_seconds"
            }
            ClusterFamily::CollectionTimestamp => {
                "atlas_backup_export_collection_timestamp_seconds"
            }
        }
    }
}

/// Appends the text format of `collection` to `out`.
pub fn render(collection: &Collection, out: &mut String) {
    Chunks::new(collection).fill(out, usize::MAX);
}

/// About how many bytes of text one chunk of a streamed answer holds (a chunk ends after the
/// cluster, or the family, that passes this size).
pub const CHUNK_SIZE: usize = 128 * 1024;

/// The text format of a collection in chunks of about [`CHUNK_SIZE`] bytes, written as they are
/// asked for: an answer streamed this way never holds more than a chunk of its text, and the
/// chunks joined are exactly what [`render`] writes. `C` is the collection, owned (an `Arc`) or
/// borrowed.
pub struct Chunks<C> {
    collection: C,
    /// The label text of each cluster, escaped once: `(base, target_labels)`.
    labels: Vec<(String, String)>,
    /// The family being written, by its place in [`Family::all`].
    family: usize,
    /// The next cluster of a per-job or per-cluster family.
    cluster: usize,
    /// While the family being written has no samples yet: where its header starts and ends in
    /// the buffer (a family without samples is left out altogether).
    header: Option<(usize, usize)>,
    /// The size a chunk passes before it is handed over: [`CHUNK_SIZE`].
    size: usize,
}

impl<C: std::ops::Deref<Target = Collection>> Chunks<C> {
    pub fn new(collection: C) -> Chunks<C> {
        let labels = collection
            .clusters
            .iter()
            .map(ClusterLabels::label_text)
            .collect();
        Chunks {
            collection,
            labels,
            family: 0,
            cluster: 0,
            header: None,
            size: CHUNK_SIZE,
        }
    }

    /// Chunks of about `size` bytes instead (tests cut the text at every place this way).
    #[cfg(test)]
    fn with_size(collection: C, size: usize) -> Chunks<C> {
        Chunks {
            size: size.max(1),
            ..Chunks::new(collection)
        }
    }

    /// Writes to `out` until it holds at least `size` bytes or the text is complete; `false`
    /// once there is nothing more to write. It never stops between a family's header and its
    /// first sample, so a chunk never ends with a header a family without samples would drop.
    fn fill(&mut self, out: &mut String, size: usize) -> bool {
        let collection = &*self.collection;
        // A header waits for its family's first sample (or is dropped with the family).
        while out.len() < size || self.header.is_some() {
            let Some(family) = Family::all().nth(self.family) else {
                return false;
            };
            let name = family.name();
            if self.cluster == 0 && self.header.is_none() {
                let start = out.len();
                let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} gauge", family.help());
                self.header = Some((start, out.len()));
            }
            let cluster = |i: usize| {
                let (base, target_labels) = &self.labels[i];
                ClusterLabels {
                    report: &collection.clusters[i],
                    base,
                    target_labels,
                }
            };
            let mut done = true;
            match family {
                Family::Job(family) if self.cluster < collection.clusters.len() => {
                    let cluster = cluster(self.cluster);
                    for job in cluster.shown() {
                        job_samples(family, &cluster, job, out);
                    }
                    self.cluster += 1;
                    done = false;
                }
                Family::Cluster(family) if self.cluster < collection.clusters.len() => {
                    cluster_samples(family, &cluster(self.cluster), out);
                    self.cluster += 1;
                    done = false;
                }
                Family::Job(_) | Family::Cluster(_) => {}
                Family::Project(family) => project_samples(family, name, collection, out),
                Family::Info(family) => info_samples(family, name, &collection.metadata, out),
                Family::Schedule(family) => schedule_samples(family, name, collection, out),
            }
            if let Some((_, end)) = self.header
                && out.len() > end
            {
                self.header = None;
            }
            if done {
                if let Some((start, _)) = self.header.take() {
                    out.truncate(start);
                }
                self.family += 1;
                self.cluster = 0;
            }
        }
        true
    }
}

impl<C: std::ops::Deref<Target = Collection>> Iterator for Chunks<C> {
    type Item = bytes::Bytes;

    /// The next chunk of text, never empty; `None` at the end.
    fn next(&mut self) -> Option<bytes::Bytes> {
        loop {
            let mut out =
                String::with_capacity(self.size.min(CHUNK_SIZE) + self.size.min(CHUNK_SIZE) / 4);
            let more = self.fill(&mut out, self.size);
            if !out.is_empty() {
                return Some(bytes::Bytes::from(out));
            }
            if !more {
                return None;
            }
        }
    }
}

/// The samples of a per-project family.
fn project_samples(family: ProjectFamily, name: &str, collection: &Collection, out: &mut String) {
    match family {
        ProjectFamily::DiscoveryUp => {
            for report in &collection.discoveries {
                discovery_sample(report, name, None, report.up, out);
            }
        }
        ProjectFamily::UnwatchedClusters => {
            for report in &collection.discoveries {
                let Some(skipped) = &report.skipped else {
                    continue;
                };
                for (reason, count) in Unwatched::ALL.iter().zip(skipped.unwatched) {
                    let reason = (REASON, reason.label());
                    discovery_sample(report, name, Some(reason), count, out);
                }
            }
        }
        ProjectFamily::InvalidClusters => {
            for report in &collection.discoveries {
                if let Some(skipped) = &report.skipped {
                    discovery_sample(report, name, None, skipped.invalid, out);
                }
            }
        }
        ProjectFamily::AccessDenied => {
            for project in &collection.access {
                let group = [(GROUP_ID, project.group_id.as_str())].into_iter();
                let statics = project.labels.iter().map(|(l, v)| (l.as_str(), v.as_str()));
                labelled_sample(name, group.chain(statics), project.denied, out);
            }
        }
    }
}

/// A cluster with its label text escaped once, since every sample of it repeats it.
struct ClusterLabels<'a> {
    report: &'a ClusterReport,
    /// `group_id="…",cluster_name="…"`
    base: &'a str,
    /// `,env="prod"` for the labels the config gives the cluster's target, or empty.
    target_labels: &'a str,
}

impl<'a> ClusterLabels<'a> {
    /// The label text of `report`: `(base, target_labels)`.
    fn label_text(report: &ClusterReport) -> (String, String) {
        let mut base = String::with_capacity(64);
        base.push_str(GROUP_ID);
        base.push_str("=\"");
        escape(&report.cluster.group_id, &mut base);
        base.push_str("\",");
        base.push_str(CLUSTER_NAME);
        base.push_str("=\"");
        escape(&report.cluster.cluster_name, &mut base);
        base.push('"');
        let mut target_labels = String::new();
        for (name, value) in report.cluster.labels.iter() {
            target_labels.push(',');
            target_labels.push_str(name);
            target_labels.push_str("=\"");
            escape(value, &mut target_labels);
            target_labels.push('"');
        }
        (base, target_labels)
    }

    fn jobs(&self) -> Option<&'a JobSummary> {
        self.report.jobs.as_ref()
    }

    /// The jobs with series of their own (none for a cluster that failed).
    fn shown(&self) -> impl Iterator<Item = &'a ExportJob> {
        self.jobs()
            .into_iter()
            .flat_map(|jobs| &jobs.shown)
            .map(|job| &**job)
    }
}

fn cluster_samples(family: ClusterFamily, cluster: &ClusterLabels, out: &mut String) {
    let name = family.name();
    let report = cluster.report;
    match family {
        ClusterFamily::Jobs => {
            for (state, count) in cluster.jobs().into_iter().flat_map(|j| j.counts.iter()) {
                cluster_sample(name, cluster, &[(STATE, state)], count, out);
            }
        }
        ClusterFamily::LastSuccessTimestamp => {
            if let Some(last) = cluster.jobs().and_then(|j| j.last_success) {
                cluster_sample(name, cluster, &[], last, out);
            }
        }
        ClusterFamily::InvalidJobs => {
            if let Some(jobs) = cluster.jobs() {
                cluster_sample(name, cluster, &[], jobs.invalid, out);
            }
        }
        ClusterFamily::Up => cluster_sample(name, cluster, &[], report.jobs.is_some(), out),
        ClusterFamily::CollectionDurationSeconds => {
            cluster_sample(name, cluster, &[], report.duration, out)
        }
        ClusterFamily::CollectionTimestamp => {
            cluster_sample(name, cluster, &[], report.collected_at, out)
        }
    }
}

fn job_samples(family: JobFamily, cluster: &ClusterLabels, job: &ExportJob, out: &mut String) {
    let name = family.name();
    // The id's text is made once per job and family rather than once per line: the state
    // family alone has five lines a job, and an id kept in 12 bytes is hex-encoded each time.
    let id = job.id.text();
    let id: &str = &id;
    match family {
        JobFamily::State => {
            for state in &JobState::KNOWN {
                let value = job.state == *state;
                job_sample(name, cluster, id, &[(STATE, state.as_str())], value, out);
            }
            if let JobState::Other(state) = &job.state {
                job_sample(name, cluster, id, &[(STATE, state)], true, out);
            }
        }
        JobFamily::DurationSeconds => {
            if let Some(duration) = job.duration() {
                job_sample(name, cluster, id, &[], duration, out);
            }
        }
        JobFamily::Components => job_sample(name, cluster, id, &[], job.components, out),
        JobFamily::CreatedTimestamp => job_sample(name, cluster, id, &[], job.created_at, out),
        JobFamily::FinishedTimestamp => {
            if let Some(finished) = job.finished_at {
                job_sample(name, cluster, id, &[], finished, out);
            }
        }
        JobFamily::Info => {
            let snapshot_id = job.snapshot_id.as_ref().map(AtlasId::text);
            let export_bucket_id = job.export_bucket_id.as_ref().map(AtlasId::text);
            let labels = [
                (SNAPSHOT_ID, snapshot_id.as_deref().unwrap_or("")),
                (EXPORT_BUCKET_ID, export_bucket_id.as_deref().unwrap_or("")),
            ];
            job_sample(name, cluster, id, &labels, true, out);
        }
        JobFamily::FailureInfo => {
            if let Some(reason) = &job.state_reason {
                let labels = [(ERROR_CODE, reason.error_code.as_str())];
                job_sample(name, cluster, id, &labels, true, out);
            }
        }
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
    id: &str,
    extra: &[(&str, &str)],
    value: impl Value,
    out: &mut String,
) {
    sample(name, cluster, Some(id), extra, value, out);
}

/// One line: `name{group_id=…,cluster_name=…[,export_job_id=…][,extra…][,target labels…]} value`.
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
    out.push_str(cluster.base);
    if let Some(id) = job_id {
        out.push(',');
        out.push_str(EXPORT_JOB_ID);
        out.push_str("=\"");
        escape(id, out);
        out.push('"');
    }
    labels(extra, out);
    out.push_str(cluster.target_labels);
    out.push_str("} ");
    value.write(out);
    out.push('\n');
}

/// A sample of a discovery listing: its project (if any), `extra`, then its static labels.
fn discovery_sample(
    report: &DiscoveryReport,
    name: &str,
    extra: Option<(&str, &str)>,
    value: impl Value,
    out: &mut String,
) {
    let group = report.group_id.as_deref().map(|id| (GROUP_ID, id));
    let static_labels = report.labels.iter().map(|(l, v)| (l.as_str(), v.as_str()));
    let all = group.into_iter().chain(extra).chain(static_labels);
    labelled_sample(name, all, value, out);
}

/// The samples of an info family, each `1`, its labels in the order the metric table gives,
/// then the target's static labels.
fn info_samples(family: InfoFamily, name: &str, metadata: &MetadataReport, out: &mut String) {
    let mut line = |pairs: &[(&str, &str)], static_labels: &[(String, String)]| {
        let statics = static_labels.iter().map(|(l, v)| (l.as_str(), v.as_str()));
        labelled_sample(name, pairs.iter().copied().chain(statics), 1u64, out);
    };
    match family {
        InfoFamily::Project => {
            for p in &metadata.projects {
                let pairs = [(GROUP_ID, p.group_id.as_str()), (GROUP_NAME, &p.name)];
                line(&pairs, &p.labels);
            }
        }
        InfoFamily::Cluster => {
            for c in &metadata.clusters {
                let d = &c.details;
                let pairs = [
                    (GROUP_ID, c.group_id.as_str()),
                    (CLUSTER_NAME, &c.cluster_name),
                    (CLUSTER_TYPE, &d.cluster_type),
                    (MONGODB_VERSION, &d.mongodb_version),
                ];
                line(&pairs, &c.labels);
            }
        }
        InfoFamily::ClusterTags => {
            if metadata.tags.is_empty() {
                return;
            }
            for c in &metadata.clusters {
                let mut pairs = vec![
                    (GROUP_ID, c.group_id.as_str()),
                    (CLUSTER_NAME, c.cluster_name.as_str()),
                ];
                for tag in metadata.tags.iter() {
                    pairs.push((tag.label.as_str(), c.details.tag(&tag.key)));
                }
                line(&pairs, &c.labels);
            }
        }
        InfoFamily::Bucket => {
            for b in &metadata.buckets {
                let bucket = &b.bucket;
                let pairs = [
                    (GROUP_ID, b.group_id.as_str()),
                    (EXPORT_BUCKET_ID, bucket.id.as_deref().unwrap_or_default()),
                    (
                        BUCKET_NAME,
                        bucket.bucket_name.as_deref().unwrap_or_default(),
                    ),
                    (
                        CLOUD_PROVIDER,
                        bucket.cloud_provider.as_deref().unwrap_or_default(),
                    ),
                ];
                line(&pairs, &b.labels);
            }
        }
    }
}

/// The samples of a schedule family: its labels in the order the metric table gives, then the
/// target's static labels.
fn schedule_samples(family: ScheduleFamily, name: &str, collection: &Collection, out: &mut String) {
    let metadata = &collection.metadata;
    let mut line = |pairs: &[(&str, &str)], static_labels: &[(String, String)], value: f64| {
        let statics = static_labels.iter().map(|(l, v)| (l.as_str(), v.as_str()));
        labelled_sample(name, pairs.iter().copied().chain(statics), value, out);
    };
    fn of<'a>(group_id: &'a str, cluster_name: &'a str) -> [(&'static str, &'a str); 2] {
        [(GROUP_ID, group_id), (CLUSTER_NAME, cluster_name)]
    }
    match family {
        ScheduleFamily::AutoExportEnabled => {
            for s in &metadata.schedules {
                let enabled = f64::from(u8::from(s.schedule.auto_export));
                line(&of(&s.group_id, &s.cluster_name), &s.labels, enabled);
            }
        }
        ScheduleFamily::AutoExportIntervalSeconds => {
            for s in metadata.schedules.iter().filter(|s| s.schedule.auto_export) {
                if let Some(interval) = s.schedule.interval_seconds() {
                    line(
                        &of(&s.group_id, &s.cluster_name),
                        &s.labels,
                        interval as f64,
                    );
                }
            }
        }
        ScheduleFamily::AutoExportInfo => {
            for s in metadata.schedules.iter().filter(|s| s.schedule.auto_export) {
                let pairs = [
                    (GROUP_ID, s.group_id.as_str()),
                    (CLUSTER_NAME, &s.cluster_name),
                    (
                        EXPORT_BUCKET_ID,
                        s.schedule.bucket_id.as_deref().unwrap_or_default(),
                    ),
                    (
                        FREQUENCY_TYPE,
                        s.schedule.frequency_type.as_deref().unwrap_or_default(),
                    ),
                ];
                line(&pairs, &s.labels, 1.0);
            }
        }
        ScheduleFamily::AutoExportLastSuccessTimestamp => {
            for e in &collection.expectations {
                if let Some(finished) = e.assessment.schedule_success {
                    line(&of(&e.group_id, &e.cluster_name), &e.labels, finished);
                }
            }
        }
        ScheduleFamily::LastSuccessSnapshotTimestamp => {
            for s in &metadata.snapshots {
                line(
                    &of(&s.group_id, &s.cluster_name),
                    &s.labels,
                    s.time.taken_at,
                );
            }
        }
        ScheduleFamily::ClusterCreatedTimestamp => {
            for c in &metadata.clusters {
                if let Some(created) = c.details.created {
                    line(&of(&c.group_id, &c.cluster_name), &c.labels, created as f64);
                }
            }
        }
        ScheduleFamily::ClusterPaused => {
            for c in &metadata.clusters {
                if let Some(paused) = c.details.paused {
                    let value = if paused { 1.0 } else { 0.0 };
                    line(&of(&c.group_id, &c.cluster_name), &c.labels, value);
                }
            }
        }
        ScheduleFamily::ExpectedIntervalSeconds => {
            for e in &collection.expectations {
                if let Some(expected) = e.assessment.expectation {
                    let pairs = [
                        (GROUP_ID, e.group_id.as_str()),
                        (CLUSTER_NAME, &e.cluster_name),
                        (SOURCE, expected.source.label()),
                    ];
                    line(&pairs, &e.labels, expected.interval_seconds);
                }
            }
        }
        ScheduleFamily::NextDueTimestamp => {
            for e in &collection.expectations {
                if let Some(due) = e.assessment.next_due {
                    let pairs = [
                        (GROUP_ID, e.group_id.as_str()),
                        (CLUSTER_NAME, &e.cluster_name),
                        (BASIS, due.basis.label()),
                    ];
                    line(&pairs, &e.labels, due.at);
                }
            }
        }
    }
}

/// One line, `name{label="value",…} value`, for the families that are not per cluster or per
/// job (those write the cluster's labels escaped once, see [`sample`]).
fn labelled_sample<'a>(
    name: &str,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    value: impl Value,
    out: &mut String,
) {
    out.push_str(name);
    out.push('{');
    for (i, (label, value)) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        escape(value, out);
        out.push('"');
    }
    out.push_str("} ");
    value.write(out);
    out.push('\n');
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

/// Values are written as Rust's `Display` writes them (the shortest text that reads back as the
/// same number, never with an exponent); whole numbers, most of them (timestamps, counts), through
/// `itoa`: a large estate's answer holds millions of numbers, and `Display` through `fmt::Write`
/// costs several times as much.
impl Value for f64 {
    fn write(self, out: &mut String) {
        /// Below this, every whole number is exact and prints as an integer.
        const EXACT: f64 = (1u64 << 53) as f64;
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if self > 0.0 { "+Inf" } else { "-Inf" });
        } else if self.fract() == 0.0 && self.abs() < EXACT {
            if self == 0.0 && self.is_sign_negative() {
                out.push('-');
            }
            out.push_str(itoa::Buffer::new().format(self as i64));
        } else {
            // Not `ryu`: on a tie between two shortest texts it rounds half to even where
            // Display rounds half up (1658206780088562.25 is `…562.2` to one, `…562.3` to the
            // other), and the text must stay the same.
            let _ = write!(out, "{self}");
        }
    }
}

impl Value for u64 {
    fn write(self, out: &mut String) {
        out.push_str(itoa::Buffer::new().format(self));
    }
}

impl Value for &u64 {
    fn write(self, out: &mut String) {
        (*self).write(out)
    }
}

impl Value for u32 {
    fn write(self, out: &mut String) {
        u64::from(self).write(out)
    }
}

impl Value for usize {
    fn write(self, out: &mut String) {
        (self as u64).write(out)
    }
}

impl Value for bool {
    fn write(self, out: &mut String) {
        out.push(if self { '1' } else { '0' });
    }
}

/// Appends the rate limiter's series as `snapshot` has them, beside the exporter's own metrics:
/// `atlas_backup_exporter_api_rate_limit`, `..._remaining` and `..._rate_limited` per endpoint
/// and project, and the counter `..._api_requests_held_total` per endpoint. A family without
/// samples is left out.
pub fn rate_limits(snapshot: &crate::atlas::RateLimitSnapshot, out: &mut String) {
    type Pick = fn(&crate::atlas::RateLimitPair) -> Option<f64>;
    let gauges: [(&str, &str, Pick); 3] = [
        (
            "atlas_backup_exporter_api_rate_limit",
            "The last RateLimit-Limit Atlas sent for the endpoint and project (group_id empty for calls outside a project); gone after 10 minutes without one.",
            |pair| pair.limit,
        ),
        (
            "atlas_backup_exporter_api_rate_limit_remaining",
            "The last RateLimit-Remaining Atlas sent for the endpoint and project (group_id empty for calls outside a project); gone after 10 minutes without one.",
            |pair| pair.remaining,
        ),
        (
            "atlas_backup_exporter_api_rate_limited",
            "1 while a 429's Retry-After window is open for the endpoint and project, 0 once it has passed; only for pairs that have been rate limited.",
            |pair| pair.limited.map(|open| f64::from(u8::from(open))),
        ),
    ];
    for (name, help, pick) in gauges {
        let mut samples = snapshot.pairs.iter().filter_map(|p| Some((p, pick(p)?)));
        let Some(first) = samples.next() else {
            continue;
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (pair, value) in std::iter::once(first).chain(samples) {
            let labels = [(ENDPOINT, pair.endpoint), (GROUP_ID, &pair.group_id)];
            labelled_sample(name, labels.into_iter(), value, out);
        }
    }
    if snapshot.held.is_empty() {
        return;
    }
    let name = "atlas_backup_exporter_api_requests_held_total";
    let _ = writeln!(
        out,
        "# HELP {name} Atlas requests held back (waiting, or not sent at all) because a 429's Retry-After window was open for their endpoint and project, or the request that goes first after it was in flight, by endpoint.\n# TYPE {name} counter"
    );
    for (endpoint, held) in &snapshot.held {
        labelled_sample(name, [(ENDPOINT, *endpoint)].into_iter(), held, out);
    }
}

#[cfg(test)]
mod tests;
