//! The operations files users load as they are (`examples/`, `dashboards/`, the Debian package's
//! metadata, LICENSE): checked with the real tools where they run here (promtool, amtool,
//! systemd-analyze, kubernetes-validate) and structurally where they cannot (Grafana, the Prometheus
//! Operator's resources, Docker). `.ci/package` builds, installs and purges the Debian package.

use crate::support::{Spawn, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use atlas_backup_exporter::web;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use crate::tools::{optional_tool, tool};

/// Every metric the exporter documents; rules and panels may use no other `atlas_backup_export*` name.
const EXPORTER_METRICS: &[&str] = &[
    "atlas_backup_export_job_state",
    "atlas_backup_export_job_duration_seconds",
    "atlas_backup_export_job_components",
    "atlas_backup_export_job_created_timestamp_seconds",
    "atlas_backup_export_job_finished_timestamp_seconds",
    "atlas_backup_export_job_info",
    "atlas_backup_export_job_failure_info",
    "atlas_backup_export_jobs",
    "atlas_backup_export_last_success_timestamp_seconds",
    "atlas_backup_export_invalid_jobs",
    "atlas_backup_export_up",
    "atlas_backup_export_collection_duration_seconds",
    "atlas_backup_export_collection_timestamp_seconds",
    "atlas_backup_export_discovery_up",
    "atlas_backup_export_project_info",
    "atlas_backup_export_cluster_info",
    "atlas_backup_export_cluster_tags",
    "atlas_backup_export_bucket_info",
    "atlas_backup_export_auto_export_enabled",
    "atlas_backup_export_auto_export_interval_seconds",
    "atlas_backup_export_auto_export_last_success_timestamp_seconds",
    "atlas_backup_export_last_success_snapshot_timestamp_seconds",
    "atlas_backup_export_cluster_created_timestamp_seconds",
    "atlas_backup_export_auto_export_info",
    "atlas_backup_export_cluster_paused",
    "atlas_backup_export_expected_interval_seconds",
    "atlas_backup_export_next_due_timestamp_seconds",
    "atlas_backup_export_access_denied",
    "atlas_backup_exporter_api_requests_total",
    "atlas_backup_exporter_build_info",
    "atlas_backup_exporter_api_rate_limit",
    "atlas_backup_exporter_api_rate_limit_remaining",
    "atlas_backup_exporter_api_rate_limited",
    "atlas_backup_exporter_api_requests_held_total",
    "atlas_backup_exporter_collection_interval_seconds",
    "atlas_backup_exporter_first_collection_pending",
    "atlas_backup_exporter_last_collection_timestamp_seconds",
    "atlas_backup_exporter_last_collection_duration_seconds",
    "atlas_backup_exporter_collection_overruns_total",
];

/// The scrape job name the alerts and the dashboard expect.
const SCRAPE_JOB: &str = "atlas-backup-exporter";

/// Values for Grafana's variables when checking panel queries as PromQL.
const GRAFANA_VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "8m"),
    ("$__interval_ms", "3600000"),
    ("$__interval", "1h"),
    ("$__range", "7d"),
    ("$job", SCRAPE_JOB),
    ("$group_id", ".*"),
    ("$cluster_name", ".*"),
];

// ------------------------------------------------------------------------------------------------
// Prometheus

#[test]
fn prometheus_config_passes_promtool_and_loads_the_rules() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    // Run from the repository's root: the relative `rule_files` entry must resolve against the
    // config file's directory, as Prometheus resolves it, not against the working directory.
    let out = run(
        &promtool,
        &["check", "config", "examples/prometheus.yml"],
        &repo_path(""),
    );
    assert!(out.success, "promtool check config failed:\n{}", out.text);
    assert!(
        out.text.contains("SUCCESS: 1 rule files found"),
        "the rule file was not loaded:\n{}",
        out.text
    );
    assert_every_rule_found_without_warnings(&out.text);
}

#[test]
fn prometheus_config_scrapes_the_exporter_within_atlas_limits() {
    let config = yaml("examples/prometheus.yml");
    let job = seq(&config, "scrape_configs")
        .iter()
        .find(|j| string(j, "job_name") == SCRAPE_JOB)
        .expect("a scrape job named atlas-backup-exporter");
    let interval = duration_secs(string(job, "scrape_interval"));
    let timeout = duration_secs(string(job, "scrape_timeout"));
    // Above 2m, a series is not refreshed within Prometheus's 5-minute staleness window if one
    // scrape fails; far below 1m costs Atlas calls for nothing.
    assert!(
        (60.0..=120.0).contains(&interval),
        "scrape_interval {interval}s"
    );
    assert!(
        timeout >= 10.0 && timeout <= interval,
        "scrape_timeout {timeout}s with interval {interval}s"
    );
    let targets: Vec<&str> = seq(job, "static_configs")
        .iter()
        .flat_map(|c| seq(c, "targets"))
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        !targets.is_empty() && targets.iter().all(|t| t.ends_with(":9947")),
        "exporter targets {targets:?}"
    );
    let rule_files: Vec<&str> = seq(&config, "rule_files")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(rule_files, ["alerts.yml"]);
    let alertmanagers: Vec<&str> = seq(&config["alerting"], "alertmanagers")
        .iter()
        .flat_map(|a| seq(a, "static_configs"))
        .flat_map(|c| seq(c, "targets"))
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        !alertmanagers.is_empty() && alertmanagers.iter().all(|t| t.ends_with(":9093")),
        "alertmanagers {alertmanagers:?}"
    );
}

#[test]
fn alert_rules_pass_promtool_check() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let out = run(
        &promtool,
        &["check", "rules", "examples/alerts.yml"],
        &repo_path(""),
    );
    assert!(out.success, "promtool check rules failed:\n{}", out.text);
    assert_every_rule_found_without_warnings(&out.text);
}

/// promtool's output found every rule of `examples/alerts.yml` and warned of nothing.
fn assert_every_rule_found_without_warnings(text: &str) {
    let rules = format!("SUCCESS: {} rules found", all_rules().len());
    assert!(text.contains(&rules), "expected `{rules}` in:\n{text}");
    assert!(!text.contains("WARNING"), "promtool warned:\n{text}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let out = run(
        &promtool,
        &["test", "rules", "alerts.test.yml"],
        &repo_path("examples"),
    );
    assert!(out.success, "promtool test rules failed:\n{}", out.text);
    assert!(out.text.contains("SUCCESS"), "{}", out.text);
}

#[test]
fn every_alert_is_tested_firing_and_quiet_on_healthy_data() {
    let alerts: BTreeMap<String, f64> = alert_rules()
        .iter()
        .map(|r| {
            let for_secs = r
                .get("for")
                .and_then(Yaml::as_str)
                .map_or(0.0, duration_secs);
            (string(r, "alert").to_owned(), for_secs)
        })
        .collect();
    let tests = yaml("examples/alerts.test.yml");
    let rule_files: Vec<&str> = seq(&tests, "rule_files")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(rule_files, ["alerts.yml"]);

    let mut fired = BTreeSet::new();
    let mut healthy_quiet = BTreeSet::new();
    for test in seq(&tests, "tests") {
        let healthy = string(test, "name").starts_with("healthy");
        for case in test
            .get("alert_rule_test")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = string(case, "alertname");
            assert!(alerts.contains_key(name), "test for unknown alert {name}");
            let expected = seq(case, "exp_alerts");
            for alert in expected {
                // Exact labels and all three annotations, not just "something fired".
                let labels = &alert["exp_labels"];
                assert!(
                    labels.get("severity").is_some(),
                    "{name}: no severity in {alert:?}"
                );
                for key in ["summary", "description", "runbook_url"] {
                    let text = alert["exp_annotations"].get(key).and_then(Yaml::as_str);
                    assert!(
                        text.is_some_and(|t| !t.is_empty()),
                        "{name}: annotation {key} not checked"
                    );
                }
            }
            if !expected.is_empty() {
                fired.insert(name.to_owned());
            }
            // Quiet on healthy data only counts once the alert's `for:` has passed.
            if healthy
                && expected.is_empty()
                && duration_secs(string(case, "eval_time")) > alerts[name]
            {
                healthy_quiet.insert(name.to_owned());
            }
        }
    }
    let names: BTreeSet<String> = alerts.keys().cloned().collect();
    assert_eq!(fired, names, "alerts never shown firing");
    assert_eq!(
        healthy_quiet, names,
        "alerts not shown quiet on healthy data"
    );
}

