//! Atlas's rate limits: a 429 storm over one project's export-job listings costs one wave of
//! requests per window, not one request per cluster per scrape; a short `Retry-After` is waited
//! for as before; the budget Atlas announces is shown.

use std::time::{Duration, Instant};

use atlas_backup_exporter::clock::ManualClock;
use fake_atlas::{FakeAtlas, Fault, Gate, job};

use crate::support::{self, Captured, Exporter, GROUP, GROUP2, Scrape, Spawn, TempDir};

/// Clusters of the rate-limited project ([`GROUP`]): more than `max_concurrent_requests`.
const STORMED: usize = 10;
/// Clusters of the other project ([`GROUP2`]).
const CALM: [&str; 2] = ["Calm0", "Calm1"];

fn stormed(i: usize) -> String {
    format!("Cluster{i}")
}

/// The stand-in with every cluster holding one queued job.
fn fake() -> FakeAtlas {
    let fake = support::fake();
    for i in 0..STORMED {
        fake.add_cluster(GROUP, &stormed(i));
        fake.put_job(GROUP, &stormed(i), job(&format!("{i:024x}")).build());
    }
    for (i, cluster) in CALM.iter().enumerate() {
        fake.add_cluster(GROUP2, cluster);
        fake.put_job(GROUP2, cluster, job(&format!("{:024x}", 100 + i)).build());
    }
    fake
}

fn config() -> String {
    let clusters: Vec<String> = (0..STORMED).map(stormed).collect();
    format!(
        "atlas:\n  base_url: BASE_URL\n  max_concurrent_requests: 8\ntargets:\n  - group_id: {GROUP}\n    clusters: [{}]\n  - group_id: {GROUP2}\n    clusters: [{}]\n",
        clusters.join(", "),
        CALM.join(", ")
    )
}

