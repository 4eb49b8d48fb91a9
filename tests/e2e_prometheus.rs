//! The shipped Prometheus, Alertmanager and Grafana files proven against the real servers: the
//! stand-in Atlas with the demo's data, the exporter, a real Prometheus with a config derived from
//! `examples/prometheus.yml` (scraping and evaluating every second) and `examples/alerts.yml`, and
//! a real Alertmanager with `examples/alertmanager.yml`. Every dashboard query must return data,
//! every rule must evaluate cleanly, and a new failed job must raise the failure alert.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use fake_atlas::{DEMO_GROUP_ID, job};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use time::{Duration, OffsetDateTime};

use crate::servers::{Server, TempDir, label, repo_path, repo_yaml, run_tool, set, wait_until};
use crate::support::{self, Exporter};
use crate::tools::tool;

/// The scrape job the alerts and the dashboard select.
const JOB: &str = "atlas-backup-exporter";
/// The demo's failed job (it has a `stateReason`).
const DEMO_FAILED_JOB: &str = "6a7945592c88faeba59d5e90";
/// Added to the demo: cancelled 10 minutes ago without a `stateReason`, so that the failures panel
/// (one-hour steps) has a bar and the alert shows its `error_code="none"` branch.
const CANCELLED_JOB: &str = "6a7945592c88faeba59d5ea1";
/// The job the stand-in starts reporting as failed halfway through the test.
const NEW_FAILED_JOB: &str = "6a7945592c88faeba59d5eb2";
const NEW_ERROR_CODE: &str = "EXPORT_BUCKET_NOT_ACCESSIBLE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_shows_every_panel_and_alerts_on_a_failed_export() {
    real_prometheus(true).await;
}

/// The same with the project names lookup off (`metadata.projects: false`): no
/// `atlas_backup_export_project_info`, and the same alert names the project by its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_alerts_with_ids_when_the_names_lookup_is_off() {
    real_prometheus(false).await;
}