#[test]
fn alert_rules_carry_severity_and_actionable_annotations() {
    let rules = alert_rules();
    let mut names = BTreeSet::new();
    for rule in &rules {
        let name = string(rule, "alert");
        let severity = string(&rule["labels"], "severity");
        // One name may carry two severities (the exporter alerts escalate), never the same twice.
        assert!(
            names.insert((name, severity)),
            "{name} ({severity}) defined twice"
        );
        assert!(
            name.starts_with("AtlasBackupExport"),
            "{name}: routes match the prefix"
        );
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity}"
        );
        // Critical means backups at risk: the overdue export, and the exporter blind long enough to
        // hide one. Everything else is a warning or info.
        if severity == "critical" {
            assert!(
                [
                    "AtlasBackupExportOverdue",
                    "AtlasBackupExporterDown",
                    "AtlasBackupExporterAbsent"
                ]
                .contains(&name),
                "{name} must not page"
            );
        }
        assert!(
            rule["annotations"].get("runbook").is_none(),
            "{name}: the runbook prose lives in docs/runbooks.md, linked by runbook_url"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                !string(&rule["annotations"], key).trim().is_empty(),
                "{name}: empty {key}"
            );
        }
        let expr = string(rule, "expr");
        let description = string(&rule["annotations"], "description");
        let mut wanted = Vec::new();
        if expr.contains("atlas_backup_export_job_") {
            wanted.extend([
                "$labels.group_id",
                "$labels.cluster_name",
                "$labels.export_job_id",
            ]);
        } else if expr.contains("atlas_backup_export_discovery_up")
            || expr.contains("atlas_backup_export_access_denied")
        {
            wanted.push("$labels.group_id");
        } else if expr.contains("atlas_backup_export_") || expr.contains(":since_due_seconds") {
            wanted.extend(["$labels.group_id", "$labels.cluster_name"]);
        }
        if expr.contains("atlas_backup_export_job_failure_info") {
            wanted.push("$labels.error_code");
        }
        // The project by its name where project_info knows it, its id otherwise.
        if wanted.contains(&"$labels.group_id") {
            assert!(
                description.contains("atlas_backup_export_project_info")
                    && description.contains("{{ else }}{{ $labels.group_id }}"),
                "{name}: description must name the project, falling back to its id"
            );
        }
        for label in wanted {
            assert!(
                description.contains(label),
                "{name}: description lacks {label}"
            );
        }
    }
    // Both severities of an escalating alert exist.
    for name in ["AtlasBackupExporterDown", "AtlasBackupExporterAbsent"] {
        for severity in ["warning", "critical"] {
            assert!(names.contains(&(name, severity)), "{name} ({severity})");
        }
    }
}

#[test]
fn thresholds_are_recorded_once_and_used() {
    let thresholds = thresholds();
    let rules = alert_rules();
    let names: BTreeSet<&str> = thresholds.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "atlas_backup_export:blind_critical_after_seconds",
            "atlas_backup_export:failure_lookback_seconds",
            "atlas_backup_export:stale_data_grace_seconds",
            "atlas_backup_export:stuck_threshold_seconds",
        ])
    );
    for threshold in &names {
        let users: Vec<&Yaml> = rules
            .iter()
            .filter(|r| string(r, "expr").contains(threshold))
            .collect();
        assert!(!users.is_empty(), "{threshold} is used by no alert");
        for user in users {
            assert!(
                string(user, "expr").contains("on() group_left()"),
                "{} must join {threshold} with `on() group_left()`",
                string(user, "alert")
            );
        }
    }
    // The overdue alert compares due times: a `for:` would start over with every restart of
    // Prometheus. It reads them through the recorded due time, so a failed scrape neither resolves
    // nor re-fires it, and compares with the per-cluster grace.
    let overdue = rules
        .iter()
        .find(|r| r["alert"].as_str() == Some("AtlasBackupExportOverdue"))
        .expect("the alert AtlasBackupExportOverdue");
    assert!(
        overdue.get("for").is_none(),
        "AtlasBackupExportOverdue must compare due times, not wait with `for:`"
    );
    let expr = string(overdue, "expr");
    assert!(
        expr.contains("atlas_backup_export:overdue_grace_seconds"),
        "{expr}"
    );
    let recorded = |name: &str| {
        all_rules()
            .into_iter()
            .find(|r| r["record"].as_str() == Some(name))
            .map(|r| string(&r, "expr").to_owned())
            .unwrap_or_else(|| panic!("no recording rule {name}"))
    };
    let since_due = recorded("atlas_backup_export:since_due_seconds");
    assert!(
        expr.contains("atlas_backup_export:since_due_seconds"),
        "{expr}"
    );
    assert!(
        since_due.contains("atlas_backup_export:next_due_timestamp_seconds"),
        "{since_due}"
    );
    // The due time and the interval as last read: max_over_time bridges failed scrapes, and the
    // last value is carried on while the cluster is unreadable (up 0), so that an overdue cluster
    // the exporter cannot read still pages (the promtool tests show both sides).
    for (name, raw, label) in [
        (
            "atlas_backup_export:next_due_timestamp_seconds",
            "atlas_backup_export_next_due_timestamp_seconds",
            "basis",
        ),
        (
            "atlas_backup_export:expected_interval_seconds",
            "atlas_backup_export_expected_interval_seconds",
            "source",
        ),
    ] {
        let carried: String = recorded(name).split_whitespace().collect();
        assert!(
            carried.starts_with(&format!(
                "max_over_time({raw}[1h])or(last_over_time({name}[10m])"
            )) && carried.ends_with(&format!("andignoring({label})(atlas_backup_export_up==0))")),
            "{name}: {carried}"
        );
    }
    // The grace: a quarter of the expected interval, within [1 hour, 1 day].
    let grace: String = recorded("atlas_backup_export:overdue_grace_seconds")
        .split_whitespace()
        .collect();
    assert!(
        grace.starts_with("clamp(")
            && grace.contains("atlas_backup_export:expected_interval_seconds")
            && grace.ends_with("/4,3600,86400)"),
        "{grace}"
    );
}

#[test]
fn rules_and_dashboard_use_only_documented_metrics() {
    let recorded: BTreeSet<String> = all_rules()
        .iter()
        .filter_map(|r| r.get("record").and_then(Yaml::as_str).map(str::to_owned))
        .collect();
    let exprs = all_rules()
        .into_iter()
        .map(|r| ("alerts.yml".to_owned(), string(&r, "expr").to_owned()))
        .chain(
            dashboard_exprs()
                .into_iter()
                .map(|(id, expr)| (format!("dashboard {id}"), expr)),
        );
    for (place, expr) in exprs {
        for name in metric_names(&expr) {
            assert!(
                EXPORTER_METRICS.contains(&name.as_str()) || recorded.contains(&name),
                "{place}: undocumented metric {name} in {expr}"
            );
        }
    }
}

