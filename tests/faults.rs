//! Atlas misbehaving: each fault injected into the stand-in, and what a scrape then shows.
//! Timings are kept short (deadlines of one to a few seconds) so the suite stays fast.

use std::time::{Duration, Instant};

use atlas_backup_exporter::clock::ManualClock;
use fake_atlas::{FakeAtlas, Fault, Gate, job};
use serde_json::{Value, json};

use crate::support::{self, Exporter, GROUP, GROUP2, Scrape};

/// A config watching `clusters` of [`GROUP`], plus whatever top-level `sections` a test needs.
fn config(clusters: &str, sections: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [{clusters}]\n{sections}"
    )
}

/// The stand-in with each of `clusters` holding one queued job.
fn fake_with(clusters: &[&str]) -> FakeAtlas {
    let fake = support::fake();
    for (i, cluster) in clusters.iter().enumerate() {
        fake.add_cluster(GROUP, cluster);
        fake.put_job(GROUP, cluster, job(&format!("{i:024x}")).build());
    }
    fake
}

/// The path of a cluster's export job listing, for faults.
fn exports(cluster: &str) -> String {
    format!("/clusters/{cluster}/backup/exports")
}

/// Scrapes `/metrics`, sending Prometheus's timeout header when given, and times the answer.
async fn timed_scrape(exporter: &Exporter, scrape_timeout: Option<&str>) -> (Scrape, Duration) {
    let mut request = reqwest::Client::new().get(exporter.url("/metrics"));
    if let Some(seconds) = scrape_timeout {
        request = request.header("X-Prometheus-Scrape-Timeout-Seconds", seconds);
    }
    let started = Instant::now();
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    (Scrape::parse(&text), started.elapsed())
}

fn up(scrape: &Scrape, cluster: &str) -> Option<f64> {
    scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)])
}

/// `atlas_backup_exporter_api_requests_total` for one endpoint and code.
fn requests(scrape: &Scrape, endpoint: &str, code: &str) -> Option<f64> {
    scrape.value(
        "atlas_backup_exporter_api_requests_total",
        &[("endpoint", endpoint), ("code", code)],
    )
}

/// A page of `n` well-formed jobs, as a body that a fault serves for every page asked.
fn page_of(n: usize, total_count: Option<u64>) -> String {
    let results: Vec<Value> = (0..n).map(|i| job(&format!("{i:024x}")).build()).collect();
    let mut page = json!({"links": [], "results": results});
    if let Some(total) = total_count {
        page["totalCount"] = json!(total);
    }
    page.to_string()
}

// ---- 429 and 5xx: retried within the deadline ----

