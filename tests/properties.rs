//! Property tests: whatever YAML or JSON the parsers are given, they answer without panicking,
//! and well-formed export jobs come back exactly as they were written. The case counts are
//! modest so the suite stays fast; the `fuzz/` targets go further, outside CI.

use atlas_backup_exporter::atlas::model::{
    BodyError, ExportJob, StateReason, parse_job, parse_job_page,
};
use atlas_backup_exporter::config::{self, ConfigError};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

const ORIGIN: &str = "prop.yml";

/// Every key, none at its default: the seed of the mutations below. No `*_file` key: a
/// mutation must not make the parser read some file of the machine.
const VALID: &str = "\
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
";

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parses config text and checks that a refusal names the file, as every config error must.
fn check_config(text: &str) {
    match config::parse(text, ORIGIN) {
        Ok(_) => {}
        Err(ConfigError::Invalid { origin, .. }) => assert_eq!(origin, ORIGIN),
        Err(error) => {
            let message = error.to_string();
            assert!(message.starts_with(ORIGIN), "{message}");
        }
    }
}

/// Words the config knows, and some it does not, so random documents reach deep checks.
fn config_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "atlas",
            "base_url",
            "api_version",
            "request_timeout",
            "max_concurrent_requests",
            "max_response_size",
            "auth",
            "api_key",
            "public_key",
            "private_key",
            "service_account",
            "client_id",
            "client_secret",
            "targets",
            "group_id",
            "clusters",
            "name",
            "export_job_ids",
            "labels",
            "export_jobs",
            "max_age",
            "max_pages",
            "max_per_cluster",
            "collection",
            "timeout",
            "timeout_offset",
            "cache_ttl",
            "on_metrics",
            "discovery",
            "interval",
            "all_projects",
            "5f1a2b3c4d5e6f7a8b9c0d1e",
            "Cluster0",
            "v1",
            "v2",
            "30s",
            "0",
            "-1",
            "1.5",
            "true",
            "~",
            "http://x",
            "cloud.mongodb.com",
            "4294967296",
            "99999999999999999999d",
            "job",
            "instance",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9_.:/ -]{0,12}",
        any::<String>(),
    ]
}

/// A random YAML value built from config words: scalars, lists and mappings, nested.
fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    let leaf = prop_oneof![
        config_word().prop_map(serde_yaml::Value::String),
        any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
        any::<f64>().prop_map(|f| serde_yaml::Value::Number(f.into())),
        any::<bool>().prop_map(serde_yaml::Value::Bool),
        Just(serde_yaml::Value::Null),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_yaml::Value::Sequence),
            prop::collection::vec((config_word(), inner), 0..6).prop_map(|entries| {
                let mut map = serde_yaml::Mapping::new();
                for (key, value) in entries {
                    map.insert(serde_yaml::Value::String(key), value);
                }
                serde_yaml::Value::Mapping(map)
            }),
        ]
    })
}

/// One edit of a config's text, applied at a position picked by a fraction of its length.
#[derive(Clone, Debug)]
enum Edit {
    DeleteLine(f64),
    DuplicateLine(f64),
    SwapLines(f64, f64),
    /// Replaces what follows the first `:` of a line.
    ReplaceValue(f64, String),
    Indent(f64, usize),
    Dedent(f64),
    Insert(f64, String),
    Truncate(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Edit::DeleteLine),
        at.clone().prop_map(Edit::DuplicateLine),
        (at.clone(), at.clone()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (at.clone(), config_word()).prop_map(|(a, w)| Edit::ReplaceValue(a, w)),
        (at.clone(), 1..5usize).prop_map(|(a, n)| Edit::Indent(a, n)),
        at.clone().prop_map(Edit::Dedent),
        (
            at.clone(),
            prop_oneof![
                config_word(),
                Just(": ".to_owned()),
                Just("- ".to_owned()),
                Just("\n".to_owned()),
                Just("{".to_owned()),
                Just("[".to_owned()),
                Just("\"".to_owned()),
                Just("&a ".to_owned()),
                Just("*a".to_owned()),
                Just("!!binary ".to_owned()),
                Just("<<: ".to_owned()),
                Just("\t".to_owned()),
            ]
        )
            .prop_map(|(a, s)| Edit::Insert(a, s)),
        at.prop_map(Edit::Truncate),
    ]
}