/// The runbook links: every alert's `runbook_url` is the one base URL (a recording rule users point
/// at their own copy) followed by `docs/runbooks.md#<anchor>`, and the anchor is a heading of
/// docs/runbooks.md, the alert's own section, as GitHub makes anchors. An alert added later without
/// a section fails here.
#[test]
fn every_runbook_url_points_at_its_own_section_of_the_runbooks() {
    const BASE_RULE: &str = "atlas_backup_export:runbook_base_url";
    let runbooks = read("docs/runbooks.md");
    let anchors = markdown_anchors(&runbooks);
    let base_rules: Vec<Yaml> = all_rules()
        .into_iter()
        .filter(|r| r["record"].as_str() == Some(BASE_RULE))
        .collect();
    assert_eq!(base_rules.len(), 1, "one place holds the base URL");
    let expr = string(&base_rules[0], "expr");
    let base = expr
        .strip_prefix(r#"label_replace(vector(1), "url", ""#)
        .and_then(|rest| rest.strip_suffix(r#"", "", "")"#))
        .unwrap_or_else(|| {
            panic!("{BASE_RULE} must be label_replace(vector(1), \"url\", ...): {expr}")
        });
    assert!(
        base.starts_with("https://") && base.ends_with('/') && !base.contains('"'),
        "the base URL {base}"
    );
    let prefix = format!(
        r#"{{{{ with query "{BASE_RULE}" }}}}{{{{ . | first | label "url" }}}}{{{{ end }}}}docs/runbooks.md#"#
    );
    let mut linked = BTreeSet::new();
    for rule in alert_rules() {
        let name = string(&rule, "alert");
        let url = string(&rule["annotations"], "runbook_url").trim();
        let anchor = url
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{name}: runbook_url must be {prefix}<anchor>, not {url}"));
        assert!(
            anchors.contains(anchor),
            "{name}: docs/runbooks.md has no heading with the anchor #{anchor}; its anchors: {anchors:?}"
        );
        assert_eq!(anchor, github_anchor(name), "{name}: link its own section");
        linked.insert(anchor.to_owned());
    }
    // The runbooks' own links between sections resolve too.
    for (at, _) in runbooks.match_indices("](#") {
        let rest = &runbooks[at + 3..];
        let anchor = &rest[..rest.find(')').expect("a closed link")];
        assert!(
            anchors.contains(anchor),
            "docs/runbooks.md links to a missing #{anchor}"
        );
    }
    assert!(linked.len() >= 12, "{linked:?}");
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks); a repeated heading gets `-1`,
/// `-2`, ... as on GitHub.
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let hashes = line.len() - line.trim_start_matches('#').len();
        if in_code || hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let anchor = github_anchor(&line[hashes..]);
        let count = seen.entry(anchor.clone()).or_default();
        anchors.insert(if *count == 0 {
            anchor
        } else {
            format!("{anchor}-{count}")
        });
        *count += 1;
    }
    anchors
}

#[test]
fn github_anchors_are_made_as_github_makes_them() {
    assert_eq!(
        github_anchor("Diagnosing Atlas's refusals"),
        "diagnosing-atlass-refusals"
    );
    assert_eq!(
        github_anchor("The model: an `expect_export_every`"),
        "the-model-an-expect_export_every"
    );
    let anchors = markdown_anchors("# A\n```\n# not a heading\n```\n## A\n#no\n### B c\n");
    assert_eq!(
        anchors,
        BTreeSet::from(["a".to_owned(), "a-1".to_owned(), "b-c".to_owned()])
    );
}

// ------------------------------------------------------------------------------------------------
// Alertmanager

#[test]
fn alertmanager_config_passes_amtool() {
    let Some(amtool) = tool("amtool") else {
        return;
    };
    let out = run(
        &amtool,
        &["check-config", "examples/alertmanager.yml"],
        &repo_path(""),
    );
    assert!(out.success, "amtool check-config failed:\n{}", out.text);
    assert!(out.text.contains("SUCCESS"), "{}", out.text);
}

#[test]
fn alertmanager_routes_every_alert_grouped_by_project_and_cluster() {
    let config = yaml("examples/alertmanager.yml");
    let route = |matchers: &[&str]| {
        seq(&config["route"], "routes")
            .iter()
            .find(|r| {
                let own: Vec<&str> = seq(r, "matchers").iter().filter_map(Yaml::as_str).collect();
                own == matchers
            })
            .unwrap_or_else(|| panic!("no route with the matchers {matchers:?}"))
            .clone()
    };
    let group_by = |route: &Yaml| -> Vec<String> {
        seq(route, "group_by")
            .iter()
            .filter_map(Yaml::as_str)
            .map(str::to_owned)
            .collect()
    };
    let atlas_route = route(&[r#"alertname=~"AtlasBackupExport.*""#]);
    assert_eq!(group_by(&atlas_route), ["group_id", "cluster_name"]);
    // An expired secret makes every project refuse at once: one notification, not one per project.
    let denied = route(&[r#"alertname="AtlasBackupExportAccessDenied""#]);
    assert_eq!(group_by(&denied), ["alertname"]);
    // Info alerts notify nobody by default: their receiver has no integration at all.
    let info = route(&[r#"alertname=~"AtlasBackupExport.*""#, r#"severity="info""#]);
    let nobody = string(&info, "receiver");
    let receiver = seq(&config, "receivers")
        .iter()
        .find(|r| string(r, "name") == nobody)
        .expect("the info alerts' receiver");
    assert_eq!(
        receiver.as_mapping().map(serde_yaml::Mapping::len),
        Some(1),
        "the receiver {nobody} must only have a name: {receiver:?}"
    );

    let Some(amtool) = tool("amtool") else {
        return;
    };
    for rule in &alert_rules() {
        let name = string(rule, "alert");
        let severity = string(&rule["labels"], "severity");
        let receiver = match severity {
            "critical" => "atlas-backups-page",
            "info" => nobody,
            _ => "atlas-backups",
        };
        let out = run(
            &amtool,
            &[
                "config",
                "routes",
                "test",
                "--config.file=examples/alertmanager.yml",
                &format!("--verify.receivers={receiver}"),
                &format!("alertname={name}"),
                &format!("severity={severity}"),
                "group_id=5f1a2b3c4d5e6f7a8b9c0d1e",
                "cluster_name=Cluster0",
            ],
            &repo_path(""),
        );
        assert!(
            out.success,
            "{name} ({severity}) is not routed to {receiver}:\n{}",
            out.text
        );
    }
}

/// Whether an inhibit rule of alertmanager.yml holds back `target` while `source` fires: each
/// matcher of the rule is `label="value"` (`label=""` matches a missing label, as in Alertmanager),
/// and the labels in `equal` must be equal.
fn inhibits(rule: &Yaml, source: &[(&str, &str)], target: &[(&str, &str)]) -> bool {
    let matches = |key: &str, labels: &[(&str, &str)]| {
        seq(rule, key).iter().filter_map(Yaml::as_str).all(|m| {
            let (name, value) = m.split_once('=').expect("a label=\"value\" matcher");
            assert!(
                !name.ends_with('!') && !value.starts_with('~'),
                "only label=\"value\" matchers: {m}"
            );
            let value = value.trim_matches('"');
            let found = labels.iter().find(|(l, _)| *l == name).map(|(_, v)| *v);
            found.unwrap_or_default() == value
        })
    };
    let get = |labels: &[(&str, &str)], name: &str| {
        labels
            .iter()
            .find(|(l, _)| *l == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let equal = seq(rule, "equal")
        .iter()
        .filter_map(Yaml::as_str)
        .all(|name| get(source, name) == get(target, name));
    matches("source_matchers", source) && matches("target_matchers", target) && equal
}

#[test]
fn inhibitions_hold_back_what_another_alert_already_says() {
    let config = yaml("examples/alertmanager.yml");
    let rules = seq(&config, "inhibit_rules");
    let inhibited = |source: &[(&str, &str)], target: &[(&str, &str)]| {
        rules.iter().any(|rule| inhibits(rule, source, target))
    };
    let alert = |name: &'static str,
                 group_id: &'static str,
                 cluster: &'static str|
     -> Vec<(&'static str, &'static str)> {
        let mut labels = vec![
            ("alertname", name),
            ("group_id", group_id),
            ("instance", "exporter:9947"),
            ("job", "atlas-backup-exporter"),
            ("severity", "warning"),
        ];
        if !cluster.is_empty() {
            labels.push(("cluster_name", cluster));
        }
        labels
    };
    let (p1, p2) = ("5f1a2b3c4d5e6f7a8b9c0d1e", "6a799efbc0eb9e7a177d7e0e");
    // A refused project: its clusters' and its listing's failures are the same news.
    let denied = alert("AtlasBackupExportAccessDenied", p1, "");
    for target in [
        alert("AtlasBackupExportClusterDown", p1, "Cluster0"),
        alert("AtlasBackupExportDiscoveryDown", p1, ""),
    ] {
        assert!(inhibited(&denied, &target), "{target:?}");
    }
    for target in [
        alert("AtlasBackupExportClusterDown", p2, "Cluster9"),
        alert("AtlasBackupExportDiscoveryDown", p2, ""),
        alert("AtlasBackupExportFailed", p1, "Cluster0"),
        alert("AtlasBackupExportStuck", p1, "Cluster0"),
    ] {
        assert!(
            !inhibited(&denied, &target),
            "another project's or another kind of alert still fires: {target:?}"
        );
    }
    assert!(!inhibited(
        &alert("AtlasBackupExportClusterDown", p1, "Cluster0"),
        &denied
    ));
    // Nothing holds back the overdue alert.
    let mut overdue = alert("AtlasBackupExportOverdue", p1, "Cluster0");
    overdue.retain(|(l, _)| *l != "severity");
    overdue.push(("severity", "critical"));
    for rule in rules {
        for source in [
            denied.clone(),
            alert("AtlasBackupExportedDataStale", p1, "Cluster0"),
            alert("AtlasBackupExportFailed", p1, "Cluster0"),
            alert("AtlasBackupExportDiscoveryDown", p1, ""),
        ] {
            assert!(!inhibits(rule, &source, &overdue), "{rule:?}");
        }
    }
    // The exporter alerts: the critical one holds back its own warning, not another exporter's,
    // and never the reverse.
    for name in ["AtlasBackupExporterDown", "AtlasBackupExporterAbsent"] {
        let warning = [
            ("alertname", name),
            ("job", "atlas-backup-exporter"),
            ("instance", "exporter:9947"),
            ("severity", "warning"),
        ];
        let mut critical = warning;
        critical[3] = ("severity", "critical");
        assert!(inhibited(&critical, &warning), "{name}");
        assert!(!inhibited(&warning, &critical), "{name}");
        let mut other = warning;
        other[2] = ("instance", "exporter-b:9947");
        assert!(!inhibited(&critical, &other), "{name}: another exporter");
    }
}

// ------------------------------------------------------------------------------------------------
// Grafana

#[test]
fn dashboard_is_importable_grafana_json() {
    let text = read("dashboards/atlas-backup-exports.json");
    let dashboard: Json = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    assert_eq!(
        dashboard["uid"], "atlas-backup-exports",
        "the uid must stay stable"
    );
    assert!(
        dashboard["id"].is_null(),
        "an exported dashboard has no database id"
    );
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");

    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "__inputs needs the DS_PROMETHEUS data source"
    );
    let requires: BTreeSet<(String, String)> = dashboard["__requires"]
        .as_array()
        .expect("__requires")
        .iter()
        .map(|r| {
            (
                json_str(&r["type"]).to_owned(),
                json_str(&r["id"]).to_owned(),
            )
        })
        .collect();
    assert!(requires.contains(&("grafana".into(), "grafana".into())));
    assert!(requires.contains(&("datasource".into(), "prometheus".into())));

    // Template variables: the data source, then queries that take it.
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for name in ["group_id", "cluster_name"] {
        let v = variable(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
    }
    let (_, label) = label_values(variable_query(variable("cluster_name")));
    assert_eq!(
        label, "cluster_name",
        "cluster_name must list the cluster names"
    );
    // Projects are shown by name and filtered by id: a query_result whose regex takes the id as
    // the value and the name, when the series has one, as the text (Grafana's named groups).
    let projects = variable("group_id");
    query_result(variable_query(projects));
    let regex = json_str(&projects["regex"]);
    assert!(
        regex.contains(r#"group_id="(?<value>"#) && regex.contains(r#"group_name="(?<text>"#),
        "the Project variable's regex must take group_id as the value and group_name as the text: {regex}"
    );

    // Panels: a type, a place, the data source variable, and queries with expressions.
    let panels = all_panels(&dashboard);
    assert!(panels.len() >= 10, "only {} panels", panels.len());
    let mut ids = BTreeSet::new();
    let mut boxes = Vec::new();
    let mut types = BTreeSet::new();
    for panel in &panels {
        let title = json_str(&panel["title"]);
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: duplicate id {id}");
        let kind = json_str(&panel["type"]);
        assert!(!kind.is_empty(), "{title}: no type");
        types.insert(kind.to_owned());
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert_eq!(panel["datasource"]["type"], "prometheus", "{title}");
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| {
            grid[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(h > 0 && w > 0 && x + w <= 24, "{title}: gridPos {grid}");
        boxes.push((title.to_owned(), x, y, w, h));
        if kind == "row" {
            continue;
        }
        assert!(
            !json_str(&panel["description"]).is_empty(),
            "{title}: describe the panel"
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert!(
                !json_str(&target["expr"]).trim().is_empty(),
                "{title}: empty expr"
            );
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart =
                a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1 || a.2 + a.4 <= b.2 || b.2 + b.4 <= a.2;
            assert!(apart, "panels {} and {} overlap", a.0, b.0);
        }
    }
    for kind in types.iter().filter(|t| *t != "row") {
        assert!(
            requires.contains(&("panel".to_owned(), kind.clone())),
            "__requires lacks the panel type {kind}"
        );
    }

    // 0/1 series read as states, not as lines between 0 and 1; CPU has its unit.
    for title in [
        "Exporter scraped (up)",
        "Atlas reads per cluster and project",
        "Paused clusters",
        "Atlas refusing the exporter, per project",
    ] {
        let panel = panels
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"));
        assert_eq!(panel["type"], "state-timeline", "{title}");
    }
    let cpu = panels
        .iter()
        .find(|p| json_str(&p["title"]).starts_with("Exporter CPU"))
        .expect("the CPU panel");
    assert_eq!(cpu["fieldConfig"]["defaults"]["unit"], "percentunit");
    // The headline: the overdue count comes first, and no panel colours by a fixed 26 hours.
    assert!(!text.contains("93600"), "a fixed 26-hour threshold is left");
    let overdue = panels
        .iter()
        .find(|p| p["title"] == "Clusters overdue")
        .expect("the Clusters overdue stat");
    assert_eq!(overdue["gridPos"]["y"], 1);
    // The expectations row sits right under the headline.
    let expectations = panels
        .iter()
        .find(|p| p["type"] == "row" && p["title"] == "Expectations and schedules")
        .expect("the expectations row");
    assert_eq!(expectations["gridPos"]["y"], 5);
    // Legends and tables name the project: every legend with a cluster starts with the project.
    for panel in &panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            if legend.contains("{{cluster_name}}") {
                assert!(
                    legend.starts_with("{{group_name}} / {{cluster_name}}"),
                    "{}: legend {legend}",
                    json_str(&panel["title"])
                );
            }
        }
        if panel["type"] == "table" && panel.to_string().contains("cluster_name") {
            assert!(
                panel.to_string().contains(r#""group_name":"Project""#),
                "{}: no project-name column",
                json_str(&panel["title"])
            );
        }
    }

    // The table of newest jobs colours the state.
    let table = panels
        .iter()
        .find(|p| p["type"] == "table" && p["title"] == "Newest export jobs")
        .expect("the newest-jobs table");
    let text = table.to_string();
    for state in ["Queued", "InProgress", "Successful", "Failed", "Cancelled"] {
        assert!(
            text.contains(&format!("\"{state}\":{{\"color\"")),
            "no colour for {state}"
        );
    }
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let dashboard: Json =
        serde_json::from_str(&read("dashboards/atlas-backup-exports.json")).expect("JSON");
    let mut exprs = dashboard_exprs();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            let query = variable_query(variable);
            let expr = if query.trim().starts_with("query_result(") {
                query_result(query)
            } else {
                label_values(query).0
            };
            exprs.push((
                format!("variable_{}", json_str(&variable["name"])),
                substitute_variables(expr),
            ));
        }
    }
    // promtool parses and checks every expression of a rule file: make each query a recording rule.
    let rules: Vec<Json> = exprs
        .iter()
        .map(|(id, expr)| serde_json::json!({"record": format!("dashboard:{id}"), "expr": expr}))
        .collect();
    let count = rules.len();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = TempDir::new("dashboard-promql");
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, file.to_string()).expect("writing the rules file");
    let out = run(
        &promtool,
        &["check", "rules", &path.to_string_lossy()],
        dir.path(),
    );
    assert!(
        out.success,
        "dashboard queries that are not valid PromQL:\n{}\n{exprs:#?}",
        out.text
    );
    assert!(
        out.text.contains(&format!("SUCCESS: {count} rules found")),
        "{}",
        out.text
    );
}

// ------------------------------------------------------------------------------------------------
// The exporter's config

#[test]
fn example_config_uses_only_documented_keys() {
    let text = read("examples/atlas-backup-exporter.yml");
    let config: Yaml = serde_yaml::from_str(&text).expect("valid YAML");
    check_exporter_config(&config, "examples/atlas-backup-exporter.yml");

    // What the example must show: credentials from the environment (no `auth` section, so the
    // README's `export MONGODB_ATLAS_…` is what the exporter uses), both kinds of `auth` commented
    // out, discovery, export_job_ids and static labels.
    assert!(
        config["atlas"].get("auth").is_none(),
        "no auth section: the README's commands put the credentials in the environment"
    );
    for commented in ["# auth:", "service_account:", "api_key:"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with('#') && l.contains(commented)),
            "{commented} shown, commented out"
        );
    }
    for variable in [
        "MONGODB_ATLAS_CLIENT_ID",
        "MONGODB_ATLAS_CLIENT_SECRET",
        "MONGODB_ATLAS_PUBLIC_API_KEY",
        "MONGODB_ATLAS_PRIVATE_API_KEY",
    ] {
        assert!(
            text.contains(variable),
            "the comments should name {variable}"
        );
    }
    let targets = seq(&config, "targets");
    assert!(
        targets.iter().any(|t| t.get("clusters").is_none()),
        "a target with discovered clusters"
    );
    assert!(
        targets
            .iter()
            .flat_map(|t| t
                .get("clusters")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten())
            .any(|c| c.get("export_job_ids").is_some()),
        "a cluster with export_job_ids"
    );
    assert!(
        targets.iter().any(|t| t.get("labels").is_some()),
        "static labels"
    );
}

/// Every exporter config that ships (a YAML file under `examples/` with `targets`, or one embedded in a
/// Kubernetes ConfigMap there) passes the exporter's own parser, which refuses unknown keys.
#[test]
fn shipped_exporter_configs_pass_the_exporters_parser() {
    let mut configs = Vec::new();
    let mut dirs = vec![repo_path("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing examples/") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                continue;
            }
            let name = path
                .strip_prefix(repo_path(""))
                .expect("under the repository")
                .display()
                .to_string();
            let text = read(&name);
            let document: Yaml = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
            if is_exporter_config(&document) {
                configs.push((name.clone(), text.clone()));
            }
            if document["kind"].as_str() == Some("ConfigMap") {
                for (key, value) in document["data"].as_mapping().into_iter().flatten() {
                    let Some(embedded) = value.as_str() else {
                        continue;
                    };
                    let parsed: Option<Yaml> = serde_yaml::from_str(embedded).ok();
                    if parsed.as_ref().is_some_and(is_exporter_config) {
                        let key = key.as_str().unwrap_or_default();
                        configs.push((format!("{name} (data.{key})"), embedded.to_owned()));
                    }
                }
            }
        }
    }
    let names: BTreeSet<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "examples/atlas-backup-exporter.yml",
        "examples/kubernetes/configmap.yaml (data.atlas-backup-exporter.yml)",
    ] {
        assert!(names.contains(wanted), "{wanted} not found among {names:?}");
    }
    for (name, text) in &configs {
        if let Err(error) = atlas_backup_exporter::config::parse(text, name) {
            panic!("the shipped exporter config {name} is refused by the exporter: {error}");
        }
    }
}

/// An exporter config has a list of `targets` at the top (Prometheus's files have them deeper).
fn is_exporter_config(document: &Yaml) -> bool {
    document.get("targets").is_some_and(Yaml::is_sequence)
}

// ------------------------------------------------------------------------------------------------
// Kubernetes

#[test]
fn prometheus_rule_holds_the_same_groups_as_alerts_yml() {
    let rule = yaml("examples/kubernetes/prometheusrule.yaml");
    assert_eq!(string(&rule, "apiVersion"), "monitoring.coreos.com/v1");
    assert_eq!(string(&rule, "kind"), "PrometheusRule");
    let alerts = yaml("examples/alerts.yml");
    assert_eq!(
        rule["spec"]["groups"], alerts["groups"],
        "examples/kubernetes/prometheusrule.yaml differs from examples/alerts.yml: regenerate it \
         (the command is in its header)"
    );
}

#[test]
fn kubernetes_manifests_fit_together() {
    let kustomization = yaml("examples/kubernetes/kustomization.yaml");
    let mut by_kind = BTreeMap::new();
    for file in seq(&kustomization, "resources")
        .iter()
        .filter_map(Yaml::as_str)
    {
        let manifest = yaml(&format!("examples/kubernetes/{file}"));
        let kind = string(&manifest, "kind").to_owned();
        assert!(
            by_kind.insert(kind, manifest).is_none(),
            "two manifests of one kind"
        );
    }
    let kinds: BTreeSet<&str> = by_kind.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PrometheusRule",
            "Service",
            "ServiceMonitor"
        ])
    );
    // The Secret is referred to, never shipped with values.
    for entry in std::fs::read_dir(repo_path("examples/kubernetes")).expect("the directory") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a file");
        assert!(
            !text.contains("kind: Secret"),
            "a Secret with values is shipped"
        );
    }

    let deployment = &by_kind["Deployment"];
    let pod = &deployment["spec"]["template"];
    let pod_labels = pod["metadata"]["labels"].as_mapping().expect("pod labels");
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("selector");
    assert!(
        is_subset(selector, pod_labels),
        "the Deployment does not select its pods"
    );
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"],
        Yaml::Bool(true)
    );
    let container = &seq(&pod["spec"], "containers")[0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], Yaml::Bool(false));
    assert_eq!(security["readOnlyRootFilesystem"], Yaml::Bool(true));
    let secret_refs: Vec<&str> = seq(container, "envFrom")
        .iter()
        .filter_map(|e| e["secretRef"]["name"].as_str())
        .collect();
    assert_eq!(secret_refs.len(), 1, "credentials from one Secret");
    assert!(
        container.get("env").is_none(),
        "no literal environment values in the Deployment"
    );
    let port = seq(container, "ports")
        .iter()
        .find(|p| p["name"].as_str() == Some("metrics"))
        .expect("a port named metrics");
    assert_eq!(port["containerPort"].as_u64(), Some(9947));

    // The config: the ConfigMap, mounted where --config.file points.
    let configmap = &by_kind["ConfigMap"];
    let config_name = string(&configmap["metadata"], "name");
    let volume = seq(&pod["spec"], "volumes")
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(config_name))
        .expect("a volume from the ConfigMap");
    let mount = seq(container, "volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the config volume mounted");
    let config_file = seq(container, "args")
        .iter()
        .filter_map(Yaml::as_str)
        .find_map(|a| a.strip_prefix("--config.file="))
        .expect("--config.file");
    let (dir, key) = config_file.rsplit_once('/').expect("a path");
    assert_eq!(dir, string(mount, "mountPath"));
    let embedded = string(&configmap["data"], key);
    let config: Yaml = serde_yaml::from_str(embedded).expect("the ConfigMap's config is YAML");
    check_exporter_config(&config, "the ConfigMap");
    assert!(
        config["atlas"].get("auth").is_none(),
        "the ConfigMap must take credentials from the Secret, not hold them"
    );

    // Service and ServiceMonitor: the job label is the Service's name.
    let service = &by_kind["Service"];
    assert_eq!(string(&service["metadata"], "name"), SCRAPE_JOB);
    let service_selector = service["spec"]["selector"].as_mapping().expect("selector");
    assert!(
        is_subset(service_selector, pod_labels),
        "the Service selects no pod"
    );
    let service_port = &seq(&service["spec"], "ports")[0];
    assert_eq!(service_port["targetPort"].as_str(), Some("metrics"));
    let monitor = &by_kind["ServiceMonitor"];
    let monitor_selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("ServiceMonitor selector");
    let service_labels = service["metadata"]["labels"].as_mapping().expect("labels");
    assert!(
        is_subset(monitor_selector, service_labels),
        "the ServiceMonitor selects no Service"
    );
    let endpoint = &seq(&monitor["spec"], "endpoints")[0];
    assert_eq!(endpoint["port"], service_port["name"]);
    let prometheus = yaml("examples/prometheus.yml");
    let job = &seq(&prometheus, "scrape_configs")[0];
    for (theirs, ours) in [
        ("interval", "scrape_interval"),
        ("scrapeTimeout", "scrape_timeout"),
    ] {
        assert_eq!(
            duration_secs(string(endpoint, theirs)),
            duration_secs(string(job, ours)),
            "ServiceMonitor {theirs} differs from prometheus.yml's {ours}"
        );
    }
}

