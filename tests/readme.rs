//! The README and the pages under `docs/` are what users copy: their commands run as written, the
//! flag table matches `--help`, the config reference loads as it is, their PromQL parses in a real
//! Prometheus, and every relative link and anchor leads somewhere.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_atlas::{DEMO_MOVING_JOB_ID, seed_examples};

use crate::support::{self, Scrape};
use crate::tools;

const README: &str = include_str!("../README.md");
const CONFIGURATION: &str = include_str!("../docs/configuration.md");

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown page a user reads: the README, `docs/*.md`, CONTRIBUTING.md, CHANGELOG.md and
/// BENCHMARKS.md, as (path from the root, text).
fn pages() -> Vec<(String, String)> {
    let mut names: Vec<String> = [
        "README.md",
        "CONTRIBUTING.md",
        "CHANGELOG.md",
        "BENCHMARKS.md",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|entry| entry.expect("a docs/ entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root().join(&name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect()
}

/// The text of the section of `text` (the file `file`) whose `## ` heading is `title`, up to the
/// next `## ` heading.
fn section<'a>(text: &'a str, file: &str, title: &str) -> &'a str {
    let heading = format!("\n## {title}\n");
    let start = text
        .find(&heading)
        .unwrap_or_else(|| panic!("{file} has no section `## {title}`"))
        + heading.len();
    let rest = &text[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The contents of every fenced block of `language` (`sh`, `yaml`, ...) of a text, in order.
fn blocks<'a>(text: &'a str, language: &str) -> Vec<&'a str> {
    let fence = format!("```{language}\n");
    text.split(fence.as_str())
        .skip(1)
        .map(|block| &block[..block.find("```").expect("a closed block")])
        .collect()
}

/// The contents of every ```sh block of a section, in order.
fn sh_blocks(section: &str) -> Vec<&str> {
    blocks(section, "sh")
}

/// Every expression of every ```promql block of `text`: comment lines dropped, blank lines
/// separating them.
fn promql_expressions(text: &str) -> Vec<String> {
    let mut expressions = Vec::new();
    for block in blocks(text, "promql") {
        let mut current = String::new();
        for line in block.lines().chain(std::iter::once("")) {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                if !current.trim().is_empty() {
                    expressions.push(std::mem::take(&mut current));
                }
                current.clear();
            } else if !trimmed.starts_with('#') {
                current.push_str(line);
                current.push('\n');
            }
        }
    }
    expressions
}