/// Scrapes `/metrics` with Prometheus's timeout header of 5 seconds.
async fn scrape_with_timeout(exporter: &Exporter) -> Scrape {
    let response = reqwest::Client::new()
        .get(exporter.url("/metrics"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Scrape::parse(&response.text().await.unwrap())
}

fn up(scrape: &Scrape, group: &str, cluster: &str) -> Option<f64> {
    scrape.value(
        "atlas_backup_export_up",
        &[("group_id", group), ("cluster_name", cluster)],
    )
}

/// The debug line of a request held back, logged once per request as it is counted.
const HELD: &str = "request held back by Atlas's rate limit";

fn held(scrape: &Scrape) -> f64 {
    scrape
        .value(
            "atlas_backup_exporter_api_requests_held_total",
            &[("endpoint", "list_export_jobs")],
        )
        .unwrap_or(0.0)
}

fn pair(group: &str) -> [(&str, &str); 2] {
    [("group_id", group), ("endpoint", "list_export_jobs")]
}

// One thread: the exporter's tasks run where the log is captured.
#[tokio::test(flavor = "current_thread")]
async fn a_429_storm_costs_one_wave_and_recovers_with_one_request_first() {
    let (captured, _log) =
        Captured::on_this_thread(atlas_backup_exporter::logging::LogLevel::Debug);
    let fake = fake();
    fake.rate_limit_storm(GROUP, "list_export_jobs", 20, Duration::from_secs(20));
    let manual = ManualClock::new();
    // A service account: no digest challenges, so every request counted is a call.
    let exporter =
        Exporter::start_with_clock(fake, &config(), support::service_account(), manual.clock())
            .await;

    let started = Instant::now();
    let mut after_first = 0;
    for round in 0..3 {
        let scrape = scrape_with_timeout(&exporter).await;
        for i in 0..STORMED {
            assert_eq!(up(&scrape, GROUP, &stormed(i)), Some(0.0), "round {round}");
        }
        for cluster in CALM {
            assert_eq!(up(&scrape, GROUP2, cluster), Some(1.0), "round {round}");
        }
        let sent = exporter
            .fake
            .requests()
            .in_project(GROUP, "list_export_jobs");
        assert!((1..=8).contains(&sent), "round {round}: {sent} requests");
        if round == 0 {
            after_first = sent;
        }
        // Nothing is sent after the first 429 came back, until the window ends.
        assert_eq!(sent, after_first, "round {round}");
        assert_eq!(
            scrape.value("atlas_backup_exporter_api_rate_limited", &pair(GROUP)),
            Some(1.0)
        );
        assert_eq!(
            scrape.value("atlas_backup_exporter_api_rate_limited", &pair(GROUP2)),
            None,
            "a pair never limited has no series"
        );
        // Every cluster not sent was held back, once per scrape.
        let expected = (round + 1) * STORMED as u64 - after_first;
        assert_eq!(held(&scrape), expected as f64, "round {round}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // The exporter's own metrics, without a collection (which would wait the window out).
    let scrape = Scrape::parse(&String::from_utf8_lossy(
        &exporter.app.exporter.own_metrics(),
    ));
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_rate_limit_remaining",
            &pair(GROUP)
        ),
        Some(0.0),
        "the storm's 429s say nothing is left"
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_rate_limit_remaining",
            &pair(GROUP2)
        ),
        Some(1192.0)
    );
    assert_eq!(
        scrape.value("atlas_backup_exporter_api_rate_limit", &pair(GROUP2)),
        Some(1200.0)
    );

    // The storm ends and the window passes: one request goes first, held at the stand-in
    // while the project's other clusters wait for its answer.
    exporter.fake.advance_clock(Duration::from_secs(20));
    manual.advance(Duration::from_secs(20));
    let gate = Gate::new();
    exporter
        .fake
        .inject(Fault::hold(&format!("/groups/{GROUP}/clusters/"), &gate).times(1));
    let held_before = held(&scrape);
    let logged_before = captured.lines_with(&[HELD, "endpoint=list_export_jobs"]);
    let sent_before = exporter
        .fake
        .requests()
        .in_project(GROUP, "list_export_jobs");
    let scraping = tokio::spawn({
        let url = exporter.url("/metrics");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    });
    support::within("the first request after the window", gate.arrivals(1)).await;
    // Every request held back says so once, as it is counted: the other clusters waiting for
    // the first request are the STORMED - 1 lines after those logged so far.
    let held_line = [HELD, "endpoint=list_export_jobs"];
    let waiting = logged_before + STORMED - 1;
    captured.wait_for_lines(&held_line, waiting).await;
    assert_eq!(captured.lines_with(&held_line), waiting);
    let own = exporter.app.exporter.own_metrics();
    let own = Scrape::parse(&String::from_utf8_lossy(&own));
    assert_eq!(held(&own), held_before + (STORMED - 1) as f64);
    assert_eq!(
        exporter
            .fake
            .requests()
            .in_project(GROUP, "list_export_jobs"),
        sent_before + 1,
        "only the first request is out"
    );
    gate.open();
    let scrape = Scrape::parse(&scraping.await.unwrap());
    for i in 0..STORMED {
        assert_eq!(up(&scrape, GROUP, &stormed(i)), Some(1.0));
    }
    assert_eq!(
        exporter
            .fake
            .requests()
            .in_project(GROUP, "list_export_jobs"),
        sent_before + STORMED as u64
    );
    assert_eq!(
        scrape.value("atlas_backup_exporter_api_rate_limited", &pair(GROUP)),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_rate_limit_remaining",
            &pair(GROUP)
        ),
        Some(1192.0)
    );
}

#[tokio::test]
async fn a_retry_after_inside_the_deadline_is_waited_for_and_every_cluster_is_up() {
    let fake = fake();
    fake.rate_limit_storm(GROUP, "list_export_jobs", 1, Duration::from_secs(1));
    let exporter = Exporter::start(fake, &config(), support::service_account()).await;
    let started = Instant::now();
    let scrape = scrape_with_timeout(&exporter).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    for i in 0..STORMED {
        assert_eq!(up(&scrape, GROUP, &stormed(i)), Some(1.0));
    }
    for cluster in CALM {
        assert_eq!(up(&scrape, GROUP2, cluster), Some(1.0));
    }
    let answered = scrape
        .value(
            "atlas_backup_exporter_api_requests_total",
            &[("endpoint", "list_export_jobs"), ("code", "200")],
        )
        .unwrap();
    assert_eq!(answered, (STORMED + CALM.len()) as f64);
    // The window has passed: the gauge says so.
    assert_eq!(
        scrape.value("atlas_backup_exporter_api_rate_limited", &pair(GROUP)),
        Some(0.0)
    );
}