/// The manifests of kinds Kubernetes itself defines, checked against its API schema by
/// `kubernetes-validate --strict` (unknown fields, wrong types, missing required fields). The
/// Prometheus Operator's kinds (CRDs) and the Kustomization have no schema there: the tests around
/// this one check what matters in them.
#[test]
fn kubernetes_manifests_pass_the_schema_validator() {
    const NO_SCHEMA: &[&str] = &[
        "monitoring.coreos.com/v1",
        "kustomize.config.k8s.io/v1beta1",
    ];
    let mut core = Vec::new();
    for entry in std::fs::read_dir(repo_path("examples/kubernetes")).expect("the directory") {
        let path = entry.expect("an entry").path();
        let file = format!(
            "examples/kubernetes/{}",
            path.file_name().expect("a name").to_string_lossy()
        );
        let manifest = yaml(&file);
        if !NO_SCHEMA.contains(&string(&manifest, "apiVersion")) {
            let resource = format!(
                "{}/{}",
                string(&manifest, "kind").to_lowercase(),
                string(&manifest["metadata"], "name")
            );
            core.push((file, resource));
        }
    }
    core.sort();
    let files: Vec<&str> = core.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(
        files,
        [
            "examples/kubernetes/configmap.yaml",
            "examples/kubernetes/deployment.yaml",
            "examples/kubernetes/networkpolicy.yaml",
            "examples/kubernetes/service-replicas.yaml",
            "examples/kubernetes/service.yaml",
        ]
    );
    let Some(validate) = tool("kubernetes-validate") else {
        return;
    };
    let mut args = vec!["--strict"];
    args.extend(files.iter().copied());
    let out = run(&validate, &args, &repo_path(""));
    assert!(out.success, "kubernetes-validate --strict:\n{}", out.text);
    for (file, resource) in &core {
        let passed = format!("{file} passed for resource {resource}");
        assert!(
            out.text.contains(&passed),
            "no `{passed}` in:\n{}",
            out.text
        );
    }
    assert!(!out.text.contains("WARN"), "{}", out.text);

    // The validator is strict: a misspelt field in a copy of the Deployment fails it.
    let dir = TempDir::new("kubernetes-validate");
    let misspelt = dir.write(
        "deployment.yaml",
        &read("examples/kubernetes/deployment.yaml")
            .replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
    );
    let out = run(
        &validate,
        &["--strict", &misspelt.to_string_lossy()],
        dir.path(),
    );
    assert!(!out.success, "a misspelt field passed:\n{}", out.text);
    assert!(out.text.contains("readOnlyRootFileSystem"), "{}", out.text);
}