#[test]
fn the_readme_is_an_operators_page_of_at_most_400_lines() {
    let lines = README.lines().count();
    assert!(lines <= 400, "README.md has {lines} lines");
    // The order a newcomer follows: install, credentials, config, check, wiring, then reference.
    let order = [
        "## Try it, without an Atlas account",
        "## Install",
        "## Credentials and role",
        "## A minimal config",
        "## Check it against Atlas, then run it",
        "## Wire up Prometheus, Alertmanager and Grafana",
        "## Metrics at a glance",
        "## Alerts at a glance",
        "## Run the tests",
        "## Documentation",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|h| {
            README
                .find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("README.md lacks `{h}`"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "README sections out of order: {order:?}"
    );
    // The test command stays, exactly as CI runs it.
    assert_eq!(
        sh_blocks(section(README, "README.md", "Run the tests")),
        ["cargo test\n"]
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "cargo test"), "{ci}");
}

#[test]
fn the_docs_promql_parses_in_promtool() {
    let mut expressions = Vec::new();
    for (file, text) in pages() {
        expressions.extend(
            promql_expressions(&text)
                .into_iter()
                .map(|e| (file.clone(), e)),
        );
    }
    for file in ["docs/metrics.md", "docs/scaling.md", "CHANGELOG.md"] {
        assert!(
            expressions.iter().any(|(f, _)| f == file),
            "no PromQL found in {file}"
        );
    }
    assert!(expressions.len() >= 15, "found only {expressions:?}");
    let Some(promtool) = tools::tool("promtool") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: docs\n    rules:\n");
    for (i, (file, expr)) in expressions.iter().enumerate() {
        rules.push_str(&format!(
            "      # {file}\n      - record: docs:expression_{i}\n        expr: |\n"
        ));
        for line in expr.lines() {
            rules.push_str(&format!("          {line}\n"));
        }
    }
    let dir = support::TempDir::new("docs-promql");
    let file = dir.write("docs-rules.yml", &rules);
    let output = support::Spawn::program(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output();
    assert!(
        output.success(),
        "promtool rejects the docs' PromQL:\n{}{}\n{rules}",
        output.stdout,
        output.stderr
    );
}

// ------------------------------------------------------------------------------------------------
// The config reference: copyable as it is.

/// The reference's YAML, exactly as the page shows it.
fn config_reference() -> &'static str {
    let reference = section(CONFIGURATION, "docs/configuration.md", "The full reference");
    let yaml = blocks(reference, "yaml");
    assert_eq!(yaml.len(), 1, "one yaml block in the reference");
    yaml[0]
}

#[test]
fn the_config_reference_loads_as_it_is_with_its_defaults() {
    let yaml = config_reference();
    let config = atlas_backup_exporter::config::parse(yaml, "docs/configuration.md")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    // One kind of credential, the other commented out.
    let auth = config
        .atlas
        .auth
        .as_ref()
        .expect("the reference names a credential");
    assert_eq!(auth.kind(), "service_account");
    let groups: Vec<&str> = config.targets.iter().map(|t| t.group_id.as_str()).collect();
    assert_eq!(
        groups,
        ["5f1a2b3c4d5e6f7a8b9c0d1e", "6a2b3c4d5e6f7a8b9c0d1e2f"]
    );
    assert!(
        config.targets[0].clusters.is_none(),
        "the first is discovered"
    );
    let clusters = config.targets[1]
        .clusters
        .as_ref()
        .expect("listed clusters");
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Cluster0", "Reporting", "Cluster1"]);
    assert_eq!(
        clusters[2].export_job_ids.as_deref(),
        Some(&["605ccba3c1c7613f423e1585".to_owned()][..])
    );

    // "Every key with its default": the reference's values are those of a file that sets nothing.
    let minimal = "targets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n";
    let defaults = atlas_backup_exporter::config::parse(minimal, "minimal").unwrap();
    let (a, d) = (&config.atlas, &defaults.atlas);
    assert_eq!(a.base_url, d.base_url);
    assert_eq!(a.api_version, d.api_version);
    assert_eq!(a.request_timeout, d.request_timeout);
    assert_eq!(a.max_concurrent_requests, d.max_concurrent_requests);
    assert_eq!(a.max_response_size, d.max_response_size);
    assert_eq!(
        format!("{:?}", config.export_jobs),
        format!("{:?}", defaults.export_jobs)
    );
    // The reference writes `timeout`, so it is "set" there; its value is the default's.
    let (c, d) = (&config.collection, &defaults.collection);
    assert_eq!(
        (
            c.timeout,
            c.interval,
            c.timeout_offset,
            c.cache_ttl,
            c.on_metrics
        ),
        (
            d.timeout,
            d.interval,
            d.timeout_offset,
            d.cache_ttl,
            d.on_metrics
        )
    );
    assert!(c.timeout_is_set && !d.timeout_is_set);
    assert_eq!(
        format!("{:?}", config.discovery),
        format!("{:?}", defaults.discovery)
    );
    assert_eq!(
        format!("{:?}", config.metadata),
        format!("{:?}", defaults.metadata)
    );
}

/// The keys the parser allows where `yaml` puts `zzz_unknown`, read from its error message.
fn allowed_keys(yaml: &str) -> BTreeSet<String> {
    let error = atlas_backup_exporter::config::parse(yaml, "probe")
        .err()
        .unwrap_or_else(|| panic!("the parser took an unknown key:\n{yaml}"))
        .to_string();
    let list = error
        .split("(allowed keys: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no list of allowed keys in: {error}"));
    list.split(", ").map(str::to_owned).collect()
}