fn pick(fraction: f64, len: usize) -> usize {
    ((fraction * len as f64) as usize).min(len.saturating_sub(1))
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match edit {
        Edit::DeleteLine(a) => {
            lines.remove(pick(*a, n));
        }
        Edit::DuplicateLine(a) => {
            let i = pick(*a, n);
            lines.insert(i, lines[i].clone());
        }
        Edit::SwapLines(a, b) => lines.swap(pick(*a, n), pick(*b, n)),
        Edit::ReplaceValue(a, word) => {
            let line = &mut lines[pick(*a, n)];
            if let Some(colon) = line.find(':') {
                line.truncate(colon + 1);
                line.push(' ');
                line.push_str(word);
            }
        }
        Edit::Indent(a, k) => lines[pick(*a, n)].insert_str(0, &" ".repeat(*k)),
        Edit::Dedent(a) => {
            let line = &mut lines[pick(*a, n)];
            *line = line.trim_start().to_owned();
        }
        Edit::Insert(a, s) => {
            let joined = lines.join("\n");
            let mut at = pick(*a, joined.len() + 1);
            while !joined.is_char_boundary(at) {
                at -= 1;
            }
            return format!("{}{s}{}", &joined[..at], &joined[at..]);
        }
        Edit::Truncate(a) => {
            let joined = lines.join("\n");
            let mut at = pick(*a, joined.len() + 1);
            while !joined.is_char_boundary(at) {
                at -= 1;
            }
            return joined[..at].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn the_seed_of_the_mutations_is_valid() {
    let config = config::parse(VALID, ORIGIN).unwrap();
    assert_eq!(config.targets.len(), 2);
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn any_text_as_config_never_panics(text in any::<String>()) {
        check_config(&text);
    }

    #[test]
    fn random_yaml_documents_never_panic(value in yaml_value()) {
        let text = serde_yaml::to_string(&value).unwrap_or_default();
        check_config(&text);
    }

    #[test]
    fn random_sections_under_known_keys_never_panic(
        sections in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "atlas", "targets", "export_jobs", "collection", "discovery",
                ]),
                yaml_value(),
            ),
            0..5,
        )
    ) {
        let mut map = serde_yaml::Mapping::new();
        for (key, value) in sections {
            map.insert(serde_yaml::Value::String(key.to_owned()), value);
        }
        let text = serde_yaml::to_string(&serde_yaml::Value::Mapping(map)).unwrap_or_default();
        check_config(&text);
    }

    #[test]
    fn mutations_of_a_valid_config_never_panic(edits in prop::collection::vec(edit(), 1..5)) {
        let mut text = VALID.to_owned();
        for edit in &edits {
            text = apply(&text, edit);
        }
        check_config(&text);
    }
}

// ---- Export jobs and pages ----

/// Any string of up to 16 characters of any kind: quotes, backslashes, controls, any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..16).prop_map(|chars| chars.into_iter().collect())
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A job with Atlas's field names, each absent, well-typed or of a random type.
fn plausible_job() -> impl Strategy<Value = Value> {
    let fields = [
        "id",
        "state",
        "createdAt",
        "finishedAt",
        "snapshotId",
        "exportBucketId",
        "components",
        "stateReason",
        "customData",
        "exportStatus",
        "prefix",
    ];
    let field = |name: &'static str| {
        let typed: BoxedStrategy<Value> = match name {
            "createdAt" | "finishedAt" => timestamp()
                .prop_map(|(text, _)| Value::String(text))
                .boxed(),
            "components" | "customData" => prop::collection::vec(json_value(), 0..3)
                .prop_map(Value::Array)
                .boxed(),
            "stateReason" => (json_value(), json_value())
                .prop_map(|(c, m)| json!({"errorCode": c, "message": m}))
                .boxed(),
            _ => text().prop_map(Value::String).boxed(),
        };
        prop::option::of(prop_oneof![typed, json_value()]).prop_map(move |v| (name, v))
    };
    fields.map(field).prop_map(|pairs| {
        let mut map = Map::new();
        for (name, value) in pairs {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        }
        Value::Object(map)
    })
}

