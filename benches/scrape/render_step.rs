//! The render step alone: `render::render` on a synthetic collection of 10,000 jobs, against the
//! simplest hand-written writer of the same lines (one `writeln!` per sample) and, for
//! reference, the `prometheus` crate's `GaugeVec` + `TextEncoder`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas_backup_exporter::atlas::model::{ExportJob, JobState, StateReason};
use atlas_backup_exporter::collect::{
    ClusterReport, Collection, JobSummary, Labels, StateCounts, WatchedCluster,
};
use atlas_backup_exporter::render::render;
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::figures::median;

/// How each writer did: median time to write the whole collection.
pub struct RenderFigures {
    pub jobs: usize,
    pub samples: usize,
    pub render: Duration,
    pub handwritten: Duration,
    /// `GaugeVec`s filled, gathered and encoded: what an exporter building fresh families per
    /// scrape pays.
    pub prometheus_full: Duration,
    /// Gather and encode only, the vectors already filled.
    pub prometheus_encode: Duration,
}

/// Runs the three writers; `iterations` timed runs each (fewer for the slow crate path).
pub fn run(clusters: usize, jobs_per_cluster: usize, iterations: usize) -> RenderFigures {
    let collection = synthetic(clusters, jobs_per_cluster, 1_800_000_000.0);

    let mut rendered = String::new();
    render(&collection, &mut rendered);
    let render_lines: Vec<&str> = rendered.lines().filter(|l| !l.starts_with('#')).collect();
    let mut written = String::new();
    handwritten(&collection, &mut written);
    let written_lines: Vec<&str> = written.lines().collect();
    assert!(
        render_lines == written_lines,
        "the hand-written writer must write exactly render's sample lines"
    );
    let samples = render_lines.len();

    // One buffer for both writers, cleared between runs, and the runs alternated: what is
    // compared is the writing, not the allocator's page faults or the machine's drift.
    let mut out = String::with_capacity(rendered.len() * 2);
    let (mut render_times, mut handwritten_times) = (Vec::new(), Vec::new());
    for round in 0..iterations + 2 {
        for (write, times) in [
            (render as fn(&Collection, &mut String), &mut render_times),
            (handwritten, &mut handwritten_times),
        ] {
            out.clear();
            let started = Instant::now();
            write(black_box(&collection), &mut out);
            let took = started.elapsed();
            black_box(&out);
            // The first two rounds warm the caches.
            if round >= 2 {
                times.push(took);
            }
        }
    }
    let render_time = median(&mut render_times);
    let handwritten_time = median(&mut handwritten_times);

    let slow = (iterations / 4).max(3);
    let (registry, _) = prometheus_families(&collection);
    let encoded = encode(&registry);
    let encoded_samples = encoded
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .count();
    assert_eq!(
        encoded_samples, samples,
        "the prometheus path writes as many samples"
    );
    let prometheus_full = time(slow, || {
        let (registry, _) = prometheus_families(black_box(&collection));
        black_box(encode(&registry));
    });
    let prometheus_encode = time(slow, || {
        black_box(encode(black_box(&registry)));
    });

    RenderFigures {
        jobs: clusters * jobs_per_cluster,
        samples,
        render: render_time,
        handwritten: handwritten_time,
        prometheus_full,
        prometheus_encode,
    }
}