/// Every key the parser allows appears in the reference, set (uncommented) unless it is one of the
/// alternatives a real file cannot set together (the API key beside the service account, `x_file`
/// beside `x`). A key the parser learns must be added here, uncommented.
#[test]
fn the_config_reference_shows_every_key_the_parser_allows() {
    let yaml = config_reference();
    let key = |text: &str| -> Option<String> {
        let text = text.trim_start().trim_start_matches("- ").trim_start();
        let (name, _) = text.split_once(':')?;
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| name.to_owned())
    };
    let mut set = BTreeSet::new();
    let mut mentioned = BTreeSet::new();
    for line in yaml.lines() {
        let mut parts = line.split('#');
        if let Some(k) = parts.next().and_then(key) {
            set.insert(k.clone());
            mentioned.insert(k);
        }
        // Commented keys: `# key: value` and `# or key_file: /path`, also after a commented key.
        for comment in parts {
            if let Some(k) = key(comment.trim_start().trim_start_matches("or ")) {
                mentioned.insert(k);
            }
        }
    }
    let group = "group_id: 5f1a2b3c4d5e6f7a8b9c0d1e";
    let probes = [
        "zzz_unknown: 1\n".to_owned(),
        "atlas:\n  zzz_unknown: 1\n".to_owned(),
        "atlas:\n  auth:\n    zzz_unknown: 1\n".to_owned(),
        "atlas:\n  auth:\n    service_account:\n      zzz_unknown: 1\n".to_owned(),
        "atlas:\n  auth:\n    api_key:\n      zzz_unknown: 1\n".to_owned(),
        format!("targets:\n  - {group}\n    zzz_unknown: 1\n"),
        format!("targets:\n  - {group}\n    clusters:\n      - name: a\n        zzz_unknown: 1\n"),
        "export_jobs:\n  zzz_unknown: 1\n".to_owned(),
        "discovery:\n  zzz_unknown: 1\n".to_owned(),
        "collection:\n  zzz_unknown: 1\n".to_owned(),
        "metadata:\n  zzz_unknown: 1\n".to_owned(),
    ];
    let alternatives = [
        "api_key",
        "public_key",
        "private_key",
        "public_key_file",
        "private_key_file",
        "client_id_file",
        "client_secret_file",
    ];
    let mut parser_keys = BTreeSet::new();
    for probe in &probes {
        parser_keys.extend(allowed_keys(probe));
    }
    assert!(parser_keys.len() > 30, "{parser_keys:?}");
    let missing: Vec<&String> = parser_keys.difference(&mentioned).collect();
    assert!(
        missing.is_empty(),
        "keys missing from the reference: {missing:?}"
    );
    let commented: Vec<&String> = parser_keys
        .iter()
        .filter(|k| !set.contains(*k) && !alternatives.contains(&k.as_str()))
        .collect();
    assert!(
        commented.is_empty(),
        "keys the parser takes but the reference leaves commented: {commented:?}"
    );
}

/// The reserved label names the page lists include every name the exporter refuses.
#[test]
fn the_config_page_lists_every_reserved_label() {
    let rules = section(CONFIGURATION, "docs/configuration.md", "Rules");
    for label in atlas_backup_exporter::labels::reserved() {
        assert!(
            rules.contains(&format!("`{label}`")),
            "`{label}` is reserved but not listed in docs/configuration.md's Rules"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The first minutes of a newcomer: the README's first commands, run as it writes them.

/// The example binary that `cargo run --example NAME` runs, which `cargo test` builds beside the
/// test binary's directory.
fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: `cargo test` builds the examples; run the suite with `cargo test`",
                path.display()
            )
        });
    // `cargo test --test integration` alone does not rebuild examples: refuse to test an old one.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join("examples").join(format!("{name}.rs")),
        root.join("src"),
        root.join("fake_atlas").join("src"),
    ];
    if let Some(newer) = sources.iter().find_map(|source| newer_than(source, built)) {
        panic!(
            "{} is older than {}: run `cargo test` (which rebuilds the examples), not only \
             `cargo test --test integration`",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A file at or under `path` changed after `time`, if there is one.
fn newer_than(path: &Path, time: std::time::SystemTime) -> Option<PathBuf> {
    let metadata = std::fs::metadata(path).ok()?;
    if metadata.is_dir() {
        return std::fs::read_dir(path)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|entry| newer_than(&entry.path(), time));
    }
    (metadata.modified().ok()? > time).then(|| path.to_path_buf())
}

/// Waits for the line of `lines` that holds `marker`, at most `within`.
fn wait_for_line(lines: &mpsc::Receiver<String>, marker: &str, within: Duration) -> String {
    let until = Instant::now() + within;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with `{marker}` within {within:?}: {e}"),
        }
    }
}