#[tokio::test]
async fn budgets_follow_the_headers_atlas_sends() {
    let fake = fake();
    fake.set_rate_limit_headers(Some(100), Some(4));
    let exporter = Exporter::start(fake, &config(), support::api_key()).await;
    let scrape = exporter.scrape().await;
    for group in [GROUP, GROUP2] {
        assert_eq!(
            scrape.value("atlas_backup_exporter_api_rate_limit", &pair(group)),
            Some(100.0)
        );
        assert_eq!(
            scrape.value(
                "atlas_backup_exporter_api_rate_limit_remaining",
                &pair(group)
            ),
            Some(4.0)
        );
    }
    // Headers left out keep the last values; a new one replaces its value only.
    exporter.fake.set_rate_limit_headers(None, Some(2));
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("atlas_backup_exporter_api_rate_limit", &pair(GROUP)),
        Some(100.0)
    );
    assert_eq!(
        scrape.value(
            "atlas_backup_exporter_api_rate_limit_remaining",
            &pair(GROUP)
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn the_log_says_rate_limited_until_once_per_window_not_once_per_cluster() {
    let fake = fake();
    fake.rate_limit_storm(GROUP, "list_export_jobs", 20, Duration::from_secs(20));
    let base_url = fake.start().await.unwrap();
    let dir = TempDir::new("ratelimit");
    let auth = format!(
        "  auth:\n    service_account: {{client_id: {}, client_secret: {}}}\n",
        support::CLIENT_ID,
        support::CLIENT_SECRET
    );
    let yaml = config()
        .replace("BASE_URL", &base_url)
        .replace("targets:", &format!("{auth}targets:"));
    let file = dir.write("exporter.yml", &yaml);
    let exporter = Spawn::exporter()
        .config(&file)
        .args(["--log.level", "debug"])
        .serve()
        .await;
    let (log, address) = (&exporter.log, exporter.addr);
    let mut scrape = None;
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .get(format!("http://{address}/metrics"))
            .header("X-Prometheus-Scrape-Timeout-Seconds", "5")
            .send()
            .await
            .unwrap();
        scrape = Some(Scrape::parse(&response.text().await.unwrap()));
    }
    let held = held(&scrape.unwrap()) as usize;
    // Every cluster held back says so at debug, the last of them in the third scrape: once they
    // are all read, so is everything logged before.
    log.nth_line_with("collecting export jobs held back", held)
        .await;
    let text = log.text();
    let windows: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("rate limited until"))
        .collect();
    assert_eq!(windows.len(), 1, "{text}");
    assert!(windows[0].contains("level=warn"), "{}", windows[0]);
    assert!(windows[0].contains(GROUP), "{}", windows[0]);
    assert!(
        windows[0].contains("endpoint=list_export_jobs"),
        "{}",
        windows[0]
    );
    exporter.into_running().stop();
}

#[tokio::test]
async fn a_rate_limited_token_endpoint_is_held_back_by_endpoint_alone() {
    let fake = fake();
    fake.inject(Fault::rate_limited("/api/oauth/token", Some(20)));
    let exporter = Exporter::start(fake, &config(), support::service_account()).await;
    for round in 0..2 {
        let scrape = scrape_with_timeout(&exporter).await;
        for cluster in CALM {
            assert_eq!(up(&scrape, GROUP2, cluster), Some(0.0), "round {round}");
        }
        // One token request in all: the second scrape does not ask while the window is open.
        assert_eq!(exporter.fake.requests().endpoint("oauth_token"), 1);
        assert_eq!(
            scrape.value(
                "atlas_backup_exporter_api_rate_limited",
                &[("endpoint", "oauth_token")]
            ),
            Some(1.0),
            "round {round}"
        );
    }
    assert_eq!(exporter.fake.requests().endpoint("list_export_jobs"), 0);
}