/// The ServiceMonitor is a CRD the validator has no schema for: its fields are checked here
/// against the Prometheus Operator's Endpoint fields this example may use.
#[test]
fn service_monitor_uses_only_known_fields() {
    let monitor = yaml("examples/kubernetes/servicemonitor.yaml");
    assert_eq!(string(&monitor, "apiVersion"), "monitoring.coreos.com/v1");
    let spec = monitor["spec"].as_mapping().expect("spec");
    let keys: BTreeSet<&str> = spec.keys().filter_map(Yaml::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["endpoints", "selector"]));
    const ENDPOINT: &[&str] = &[
        "port",
        "path",
        "scheme",
        "interval",
        "scrapeTimeout",
        "basicAuth",
        "tlsConfig",
        "honorLabels",
    ];
    for endpoint in seq(&monitor["spec"], "endpoints") {
        for key in endpoint.as_mapping().expect("an endpoint").keys() {
            let key = key.as_str().expect("a string key");
            assert!(
                ENDPOINT.contains(&key),
                "unknown ServiceMonitor field {key}"
            );
        }
        assert_eq!(string(endpoint, "path"), "/metrics");
    }
}

/// Liveness and readiness are distinct endpoints of the exporter, on its port, and the pod is
/// given longer than the exporter's drain to stop.
#[test]
fn deployment_probes_liveness_and_readiness_apart() {
    let deployment = yaml("examples/kubernetes/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &seq(pod, "containers")[0];
    let probe = |name: &str| {
        let get = &container[name]["httpGet"];
        (
            string(get, "path").to_owned(),
            string(get, "port").to_owned(),
        )
    };
    assert_eq!(
        probe("livenessProbe"),
        (web::HEALTHY.to_owned(), "metrics".to_owned())
    );
    assert_eq!(
        probe("readinessProbe"),
        (web::READY.to_owned(), "metrics".to_owned())
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let drain = atlas_backup_exporter::Options::default()
        .shutdown_grace
        .as_secs();
    assert!(
        grace > drain,
        "the pod is killed after {grace} s, before the exporter's {drain} s drain ends"
    );
}

/// The NetworkPolicy covers the exporter's pods, lets Prometheus in on the metrics port, and lets
/// out DNS and HTTPS only.
#[test]
fn network_policy_admits_prometheus_and_lets_out_dns_and_https() {
    let policy = yaml("examples/kubernetes/networkpolicy.yaml");
    let deployment = yaml("examples/kubernetes/deployment.yaml");
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let selector = policy["spec"]["podSelector"]["matchLabels"]
        .as_mapping()
        .expect("podSelector");
    assert!(
        is_subset(selector, pod_labels),
        "the policy selects no exporter pod"
    );
    let types: Vec<&str> = seq(&policy["spec"], "policyTypes")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(types, ["Ingress", "Egress"]);

    let ports = |rule: &Yaml| -> Vec<(String, String)> {
        seq(rule, "ports")
            .iter()
            .map(|p| {
                let port = match &p["port"] {
                    Yaml::Number(n) => n.to_string(),
                    other => other.as_str().expect("a port").to_owned(),
                };
                (string(p, "protocol").to_owned(), port)
            })
            .collect()
    };
    let pair = |protocol: &str, port: &str| (protocol.to_owned(), port.to_owned());
    let ingress = seq(&policy["spec"], "ingress");
    assert_eq!(ingress.len(), 1, "one way in");
    assert_eq!(ports(&ingress[0]), [pair("TCP", "metrics")]);
    let from = &seq(&ingress[0], "from")[0];
    assert_eq!(
        from["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str(),
        Some("prometheus")
    );
    let egress = seq(&policy["spec"], "egress");
    let allowed: BTreeSet<(String, String)> = egress.iter().flat_map(ports).collect();
    assert_eq!(
        allowed,
        BTreeSet::from([pair("UDP", "53"), pair("TCP", "53"), pair("TCP", "443")])
    );
    // DNS goes to the cluster DNS only; 443 anywhere (Atlas's addresses are not fixed).
    let dns = egress
        .iter()
        .find(|rule| ports(rule).contains(&pair("UDP", "53")))
        .expect("a DNS rule");
    assert!(
        seq(dns, "to")
            .iter()
            .all(|peer| peer.get("ipBlock").is_none()),
        "DNS open to any address"
    );
}

/// The headless Service the sharded Prometheus finds the replicas through: the name its DNS
/// discovery asks for, every exporter pod, and not the label the ServiceMonitor selects.
#[test]
fn headless_service_for_sharding_matches_the_sharded_prometheus() {
    let service = yaml("examples/kubernetes/service-replicas.yaml");
    assert_eq!(string(&service, "kind"), "Service");
    assert_eq!(string(&service["spec"], "clusterIP"), "None");
    let name = string(&service["metadata"], "name");
    let sharded = yaml("examples/prometheus-sharded.yml");
    let job = seq(&sharded, "scrape_configs")
        .iter()
        .find(|j| string(j, "job_name") == "atlas-backup-exporter-replicas")
        .expect("the replicas job");
    let dns = &seq(job, "dns_sd_configs")[0];
    let names: Vec<&str> = seq(dns, "names").iter().filter_map(Yaml::as_str).collect();
    assert_eq!(names, [format!("{name}.monitoring.svc.cluster.local")]);
    let port = &seq(&service["spec"], "ports")[0];
    assert_eq!(port["port"].as_u64(), dns["port"].as_u64());
    assert_eq!(port["targetPort"].as_str(), Some("metrics"));

    let deployment = yaml("examples/kubernetes/deployment.yaml");
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod labels");
    let selector = service["spec"]["selector"].as_mapping().expect("selector");
    assert!(is_subset(selector, pod_labels), "selects no exporter pod");
    let monitor = yaml("examples/kubernetes/servicemonitor.yaml");
    let monitor_selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("ServiceMonitor selector");
    let labels = service["metadata"]["labels"].as_mapping().expect("labels");
    assert!(
        !is_subset(monitor_selector, labels),
        "the ServiceMonitor would scrape every pod twice"
    );
}

// ------------------------------------------------------------------------------------------------
// systemd and Docker

#[test]
fn systemd_unit_keeps_credentials_out_and_is_hardened() {
    let unit = read("examples/systemd/atlas-backup-exporter.service");
    let service = unit_section(&unit, "Service");
    let has = |key: &str| service.iter().any(|(k, _)| k == key);
    assert!(
        has("EnvironmentFile") || has("LoadCredential"),
        "credentials through EnvironmentFile or LoadCredential"
    );
    for (key, value) in &service {
        assert!(
            !(key == "Environment" && value.contains("MONGODB_ATLAS_")),
            "a credential in the unit: {key}={value}"
        );
    }
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert!(
            service.iter().any(|(k, v)| k == key && v == value),
            "missing {key}={value}"
        );
    }
    assert!(
        has("DynamicUser") || has("User"),
        "runs as an unprivileged user"
    );
    let exec = &service
        .iter()
        .find(|(k, _)| k == "ExecStart")
        .expect("ExecStart")
        .1;
    assert!(exec.contains("--config.file="), "{exec}");
    // The path the Debian package installs the binary at.
    assert!(
        exec.starts_with("/usr/bin/atlas-backup-exporter "),
        "{exec}"
    );

    // The environment file example holds the Atlas CLI's variables and nothing else.
    let env = read("examples/systemd/atlas-backup-exporter.env");
    for line in env
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, _) = line.split_once('=').expect("KEY=value");
        assert!(
            [
                "MONGODB_ATLAS_CLIENT_ID",
                "MONGODB_ATLAS_CLIENT_SECRET",
                "MONGODB_ATLAS_PUBLIC_API_KEY",
                "MONGODB_ATLAS_PRIVATE_API_KEY"
            ]
            .contains(&key),
            "unexpected variable {key}"
        );
    }

    // systemd's own check, where systemd-analyze exists. It insists that the program exists, so the
    // copy runs /bin/true instead.
    let Some(analyze) = optional_tool("systemd-analyze") else {
        return;
    };
    let dir = TempDir::new("systemd");
    let unit_path = dir.path().join("atlas-backup-exporter.service");
    std::fs::write(
        &unit_path,
        unit.replace(
            "ExecStart=/usr/bin/atlas-backup-exporter",
            "ExecStart=/bin/true",
        ),
    )
    .expect("writing the unit");
    let out = run(
        &analyze,
        &["verify", &unit_path.to_string_lossy()],
        dir.path(),
    );
    assert!(
        out.success && out.text.trim().is_empty(),
        "systemd-analyze verify:\n{}",
        out.text
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_ca_certificates() {
    let dockerfile = read("examples/Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 2, "a build stage and a runtime stage");
    assert!(
        lines[froms[0]].contains("rust:"),
        "builds with the Rust image"
    );
    // The allocator, jemalloc, builds with make; the slim Rust image has a C compiler only.
    let build = &lines[froms[0]..froms[1]];
    assert!(
        build
            .iter()
            .any(|l| l.contains("apt-get install") && l.contains(" make")),
        "the build stage installs make for jemalloc"
    );
    let runtime = &lines[*froms.last().expect("a stage")..];
    assert!(
        runtime.iter().any(|l| l.contains("ca-certificates")),
        "the runtime installs the CA certificates"
    );
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER in the runtime stage");
    assert!(
        !["root", "0", "0:0"].contains(&user.trim()),
        "runs as {user}"
    );
    assert!(runtime.contains(&"EXPOSE 9947"));
    assert!(
        !dockerfile.to_lowercase().contains("libssl"),
        "rustls needs no OpenSSL"
    );
}

/// Every image the Dockerfile starts from, and its syntax frontend, is pinned to a version (no
/// floating `1` or `bookworm` tag), and the image carries the OCI labels with this crate's
/// version and licence.
#[test]
fn dockerfile_pins_its_bases_and_labels_the_image() {
    let dockerfile = read("examples/Dockerfile");
    let is_version = |text: &str, parts: usize| {
        let numbers: Vec<&str> = text.split('.').collect();
        numbers.len() == parts
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let syntax = dockerfile
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# syntax=docker/dockerfile:"))
        .expect("a syntax line first");
    assert!(is_version(syntax, 3), "syntax frontend {syntax}");

    // Instructions, continuation lines joined, comments left out.
    let joined = dockerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().map(str::trim).collect();
    // ARG defaults, to resolve ${...} in FROM lines and labels.
    let mut args = BTreeMap::new();
    for line in &lines {
        if let Some((name, value)) = line.strip_prefix("ARG ").and_then(|a| a.split_once('=')) {
            args.insert(format!("${{{name}}}"), value.trim_matches('"').to_owned());
        }
    }
    let resolve = |text: &str| {
        args.iter().fold(text.to_owned(), |out, (name, value)| {
            out.replace(name, value)
        })
    };
    let froms: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|f| resolve(f.split_whitespace().next().expect("an image")))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    let rust = froms[0]
        .strip_prefix("rust:")
        .and_then(|t| t.strip_suffix("-slim-bookworm"))
        .unwrap_or_else(|| panic!("the build stage's image {}", froms[0]));
    assert!(is_version(rust, 3), "Rust {rust} is not pinned");
    let minor = |version: &str| -> (u32, u32) {
        let mut parts = version
            .split('.')
            .map(|n| n.parse::<u32>().expect("a number"));
        (parts.next().expect("major"), parts.next().expect("minor"))
    };
    let msrv = env!("CARGO_PKG_RUST_VERSION");
    assert!(
        minor(rust) >= minor(msrv),
        "Rust {rust} is older than rust-version {msrv}"
    );
    let debian = froms[1]
        .strip_prefix("debian:")
        .and_then(|t| t.strip_suffix("-slim"))
        .unwrap_or_else(|| panic!("the runtime's image {}", froms[1]));
    assert!(is_version(debian, 2), "Debian {debian} is not pinned");
    assert!(
        debian.starts_with("12."),
        "the runtime must be the builder's Debian (bookworm, 12), not {debian}"
    );

    let mut labels = BTreeMap::new();
    for line in lines.iter().filter_map(|l| l.strip_prefix("LABEL ")) {
        let resolved = resolve(line);
        // key="value" pairs; values hold spaces but no quotes.
        for pair in resolved.split("\" ").filter(|p| !p.trim().is_empty()) {
            let (key, value) = pair.trim().split_once("=\"").expect("key=\"value\"");
            labels.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
        }
    }
    let label = |key: &str| {
        labels
            .get(&format!("org.opencontainers.image.{key}"))
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no OCI label {key} in {labels:?}"))
    };
    assert_eq!(label("title"), "atlas-backup-exporter");
    assert_eq!(label("description"), env!("CARGO_PKG_DESCRIPTION"));
    assert_eq!(label("version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(label("licenses"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(label("revision"), "unknown", "set with --build-arg");
    assert_eq!(label("base.name"), froms[1]);
}

// ------------------------------------------------------------------------------------------------
// The licence and the Debian package

#[test]
fn license_is_the_apache_2_0_text_that_cargo_toml_names() {
    use sha2::Digest as _;
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
    let digest = sha2::Sha256::digest(read("LICENSE").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // The SHA-256 of the Apache Software Foundation's LICENSE-2.0.txt, byte for byte.
    assert_eq!(
        hex,
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    );
}

/// cargo-deb's metadata (read through `cargo metadata`) puts the binary, the config and the
/// credentials where the unit it installs expects them, the credentials root-only, and the unit
/// through `systemd-units` (so under /usr/lib/systemd/system), neither enabled nor started.
#[test]
fn debian_package_installs_what_the_unit_reads() {
    let out = run(
        Path::new(env!("CARGO")),
        &["metadata", "--format-version=1", "--no-deps", "--offline"],
        &repo_path(""),
    );
    assert!(out.success, "cargo metadata:\n{}", out.text);
    let json_start = out.text.find('{').expect("JSON");
    let metadata: Json = serde_json::Deserializer::from_str(&out.text[json_start..])
        .into_iter()
        .next()
        .expect("a JSON document")
        .expect("cargo metadata's JSON");
    let package = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "atlas-backup-exporter")
        .expect("this package");
    let deb = &package["metadata"]["deb"];

    let mut by_dest = BTreeMap::new();
    for asset in deb["assets"].as_array().expect("assets") {
        let asset = asset.as_array().expect("[source, dest, mode]");
        let [source, dest, mode] = [0, 1, 2].map(|i| json_str(&asset[i]).to_owned());
        if !source.starts_with("target/") {
            assert!(repo_path(&source).is_file(), "asset {source} is missing");
        }
        by_dest.insert(dest, (source, mode));
    }
    let asset = |dest: &str| {
        by_dest
            .get(dest)
            .cloned()
            .unwrap_or_else(|| panic!("nothing installed at /{dest}: {by_dest:?}"))
    };
    let binary = "usr/bin/atlas-backup-exporter";
    assert_eq!(
        by_dest.get("usr/bin/"),
        Some(&(
            "target/release/atlas-backup-exporter".to_owned(),
            "755".to_owned()
        )),
        "the binary as /{binary}"
    );
    let config = "etc/atlas-backup-exporter/atlas-backup-exporter.yml";
    let (config_source, config_mode) = asset(config);
    assert_eq!(config_mode, "644");
    if let Err(error) = atlas_backup_exporter::config::parse(&read(&config_source), config) {
        panic!("the packaged config {config_source} is refused: {error}");
    }
    let credentials = "etc/atlas-backup-exporter/credentials.env";
    assert_eq!(
        asset(credentials),
        (
            "examples/systemd/atlas-backup-exporter.env".to_owned(),
            "600".to_owned()
        )
    );

    let units = &deb["systemd-units"];
    assert_eq!(units["enable"], Json::Bool(false));
    assert_eq!(units["start"], Json::Bool(false));
    let unit_path = format!(
        "{}/atlas-backup-exporter.service",
        json_str(&units["unit-scripts"])
    );
    let unit = read(&unit_path);
    let service = unit_section(&unit, "Service");
    let value = |key: &str| {
        service
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{unit_path} has no {key}"))
    };
    let exec = value("ExecStart");
    assert!(exec.starts_with(&format!("/{binary} ")), "{exec}");
    assert!(
        exec.contains(&format!("--config.file=/{config} ")),
        "{exec}"
    );
    assert_eq!(value("EnvironmentFile"), format!("/{credentials}"));
    assert_eq!(value("DynamicUser"), "yes");
}

// ------------------------------------------------------------------------------------------------
// Helpers

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn yaml(relative: &str) -> Yaml {
    serde_yaml::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

fn string<'a>(value: &'a Yaml, key: &str) -> &'a str {
    value
        .get(key)
        .and_then(Yaml::as_str)
        .unwrap_or_else(|| panic!("no string `{key}` in {value:?}"))
}

fn seq<'a>(value: &'a Yaml, key: &str) -> &'a [Yaml] {
    value
        .get(key)
        .and_then(Yaml::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no list `{key}` in {value:?}"))
}

fn json_str(value: &Json) -> &str {
    value.as_str().unwrap_or_default()
}

fn is_subset(small: &serde_yaml::Mapping, big: &serde_yaml::Mapping) -> bool {
    !small.is_empty() && small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// Every rule of examples/alerts.yml, recording and alerting.
fn all_rules() -> Vec<Yaml> {
    let alerts = yaml("examples/alerts.yml");
    seq(&alerts, "groups")
        .iter()
        .flat_map(|g| seq(g, "rules").to_vec())
        .collect()
}

fn alert_rules() -> Vec<Yaml> {
    all_rules()
        .into_iter()
        .filter(|r| r.get("alert").is_some())
        .collect()
}

/// The threshold recording rules: name to value, from their `vector(N)`.
fn thresholds() -> BTreeMap<String, f64> {
    all_rules()
        .iter()
        .filter_map(|r| {
            let name = r.get("record")?.as_str()?;
            let expr = string(r, "expr").trim();
            let number = expr.strip_prefix("vector(")?.strip_suffix(')')?;
            let value = number
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {number}: {e}"));
            Some((name.to_owned(), value))
        })
        .collect()
}

/// Seconds in a Prometheus duration such as `90s`, `2m`, `26h` or `1h30m`.
fn duration_secs(text: &str) -> f64 {
    let mut rest = text.trim();
    if rest == "0" {
        return 0.0;
    }
    assert!(!rest.is_empty(), "empty duration");
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or_else(|| panic!("duration `{text}` lacks a unit"));
        assert!(digits > 0, "duration `{text}`");
        let number: f64 = rest[..digits].parse().expect("digits");
        rest = &rest[digits..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            other => panic!("duration `{text}`: unit `{other}`"),
        };
        total += number * unit;
        rest = &rest[unit_end..];
    }
    total
}

/// The `atlas_backup_export*` names (metrics and recorded series) an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("atlas_backup_export") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every panel, including those inside collapsed rows.
fn all_panels(dashboard: &Json) -> Vec<Json> {
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel.clone());
        if let Some(nested) = panel["panels"].as_array() {
            panels.extend(nested.iter().cloned());
        }
    }
    panels
}

/// Every panel query, variables substituted, keyed `panel_<id>_<refId>`.
fn dashboard_exprs() -> Vec<(String, String)> {
    let dashboard: Json =
        serde_json::from_str(&read("dashboards/atlas-backup-exports.json")).expect("JSON");
    all_panels(&dashboard)
        .iter()
        .flat_map(|panel| {
            let id = panel["id"].as_u64().unwrap_or_default();
            panel["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    (
                        format!("panel_{id}_{}", json_str(&t["refId"])),
                        substitute_variables(json_str(&t["expr"])),
                    )
                })
        })
        .collect()
}