/// Runs a shell command line as a user pastes it, in `dir`, with the exporter's binary on `PATH`.
fn shell(line: &str, dir: &Path) -> support::Exited {
    support::Spawn::program(Path::new("sh"))
        .args(["-ec", line])
        .current_dir(dir)
        .exporter_on_path()
        .output()
}

/// `cargo run --example demo`, as the README's first section writes it, three times in a row:
/// it prints its address, serves the demo's jobs, the README's `curl … | grep` line prints them,
/// and Ctrl-C (SIGINT) stops it with exit code 0. A start-up race shows itself in three runs.
#[test]
fn the_readme_demo_runs_as_written_three_times_in_a_row() {
    let blocks = sh_blocks(section(
        README,
        "README.md",
        "Try it, without an Atlas account",
    ));
    assert_eq!(
        blocks.len(),
        2,
        "the demo command and the curl line: {blocks:?}"
    );
    assert_eq!(blocks[0].trim(), "cargo run --example demo");
    let curl_line = blocks[1].trim();
    assert!(
        curl_line.starts_with("curl ") && curl_line.contains("localhost:9947"),
        "the README's curl line scrapes the demo's default address: {curl_line}"
    );
    let demo = example_binary("demo");
    // Missing curl fails under CI=true (`.ci/run` installs it) and skips loudly elsewhere.
    let curl = tools::tool("curl");
    for run in 1..=3 {
        run_the_demo_once(&demo, curl_line, curl.is_some(), run);
    }
}

