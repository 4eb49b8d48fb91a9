//! The README's commands and queries are what users copy: its PromQL must parse in a real
//! Prometheus, and its config example must load.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_atlas::{DEMO_MOVING_JOB_ID, seed_examples};

use crate::support::{self, Scrape};
use crate::tools;

const README: &str = include_str!("../README.md");

/// Every expression of every ```promql block: comment lines dropped, blank lines separating them.
fn promql_expressions() -> Vec<String> {
    let mut expressions = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in README.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```promql") {
            in_block = true;
            continue;
        }
        if !in_block {
            continue;
        }
        if trimmed.starts_with("```") || trimmed.is_empty() {
            if !current.trim().is_empty() {
                expressions.push(std::mem::take(&mut current));
            }
            current.clear();
            in_block = !trimmed.starts_with("```");
            continue;
        }
        if !trimmed.starts_with('#') {
            current.push_str(line);
            current.push('\n');
        }
    }
    expressions
}

#[test]
fn the_readme_promql_parses_in_promtool() {
    let expressions = promql_expressions();
    assert!(expressions.len() >= 6, "found only {expressions:?}");
    let Some(promtool) = tools::tool("promtool") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: readme\n    rules:\n");
    for (i, expr) in expressions.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: readme:expression_{i}\n        expr: |\n"
        ));
        for line in expr.lines() {
            rules.push_str(&format!("          {line}\n"));
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "atlas-backup-exporter-readme-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("readme-rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let output = Command::new(promtool)
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "promtool rejects README PromQL:\n{}{}\n{rules}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_readme_config_reference_loads() {
    let start = README
        .find("## Configuration")
        .expect("a Configuration section");
    let block = &README[start..];
    let yaml_start = block.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let yaml = &block[yaml_start..];
    let yaml = &yaml[..yaml.find("```").unwrap()];
    // The reference shows both kinds of credential; a real file has one.
    let yaml = yaml
        .lines()
        .filter(|l| {
            !l.contains("service_account:")
                && !l.contains("client_id:")
                && !l.contains("client_secret:")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = atlas_backup_exporter::config::parse(&yaml, "README.md")
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.targets[0].group_id, "5f1a2b3c4d5e6f7a8b9c0d1e");
    assert_eq!(config.export_jobs.max_per_cluster, 50);
    assert_eq!(
        config.discovery.interval,
        std::time::Duration::from_secs(300)
    );
}

// ------------------------------------------------------------------------------------------------
// The first minutes of a newcomer: the README's first commands, run as it writes them.

/// The text of the README section whose `## ` heading is `title`, up to the next `## ` heading.
fn section(title: &str) -> &'static str {
    let heading = format!("\n## {title}\n");
    let start = README
        .find(&heading)
        .unwrap_or_else(|| panic!("the README has no section `## {title}`"))
        + heading.len();
    let rest = &README[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The contents of every ```sh block of a README section, in order.
fn sh_blocks(section: &str) -> Vec<&str> {
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| &block[..block.find("```").expect("a closed ```sh block")])
        .collect()
}

/// Kills a child process if the test ends before the child has exited.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// Waits for a child to exit after a signal, at most `within`, and returns its exit code.
fn wait_for_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return status.code();
        }
        assert!(
            Instant::now() < until,
            "the child did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a shell command line as a user pastes it, in `dir`, with the exporter's binary on `PATH`.
fn shell(line: &str, dir: &Path) -> std::process::Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_atlas-backup-exporter"))
        .parent()
        .expect("the binary's directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("a PATH");
    Command::new("sh")
        .args(["-ec", line])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("MONGODB_ATLAS_PUBLIC_API_KEY")
        .env_remove("MONGODB_ATLAS_PRIVATE_API_KEY")
        .env_remove("MONGODB_ATLAS_CLIENT_ID")
        .env_remove("MONGODB_ATLAS_CLIENT_SECRET")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running `{line}`: {e}"))
}

/// `cargo run --example demo`, as the README's first section writes it, three times in a row:
/// it prints its address, serves the demo's jobs, the README's `curl … | grep` line prints them,
/// and Ctrl-C (SIGINT) stops it with exit code 0. A start-up race shows itself in three runs.
#[test]
fn the_readme_demo_runs_as_written_three_times_in_a_row() {
    let blocks = sh_blocks(section("Try it, without an Atlas account"));
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
    let mut child = KillOnDrop(
        Command::new(demo)
            .arg("127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", demo.display())),
    );
    let (sender, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    // The log goes to stderr; read it to its end so a full pipe never blocks the demo.
    let stderr = child.0.stderr.take().expect("piped stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
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
        assert!(
            output.status.success(),
            "run {run}: `{line}` failed: {output:?}"
        );
        let printed = String::from_utf8(output.stdout).unwrap();
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

    support::signal(&child.0, "INT");
    let code = wait_for_exit(&mut child.0, Duration::from_secs(30));
    let log = log.join().unwrap_or_default();
    assert_eq!(code, Some(0), "run {run}: Ctrl-C exits 0\n{log}");
}

/// The README's "Install and run against Atlas" commands that need no Atlas: the credentials in
/// the environment and `--config.check` on the shipped example config, in a directory holding it
/// under the name the README uses. (`cargo build --release` is cargo's own; the last command
/// serves until stopped and is what the binary tests in `cli.rs` run.)
#[test]
fn the_readme_install_commands_check_the_example_config() {
    let blocks = sh_blocks(section("Install and run against Atlas"));
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(
        blocks[0].starts_with("cargo build --release"),
        "{}",
        blocks[0]
    );
    let lines: Vec<&str> = blocks[1].lines().filter(|l| !l.trim().is_empty()).collect();
    let export = lines
        .iter()
        .find(|l| l.starts_with("export MONGODB_ATLAS_"))
        .expect("an export line with the credentials");
    let check = lines
        .iter()
        .find(|l| l.contains("--config.check"))
        .expect("a --config.check line");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("atlas-backup-exporter --config.file")
                && !l.contains("--config.check")),
        "the command that runs the exporter"
    );

    let dir = support::TempDir::new("readme-install");
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/atlas-backup-exporter.yml"
    ))
    .unwrap();
    dir.write("atlas-backup-exporter.yml", &example);
    let output = shell(&format!("{export}\n{check}"), dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.starts_with("atlas-backup-exporter.yml: OK\n"),
        "{stdout}"
    );
    // The example's two projects, its listed clusters and the environment's service account.
    for expected in [
        "project 5f1a2b3c4d5e6f7a8b9c0d1e",
        "project 6a2b3c4d5e6f7a8b9c0d1e2f",
        "cluster Analytics: export jobs 605ccba3c1c7613f423e1585",
        "Using credentials from environment (MONGODB_ATLAS_CLIENT_ID/MONGODB_ATLAS_CLIENT_SECRET)",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }

    // Without the export line the same check fails, naming the variables: the example really
    // takes its credentials from the environment.
    let output = shell(check, dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("MONGODB_ATLAS_CLIENT_SECRET"),
        "{output:?}"
    );
}

/// `--help` and `--version` as a newcomer runs them: every flag of the README's command-line
/// table is in `--help`, and every flag of `--help` is in the table.
#[test]
fn the_readme_command_line_table_matches_help() {
    let table = section("Command line");
    let documented: BTreeSet<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .flat_map(|l| l.split('|').nth(1).unwrap_or_default().split(','))
        .map(|cell| cell.trim().trim_matches('`'))
        .collect();
    let help = shell("atlas-backup-exporter --help", Path::new("."));
    assert!(help.status.success(), "{help:?}");
    let help = String::from_utf8(help.stdout).unwrap();
    let offered: BTreeSet<&str> = help
        .split_whitespace()
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert_eq!(documented, offered, "README table vs --help:\n{help}");
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
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("atlas-backup-exporter {}", env!("CARGO_PKG_VERSION"))
    );
}