fn substitute_variables(expr: &str) -> String {
    let mut out = expr.to_owned();
    // `${name}` first, then `$name`; the longest names first so `$__interval` does not eat
    // `$__interval_ms`.
    for (name, value) in GRAFANA_VARIABLES {
        out = out.replace(&format!("${{{}}}", &name[1..]), value);
    }
    for (name, value) in GRAFANA_VARIABLES {
        out = out.replace(name, value);
    }
    assert!(
        !out.contains('$'),
        "a variable the test does not know: {out}"
    );
    out
}

/// A query variable's query, whether Grafana stored it as a string or as an object.
fn variable_query(variable: &Json) -> &str {
    match &variable["query"] {
        Json::String(query) => query,
        other => json_str(&other["query"]),
    }
}

/// The expression of a `query_result(expr)` query.
fn query_result(query: &str) -> &str {
    query
        .trim()
        .strip_prefix("query_result(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a query_result() query: {query}"))
}

/// `label_values(selector, label)` split into its selector and label.
fn label_values(query: &str) -> (&str, &str) {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values() query: {query}"));
    let (selector, label) = inner
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    (selector.trim(), label.trim())
}

/// Checks an exporter config against the documented keys (the exporter issues' config reference):
/// an unknown key is an error for the exporter, so the examples must not have one.
fn check_exporter_config(config: &Yaml, source: &str) {
    const KEYS: &[&str] = &[
        "atlas",
        "atlas.base_url",
        "atlas.api_version",
        "atlas.request_timeout",
        "atlas.max_concurrent_requests",
        "atlas.max_response_size",
        "atlas.auth",
        "atlas.auth.api_key",
        "atlas.auth.api_key.public_key",
        "atlas.auth.api_key.public_key_file",
        "atlas.auth.api_key.private_key",
        "atlas.auth.api_key.private_key_file",
        "atlas.auth.service_account",
        "atlas.auth.service_account.client_id",
        "atlas.auth.service_account.client_id_file",
        "atlas.auth.service_account.client_secret",
        "atlas.auth.service_account.client_secret_file",
        "targets",
        "targets[].group_id",
        "targets[].clusters",
        "targets[].clusters[].name",
        "targets[].clusters[].export_job_ids",
        "targets[].labels",
        "export_jobs",
        "export_jobs.max_age",
        "export_jobs.max_pages",
        "export_jobs.max_per_cluster",
        "collection",
        "collection.timeout",
        "collection.timeout_offset",
        "collection.cache_ttl",
        "collection.on_metrics",
        "discovery",
        "discovery.interval",
        "discovery.all_projects",
    ];
    const DURATIONS: &[&str] = &[
        "atlas.request_timeout",
        "export_jobs.max_age",
        "collection.timeout",
        "collection.timeout_offset",
        "collection.cache_ttl",
        "discovery.interval",
    ];

    fn walk(value: &Yaml, path: &str, source: &str) {
        match value {
            Yaml::Mapping(map) if path == "targets[].labels" => {
                for (key, label_value) in map {
                    let key = key.as_str().expect("label names are strings");
                    let valid = key.chars().enumerate().all(|(i, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                    });
                    assert!(
                        valid && !key.starts_with("__"),
                        "{source}: bad label name {key}"
                    );
                    assert!(
                        !atlas_backup_exporter::labels::is_reserved(key),
                        "{source}: label {key} is taken"
                    );
                    assert!(
                        label_value.as_str().is_some(),
                        "{source}: label {key} needs a string"
                    );
                }
            }
            Yaml::Mapping(map) => {
                for (key, child) in map {
                    let key = key.as_str().expect("keys are strings");
                    let child_path = if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    };
                    assert!(
                        KEYS.contains(&child_path.as_str()),
                        "{source}: unknown key {child_path}"
                    );
                    if DURATIONS.contains(&child_path.as_str()) {
                        duration_secs(child.as_str().unwrap_or_else(|| {
                            panic!("{source}: {child_path} must be a duration")
                        }));
                    }
                    walk(child, &child_path, source);
                }
            }
            Yaml::Sequence(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), source);
                }
            }
            _ => {}
        }
    }
    walk(config, "", source);

    let mut projects = BTreeSet::new();
    for target in seq(config, "targets") {
        let group_id = string(target, "group_id");
        assert!(
            group_id.len() == 24 && group_id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{source}: group_id {group_id} is not 24 hex digits"
        );
        assert!(
            projects.insert(group_id),
            "{source}: group_id {group_id} twice"
        );
    }
}

/// The `key=value` lines of one section of a systemd unit, continuation lines joined.
fn unit_section(unit: &str, section: &str) -> Vec<(String, String)> {
    let joined = unit.replace("\\\n", " ");
    let mut current = "";
    let mut entries = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name;
        } else if current == section {
            let (key, value) = line.split_once('=').expect("key=value");
            entries.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    entries
}

struct Ran {
    success: bool,
    /// stdout and stderr together, for messages and searches.
    text: String,
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Ran {
    let output = Spawn::program(program).args(args).current_dir(dir).output();
    Ran {
        success: output.success(),
        text: format!("{}{}", output.stdout, output.stderr),
    }
}