fn run_the_demo_once(demo: &Path, curl_line: &str, with_curl: bool, run: usize) {
    // The README documents another address as the demo's argument; port 0 lets the system pick.
    let mut child = support::Spawn::program(demo)
        .arg("127.0.0.1:0")
        .start_with_stdout(true);
    let (sender, lines) = mpsc::channel();
    let stdout = child.stdout();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });

    let metrics_line = wait_for_line(&lines, "Metrics:", Duration::from_secs(60));
    let metrics_url = metrics_line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("run {run}: no URL in {metrics_line:?}"))
        .to_owned();
    let address = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(async {
        let response = reqwest::get(&metrics_url).await.unwrap();
        assert_eq!(response.status(), 200, "run {run}");
        response.text().await.unwrap()
    });
    let scrape = Scrape::parse(&body);
    assert_series_counts_as_documented(&body, run);
    let state = |job: &str, state: &str| {
        scrape.value(
            "atlas_backup_export_job_state",
            &[("export_job_id", job), ("state", state)],
        )
    };
    let (replica_set, sharded) = seed_examples();
    let id = |job: &serde_json::Value| job["id"].as_str().unwrap().to_owned();
    for cluster in ["Cluster0", "Cluster1", "Cluster2", "Cluster3", "Reports"] {
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)]),
            Some(1.0),
            "run {run}: {cluster} is up\n{body}"
        );
    }
    // The overdue monthly cluster and the one whose expectation the demo's config declares
    // have one; the cluster exported by hand long ago, like the sharded one without
    // auto-export, is expected nothing and pages nobody.
    let expected = "atlas_backup_export_expected_interval_seconds";
    let of = |cluster| [("cluster_name", cluster)];
    let source = |cluster| {
        let found = scrape.find(expected, &of(cluster));
        found.first().map(|s| (s.labels["source"].clone(), s.value))
    };
    assert_eq!(
        source("Cluster2"),
        Some(("auto_export".into(), 2_678_400.0)),
        "run {run}"
    );
    assert_eq!(
        source("Reports"),
        Some(("config".into(), 86_400.0)),
        "run {run}"
    );
    assert_eq!(source("Cluster3"), None, "run {run}");
    assert_eq!(source("Cluster1"), None, "run {run}");
    let due = "atlas_backup_export_next_due_timestamp_seconds";
    assert!(scrape.find(due, &of("Cluster3")).is_empty(), "run {run}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let overdue = scrape.value(
        due,
        &[("cluster_name", "Cluster2"), ("basis", "schedule_bucket")],
    );
    assert!(
        overdue.is_some_and(|at| at < now - 8.0 * 86_400.0),
        "run {run}: {overdue:?}"
    );
    let on_time = scrape.value(due, &[("cluster_name", "Reports"), ("basis", "any_bucket")]);
    assert!(on_time.is_some_and(|at| at > now), "run {run}: {on_time:?}");
    // The cluster with Cloud Backup off is counted, not watched.
    assert!(
        scrape
            .find("atlas_backup_export_up", &[("cluster_name", "Archive")])
            .is_empty(),
        "run {run}"
    );
    let unwatched = [("reason", "backup_disabled")];
    let unwatched = scrape.value("atlas_backup_export_unwatched_clusters", &unwatched);
    assert_eq!(unwatched, Some(1.0), "run {run}");
    // The seed page's two jobs, re-dated, and the job that starts Queued.
    assert_eq!(
        state(&id(&replica_set), "Successful"),
        Some(1.0),
        "run {run}"
    );
    assert_eq!(state(&id(&sharded), "Successful"), Some(1.0), "run {run}");
    assert_eq!(state(DEMO_MOVING_JOB_ID, "Queued"), Some(1.0), "run {run}");
    assert_eq!(
        state(DEMO_MOVING_JOB_ID, "Successful"),
        Some(0.0),
        "run {run}"
    );
    // The sharded job's components: one per shard, as the seed page lists them.
    let shards = sharded["components"].as_array().unwrap().len() as f64;
    assert_eq!(shards, 2.0);
    assert_eq!(
        scrape.value(
            "atlas_backup_export_job_components",
            &[("export_job_id", &id(&sharded))]
        ),
        Some(shards),
        "run {run}"
    );
    // The one failed job, with its error code.
    let failed = scrape.find(
        "atlas_backup_export_job_state",
        &[("state", "Failed"), ("cluster_name", "Cluster0")],
    );
    let failed: Vec<&str> = failed
        .iter()
        .filter(|s| s.value == 1.0)
        .map(|s| s.labels["export_job_id"].as_str())
        .collect();
    assert_eq!(failed.len(), 1, "run {run}: one Failed job: {failed:?}");
    assert_eq!(
        scrape.value(
            "atlas_backup_export_job_failure_info",
            &[
                ("export_job_id", failed[0]),
                ("error_code", "EXPORT_FAILED")
            ]
        ),
        Some(1.0),
        "run {run}"
    );

    if with_curl {
        let line = curl_line.replace("localhost:9947", &address);
        let output = shell(&line, Path::new("."));
        assert!(output.success(), "run {run}: `{line}` failed: {output:?}");
        let printed = output.stdout;
        let printed: BTreeSet<String> = printed.lines().map(str::to_owned).collect();
        // Exactly the job-state lines whose value is 1: one per job with per-job series.
        let expected: BTreeSet<String> = body
            .lines()
            .filter(|l| l.starts_with("atlas_backup_export_job_state{") && l.ends_with(" 1"))
            .map(str::to_owned)
            .collect();
        // Nine: the demo project's seven recent jobs, Cluster3's one export by hand (200 days
        // old, but a cluster's newest job always has series) and the tooling project's daily
        // export; Cluster2's scheduled export of 40 days ago is older than export_jobs.max_age.
        assert_eq!(
            printed.len(),
            9,
            "run {run}: the demo's nine jobs with series\n{printed:?}"
        );
        assert_eq!(printed, expected, "run {run}: `{line}`");
    }

    child.signal(nix::sys::signal::Signal::SIGINT);
    let (code, log) = runtime.block_on(child.exited());
    assert_eq!(code, Some(0), "run {run}: Ctrl-C exits 0\n{log}");
}