fn time(iterations: usize, mut f: impl FnMut()) -> Duration {
    // Warm-up: caches, the allocator's free lists.
    for _ in 0..2 {
        f();
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    median(&mut times)
}

/// `clusters` clusters of one project with an `env` label, every job shown: the newest one
/// running, one in twenty failed, the rest successful; every fourth cluster sharded.
pub fn synthetic(clusters: usize, jobs_per_cluster: usize, now: f64) -> Collection {
    let labels: Labels = Arc::from([("env".to_string(), "prod".to_string())]);
    let reports = (0..clusters)
        .map(|c| {
            let shown: Vec<ExportJob> = (0..jobs_per_cluster)
                .map(|rank| {
                    let created = now - 1500.0 - 86_400.0 * rank as f64;
                    let (state, finished, reason) = if rank == 0 {
                        ("InProgress", None, None)
                    } else if rank % 20 == 7 {
                        let reason = Box::new(StateReason {
                            error_code: "EXPORT_FAILED".into(),
                            message: "Access denied to the export bucket.".into(),
                        });
                        ("Failed", Some(created + 840.0), Some(reason))
                    } else {
                        ("Successful", Some(created + 2460.0 + rank as f64), None)
                    };
                    ExportJob {
                        id: format!("{:08x}{c:06x}{rank:010x}", created as u64).into(),
                        state: state.into(),
                        created_at: created,
                        finished_at: finished,
                        snapshot_id: Some(
                            format!("{:08x}{c:06x}{rank:010x}", created as u64 - 900).into(),
                        ),
                        export_bucket_id: Some("6a794342c0eb9e7a17729455".into()),
                        components: if c % 4 == 3 { 3 } else { 0 },
                        state_reason: reason,
                    }
                })
                .collect();
            let mut counts = StateCounts::default();
            for job in &shown {
                counts.add(&job.state);
            }
            let last_success = shown
                .iter()
                .filter(|j| j.state == "Successful")
                .filter_map(|j| j.finished_at)
                .reduce(f64::max);
            ClusterReport {
                cluster: WatchedCluster {
                    group_id: "5f1a2b3c4d5e6f7a8b9c0d1e".into(),
                    cluster_name: format!("cluster-{c:04}"),
                    labels: labels.clone(),
                    job_ids: None,
                    expect: Default::default(),
                },
                duration: 0.051_234 + c as f64 / 1e4,
                collected_at: now + 0.25,
                jobs: Some(JobSummary {
                    shown: shown.into_iter().map(std::sync::Arc::new).collect(),
                    counts,
                    last_success,
                    newest_successes: Vec::new(),
                    invalid: 0,
                }),
            }
        })
        .collect();
    Collection {
        clusters: reports,
        ..Collection::default()
    }
}

/// The baseline: the same sample lines as `render`, one `writeln!` each, no escaping (the
/// synthetic labels need none).
pub fn handwritten(collection: &Collection, out: &mut String) {
    let clusters: Vec<(&ClusterReport, String)> = collection
        .clusters
        .iter()
        .map(|c| {
            let target_labels: String = c
                .cluster
                .labels
                .iter()
                .map(|(k, v)| format!(",{k}=\"{v}\""))
                .collect();
            (c, target_labels)
        })
        .collect();
    let jobs = || {
        clusters.iter().flat_map(|(c, s)| {
            c.jobs
                .iter()
                .flat_map(|j| &j.shown)
                .map(move |job| (*c, s.as_str(), job))
        })
    };
    for (c, s, j) in jobs() {
        for state in JobState::KNOWN.iter().map(JobState::as_str) {
            let _ = writeln!(
                out,
                "atlas_backup_export_job_state{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\",state=\"{}\"{}}} {}",
                c.cluster.group_id,
                c.cluster.cluster_name,
                j.id,
                state,
                s,
                u8::from(j.state == state)
            );
        }
    }
    for (c, s, j) in jobs() {
        if let Some(d) = j.duration() {
            let _ = writeln!(
                out,
                "atlas_backup_export_job_duration_seconds{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\"{}}} {}",
                c.cluster.group_id, c.cluster.cluster_name, j.id, s, d
            );
        }
    }
    for (c, s, j) in jobs() {
        let _ = writeln!(
            out,
            "atlas_backup_export_job_components{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\"{}}} {}",
            c.cluster.group_id, c.cluster.cluster_name, j.id, s, j.components
        );
    }
    for (c, s, j) in jobs() {
        let _ = writeln!(
            out,
            "atlas_backup_export_job_created_timestamp_seconds{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\"{}}} {}",
            c.cluster.group_id, c.cluster.cluster_name, j.id, s, j.created_at
        );
    }
    for (c, s, j) in jobs() {
        if let Some(f) = j.finished_at {
            let _ = writeln!(
                out,
                "atlas_backup_export_job_finished_timestamp_seconds{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\"{}}} {}",
                c.cluster.group_id, c.cluster.cluster_name, j.id, s, f
            );
        }
    }
    for (c, s, j) in jobs() {
        let _ = writeln!(
            out,
            "atlas_backup_export_job_info{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\",snapshot_id=\"{}\",export_bucket_id=\"{}\"{}}} 1",
            c.cluster.group_id,
            c.cluster.cluster_name,
            j.id,
            j.snapshot_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            j.export_bucket_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            s
        );
    }
    for (c, s, j) in jobs() {
        if let Some(r) = &j.state_reason {
            let _ = writeln!(
                out,
                "atlas_backup_export_job_failure_info{{group_id=\"{}\",cluster_name=\"{}\",export_job_id=\"{}\",error_code=\"{}\"{}}} 1",
                c.cluster.group_id, c.cluster.cluster_name, j.id, r.error_code, s
            );
        }
    }
    for (c, s) in &clusters {
        for (state, n) in c.jobs.iter().flat_map(|j| j.counts.iter()) {
            let _ = writeln!(
                out,
                "atlas_backup_export_jobs{{group_id=\"{}\",cluster_name=\"{}\",state=\"{}\"{}}} {}",
                c.cluster.group_id, c.cluster.cluster_name, state, s, n
            );
        }
    }
    for (c, s) in &clusters {
        if let Some(last) = c.jobs.as_ref().and_then(|j| j.last_success) {
            let _ = writeln!(
                out,
                "atlas_backup_export_last_success_timestamp_seconds{{group_id=\"{}\",cluster_name=\"{}\"{}}} {}",
                c.cluster.group_id, c.cluster.cluster_name, s, last
            );
        }
    }
    for (c, s) in &clusters {
        if let Some(j) = &c.jobs {
            let _ = writeln!(
                out,
                "atlas_backup_export_invalid_jobs{{group_id=\"{}\",cluster_name=\"{}\"{}}} {}",
                c.cluster.group_id, c.cluster.cluster_name, s, j.invalid
            );
        }
    }
    for (c, s) in &clusters {
        let _ = writeln!(
            out,
            "atlas_backup_export_up{{group_id=\"{}\",cluster_name=\"{}\"{}}} {}",
            c.cluster.group_id,
            c.cluster.cluster_name,
            s,
            u8::from(c.jobs.is_some())
        );
    }
    for (c, s) in &clusters {
        let _ = writeln!(
            out,
            "atlas_backup_export_collection_duration_seconds{{group_id=\"{}\",cluster_name=\"{}\"{}}} {}",
            c.cluster.group_id, c.cluster.cluster_name, s, c.duration
        );
    }
    for (c, s) in &clusters {
        let _ = writeln!(
            out,
            "atlas_backup_export_collection_timestamp_seconds{{group_id=\"{}\",cluster_name=\"{}\"{}}} {}",
            c.cluster.group_id, c.cluster.cluster_name, s, c.collected_at
        );
    }
}

/// The same samples as `prometheus` crate gauges, in a fresh registry (as an exporter that
/// builds its families per scrape would).
fn prometheus_families(collection: &Collection) -> (Registry, usize) {
    let registry = Registry::new();
    let vec = |name: &str, labels: &[&str]| {
        let mut names = vec!["group_id", "cluster_name"];
        names.extend_from_slice(labels);
        names.push("env");
        let v = GaugeVec::new(Opts::new(name, "help"), &names).expect("valid metric");
        registry
            .register(Box::new(v.clone()))
            .expect("registered once");
        v
    };
    let state = vec("atlas_backup_export_job_state", &["export_job_id", "state"]);
    let duration = vec(
        "atlas_backup_export_job_duration_seconds",
        &["export_job_id"],
    );
    let components = vec("atlas_backup_export_job_components", &["export_job_id"]);
    let created = vec(
        "atlas_backup_export_job_created_timestamp_seconds",
        &["export_job_id"],
    );
    let finished = vec(
        "atlas_backup_export_job_finished_timestamp_seconds",
        &["export_job_id"],
    );
    let info = vec(
        "atlas_backup_export_job_info",
        &["export_job_id", "snapshot_id", "export_bucket_id"],
    );
    let failure = vec(
        "atlas_backup_export_job_failure_info",
        &["export_job_id", "error_code"],
    );
    let counts = vec("atlas_backup_export_jobs", &["state"]);
    let last = vec("atlas_backup_export_last_success_timestamp_seconds", &[]);
    let invalid = vec("atlas_backup_export_invalid_jobs", &[]);
    let up = vec("atlas_backup_export_up", &[]);
    let scrape = vec("atlas_backup_export_collection_duration_seconds", &[]);
    let collected = vec("atlas_backup_export_collection_timestamp_seconds", &[]);
    let mut n = 0;
    for c in &collection.clusters {
        let env = c.cluster.labels.first().map_or("", |(_, v)| v.as_str());
        let (g, name) = (c.cluster.group_id.as_str(), c.cluster.cluster_name.as_str());
        up.with_label_values(&[g, name, env])
            .set(f64::from(u8::from(c.jobs.is_some())));
        scrape.with_label_values(&[g, name, env]).set(c.duration);
        collected
            .with_label_values(&[g, name, env])
            .set(c.collected_at);
        n += 3;
        let Some(jobs) = &c.jobs else { continue };
        for (s, count) in jobs.counts.iter() {
            counts
                .with_label_values(&[g, name, s, env])
                .set(count as f64);
        }
        if let Some(l) = jobs.last_success {
            last.with_label_values(&[g, name, env]).set(l);
        }
        invalid
            .with_label_values(&[g, name, env])
            .set(jobs.invalid as f64);
        for j in &jobs.shown {
            let id = &*j.id.text();
            for s in JobState::KNOWN.iter().map(JobState::as_str) {
                state
                    .with_label_values(&[g, name, id, s, env])
                    .set(f64::from(u8::from(j.state == s)));
            }
            if let Some(d) = j.duration() {
                duration.with_label_values(&[g, name, id, env]).set(d);
            }
            components
                .with_label_values(&[g, name, id, env])
                .set(f64::from(j.components));
            created
                .with_label_values(&[g, name, id, env])
                .set(j.created_at);
            if let Some(f) = j.finished_at {
                finished.with_label_values(&[g, name, id, env]).set(f);
            }
            let snapshot = j.snapshot_id.as_ref().map(|s| s.text());
            let bucket = j.export_bucket_id.as_ref().map(|b| b.text());
            let snapshot = snapshot.as_deref().unwrap_or("");
            let bucket = bucket.as_deref().unwrap_or("");
            info.with_label_values(&[g, name, id, snapshot, bucket, env])
                .set(1.0);
            if let Some(r) = &j.state_reason {
                failure
                    .with_label_values(&[g, name, id, &r.error_code, env])
                    .set(1.0);
            }
            n += 1;
        }
    }
    (registry, n)
}

fn encode(registry: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encoding to memory works");
    out
}