#[tokio::test]
async fn a_token_bucket_429_is_retried_after_at_least_retry_after() {
    let fake = fake_with(&["Cluster0"]);
    fake.inject(Fault::rate_limited(&exports("Cluster0"), Some(1)).times(1));
    let exporter = Exporter::start(fake, &config("Cluster0", ""), support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(elapsed >= Duration::from_secs(1), "waited only {elapsed:?}");
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Queued")]),
        Some(1.0)
    );
    assert_eq!(requests(&scrape, "list_export_jobs", "429"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(1.0));
}

#[tokio::test]
async fn a_rate_limited_429_with_retry_after_is_retried_after_it() {
    let fake = fake_with(&["Cluster0"]);
    // Atlas's other 429 code, RATE_LIMITED, with a Retry-After of 2 seconds.
    let body = json!({"detail": "Too many requests.", "error": 429, "errorCode": "RATE_LIMITED", "parameters": [], "reason": "Too Many Requests"});
    fake.inject(
        Fault::raw(
            &exports("Cluster0"),
            429,
            "application/json",
            body.to_string(),
        )
        .with_retry_after(2)
        .times(1),
    );
    let exporter = Exporter::start(fake, &config("Cluster0", ""), support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(elapsed >= Duration::from_secs(2), "waited only {elapsed:?}");
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "429"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(1.0));
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_exponentially() {
    let fake = fake_with(&["Cluster0"]);
    // Fault::status(429) is RATE_LIMITED without Retry-After, as Atlas sometimes answers.
    fake.inject(Fault::status(&exports("Cluster0"), 429).times(2));
    let exporter = Exporter::start(fake, &config("Cluster0", ""), support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    // Two backoffs: at least 125 ms (half of the first, 250 ms), then 250 ms (half of 500 ms).
    assert!(elapsed >= Duration::from_millis(375), "{elapsed:?}");
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "429"), Some(2.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(1.0));
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_gives_up_at_once() {
    let fake = fake_with(&["Slow"]);
    // Another project: a 429 holds back its own endpoint and project only (tests/ratelimit.rs).
    fake.add_cluster(GROUP2, "Fine");
    fake.put_job(GROUP2, "Fine", job(&format!("{:024x}", 1)).build());
    fake.inject(Fault::rate_limited(&exports("Slow"), Some(60)));
    let yaml = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Slow]\n  - group_id: {GROUP2}\n    clusters: [Fine]\ncollection:\n  timeout: 3s\n"
    );
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    // Waiting 60 s cannot end inside a 3 s deadline: no point waiting at all.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(up(&scrape, "Slow"), Some(0.0));
    assert_eq!(up(&scrape, "Fine"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "429"), Some(1.0));
}

#[tokio::test]
async fn server_errors_are_retried_and_every_attempt_is_counted() {
    let fake = fake_with(&["Five", "Unavailable"]);
    fake.inject(Fault::status(&exports("Five"), 500).times(2));
    fake.inject(Fault::status(&exports("Unavailable"), 503).times(2));
    let yaml = config("Five, Unavailable", "");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, _) = timed_scrape(&exporter, None).await;
    assert_eq!(up(&scrape, "Five"), Some(1.0));
    assert_eq!(up(&scrape, "Unavailable"), Some(1.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "500"), Some(2.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "503"), Some(2.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(2.0));
}

#[tokio::test]
async fn a_server_error_that_never_ends_fails_only_its_cluster_in_time() {
    let fake = fake_with(&["Broken", "Good"]);
    fake.inject(Fault::status(&exports("Broken"), 503));
    let yaml = config("Broken, Good", "collection:\n  timeout: 3s\n");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(up(&scrape, "Broken"), Some(0.0));
    assert_eq!(up(&scrape, "Good"), Some(1.0));
    // Four attempts (backoffs of at most 0.25 + 0.5 + 1 s fit in 3 s), all counted.
    assert_eq!(requests(&scrape, "list_export_jobs", "503"), Some(4.0));
    assert!(
        scrape
            .find("atlas_backup_export_jobs", &[("cluster_name", "Broken")])
            .is_empty()
    );
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    let fake = fake_with(&["Bad", "Forbidden", "Gone", "Good"]);
    fake.inject(Fault::status(&exports("Bad"), 400));
    fake.inject(Fault::status(&exports("Forbidden"), 403));
    fake.inject(Fault::status(&exports("Gone"), 404));
    let yaml = config("Bad, Forbidden, Gone, Good", "");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    // No backoff was slept.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    for (cluster, code) in [("Bad", "400"), ("Forbidden", "403"), ("Gone", "404")] {
        assert_eq!(up(&scrape, cluster), Some(0.0), "{cluster}");
        assert_eq!(
            requests(&scrape, "list_export_jobs", code),
            Some(1.0),
            "{code}"
        );
    }
    assert_eq!(up(&scrape, "Good"), Some(1.0));
}

// ---- Deadlines ----

#[tokio::test]
async fn prometheus_timeout_header_minus_the_offset_bounds_a_hanging_cluster() {
    let fake = fake_with(&["Hung", "Fine", "Also"]);
    fake.inject(Fault::hang(&exports("Hung")));
    let yaml = config(
        "Hung, Fine, Also",
        "collection:\n  timeout: 30s\n  timeout_offset: 500ms\n",
    );
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, Some("2")).await;
    // The deadline is 2 s - 500 ms: the answer comes after it and before Prometheus gives up.
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(up(&scrape, "Hung"), Some(0.0));
    assert_eq!(up(&scrape, "Fine"), Some(1.0));
    assert_eq!(up(&scrape, "Also"), Some(1.0));
    // The hung request got no answer: counted as an error, not retried past the deadline.
    assert_eq!(requests(&scrape, "list_export_jobs", "error"), Some(1.0));
    fake.shutdown();
}