/// The value of label `name` on a sample line, if it has one.
fn label_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line
        .find(&format!("{{{name}=\""))
        .or_else(|| line.find(&format!(",{name}=\"")))?
        + name.len()
        + 3;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

/// The series counts of docs/metrics.md ("How many series") hold on a real scrape: a job has 8
/// series, 2 more once finished, 1 more with a failure reason and 1 more per undocumented state;
/// a cluster has at most 21 besides its jobs (plus one per undocumented state).
fn assert_series_counts_as_documented(body: &str, run: usize) {
    let page = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let counts = section(&page, "docs/metrics.md", "How many series");
    for documented in [
        "| 8 |",
        "| 10 |",
        "| 11 |",
        "| 12 |",
        "at most **21 + *u***",
    ] {
        assert!(counts.contains(documented), "`{documented}` in:\n{counts}");
    }
    let mut jobs: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    let mut clusters: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for line in body
        .lines()
        .filter(|l| l.starts_with("atlas_backup_export_"))
    {
        if let Some(job) = label_value(line, "export_job_id") {
            jobs.entry(job).or_default().push(line);
        } else if let Some(cluster) = label_value(line, "cluster_name") {
            clusters.entry(cluster).or_default().push(line);
        }
    }
    assert!(
        jobs.len() >= 7 && clusters.len() >= 3,
        "run {run}: {jobs:?}"
    );
    let family = |lines: &[&str], name: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("atlas_backup_export_{name}{{")))
            .count()
    };
    for (job, lines) in &jobs {
        let unknown_states = family(lines, "job_state") - 5;
        let finished = family(lines, "job_finished_timestamp_seconds");
        let reason = family(lines, "job_failure_info");
        let expected = 8 + unknown_states + 2 * finished + reason;
        assert_eq!(lines.len(), expected, "run {run}: job {job}: {lines:#?}");
        assert!((8..=12).contains(&lines.len()), "run {run}: job {job}");
    }
    for (cluster, lines) in &clusters {
        let unknown_states = family(lines, "jobs") - 5;
        assert!(
            lines.len() <= 21 + unknown_states,
            "run {run}: cluster {cluster} has {} series: {lines:#?}",
            lines.len()
        );
    }
}

/// The README's install commands, checked against the repository they name: the package's file
/// name, the crate `cargo install --path .` builds, the Dockerfile, the kustomization and the
/// Secret its Deployment reads. (Building and installing the package is `.ci/run`'s.)
#[test]
fn the_readme_install_commands_name_what_the_repository_has() {
    let install = section(README, "README.md", "Install");
    let blocks = sh_blocks(install);
    assert_eq!(
        blocks.len(),
        4,
        "package, source, container, Kubernetes: {blocks:?}"
    );

    let package: Vec<&str> = blocks[0].lines().collect();
    assert_eq!(
        package,
        [
            "cargo deb",
            &format!(
                "sudo dpkg -i target/debian/{}_*.deb",
                env!("CARGO_PKG_NAME")
            ),
        ]
    );

    assert_eq!(blocks[1].trim(), "cargo install --path . --locked");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"atlas-backup-exporter\""),
        "`--path .` builds this crate"
    );
    assert!(
        root().join("Cargo.lock").is_file(),
        "--locked needs Cargo.lock"
    );

    let docker = blocks[2].trim();
    assert_eq!(
        docker,
        "docker build -f examples/Dockerfile -t atlas-backup-exporter ."
    );
    assert!(root().join("examples/Dockerfile").is_file());
    assert!(
        install.contains("not tested"),
        "the README says CI does not build the image"
    );

    let kubernetes = blocks[3];
    let apply = kubernetes
        .lines()
        .find(|l| l.starts_with("kubectl apply -k "))
        .expect("a kubectl apply -k line");
    let dir = root().join(apply.trim_start_matches("kubectl apply -k ").trim());
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    // The Secret is created in the namespace the kustomization deploys to, under the name the
    // Deployment reads, with the variables the exporter reads.
    let namespace = kustomization
        .lines()
        .find_map(|l| l.strip_prefix("namespace: "))
        .expect("the kustomization's namespace")
        .trim();
    let create = kubernetes
        .split("kubectl apply")
        .next()
        .unwrap()
        .replace("\\\n", " ");
    let words: Vec<&str> = create.split_whitespace().collect();
    assert_eq!(&words[..3], ["kubectl", "-n", namespace], "{create}");
    let secret = words
        .windows(2)
        .find(|w| w[0] == "generic")
        .map(|w| w[1])
        .expect("a generic secret");
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    assert!(
        deployment.contains(&format!("name: {secret}")),
        "the Deployment reads the Secret `{secret}`"
    );
    for variable in ["MONGODB_ATLAS_CLIENT_ID", "MONGODB_ATLAS_CLIENT_SECRET"] {
        assert!(
            create.contains(&format!("--from-literal={variable}=")),
            "{create}"
        );
    }
}

