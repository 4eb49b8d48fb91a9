//! The text the families write, on collections built by hand.

use super::*;
use crate::atlas::model::StateReason;
use crate::collect::{DiscoveryReport, Labels, Skipped, StateCounts, WatchedCluster};

fn report(jobs: Option<JobSummary>) -> ClusterReport {
    ClusterReport {
        cluster: WatchedCluster {
            group_id: "5f1a2b3c4d5e6f7a8b9c0d1e".into(),
            cluster_name: "Cluster0".into(),
            labels: Labels::from([("env".to_string(), "pr\"od".to_string())]),
            job_ids: None,
            expect: Default::default(),
        },
        duration: 0.25,
        collected_at: 1_800_000_000.5,
        jobs,
    }
}

fn counts(states: &[JobState]) -> StateCounts {
    let mut counts = StateCounts::default();
    for state in states {
        counts.add(state);
    }
    counts
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
        state_reason: Some(Box::new(StateReason {
            error_code: "EXPORT_FAILED".into(),
            message: "the message stays in the log".into(),
        })),
    };
    let collection = Collection {
        metadata: Default::default(),
        expectations: vec![],
        access: vec![],
        clusters: vec![report(Some(JobSummary {
            shown: vec![std::sync::Arc::new(job)],
            counts: counts(&[JobState::Failed]),
            last_success: None,
            newest_successes: vec![],
            invalid: 3,
        }))],
        discoveries: vec![
            DiscoveryReport {
                group_id: None,
                labels: Labels::from([]),
                up: false,
                skipped: None,
            },
            DiscoveryReport {
                group_id: Some("5f1a2b3c4d5e6f7a8b9c0d1e".into()),
                labels: Labels::from([("env".to_string(), "prod".to_string())]),
                up: true,
                skipped: Some(Skipped {
                    unwatched: [0, 2],
                    invalid: 1,
                }),
            },
        ],
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
        format!(r#"atlas_backup_export_job_created_timestamp_seconds{{{l},{j},{s}}} 1616690963"#),
        format!(r#"atlas_backup_export_job_finished_timestamp_seconds{{{l},{j},{s}}} 1616694500"#),
        format!(
            r#"atlas_backup_export_job_info{{{l},{j},snapshot_id="605cbac9b498841007af7d9f",export_bucket_id="",{s}}} 1"#
        ),
        format!(
            r#"atlas_backup_export_job_failure_info{{{l},{j},error_code="EXPORT_FAILED",{s}}} 1"#
        ),
        format!(r#"atlas_backup_export_jobs{{{l},state="Queued",{s}}} 0"#),
        format!(r#"atlas_backup_export_jobs{{{l},state="InProgress",{s}}} 0"#),
        format!(r#"atlas_backup_export_jobs{{{l},state="Successful",{s}}} 0"#),
        format!(r#"atlas_backup_export_jobs{{{l},state="Failed",{s}}} 1"#),
        format!(r#"atlas_backup_export_jobs{{{l},state="Cancelled",{s}}} 0"#),
        format!(r#"atlas_backup_export_invalid_jobs{{{l},{s}}} 3"#),
        format!(r#"atlas_backup_export_up{{{l},{s}}} 1"#),
        format!(r#"atlas_backup_export_collection_duration_seconds{{{l},{s}}} 0.25"#),
        format!(r#"atlas_backup_export_collection_timestamp_seconds{{{l},{s}}} 1800000000.5"#),
        "atlas_backup_export_discovery_up{} 0".to_string(),
        String::from(
            r#"atlas_backup_export_discovery_up{group_id="5f1a2b3c4d5e6f7a8b9c0d1e",env="prod"} 1"#,
        ),
        String::from(
            r#"atlas_backup_export_unwatched_clusters{group_id="5f1a2b3c4d5e6f7a8b9c0d1e",reason="tenant",env="prod"} 0"#,
        ),
        String::from(
            r#"atlas_backup_export_unwatched_clusters{group_id="5f1a2b3c4d5e6f7a8b9c0d1e",reason="backup_disabled",env="prod"} 2"#,
        ),
        String::from(
            r#"atlas_backup_export_invalid_clusters{group_id="5f1a2b3c4d5e6f7a8b9c0d1e",env="prod"} 1"#,
        ),
    ];
    assert_eq!(samples, expected);
    assert!(!out.contains("the message stays in the log"));
    assert!(!out.contains("last_success"), "no success, no series");
}

#[test]
fn a_failed_cluster_has_only_up_duration_and_collection_time() {
    let collection = Collection {
        clusters: vec![report(None)],
        ..Collection::default()
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
            "atlas_backup_export_collection_duration_seconds",
            "atlas_backup_export_collection_timestamp_seconds"
        ]
    );
    assert!(out.contains("atlas_backup_export_up{group_id=\"5f1a2b3c4d5e6f7a8b9c0d1e\",cluster_name=\"Cluster0\",env=\"pr\\\"od\"} 0\n"));
    assert!(!out.contains("# HELP atlas_backup_export_jobs "));
}

#[test]
fn every_family_is_written_once_in_its_place() {
    // Exhaustive: a new family does not compile until it has a place here, and the loop
    // then fails until its enum declares it in that place.
    fn place(family: Family) -> usize {
        match family {
            Family::Job(JobFamily::State) => 0,
            Family::Job(JobFamily::DurationSeconds) => 1,
            Family::Job(JobFamily::Components) => 2,
            Family::Job(JobFamily::CreatedTimestamp) => 3,
            Family::Job(JobFamily::FinishedTimestamp) => 4,
            Family::Job(JobFamily::Info) => 5,
            Family::Job(JobFamily::FailureInfo) => 6,
            Family::Cluster(ClusterFamily::Jobs) => 7,
            Family::Cluster(ClusterFamily::LastSuccessTimestamp) => 8,
            Family::Cluster(ClusterFamily::InvalidJobs) => 9,
            Family::Cluster(ClusterFamily::Up) => 10,
            Family::Cluster(ClusterFamily::CollectionDurationSeconds) => 11,
            Family::Cluster(ClusterFamily::CollectionTimestamp) => 12,
            Family::Project(ProjectFamily::DiscoveryUp) => 13,
            Family::Project(ProjectFamily::UnwatchedClusters) => 14,
            Family::Project(ProjectFamily::InvalidClusters) => 15,
            Family::Project(ProjectFamily::AccessDenied) => 16,
            Family::Info(InfoFamily::Project) => 17,
            Family::Info(InfoFamily::Cluster) => 18,
            Family::Info(InfoFamily::ClusterTags) => 19,
            Family::Info(InfoFamily::Bucket) => 20,
            Family::Schedule(ScheduleFamily::AutoExportEnabled) => 21,
            Family::Schedule(ScheduleFamily::AutoExportIntervalSeconds) => 22,
            Family::Schedule(ScheduleFamily::AutoExportInfo) => 23,
            Family::Schedule(ScheduleFamily::AutoExportLastSuccessTimestamp) => 24,
            Family::Schedule(ScheduleFamily::LastSuccessSnapshotTimestamp) => 25,
            Family::Schedule(ScheduleFamily::ClusterCreatedTimestamp) => 26,
            Family::Schedule(ScheduleFamily::ClusterPaused) => 27,
            Family::Schedule(ScheduleFamily::ExpectedIntervalSeconds) => 28,
            Family::Schedule(ScheduleFamily::NextDueTimestamp) => 29,
        }
    }
    let all: Vec<Family> = Family::all().collect();
    for (index, family) in all.iter().enumerate() {
        assert_eq!(place(*family), index, "{family:?}");
    }
    let mut names: Vec<&str> = all.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "names are unique");
}

#[test]
fn escaping_covers_backslash_quote_and_newline() {
    let mut out = String::new();
    escape("a\\b\"c\nd", &mut out);
    assert_eq!(out, "a\\\\b\\\"c\\nd");
}

#[test]
fn expectations_schedules_pauses_and_access_render_with_their_labels() {
    use crate::atlas::model::{BackupSchedule, ClusterDetails};
    use crate::collect::{
        Assessment, Basis, ClusterExpectation, ClusterInfo, Due, Expectation, ProjectAccess,
        ScheduleInfo, Source,
    };
    let g = "5f1a2b3c4d5e6f7a8b9c0d1e";
    let env = || Labels::from([("env".to_string(), "prod".to_string())]);
    let expected = |name: &str, assessment| ClusterExpectation {
        group_id: g.into(),
        cluster_name: name.into(),
        labels: env(),
        assessment,
    };
    let mut collection = Collection::default();
    collection.metadata.schedules.push(ScheduleInfo {
        group_id: g.into(),
        cluster_name: "Monthly".into(),
        labels: env(),
        schedule: BackupSchedule {
            auto_export: true,
            bucket_id: Some("32b6e34b3d91647abb20e7b8".into()),
            frequency_type: Some("monthly".into()),
        },
    });
    collection.metadata.clusters.push(ClusterInfo {
        group_id: g.into(),
        cluster_name: "Monthly".into(),
        labels: env(),
        details: ClusterDetails {
            cluster_type: "REPLICASET".into(),
            mongodb_version: "8.0.12".into(),
            state_name: "UPDATING".into(),
            paused: Some(true),
            ..ClusterDetails::default()
        },
    });
    collection.expectations = vec![
        expected(
            "Monthly",
            Assessment {
                expectation: Some(Expectation {
                    interval_seconds: 2_678_400.0,
                    source: Source::AutoExport,
                }),
                next_due: Some(Due {
                    at: 1_802_678_400.0,
                    basis: Basis::AnyBucket,
                }),
                counted: None,
                schedule_success: Some(1_799_000_000.0),
            },
        ),
        expected("Manual", Assessment::default()),
        expected(
            "Tooling",
            Assessment {
                expectation: Some(Expectation {
                    interval_seconds: 86_400.0,
                    source: Source::Config,
                }),
                next_due: Some(Due {
                    at: 1_800_086_400.0,
                    basis: Basis::Created,
                }),
                ..Assessment::default()
            },
        ),
    ];
    collection.access = vec![ProjectAccess {
        group_id: g.into(),
        labels: env(),
        denied: true,
    }];
    let mut out = String::new();
    render(&collection, &mut out);
    let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    let m = format!(r#"group_id="{g}",cluster_name="Monthly""#);
    let t = format!(r#"group_id="{g}",cluster_name="Tooling""#);
    let e = r#"env="prod""#;
    let lines = [
        format!(r#"atlas_backup_export_access_denied{{group_id="{g}",{e}}} 1"#),
        format!(
            r#"atlas_backup_export_cluster_info{{{m},cluster_type="REPLICASET",mongodb_version="8.0.12",{e}}} 1"#
        ),
        format!(r#"atlas_backup_export_auto_export_enabled{{{m},{e}}} 1"#),
        format!(r#"atlas_backup_export_auto_export_interval_seconds{{{m},{e}}} 2678400"#),
        format!(
            r#"atlas_backup_export_auto_export_info{{{m},export_bucket_id="32b6e34b3d91647abb20e7b8",frequency_type="monthly",{e}}} 1"#
        ),
        format!(
            r#"atlas_backup_export_auto_export_last_success_timestamp_seconds{{{m},{e}}} 1799000000"#
        ),
        format!(r#"atlas_backup_export_cluster_paused{{{m},{e}}} 1"#),
        format!(
            r#"atlas_backup_export_expected_interval_seconds{{{m},source="auto_export",{e}}} 2678400"#
        ),
        format!(
            r#"atlas_backup_export_expected_interval_seconds{{{t},source="config",{e}}} 86400"#
        ),
        format!(
            r#"atlas_backup_export_next_due_timestamp_seconds{{{m},basis="any_bucket",{e}}} 1802678400"#
        ),
        format!(
            r#"atlas_backup_export_next_due_timestamp_seconds{{{t},basis="created",{e}}} 1800086400"#
        ),
    ];
    assert_eq!(samples, lines);
    assert!(!out.contains("Manual"), "no expectation, no series");
}

/// An estate of `clusters` clusters: some failed (no jobs), some with jobs but none shown, the
/// rest with a few jobs each, one of them in a state the exporter does not know.
fn estate(clusters: usize) -> Collection {
    let clusters = (0..clusters)
        .map(|i| {
            let mut r = report(None);
            r.cluster.cluster_name = format!("Cluster{i}");
            r.jobs = (i % 5 != 0).then(|| JobSummary {
                shown: (0..(i % 3) * 2)
                    .map(|j| {
                        std::sync::Arc::new(ExportJob {
                            id: format!("{i:012x}{j:012x}").into(),
                            state: if j == 1 { "Paused" } else { "Successful" }.into(),
                            created_at: 1_700_000_000.0 + j as f64,
                            finished_at: (j != 0).then_some(1_700_000_600.0),
                            snapshot_id: Some(format!("{j:024x}").into()),
                            export_bucket_id: Some("6a7943000000000000000000".into()),
                            components: 1,
                            state_reason: None,
                        })
                    })
                    .collect(),
                counts: {
                    let mut counts = StateCounts::default();
                    for _ in 0..(i % 3) * 2 {
                        counts.add(&JobState::Successful);
                    }
                    counts
                },
                last_success: Some(1_700_000_600.0),
                newest_successes: vec![],
                invalid: 0,
            });
            r
        })
        .collect();
    Collection {
        clusters,
        ..Collection::default()
    }
}

#[test]
fn the_chunks_joined_are_the_rendered_text_wherever_they_are_cut() {
    for clusters in [0, 1, 4, 60] {
        let collection = estate(clusters);
        let mut whole = String::new();
        render(&collection, &mut whole);
        for size in [1, 2, 7, 64, 200, 1000, 4096, CHUNK_SIZE] {
            let chunks: Vec<bytes::Bytes> = Chunks::with_size(&collection, size).collect();
            assert!(chunks.iter().all(|c| !c.is_empty()), "an empty chunk");
            let joined: Vec<u8> = chunks.concat();
            assert_eq!(
                String::from_utf8(joined).unwrap(),
                whole,
                "{clusters} clusters in chunks of {size}"
            );
        }
    }
}

#[test]
fn a_family_header_without_samples_never_reaches_a_chunk() {
    // Every cluster failed: the job families have no samples, so none of their headers shows,
    // however finely the text is cut.
    let mut collection = estate(30);
    for cluster in &mut collection.clusters {
        cluster.jobs = None;
    }
    for size in [1, 5, 50] {
        let text: Vec<u8> = Chunks::with_size(&collection, size)
            .collect::<Vec<_>>()
            .concat();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains("atlas_backup_export_job_state"), "{text}");
        assert_eq!(text.matches("atlas_backup_export_up{").count(), 30);
        assert_eq!(text.matches("# HELP atlas_backup_export_up ").count(), 1);
    }
}

#[test]
fn a_large_text_comes_in_chunks_of_about_the_chunk_size() {
    let collection = estate(3000);
    let chunks: Vec<bytes::Bytes> = Chunks::new(&collection).collect();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    assert!(total > 4 * CHUNK_SIZE, "only {total} bytes");
    assert!(
        chunks.len() >= total / (2 * CHUNK_SIZE),
        "{} chunks",
        chunks.len()
    );
    // A chunk ends after the cluster that passes the size: never much past it.
    let largest = chunks.iter().map(|c| c.len()).max().unwrap();
    assert!(
        largest < CHUNK_SIZE + 16 * 1024,
        "a chunk of {largest} bytes"
    );
}

#[test]
fn rate_limits_are_written_as_the_prometheus_crate_wrote_them() {
    use crate::atlas::{RateLimitPair, RateLimitSnapshot};
    let pair = |endpoint, group_id: &str, limit, remaining, limited| RateLimitPair {
        endpoint,
        group_id: group_id.into(),
        limit,
        remaining,
        limited,
    };
    let snapshot = RateLimitSnapshot {
        held: vec![("get_export_job", 0), ("list_export_jobs", 3)],
        pairs: vec![
            pair(
                "list_export_jobs",
                "5f1a",
                Some(100.0),
                Some(7.0),
                Some(true),
            ),
            pair("list_export_jobs", "6f1a", None, None, Some(false)),
            pair("oauth_token", "", None, Some(9.5), None),
        ],
    };
    let mut out = String::new();
    rate_limits(&snapshot, &mut out);
    let help = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("# HELP {name} ")))
            .map(str::to_owned)
    };
    assert!(
        help("atlas_backup_exporter_api_rate_limit").is_some(),
        "{out}"
    );
    let samples: Vec<_> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            r#"atlas_backup_exporter_api_rate_limit{endpoint="list_export_jobs",group_id="5f1a"} 100"#,
            r#"atlas_backup_exporter_api_rate_limit_remaining{endpoint="list_export_jobs",group_id="5f1a"} 7"#,
            r#"atlas_backup_exporter_api_rate_limit_remaining{endpoint="oauth_token",group_id=""} 9.5"#,
            r#"atlas_backup_exporter_api_rate_limited{endpoint="list_export_jobs",group_id="5f1a"} 1"#,
            r#"atlas_backup_exporter_api_rate_limited{endpoint="list_export_jobs",group_id="6f1a"} 0"#,
            r#"atlas_backup_exporter_api_requests_held_total{endpoint="get_export_job"} 0"#,
            r#"atlas_backup_exporter_api_requests_held_total{endpoint="list_export_jobs"} 3"#,
        ]
    );
    let types: Vec<_> = out.lines().filter(|l| l.starts_with("# TYPE")).collect();
    assert_eq!(
        types,
        [
            "# TYPE atlas_backup_exporter_api_rate_limit gauge",
            "# TYPE atlas_backup_exporter_api_rate_limit_remaining gauge",
            "# TYPE atlas_backup_exporter_api_rate_limited gauge",
            "# TYPE atlas_backup_exporter_api_requests_held_total counter",
        ]
    );
    // A family without samples has no header either.
    let mut quiet = String::new();
    let no_budget = RateLimitSnapshot {
        held: snapshot.held.clone(),
        pairs: vec![pair("get_cluster", "5f1a", None, None, Some(false))],
    };
    rate_limits(&no_budget, &mut quiet);
    assert!(!quiet.contains("api_rate_limit "), "{quiet}");
    assert!(!quiet.contains("api_rate_limit_remaining"), "{quiet}");
    assert!(quiet.contains("# TYPE atlas_backup_exporter_api_rate_limited gauge"));
}

#[test]
fn numbers_are_written_exactly_as_display_writes_them() {
    let written = |value: f64| {
        let mut out = String::new();
        value.write(&mut out);
        out
    };
    let mut values = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        0.1,
        1e-5,
        1e-7,
        123.456,
        1_616_690_963.0,
        1_616_690_963.25,
        1_658_206_780_088_562.2,
        1_800_000_000.123_456_7,
        (1u64 << 53) as f64,
        (1u64 << 53) as f64 - 1.0,
        1e16,
        1e21,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
    ];
    // Bit patterns from a fixed xorshift, and timestamps with fractions, as Atlas's are.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        values.push(f64::from_bits(state));
        values.push(1.6e9 + (state % 400_000_000) as f64 + (state >> 40) as f64 / 1e6);
        values.push((state % 100_000) as f64 / 1e3);
    }
    for value in values.into_iter().filter(|v| v.is_finite()) {
        assert_eq!(written(value), value.to_string(), "{value:e}");
    }
    assert_eq!(written(f64::NAN), "NaN");
    assert_eq!(written(f64::INFINITY), "+Inf");
    assert_eq!(written(f64::NEG_INFINITY), "-Inf");
    for n in [0, 1, 9, 10, 12_345, u64::MAX] {
        let mut out = String::new();
        n.write(&mut out);
        assert_eq!(out, n.to_string());
    }
}

#[test]
fn unknown_states_and_ids_that_are_not_object_ids_render_as_atlas_wrote_them() {
    let job = |id: &str, state: &str| {
        std::sync::Arc::new(ExportJob {
            id: id.into(),
            state: state.into(),
            created_at: 1_700_000_000.5,
            finished_at: None,
            snapshot_id: Some("605CBAC9B498841007AF7D9F".into()),
            export_bucket_id: Some("bucket \"b\"".into()),
            components: 0,
            state_reason: None,
        })
    };
    let shown = vec![
        job("605CCBA3C1C7613F423E1585", "Paused"),
        job("job\\1\n", "Queued"),
    ];
    let states: Vec<JobState> = shown.iter().map(|j| j.state.clone()).collect();
    let collection = Collection {
        clusters: vec![report(Some(JobSummary {
            shown,
            counts: counts(&states),
            last_success: None,
            newest_successes: vec![],
            invalid: 0,
        }))],
        ..Collection::default()
    };
    let mut out = String::new();
    render(&collection, &mut out);
    let samples: Vec<&str> = out
        .lines()
        .filter(|l| {
            ["job_state{", "jobs{", "job_info{"]
                .iter()
                .any(|f| l.starts_with(&format!("atlas_backup_export_{f}")))
        })
        .collect();
    let l = r#"group_id="5f1a2b3c4d5e6f7a8b9c0d1e",cluster_name="Cluster0""#;
    let s = r#"env="pr\"od""#;
    let mut expected = Vec::new();
    for (j, state) in [
        (r#"export_job_id="605CCBA3C1C7613F423E1585""#, "Paused"),
        (r#"export_job_id="job\\1\n""#, "Queued"),
    ] {
        for known in ["Queued", "InProgress", "Successful", "Failed", "Cancelled"] {
            let value = u8::from(known == state);
            expected.push(format!(
                r#"atlas_backup_export_job_state{{{l},{j},state="{known}",{s}}} {value}"#
            ));
        }
        if state == "Paused" {
            expected.push(format!(
                r#"atlas_backup_export_job_state{{{l},{j},state="Paused",{s}}} 1"#
            ));
        }
    }
    for (j, _) in [
        (r#"export_job_id="605CCBA3C1C7613F423E1585""#, ()),
        (r#"export_job_id="job\\1\n""#, ()),
    ] {
        expected.push(format!(
            r#"atlas_backup_export_job_info{{{l},{j},snapshot_id="605CBAC9B498841007AF7D9F",export_bucket_id="bucket \"b\"",{s}}} 1"#
        ));
    }
    for (state, n) in [
        ("Queued", 1),
        ("InProgress", 0),
        ("Successful", 0),
        ("Failed", 0),
        ("Cancelled", 0),
        ("Paused", 1),
    ] {
        expected.push(format!(
            r#"atlas_backup_export_jobs{{{l},state="{state}",{s}}} {n}"#
        ));
    }
    assert_eq!(samples, expected);
}