#[tokio::test]
async fn collection_timeout_bounds_a_hanging_cluster_without_the_header() {
    let fake = fake_with(&["Hung", "Fine"]);
    fake.inject(Fault::hang(&exports("Hung")));
    let yaml = config("Hung, Fine", "collection:\n  timeout: 1s\n");
    let exporter = Exporter::start(fake.clone(), &yaml, support::service_account()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    assert_eq!(up(&scrape, "Hung"), Some(0.0));
    assert_eq!(up(&scrape, "Fine"), Some(1.0));
    fake.shutdown();
}

/// Accepts connections on loopback and never writes a byte; returns its base URL.
async fn silent_atlas() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_atlas_that_accepts_and_says_nothing_cannot_hold_a_scrape() {
    let silent = silent_atlas().await;
    for credentials in [support::api_key(), support::service_account()] {
        let yaml = config("Cluster0", "collection:\n  timeout: 1s\n").replace("BASE_URL", &silent);
        let exporter = Exporter::start(support::fake(), &yaml, credentials).await;
        let (scrape, elapsed) = timed_scrape(&exporter, None).await;
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
        assert_eq!(up(&scrape, "Cluster0"), Some(0.0));
    }
}

#[tokio::test]
async fn requests_that_time_out_are_retried_within_the_deadline() {
    let silent = silent_atlas().await;
    // Each attempt gives up after 200 ms; four of them and three backoffs fit in 3 s.
    let yaml = config("Cluster0", "collection:\n  timeout: 3s\n")
        .replace("BASE_URL", &format!("{silent}\n  request_timeout: 200ms"));
    let exporter = Exporter::start(support::fake(), &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(up(&scrape, "Cluster0"), Some(0.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "error"), Some(4.0));
}

// ---- Bodies that are not what Atlas promises ----

#[tokio::test]
async fn bodies_that_are_not_pages_fail_only_their_cluster() {
    let clusters = ["Good", "Html", "Truncated", "NoResults", "TooMany", "Proxy"];
    let fake = fake_with(&clusters);
    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    fake.inject(Fault::raw(&exports("Html"), 200, "text/html", html));
    fake.inject(Fault::raw(
        &exports("Truncated"),
        200,
        "application/json",
        r#"{"links":[],"results":[{"id":"605ccba3c1c7613f423e1585","state":"Succ"#,
    ));
    fake.inject(Fault::raw(
        &exports("NoResults"),
        200,
        "application/json",
        r#"{"links":[],"totalCount":3}"#,
    ));
    fake.inject(Fault::raw(
        &exports("TooMany"),
        200,
        "application/json",
        page_of(501, Some(501)),
    ));
    // A proxy's error page with an error status: retried like any 5xx, then given up.
    fake.inject(Fault::raw(&exports("Proxy"), 502, "text/html", html));
    let yaml = config(&clusters.join(", "), "collection:\n  timeout: 5s\n");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, elapsed) = timed_scrape(&exporter, None).await;
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(up(&scrape, "Good"), Some(1.0));
    assert_eq!(
        scrape.value(
            "atlas_backup_export_jobs",
            &[("cluster_name", "Good"), ("state", "Queued")]
        ),
        Some(1.0)
    );
    for cluster in &clusters[1..] {
        assert_eq!(up(&scrape, cluster), Some(0.0), "{cluster}");
        assert!(
            scrape
                .find("atlas_backup_export_jobs", &[("cluster_name", cluster)])
                .is_empty(),
            "{cluster}"
        );
    }
    // A malformed 200 is not retried (asking again gets the same); a 502 is.
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(5.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "502"), Some(4.0));
}

#[tokio::test]
async fn malformed_jobs_are_skipped_and_counted_and_the_rest_is_served() {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    let good = "aaaaaaaaaaaaaaaaaaaaaa01";
    fake.put_job(GROUP, "Cluster0", job(good).state("Failed").build());
    let malformed = [
        job("aaaaaaaaaaaaaaaaaaaaaa02")
            .field("state", json!(5))
            .build(),
        job("aaaaaaaaaaaaaaaaaaaaaa03")
            .created_at("2026-13-45T99:00:00Z")
            .build(),
        job("aaaaaaaaaaaaaaaaaaaaaa04")
            .state("Successful")
            .finished_at("yesterday")
            .build(),
        job("aaaaaaaaaaaaaaaaaaaaaa05")
            .field("createdAt", json!(1616690963))
            .build(),
        job("aaaaaaaaaaaaaaaaaaaaaa06")
            .field("components", json!("two"))
            .build(),
        job("aaaaaaaaaaaaaaaaaaaaaa07").without("state").build(),
        json!("not even an object"),
        json!({"id": 7, "state": "Queued", "createdAt": "2026-08-10T03:28:25Z", "stateReason": 3}),
    ];
    fake.put_jobs(GROUP, "Cluster0", malformed.clone());
    let yaml = config("Cluster0", "export_jobs:\n  max_age: 0\n");
    let exporter = Exporter::start(fake, &yaml, support::api_key()).await;
    let (scrape, _) = timed_scrape(&exporter, None).await;
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(
        scrape.value("atlas_backup_export_invalid_jobs", &[]),
        Some(malformed.len() as f64)
    );
    assert_eq!(scrape.job_ids("Cluster0"), [good]);
    assert_eq!(
        scrape.value("atlas_backup_export_jobs", &[("state", "Failed")]),
        Some(1.0)
    );
    for state in ["Queued", "InProgress", "Successful", "Cancelled"] {
        assert_eq!(
            scrape.value("atlas_backup_export_jobs", &[("state", state)]),
            Some(0.0),
            "{state}"
        );
    }
}