/// The README's minimal config, saved as it says, and its check commands as a newcomer runs them:
/// the credentials in the environment, `--config.check` on the minimal config, the `--atlas.check`
/// line, and the command that runs the exporter (which `cli.rs` runs against the stand-in).
#[test]
fn the_readme_minimal_config_passes_its_check_command() {
    let minimal = blocks(section(README, "README.md", "A minimal config"), "yaml");
    assert_eq!(minimal.len(), 1, "{minimal:?}");
    let blocks = sh_blocks(section(
        README,
        "README.md",
        "Check it against Atlas, then run it",
    ));
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let lines: Vec<&str> = blocks[0].lines().filter(|l| !l.trim().is_empty()).collect();
    let export = lines
        .iter()
        .find(|l| l.starts_with("export MONGODB_ATLAS_"))
        .expect("an export line with the credentials");
    let check = lines
        .iter()
        .find(|l| l.contains("--config.check"))
        .expect("a --config.check line");
    let atlas_check = lines
        .iter()
        .find(|l| l.contains("--atlas.check"))
        .expect("an --atlas.check line");
    assert_eq!(
        check.replace("--config.check", "--atlas.check"),
        *atlas_check,
        "the two checks take the same config"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("atlas-backup-exporter --config.file") && !l.contains("check")),
        "the command that runs the exporter"
    );

    let dir = support::TempDir::new("readme-minimal");
    dir.write("atlas-backup-exporter.yml", minimal[0]);
    let output = shell(&format!("{export}\n{check}"), dir.path());
    let stdout = &output.stdout;
    assert!(output.success(), "{output:?}");
    assert!(
        stdout.starts_with("atlas-backup-exporter.yml: OK\n"),
        "{stdout}"
    );
    for expected in [
        "project 5f1a2b3c4d5e6f7a8b9c0d1e",
        "project 6a2b3c4d5e6f7a8b9c0d1e2f",
        "Cluster0",
        "Analytics",
        "env=\"prod\"",
        "Using credentials from environment (MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET)",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }

    // Without the export line the same check fails, naming the variables: the minimal config
    // really takes its credentials from the environment.
    let output = shell(check, dir.path());
    assert_eq!(output.code, Some(1));
    assert!(
        output.stderr.contains("MONGODB_ATLAS_CLIENT_SECRET"),
        "{output:?}"
    );
}

/// `--help` and `--version` as a newcomer runs them: every flag of the command-line table of
/// docs/configuration.md is in `--help`, and every flag of `--help` is in the table.
#[test]
fn the_command_line_table_matches_help() {
    let table = section(CONFIGURATION, "docs/configuration.md", "Command line");
    let documented: BTreeSet<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .flat_map(|l| l.split('|').nth(1).unwrap_or_default().split(','))
        .map(|cell| cell.trim().trim_matches('`'))
        .collect();
    let help = shell("atlas-backup-exporter --help", Path::new("."));
    assert!(help.success(), "{help:?}");
    let help = help.stdout;
    let offered: BTreeSet<&str> = help
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert_eq!(
        documented, offered,
        "docs/configuration.md's table vs --help:\n{help}"
    );
    // The usage line names every flag but --help and --version.
    let usage = &table[table.find("```\n").expect("a usage block") + 4..];
    let usage = &usage[..usage.find("```").expect("a closed usage block")];
    for flag in offered
        .iter()
        .filter(|f| !matches!(**f, "--help" | "--version"))
    {
        assert!(
            usage.contains(flag),
            "{flag} missing from the usage line:\n{usage}"
        );
    }

    let version = shell("atlas-backup-exporter --version", Path::new("."));
    assert_eq!(
        version.stdout.trim(),
        format!("atlas-backup-exporter {}", env!("CARGO_PKG_VERSION"))
    );
}