/// The whole run; `names`: whether the exporter looks up project names.
async fn real_prometheus(names: bool) {
    let (Some(prometheus), Some(promtool), Some(alertmanager)) =
        (tool("prometheus"), tool("promtool"), tool("alertmanager"))
    else {
        return;
    };

    // The demo's data plus a recently cancelled job.
    let fake = support::fake();
    let now = OffsetDateTime::now_utc();
    let _demo = fake.seed_demo(now);
    fake.put_job(
        DEMO_GROUP_ID,
        "Cluster1",
        job(CANCELLED_JOB)
            .state("Cancelled")
            .created(now - Duration::minutes(30))
            .finished(now - Duration::minutes(10))
            .components(2)
            .build(),
    );
    // The project's clusters are discovered, so `discovery_up` exists; the static label must reach
    // the alerts.
    let mut yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {DEMO_GROUP_ID}\n    labels: {{env: demo}}\n"
    );
    if !names {
        yaml.push_str("metadata:\n  projects: false\n");
    }
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;

    // promtool on real scrapes: the whole /metrics and one /probe.
    let (status, metrics) = exporter.get("/metrics").await;
    assert_eq!(status, 200);
    let (status, probe) = exporter
        .get(&format!(
            "/probe?group_id={DEMO_GROUP_ID}&cluster_name=Cluster1"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        metrics.contains("\natlas_backup_export_project_info{"),
        names
    );
    assert!(metrics.contains("\natlas_backup_export_bucket_info{"));
    for (what, text) in [("/metrics", metrics), ("/probe", probe)] {
        let out = run_tool(&promtool, &["check", "metrics"], Some(text.into_bytes())).await;
        assert!(
            out.success && out.text().trim().is_empty(),
            "promtool check metrics on a scrape of {what} complained:\n{}",
            out.text()
        );
    }

    let dir = TempDir::new("prometheus");
    std::fs::copy(
        repo_path("examples/alertmanager.yml"),
        dir.path().join("alertmanager.yml"),
    )
    .expect("copying alertmanager.yml");
    let alertmanager = Server::alertmanager(
        &alertmanager,
        &dir.path().join("alertmanager.yml"),
        dir.path(),
    )
    .await;

    let prometheus = start_prometheus(
        (&prometheus, &promtool),
        &dir,
        exporter.addr,
        &alertmanager.url,
    )
    .await;
    let prometheus = &prometheus;

    // Scraped, and often enough for rate() over the panels' windows.
    wait_until(
        "Prometheus to scrape the exporter three times",
        || async move {
            let targets = prometheus.api("/api/v1/targets", &[]).await;
            let target = targets["activeTargets"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["labels"]["job"] == JOB))
                .cloned()
                .ok_or_else(|| format!("no active target of job {JOB}: {targets}"))?;
            if target["health"] != "up" {
                return Err(format!("the target is not up: {target}"));
            }
            let scrapes = prometheus
                .query(&format!(
                    "count_over_time(atlas_backup_exporter_build_info{{job=\"{JOB}\"}}[1m])"
                ))
                .await;
            match scrapes.first().map(value) {
                Some(n) if n >= 3.0 => Ok(()),
                other => Err(format!("{other:?} scrapes so far")),
            }
        },
    )
    .await;

    check_template_variables(prometheus, names).await;
    check_panels(prometheus, &exporter, names).await;
    check_rules(prometheus).await;

    // On the demo data the failure alert fires for the cancelled job (Cluster1 has exported nothing
    // since), not for the demo's failed job (Cluster0 exported successfully after it); of the three
    // clusters, only Cluster2 (monthly, its last scheduled export 40 days old) is overdue, with no
    // second alert for its stale data: not Cluster0 (monthly, on time), not Cluster1 (no
    // expectation), not Cluster3 (exported by hand 200 days ago, no expectation: the rules
    // shipped before issue 21 paged for it). Nothing else is even pending.
    let demo_alerts = wait_until(
        "the failure alert for the cancelled job, and Cluster2 overdue",
        || async move {
            let alerts = alerts(prometheus).await;
            let seen: BTreeSet<(String, String)> = alerts
                .iter()
                .map(|a| {
                    let job = json_label(a, "export_job_id");
                    let which = if job.is_empty() {
                        json_label(a, "cluster_name")
                    } else {
                        job
                    };
                    (json_label(a, "alertname").to_owned(), which.to_owned())
                })
                .collect();
            let wanted: BTreeSet<(String, String)> = [
                ("AtlasBackupExportFailed", CANCELLED_JOB),
                ("AtlasBackupExportOverdue", "Cluster2"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
            if seen == wanted {
                Ok(alerts)
            } else {
                let states: Vec<String> = alerts
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {}{} ({})",
                            json_label(a, "alertname"),
                            json_label(a, "cluster_name"),
                            json_label(a, "export_job_id"),
                            a["state"]
                        )
                    })
                    .collect();
                Err(states.join(", "))
            }
        },
    )
    .await;
    let overdue = demo_alerts
        .iter()
        .find(|a| json_label(a, "alertname") == "AtlasBackupExportOverdue")
        .expect("the overdue alert");
    assert_labels(
        overdue,
        &[
            ("cluster_name", "Cluster2"),
            ("severity", "critical"),
            ("basis", "schedule_bucket"),
            ("env", "demo"),
            ("job", JOB),
        ],
    );
    // Due since its last scheduled export, 40 days ago, plus its 31 days (the on-demand export 2
    // days ago does not count): 9 days ago, more than its day of grace.
    let since_due: f64 = overdue["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let days = since_due / 86_400.0;
    assert!((8.9..9.1).contains(&days), "{overdue}");
    let cancelled = find_alert(&demo_alerts, CANCELLED_JOB);
    assert_labels(
        cancelled,
        &[
            ("cluster_name", "Cluster1"),
            ("state", "Cancelled"),
            ("error_code", "none"),
        ],
    );

    // Atlas now reports a new failed job of Cluster2 (whose newest success is 2 days old): the alert
    // follows within a scrape and an evaluation.
    let failed_at = OffsetDateTime::now_utc();
    exporter.fake.put_job(
        DEMO_GROUP_ID,
        "Cluster2",
        job(NEW_FAILED_JOB)
            .state("Failed")
            .created(failed_at - Duration::minutes(20))
            .finished(failed_at)
            .state_reason(NEW_ERROR_CODE, "Access denied to bucket")
            .build(),
    );
    let alert = wait_until(
        "AtlasBackupExportFailed for the new failed job",
        || async move {
            alerts(prometheus)
                .await
                .into_iter()
                .find(|a| {
                    json_label(a, "alertname") == "AtlasBackupExportFailed"
                        && json_label(a, "export_job_id") == NEW_FAILED_JOB
                })
                .ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
    assert!(
        ["pending", "firing"].contains(&alert["state"].as_str().unwrap_or_default()),
        "{alert}"
    );
    assert_labels(
        &alert,
        &[
            ("group_id", DEMO_GROUP_ID),
            ("cluster_name", "Cluster2"),
            ("export_job_id", NEW_FAILED_JOB),
            ("state", "Failed"),
            ("error_code", NEW_ERROR_CODE),
            ("severity", "warning"),
            ("env", "demo"),
        ],
    );
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    // The project by the name atlas_backup_export_project_info gives, looked up by the
    // annotation's template; the id stays in the labels and the runbook's command.
    // Without the lookup, the same alert fires with the same labels and names the project by
    // its id.
    let project = if names { "Demo Project" } else { DEMO_GROUP_ID };
    let named = format!("cluster Cluster2 in project {project} ended Failed");
    for part in [NEW_FAILED_JOB, named.as_str(), NEW_ERROR_CODE] {
        assert!(description.contains(part), "{part} not in {description:?}");
    }
    assert_eq!(
        description.contains(DEMO_GROUP_ID),
        !names,
        "{description:?}"
    );
    // The runbook link: the base URL of the recording rule, and the alert's own section.
    let runbook = alert["annotations"]["runbook_url"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        runbook,
        "https://github.com/atlas-backup-exporter/atlas-backup-exporter/blob/main/docs/runbooks.md#atlasbackupexportfailed"
    );

    // And Alertmanager got it, routed by examples/alertmanager.yml to the atlas-backups receiver.
    let filter = format!("export_job_id=\"{NEW_FAILED_JOB}\"");
    let (filter, alertmanager) = (filter.as_str(), &alertmanager);
    let received = first_alert(alertmanager, "the new alert", filter).await;
    let receivers: Vec<&str> = received["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(receivers, ["atlas-backups"], "{received}");
    assert_eq!(received["labels"]["error_code"], NEW_ERROR_CODE);

    // The overdue export pages: examples/alertmanager.yml routes the critical alert to the paging
    // receiver, and nothing holds it back.
    let overdue_filter = "alertname=\"AtlasBackupExportOverdue\"";
    let overdue = first_alert(alertmanager, "the overdue alert", overdue_filter).await;
    assert_eq!(overdue["labels"]["cluster_name"], "Cluster2");
    assert_eq!(overdue["status"]["state"], "active", "{overdue}");
    let receivers: Vec<&str> = overdue["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(receivers, ["atlas-backups-page"], "{overdue}");
}

/// examples/prometheus.yml with the exporter and Alertmanager on loopback, scraping and evaluating
/// every second; everything else (job name, rule file, timeouts' relation) as shipped.
/// The first alert Alertmanager holds that matches `filter`, once it has one.
async fn first_alert(alertmanager: &Server, what: &str, filter: &str) -> Json {
    wait_until(&format!("Alertmanager to receive {what}"), || async move {
        let alerts = alertmanager
            .get_json("/api/v2/alerts", &[("filter", filter)])
            .await?;
        alerts
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .ok_or_else(|| format!("{alerts}"))
    })
    .await
}

/// A real Prometheus in `dir` with `examples/prometheus.yml` pointed at `exporter` and
/// `alertmanager_url` (see [`prometheus_config`]), loading `examples/alerts.yml`, once promtool
/// finds nothing to say about the config.
pub async fn start_prometheus(
    (prometheus, promtool): (&Path, &Path),
    dir: &TempDir,
    exporter: SocketAddr,
    alertmanager_url: &str,
) -> Server {
    let config = prometheus_config(exporter, alertmanager_url);
    let config_path = dir.write(
        "prometheus.yml",
        &serde_yaml::to_string(&config).expect("YAML"),
    );
    std::fs::copy(
        repo_path("examples/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .expect("copying alerts.yml");
    let out = run_tool(
        promtool,
        &["check", "config", &config_path.to_string_lossy()],
        None,
    )
    .await;
    assert!(
        out.success && out.text().contains("SUCCESS") && !out.text().contains("WARNING"),
        "promtool check config on the derived config:\n{}",
        out.text()
    );
    Server::prometheus(prometheus, &config_path, dir.path()).await
}

pub fn prometheus_config(exporter: SocketAddr, alertmanager_url: &str) -> Yaml {
    let mut config = repo_yaml("examples/prometheus.yml");
    set(&mut config["global"], "scrape_interval", "1s");
    set(&mut config["global"], "evaluation_interval", "1s");

    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs in examples/prometheus.yml");
    let job = jobs
        .iter_mut()
        .find(|j| j["job_name"].as_str() == Some(JOB))
        .expect("examples/prometheus.yml has the scrape job atlas-backup-exporter");
    set(job, "scrape_interval", "1s");
    set(job, "scrape_timeout", "1s");
    let statics = job["static_configs"]
        .as_sequence_mut()
        .expect("the job's static_configs");
    assert_eq!(
        statics.len(),
        1,
        "one static config in examples/prometheus.yml"
    );
    set(
        &mut statics[0],
        "targets",
        Yaml::Sequence(vec![exporter.to_string().into()]),
    );

    let alertmanagers = config["alerting"]["alertmanagers"]
        .as_sequence_mut()
        .expect("alerting.alertmanagers in examples/prometheus.yml");
    assert_eq!(alertmanagers.len(), 1);
    let host = alertmanager_url.trim_start_matches("http://");
    set(
        &mut alertmanagers[0]["static_configs"][0],
        "targets",
        Yaml::Sequence(vec![host.into()]),
    );
    config
}

// ------------------------------------------------------------------------------------------------
// The dashboard

fn dashboard() -> Json {
    let text = std::fs::read_to_string(repo_path("dashboards/atlas-backup-exports.json"))
        .expect("reading the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel, those inside rows included.
fn panels(dashboard: &Json) -> Vec<Json> {
    fn walk(panels: &Json, out: &mut Vec<Json>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel.clone());
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A Grafana expression with its variables replaced: `selection` gives `$group_id` and
/// `$cluster_name`; the time variables follow the target's minimum interval as Grafana would
/// (`$__rate_interval` is the interval plus the data source's default 15 s scrape interval, at
/// least four of those).
fn substitute(expr: &str, selection: &[(&str, String)], min_interval: Option<&str>) -> String {
    let interval = min_interval.map_or(60, duration_secs).max(60);
    let rate_interval = (interval + 15).max(60);
    let mut variables: Vec<(String, String)> = vec![
        ("job".into(), JOB.into()),
        ("__interval_ms".into(), (interval * 1000).to_string()),
        ("__interval".into(), format!("{interval}s")),
        ("__rate_interval".into(), format!("{rate_interval}s")),
        ("__range_s".into(), (7 * 86_400).to_string()),
        ("__range".into(), "7d".into()),
    ];
    variables.extend(selection.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
    // Longest names first, so that `$__interval` does not eat the start of `$__interval_ms`.
    variables.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = expr.to_owned();
    for (name, value) in &variables {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    assert!(
        !out.contains('$'),
        "a dashboard variable this test does not know in {out}"
    );
    out
}

fn duration_secs(text: &str) -> u64 {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("interval {text}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => panic!("interval unit {other} in {text}"),
    }
}

/// The template variables' `label_values(...)` queries, asked of the live Prometheus the way
/// Grafana asks them, list the seeded values. The Project variable's `query_result(...)` lists
/// each project once, with the name Grafana shows (its id when `names` is off) and the id it filters on.
async fn check_template_variables(prometheus: &Server, names: bool) {
    let dashboard = dashboard();
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("job", vec![JOB]),
        ("group_id", vec![DEMO_GROUP_ID]),
        (
            "cluster_name",
            vec!["Cluster0", "Cluster1", "Cluster2", "Cluster3"],
        ),
    ]);
    let all = [
        ("group_id", ".*".to_owned()),
        ("cluster_name", ".*".to_owned()),
    ];
    let mut checked = BTreeSet::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().expect("a variable's name");
        let query = match &variable["query"] {
            Json::String(query) => query.as_str(),
            other => other["query"].as_str().unwrap_or_default(),
        };
        if let Some(expr) = query
            .trim()
            .strip_prefix("query_result(")
            .and_then(|q| q.strip_suffix(')'))
        {
            // Grafana's regex takes group_id as the value and group_name, when present, as the text.
            let series = prometheus.query(&substitute(expr, &all, None)).await;
            let options: Vec<(&str, &str)> = series
                .iter()
                .map(|s| {
                    let id = label(s, "group_id");
                    let name = label(s, "group_name");
                    (if name.is_empty() { id } else { name }, id)
                })
                .collect();
            let shown = if names { "Demo Project" } else { DEMO_GROUP_ID };
            assert_eq!(
                options,
                [(shown, DEMO_GROUP_ID)],
                "variable {name}: {query}"
            );
            let regex = variable["regex"].as_str().unwrap_or_default();
            assert!(
                regex.contains(r#"group_id="(?<value>"#)
                    && regex.contains(r#"group_name="(?<text>"#),
                "variable {name}: {regex}"
            );
            checked.insert(name);
            continue;
        }
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: not a label_values() query: {query}"));
        let (selector, label_name) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let selector = substitute(selector.trim(), &all, None);
        let data = prometheus
            .api(
                &format!("/api/v1/label/{}/values", label_name.trim()),
                &[("match[]", &selector)],
            )
            .await;
        let values: Vec<&str> = data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let wanted = expected
            .get(name)
            .unwrap_or_else(|| panic!("variable {name}: add its expected values to this test"));
        assert_eq!(&values, wanted, "variable {name}: {query} as {selector}");
        checked.insert(name);
    }
    assert_eq!(
        checked,
        expected.keys().copied().collect(),
        "the dashboard's query variables"
    );
}

/// Every expression of every panel returns data, with every project and cluster selected both as
/// Grafana's "All" and as the list of seeded values; a few panels are checked for their values.
/// `names`: whether the project has a name, which legends and tables then show in `group_name`
/// (its id otherwise).
async fn check_panels(prometheus: &Server, exporter: &Exporter, names: bool) {
    let dashboard = dashboard();
    let selections = [
        (
            "All",
            [
                ("group_id", ".*".to_owned()),
                ("cluster_name", ".*".to_owned()),
            ],
        ),
        (
            "every seeded value",
            [
                ("group_id", DEMO_GROUP_ID.to_owned()),
                (
                    "cluster_name",
                    "(Cluster0|Cluster1|Cluster2|Cluster3)".to_owned(),
                ),
            ],
        ),
    ];
    let mut empty = Vec::new();
    let mut results: BTreeMap<(String, String), Vec<Json>> = BTreeMap::new();
    let mut count = 0;
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default().to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let ref_id = target["refId"].as_str().unwrap_or_default().to_owned();
            let raw = target["expr"].as_str().unwrap_or_default();
            for (selection_name, selection) in &selections {
                let expr = substitute(raw, selection, target["interval"].as_str());
                let series = prometheus.query(&expr).await;
                count += 1;
                if series.is_empty() {
                    empty.push(format!(
                        "panel {title:?} query {ref_id} ({selection_name}): {expr}"
                    ));
                }
                results
                    .entry((title.clone(), ref_id.clone()))
                    .or_insert(series);
            }
        }
    }
    assert!(count >= 40, "only {count} panel queries");
    assert!(
        empty.is_empty(),
        "dashboard queries that return no data:\n{}",
        empty.join("\n")
    );

    let panel = |title: &str, ref_id: &str| -> &Vec<Json> {
        results
            .get(&(title.to_owned(), ref_id.to_owned()))
            .unwrap_or_else(|| panic!("no panel {title:?} with a query {ref_id}"))
    };
    let single = |title: &str| -> f64 {
        let series = panel(title, "A");
        assert_eq!(series.len(), 1, "{title}: {series:?}");
        value(&series[0])
    };
    assert_eq!(single("Clusters watched"), 4.0);
    assert_eq!(single("Clusters not readable"), 0.0);
    assert_eq!(single("Failed or cancelled, last 24h"), 2.0);
    assert_eq!(single("Exports queued or running"), 2.0);
    assert_eq!(single("Exporters up"), 1.0);
    // The headline follows each cluster's own expectation: Cluster2 (monthly, 40 days since its
    // last scheduled export) is overdue, Cluster0 (monthly, on time) is not, and Cluster1 (no
    // auto-export, no expect_export_every) has no expectation and is listed as such.
    assert_eq!(single("Clusters overdue"), 1.0);
    let clusters = |title: &str, ref_id: &str| -> BTreeMap<String, f64> {
        panel(title, ref_id)
            .iter()
            .map(|r| (label(r, "cluster_name").to_owned(), value(r)))
            .collect()
    };
    let overdue = clusters("When each cluster is due", "D");
    assert_eq!(
        overdue,
        BTreeMap::from([("Cluster0".to_owned(), 0.0), ("Cluster2".to_owned(), 1.0)])
    );
    let until = clusters("Time until due (negative: since)", "A");
    let days = until["Cluster2"] / 86_400.0;
    assert!((-9.1..-8.9).contains(&days), "{until:?}");
    assert!(until["Cluster0"] > 20.0 * 86_400.0, "{until:?}");
    let sources: BTreeSet<(&str, &str)> = panel("When each cluster is due", "A")
        .iter()
        .map(|r| (label(r, "cluster_name"), label(r, "source")))
        .collect();
    assert_eq!(
        sources,
        BTreeSet::from([("Cluster0", "auto_export"), ("Cluster2", "auto_export")])
    );
    let none = clusters("Clusters with no expectation", "A");
    assert_eq!(
        none,
        BTreeMap::from([("Cluster1".to_owned(), 0.0), ("Cluster3".to_owned(), 0.0)])
    );

    // The schedules: each cluster on or off, and Cluster2's exported data 40 days and an hour old.
    let schedules = panel("Auto-export per cluster", "A");
    let on_off: BTreeMap<&str, f64> = schedules
        .iter()
        .map(|r| (label(r, "cluster_name"), value(r)))
        .collect();
    let expected = BTreeMap::from([
        ("Cluster0", 1.0),
        ("Cluster1", 0.0),
        ("Cluster2", 1.0),
        ("Cluster3", 0.0),
    ]);
    assert_eq!(on_off, expected);
    let ages = panel("Age of the exported data", "A");
    let cluster2 = ages
        .iter()
        .find(|r| label(r, "cluster_name") == "Cluster2")
        .expect("Cluster2's exported data");
    let days = value(cluster2) / 86_400.0;
    assert!((40.0..40.1).contains(&days), "{cluster2}");

    // The table lists every job the exporter has per-job series for, with its state.
    let scrape = exporter.scrape().await;
    let mut exposed: BTreeSet<String> = BTreeSet::new();
    for cluster in ["Cluster0", "Cluster1", "Cluster2", "Cluster3"] {
        exposed.extend(scrape.job_ids(cluster));
    }
    assert!(
        exposed.contains(CANCELLED_JOB) && exposed.len() >= 7,
        "{exposed:?}"
    );
    let rows = panel("Newest export jobs", "A");
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| label(r, "export_job_id").to_owned())
        .collect();
    assert_eq!(listed, exposed, "the newest-jobs table");
    assert!(rows.iter().all(|r| !label(r, "state").is_empty()));

    let reasons = panel("Failure reasons", "A");
    assert!(
        reasons
            .iter()
            .any(|r| label(r, "export_job_id") == DEMO_FAILED_JOB
                && label(r, "error_code") == "EXPORT_FAILED"),
        "{reasons:?}"
    );
    // Every series a legend or table shows by project carries the project's name, or its id when
    // no name is known: never an empty legend.
    let project = if names { "Demo Project" } else { DEMO_GROUP_ID };
    let mut by_project = 0;
    for ((title, ref_id), series) in &results {
        let Some(panel) = panels(&dashboard)
            .into_iter()
            .find(|p| p["title"].as_str() == Some(title))
        else {
            continue;
        };
        let shows_name = panel["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["refId"].as_str() == Some(ref_id))
            .any(|t| {
                t["expr"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("group_left(group_name)")
            });
        if !shows_name {
            continue;
        }
        by_project += 1;
        for s in series.iter().filter(|s| !label(s, "group_id").is_empty()) {
            assert_eq!(
                label(s, "group_name"),
                project,
                "panel {title:?} query {ref_id}: {s:?}"
            );
        }
    }
    assert!(
        by_project >= 10,
        "only {by_project} queries show the project's name"
    );

    let components = panel("Components per export job (sharded clusters)", "A");
    assert!(
        components
            .iter()
            .all(|r| label(r, "cluster_name") == "Cluster1" && value(r) == 2.0),
        "{components:?}"
    );
}

/// Every rule of alerts.yml loaded and evaluated without an error.
async fn check_rules(prometheus: &Server) {
    // Every rule once: an alert name with two severities (the exporter's escalating alerts) is two rules.
    let mut wanted = Vec::new();
    for group in repo_yaml("examples/alerts.yml")["groups"]
        .as_sequence()
        .expect("groups")
    {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule
                .get("alert")
                .or_else(|| rule.get("record"))
                .and_then(Yaml::as_str)
                .expect("a rule's name");
            wanted.push(name.to_owned());
        }
    }
    wanted.sort();
    let rules = wait_until("every rule to be evaluated", || async move {
        let data = prometheus.api("/api/v1/rules", &[]).await;
        let rules: Vec<Json> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let unevaluated: Vec<&str> = rules
            .iter()
            .filter(|r| r["health"] == "unknown")
            .filter_map(|r| r["name"].as_str())
            .collect();
        if rules.is_empty() || !unevaluated.is_empty() {
            Err(format!(
                "not evaluated yet: {unevaluated:?} of {} rules",
                rules.len()
            ))
        } else {
            Ok(rules)
        }
    })
    .await;
    let mut loaded: Vec<String> = rules
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    loaded.sort();
    assert_eq!(loaded, wanted, "rules Prometheus loaded");
    for rule in &rules {
        assert!(
            rule["health"] == "ok" && rule["lastError"].as_str().unwrap_or_default().is_empty(),
            "rule {} does not evaluate cleanly: health {}, error {}",
            rule["name"],
            rule["health"],
            rule["lastError"]
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Helpers

pub async fn alerts(prometheus: &Server) -> Vec<Json> {
    prometheus.api("/api/v1/alerts", &[]).await["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn json_label<'a>(alert: &'a Json, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or_default()
}

fn find_alert<'a>(alerts: &'a [Json], export_job_id: &str) -> &'a Json {
    alerts
        .iter()
        .find(|a| json_label(a, "export_job_id") == export_job_id)
        .unwrap_or_else(|| panic!("no alert for {export_job_id}: {alerts:?}"))
}

fn assert_labels(alert: &Json, labels: &[(&str, &str)]) {
    for (name, wanted) in labels {
        assert_eq!(json_label(alert, name), *wanted, "label {name} of {alert}");
    }
}

/// The value of an instant-query series.
fn value(series: &Json) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {series}"))
}