#[tokio::test]
async fn a_listing_that_never_ends_stops_at_max_pages() {
    // Full pages forever, without totalCount (paged one by one) and with a huge one (the pages
    // it promises are asked for at once, up to max_pages).
    for total_count in [None, Some(1_000_000)] {
        let fake = fake_with(&["Endless", "Fine"]);
        fake.inject(Fault::raw(
            &exports("Endless"),
            200,
            "application/json",
            page_of(500, total_count),
        ));
        let yaml = config("Endless, Fine", "export_jobs:\n  max_pages: 3\n");
        let exporter = Exporter::start(fake.clone(), &yaml, support::service_account()).await;
        let (scrape, elapsed) = timed_scrape(&exporter, None).await;
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(up(&scrape, "Endless"), Some(0.0), "{total_count:?}");
        assert_eq!(up(&scrape, "Fine"), Some(1.0), "{total_count:?}");
        // Three pages of Endless, one of Fine; no digest challenges with a service account.
        assert_eq!(
            fake.requests().endpoint("list_export_jobs"),
            4,
            "{total_count:?}"
        );
    }
}

// ---- Credentials going bad mid-run ----

#[tokio::test]
async fn a_token_revoked_between_and_during_collections_is_replaced_without_a_failed_scrape() {
    let clusters = ["C0", "C1", "C2", "C3", "Big"];
    let fake = fake_with(&clusters);
    // Big has two pages.
    fake.put_jobs(
        GROUP,
        "Big",
        (0..600).map(|i| job(&format!("b{i:023x}")).build()),
    );
    let yaml = config(&clusters.join(", "), "");
    let exporter = Exporter::start(fake.clone(), &yaml, support::service_account()).await;
    let all_up = |scrape: &Scrape| {
        for cluster in clusters {
            assert_eq!(up(scrape, cluster), Some(1.0), "{cluster}");
        }
    };
    all_up(&timed_scrape(&exporter, None).await.0);
    assert_eq!(fake.requests().endpoint("oauth_token"), 1);

    // Revoked between scrapes: five calls refused at once cost one new token.
    fake.revoke_tokens();
    let (scrape, _) = timed_scrape(&exporter, None).await;
    all_up(&scrape);
    assert_eq!(fake.requests().endpoint("oauth_token"), 2);
    assert_eq!(requests(&scrape, "list_export_jobs", "401"), Some(5.0));

    // Revoked while Big's first page is on its way: its second page is refused, then served.
    // Every first page is held, already authenticated, until the token is revoked.
    let gate = Gate::new();
    fake.inject(
        Fault::hold("/backup/exports", &gate)
            .on_query("pageNum=1")
            .times(clusters.len() as u32),
    );
    let scraping = tokio::spawn({
        let url = exporter.url("/metrics");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    });
    support::within(
        "every first page at the stand-in",
        gate.arrivals(clusters.len()),
    )
    .await;
    fake.revoke_tokens();
    gate.open();
    let scrape = Scrape::parse(&scraping.await.unwrap());
    all_up(&scrape);
    assert_eq!(
        scrape.value(
            "atlas_backup_export_jobs",
            &[("cluster_name", "Big"), ("state", "Queued")]
        ),
        Some(601.0)
    );
    assert_eq!(fake.requests().endpoint("oauth_token"), 3);
    assert_eq!(requests(&scrape, "list_export_jobs", "401"), Some(6.0));
}