// ------------------------------------------------------------------------------------------------
// Links and the map of the code.

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces made `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings (outside code blocks), with GitHub's `-1`, `-2`
/// suffixes for repeated headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = anchor(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while found.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        found.insert(candidate);
    }
    found
}

/// The targets of the Markdown links `[text](target)` of a text, outside code blocks and inline
/// code.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Drop inline code spans.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    targets
}

/// Pages another change adds; links to them are allowed before they exist, and checked once they do.
const PAGES_TO_COME: [&str; 1] = ["docs/runbooks.md"];

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let pages = pages();
    let mut checked = 0;
    let mut broken = Vec::new();
    for (file, text) in &pages {
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        for target in link_targets(text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            // The page itself for `#anchor`, else the path relative to the page, normalised.
            let resolved = if path.is_empty() {
                PathBuf::from(file)
            } else {
                let joined = dir.join(path).to_string_lossy().into_owned();
                let mut parts: Vec<&str> = Vec::new();
                for part in joined.split('/') {
                    match part {
                        "" | "." => {}
                        ".." => {
                            if parts.pop().is_none() {
                                broken.push(format!("{file}: {target} leaves the repository"));
                            }
                        }
                        other => parts.push(other),
                    }
                }
                PathBuf::from(parts.join("/"))
            };
            checked += 1;
            let on_disk = root().join(&resolved);
            if !on_disk.exists() {
                if !PAGES_TO_COME.contains(&resolved.to_str().unwrap()) {
                    broken.push(format!(
                        "{file}: {target}: no such file {}",
                        resolved.display()
                    ));
                }
                continue;
            }
            if let Some(fragment) = fragment {
                let Ok(target_text) = std::fs::read_to_string(&on_disk) else {
                    broken.push(format!("{file}: {target}: an anchor into a folder"));
                    continue;
                };
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!(
                        "{file}: {target}: no heading with anchor #{fragment} in {}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn github_anchors_are_made_as_github_makes_them() {
    assert_eq!(
        anchor(" Expected exports: `expect_export_every`"),
        "expected-exports-expect_export_every"
    );
    assert_eq!(
        anchor(" Sharding with /sd and /probe"),
        "sharding-with-sd-and-probe"
    );
    let repeated = anchors("# A\n## A\n```\n# not a heading\n```\n#nor this\n");
    assert_eq!(repeated, BTreeSet::from(["a".to_owned(), "a-1".to_owned()]));
    assert_eq!(
        link_targets("[x](a.md#b) `[y](not-a-link)` [z](c/)\n```\n[w](code)\n```\n"),
        ["a.md#b", "c/"]
    );
}

/// docs/architecture.md matches the tree: every path it names exists, and it names every source
/// file of the exporter and of the stand-in.
#[test]
fn the_architecture_page_matches_the_tree() {
    let text = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let named: BTreeSet<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            [
                "src/",
                "tests/",
                "fake_atlas/",
                "benches/",
                "fuzz/",
                "examples/",
            ]
            .iter()
            .any(|prefix| span.starts_with(prefix))
        })
        .collect();
    assert!(named.len() > 40, "{named:?}");
    let missing: Vec<&&str> = named.iter().filter(|p| !root().join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names what does not exist: {missing:?}"
    );

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("fake_atlas/src"), &mut files);
    let unnamed: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| !named.contains(f.as_str()))
        .collect();
    assert!(
        unnamed.is_empty(),
        "docs/architecture.md does not name: {unnamed:?}"
    );
}