/// An RFC 3339 timestamp (any offset, fractional seconds or not) and its Unix seconds.
fn timestamp() -> impl Strategy<Value = (String, f64)> {
    (
        0i64..4_102_444_800,
        prop_oneof![
            Just(0u32),
            0u32..1_000_000_000,
            (0u32..1000).prop_map(|ms| ms * 1_000_000)
        ],
        -12i8..=14,
        prop::sample::select(vec![0i8, 30, 45]),
    )
        .prop_map(|(seconds, nanos, hours, minutes)| {
            let minutes = if hours < 0 { -minutes } else { minutes };
            let offset = UtcOffset::from_hms(hours, minutes, 0).unwrap_or(UtcOffset::UTC);
            let at = OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
            )
            .unwrap()
            .to_offset(offset);
            let text = at.format(&Rfc3339).unwrap();
            (text, seconds as f64 + f64::from(nanos) / 1e9)
        })
}

/// A well-formed job as Atlas writes it, and the [`ExportJob`] it must parse into.
fn well_formed_job() -> impl Strategy<Value = (Value, ExportJob)> {
    (
        // ObjectIds (kept as 12 bytes), uppercase ones and any other text (kept as written).
        prop_oneof![text(), "[0-9a-f]{24}", "[0-9A-F]{24}"],
        prop_oneof![
            prop::sample::select(vec!["Queued", "InProgress", "Successful", "Failed", "Cancelled"])
                .prop_map(str::to_owned),
            text(),
        ],
        timestamp(),
        prop::option::of(timestamp()),
        prop::option::of(prop_oneof![text(), "[0-9a-f]{24}"]),
        prop::option::of("[0-9a-f]{24}"),
        prop::option::of(0usize..5),
        prop::option::of((prop::option::of(text()), prop::option::of(text()))),
        prop::option::of(json_value()),
    )
        .prop_map(
            |(id, state, created, finished, snapshot, bucket, components, reason, extra)| {
                let mut map = Map::new();
                map.insert("id".into(), json!(id));
                map.insert("state".into(), json!(state));
                map.insert("createdAt".into(), json!(created.0));
                if let Some((text, _)) = &finished {
                    map.insert("finishedAt".into(), json!(text));
                }
                if let Some(snapshot) = &snapshot {
                    map.insert("snapshotId".into(), json!(snapshot));
                }
                if let Some(bucket) = &bucket {
                    map.insert("exportBucketId".into(), json!(bucket));
                }
                if let Some(n) = components {
                    let items: Vec<Value> = (0..n)
                        .map(|i| json!({"exportId": format!("{i:024x}"), "replicaSetName": format!("shard-{i}")}))
                        .collect();
                    map.insert("components".into(), Value::Array(items));
                }
                if let Some((code, message)) = &reason {
                    let mut r = Map::new();
                    if let Some(code) = code {
                        r.insert("errorCode".into(), json!(code));
                    }
                    if let Some(message) = message {
                        r.insert("message".into(), json!(message));
                    }
                    map.insert("stateReason".into(), Value::Object(r));
                }
                // A field the exporter does not read, of any shape, changes nothing.
                if let Some(extra) = extra {
                    map.insert("customData".into(), extra);
                }
                let expected = ExportJob {
                    id: id.as_str().into(),
                    state: state.as_str().into(),
                    created_at: created.1,
                    finished_at: finished.map(|(_, at)| at),
                    snapshot_id: snapshot.map(Into::into),
                    export_bucket_id: bucket.map(Into::into),
                    components: components.unwrap_or(0) as u32,
                    state_reason: reason.map(|(code, message)| {
                        Box::new(StateReason {
                            error_code: code.unwrap_or_default(),
                            message: message.unwrap_or_default(),
                        })
                    }),
                };
                (Value::Object(map), expected)
            },
        )
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_bytes_as_a_page_or_a_job_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        per_page in 0usize..600,
    ) {
        let _ = parse_job_page(&bytes, per_page);
        let _ = parse_job(&bytes);
    }

    #[test]
    fn any_json_as_a_page_or_a_job_never_panics(value in json_value(), per_page in 0usize..600) {
        let text = value.to_string();
        let _ = parse_job(text.as_bytes());
        let page = parse_job_page(text.as_bytes(), per_page);
        // Only an object with a `results` list is a page.
        if page.is_ok() {
            prop_assert!(value.get("results").is_some_and(Value::is_array));
        }
        let wrapped = json!({"results": [value], "totalCount": 1}).to_string();
        let page = parse_job_page(wrapped.as_bytes(), 500).unwrap();
        prop_assert_eq!(page.results.len(), 1);
        prop_assert_eq!(page.total_count, Some(1));
    }

    #[test]
    fn plausible_jobs_of_random_types_never_panic_and_stand_alone(
        jobs in prop::collection::vec(plausible_job(), 0..4),
        total in prop::option::of(any::<u64>()),
    ) {
        for job in &jobs {
            if let Ok(Ok(parsed)) = parse_job(job.to_string().as_bytes()) {
                // What parses has the id, state and creation the job holds.
                prop_assert_eq!(Some(&*parsed.id.text()), job["id"].as_str());
                prop_assert_eq!(Some(parsed.state.as_str()), job["state"].as_str());
                prop_assert!(job["createdAt"].is_string());
            }
        }
        let mut page = json!({"links": [], "results": jobs});
        if let Some(total) = total {
            page["totalCount"] = json!(total);
        }
        let parsed = parse_job_page(page.to_string().as_bytes(), 500).unwrap();
        // One result per item, good or bad: a malformed job never hides another.
        prop_assert_eq!(parsed.results.len(), jobs.len());
        prop_assert_eq!(parsed.total_count, total);
        for (job, result) in jobs.iter().zip(&parsed.results) {
            let alone = parse_job(job.to_string().as_bytes()).unwrap();
            prop_assert_eq!(result, &alone);
        }
    }

    #[test]
    fn well_formed_jobs_round_trip((value, expected) in well_formed_job()) {
        let parsed = parse_job(value.to_string().as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &Ok(expected.clone()));
        // However compact the job is kept, its text comes back as Atlas wrote it.
        let job = parsed.unwrap();
        let id = job.id.to_string();
        prop_assert_eq!(Some(id.as_str()), value["id"].as_str());
        prop_assert_eq!(Some(job.state.as_str()), value["state"].as_str());
        let snapshot = job.snapshot_id.as_ref().map(ToString::to_string);
        prop_assert_eq!(snapshot.as_deref(), value.get("snapshotId").and_then(Value::as_str));
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(parse_job(pretty.as_bytes()).unwrap(), Ok(expected));
    }

    #[test]
    fn well_formed_pages_round_trip(
        jobs in prop::collection::vec(well_formed_job(), 0..6),
        total in prop::option::of(0u64..100_000),
        spare in 0usize..3,
    ) {
        let (values, expected): (Vec<Value>, Vec<ExportJob>) = jobs.into_iter().unzip();
        let mut page = json!({"links": [{"href": "http://x", "rel": "self"}], "results": values});
        if let Some(total) = total {
            page["totalCount"] = json!(total);
        }
        let body = page.to_string();
        let parsed = parse_job_page(body.as_bytes(), expected.len() + spare).unwrap();
        prop_assert_eq!(parsed.total_count, total);
        let parsed: Vec<ExportJob> = parsed.results.into_iter().map(Result::unwrap).collect();
        prop_assert_eq!(&parsed, &expected);
        // A page with more items than asked for is refused as a whole.
        if !expected.is_empty() {
            prop_assert_eq!(
                parse_job_page(body.as_bytes(), expected.len() - 1).unwrap_err(),
                BodyError::TooManyItems { got: expected.len(), asked: expected.len() - 1 }
            );
        }
    }
}