#[tokio::test]
async fn an_expiring_token_is_renewed_before_atlas_refuses_it() {
    let fake = fake_with(&["Cluster0"]).with_token_lifetime(Duration::from_secs(2));
    let clock = ManualClock::new();
    let exporter = Exporter::start_with_clock(
        fake.clone(),
        &config("Cluster0", ""),
        support::service_account(),
        clock.clock(),
    )
    .await;
    assert_eq!(
        up(&timed_scrape(&exporter, None).await.0, "Cluster0"),
        Some(1.0)
    );
    // A 2 s token is renewed after half its life; by 2.1 s Atlas would refuse it. Both clocks
    // move together: the exporter's to make the renewal due, the stand-in's so that a token
    // not renewed would be refused.
    let past_half_life = Duration::from_millis(1100);
    clock.advance(past_half_life);
    fake.advance_clock(past_half_life);
    assert_eq!(
        up(&timed_scrape(&exporter, None).await.0, "Cluster0"),
        Some(1.0)
    );
    clock.advance(past_half_life);
    fake.advance_clock(past_half_life);
    let (scrape, _) = timed_scrape(&exporter, None).await;
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(fake.requests().endpoint("oauth_token"), 3);
    assert_eq!(requests(&scrape, "list_export_jobs", "401"), None);
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(3.0));
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried_once_for_every_cluster_waiting() {
    let clusters = ["C0", "C1", "C2", "C3"];
    let fake = fake_with(&clusters);
    fake.inject(Fault::status("/api/oauth/token", 503).times(1));
    let yaml = config(&clusters.join(", "), "");
    let exporter = Exporter::start(fake.clone(), &yaml, support::service_account()).await;
    let (scrape, _) = timed_scrape(&exporter, None).await;
    for cluster in clusters {
        assert_eq!(up(&scrape, cluster), Some(1.0), "{cluster}");
    }
    assert_eq!(requests(&scrape, "oauth_token", "503"), Some(1.0));
    assert_eq!(requests(&scrape, "oauth_token", "200"), Some(1.0));
    assert_eq!(fake.requests().endpoint("oauth_token"), 2);
    // No export listing failed for want of a token.
    assert_eq!(requests(&scrape, "list_export_jobs", "error"), None);
}

#[tokio::test]
async fn a_refused_service_account_costs_one_token_request_per_scrape() {
    let clusters = ["C0", "C1", "C2", "C3", "C4"];
    let fake = fake_with(&clusters);
    // On a clock that stands still: which scrape a failure belongs to is a matter of order,
    // not of time.
    let clock = ManualClock::new();
    let exporter = Exporter::start_with_clock(
        fake.clone(),
        &config(&clusters.join(", "), ""),
        atlas_backup_exporter::config::Credentials::ServiceAccount {
            client_id: support::CLIENT_ID.to_string().into(),
            client_secret: "mdb_sa_sk_rotated".to_string().into(),
        },
        clock.clock(),
    )
    .await;
    let (scrape, _) = timed_scrape(&exporter, None).await;
    for cluster in clusters {
        assert_eq!(up(&scrape, cluster), Some(0.0), "{cluster}");
    }
    // Atlas allows about ten token requests a minute: five clusters must not ask five times.
    assert_eq!(fake.requests().endpoint("oauth_token"), 1);
    assert_eq!(requests(&scrape, "oauth_token", "401"), Some(1.0));
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 0);
    // The next scrape asks again, once: the last scrape's failure is not its answer.
    let (scrape, _) = timed_scrape(&exporter, None).await;
    for cluster in clusters {
        assert_eq!(up(&scrape, cluster), Some(0.0), "{cluster}");
    }
    assert_eq!(fake.requests().endpoint("oauth_token"), 2);
    assert_eq!(requests(&scrape, "oauth_token", "401"), Some(2.0));
}

#[tokio::test]
async fn a_stale_digest_nonce_is_answered_without_a_failed_scrape() {
    let clusters = ["C0", "C1", "C2"];
    let fake = fake_with(&clusters);
    let yaml = config(&clusters.join(", "), "");
    let exporter = Exporter::start(fake.clone(), &yaml, support::api_key()).await;
    let (scrape, _) = timed_scrape(&exporter, None).await;
    for cluster in clusters {
        assert_eq!(up(&scrape, cluster), Some(1.0), "{cluster}");
    }
    let challenges = fake.requests().challenges;
    fake.expire_nonces();
    let (scrape, _) = timed_scrape(&exporter, None).await;
    for cluster in clusters {
        assert_eq!(up(&scrape, cluster), Some(1.0), "{cluster}");
    }
    assert!(fake.requests().challenges > challenges);
    assert_eq!(requests(&scrape, "list_export_jobs", "200"), Some(6.0));
    assert_eq!(requests(&scrape, "list_export_jobs", "401"), None);
}
