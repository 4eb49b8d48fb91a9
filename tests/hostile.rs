//! Hostile answers from whatever sits at `atlas.base_url`: bodies past `max_response_size`
//! (announced, gzip bombs, endless), bodies that trickle, break off or are not JSON a parser
//! can take, and redirects. Each fails only its own cluster, inside the scrape's deadline,
//! with a log line that says what was wrong, while another cluster of the same scrape stays
//! `up 1` with its jobs.
//!
//! The exporter runs as its own process, so its peak resident memory (`VmHWM`) is its own.

use std::io::Write as _;
use std::time::{Duration, Instant};

use fake_atlas::{FakeAtlas, Fault, Gate, Meter, job};

use crate::support::{self, GROUP, Scrape, Serving, Spawn, TempDir, within};

/// The limit the size tests run with.
const LIMIT: u64 = 1 << 20;
/// The cluster that is answered normally in every test.
const GOOD: &str = "Good";
const GOOD_JOB: &str = "605ccba3c1c7613f423e1585";

/// How the exporter signs in.
#[derive(Clone, Copy, Debug)]
enum Auth {
    Digest,
    Bearer,
}

/// The stand-in with [`GOOD`] holding one queued job, and `hostile` clusters without jobs.
fn fake_with(hostile: &[&str]) -> FakeAtlas {
    let fake = support::fake();
    fake.put_job(GROUP, GOOD, job(GOOD_JOB).build());
    for cluster in hostile {
        fake.add_cluster(GROUP, cluster);
    }
    fake
}

/// The path of a cluster's export job listing, for faults.
fn exports(cluster: &str) -> String {
    format!("/clusters/{cluster}/backup/exports")
}

/// The exporter binary, running against a stand-in.
struct Running {
    exporter: Serving,
    _dir: TempDir,
}

impl Running {
    /// Starts the binary watching [`GOOD`] and `hostile` of [`GROUP`] at `base_url`, with
    /// `max_response_size: 1MiB`.
    async fn start(base_url: &str, hostile: &[&str], auth: Auth) -> Running {
        let dir = TempDir::new("hostile");
        let credentials = match auth {
            Auth::Digest => format!(
                "    api_key: {{public_key: {}, private_key: {}}}",
                support::PUBLIC_KEY,
                support::PRIVATE_KEY
            ),
            Auth::Bearer => format!(
                "    service_account: {{client_id: {}, client_secret: {}}}",
                support::CLIENT_ID,
                support::CLIENT_SECRET
            ),
        };
        let clusters = std::iter::once(GOOD)
            .chain(hostile.iter().copied())
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.write(
            "exporter.yml",
            &format!(
                "atlas:\n  base_url: {base_url}\n  max_response_size: 1MiB\n  auth:\n{credentials}\n\
                 targets:\n  - group_id: {GROUP}\n    clusters: [{clusters}]\n"
            ),
        );
        Running {
            exporter: Spawn::exporter().config(&config).serve().await,
            _dir: dir,
        }
    }

    /// Scrapes `/metrics` as Prometheus does with a scrape timeout of `timeout_secs`, and
    /// checks the answer is a 200 that came within that timeout.
    async fn scrape(&self, timeout_secs: u64) -> Scrape {
        let started = Instant::now();
        let response = reqwest::Client::new()
            .get(format!("http://{}/metrics", self.exporter.addr))
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                timeout_secs.to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(timeout_secs),
            "the scrape took {elapsed:?}"
        );
        Scrape::parse(&text)
    }

    /// The process's peak resident set size so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.exporter.pid()))
            .expect("the exporter's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }

    /// The first log line that mentions `cluster` and `what`.
    async fn log_line(&self, cluster: &str, what: &str) -> String {
        let needle = format!("cluster_name={cluster} ");
        let line = self.exporter.log.line_with(&needle).await;
        assert!(line.contains(what), "{what:?} not in {line}");
        line
    }

    /// Stops the binary and checks it never panicked.
    fn stop(self) {
        // The child is ours: stop it by its handle.
        let stderr = self.exporter.into_running().kill();
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

fn up(scrape: &Scrape, cluster: &str) -> Option<f64> {
    scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)])
}

/// [`GOOD`] is `up 1` with its one queued job; every one of `hostile` is `up 0` without jobs.
fn assert_only_hostile_failed(scrape: &Scrape, hostile: &[&str]) {
    assert_eq!(up(scrape, GOOD), Some(1.0));
    assert_eq!(scrape.job_ids(GOOD), [GOOD_JOB]);
    assert_eq!(
        scrape.value(
            "atlas_backup_export_jobs",
            &[("cluster_name", GOOD), ("state", "Queued")]
        ),
        Some(1.0)
    );
    for cluster in hostile {
        assert_eq!(up(scrape, cluster), Some(0.0), "{cluster}");
        assert!(
            scrape
                .find("atlas_backup_export_jobs", &[("cluster_name", cluster)])
                .is_empty(),
            "{cluster}"
        );
    }
}

// ---- Bodies past max_response_size ----

/// Hostile clusters in the size tests, all answered at once (`max_concurrent_requests` is 8).
const BIG: [&str; 3] = ["Big0", "Big1", "Big2"];

/// What a size test allows on top of the baseline and a limit per request in flight: hyper's
/// read buffer and the inflater's window per connection, the connections opened afresh for
/// the hostile answers, the allocator keeping freed pages of the other threads' arenas, and
/// the cost of rendering the scrape. The measured growth is under 4 MiB; reading one of the
/// hostile bodies whole would add at least 250 MiB.
const SLACK: u64 = 16 << 20;

/// Runs one size test: a first scrape with no fault sets the baseline of peak RSS; then each
/// [`BIG`] cluster gets `fault`, all three in flight at once, and the scrape must fail them with
/// the limit in the log, keep [`GOOD`], and stay within the baseline plus three limits plus
/// [`SLACK`]. With `held`, the gate that holds the hostile bodies: it opens only after the scrape
/// has failed them, so they failed on what came before any body. Returns the meter of the
/// hostile bodies, every one of them ended.
async fn size_case(name: &str, held: Option<&Gate>, fault: impl Fn(&str) -> Fault) -> Meter {
    let fake = fake_with(&BIG);
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &BIG, Auth::Digest).await;
    let scrape = exporter.scrape(10).await;
    for cluster in BIG {
        assert_eq!(
            up(&scrape, cluster),
            Some(1.0),
            "{cluster} before the fault"
        );
    }
    let baseline = exporter.peak_rss();

    let meter = Meter::new();
    for cluster in BIG {
        fake.inject(fault(&exports(cluster)).metered(&meter));
    }
    let scrape = exporter.scrape(10).await;
    assert_only_hostile_failed(&scrape, &BIG);
    for cluster in BIG {
        exporter
            .log_line(
                cluster,
                "the answer is larger than atlas.max_response_size (1MiB)",
            )
            .await;
    }
    if let Some(gate) = held {
        // Failed with every body still behind the gate; now let them meet the closed
        // connections.
        gate.open();
    }
    // Every hostile body ended (the exporter hung up), and none was asked for twice.
    within("the hostile bodies to end", meter.ended(BIG.len())).await;
    assert_eq!(meter.started(), BIG.len());

    let peak = exporter.peak_rss();
    let bound = baseline + BIG.len() as u64 * LIMIT + SLACK;
    // Straight to stderr: libtest captures `eprintln!` of passing tests, and this report is
    // for every run.
    let _ = writeln!(
        std::io::stderr(),
        "{name}: peak RSS {} KiB after the hostile scrape, baseline {} KiB, bound {} KiB; \
         the stand-in sent {} bytes ({} inflated)",
        peak >> 10,
        baseline >> 10,
        bound >> 10,
        meter.sent(),
        meter.inflated()
    );
    assert!(
        peak <= bound,
        "peak RSS {peak} over {bound} (baseline {baseline})"
    );
    exporter.stop();
    meter
}

#[tokio::test]
async fn an_announced_body_past_the_limit_is_not_read() {
    const SIZE: u64 = 256 << 20;
    // The bodies wait behind a gate that opens only once the scrape is over: an exporter that
    // read them instead of refusing them on their Content-Length would wait for them until
    // the deadline and log that the body was still arriving, not that it was too large.
    let gate = Gate::new();
    let meter = size_case("Content-Length 256 MiB", Some(&gate), |path| {
        Fault::oversized_held(path, SIZE, &gate)
    })
    .await;
    // Refused on its Content-Length: what the stand-in got out is what the kernel's buffers
    // took before the exporter hung up, far from the 768 MiB on offer.
    assert!(
        meter.sent() < BIG.len() as u64 * (LIMIT + (32 << 20)),
        "{}",
        meter.sent()
    );
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_at_the_limit_counted_inflated() {
    const INFLATED: u64 = 1 << 30;
    let meter = size_case("gzip bomb of 1 GiB", None, |path| {
        Fault::gzip_bomb(path, INFLATED)
    })
    .await;
    // Each bomb really was past the limit once inflated, while what crossed the wire was tiny.
    assert!(
        meter.inflated() > BIG.len() as u64 * LIMIT,
        "{}",
        meter.inflated()
    );
    assert!(
        meter.sent() < BIG.len() as u64 * (2 << 20),
        "{}",
        meter.sent()
    );
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let meter = size_case("endless chunked body", None, Fault::endless).await;
    // The exporter read past the limit to know it was past it, and then stopped: what was
    // sent is bounded by the limit plus what the kernel's buffers hold.
    assert!(meter.sent() > BIG.len() as u64 * LIMIT, "{}", meter.sent());
    assert!(
        meter.sent() < BIG.len() as u64 * (LIMIT + (32 << 20)),
        "{}",
        meter.sent()
    );
}

// ---- Slow and broken answers ----

#[tokio::test]
async fn a_body_trickling_a_byte_a_second_is_cut_by_the_deadline() {
    let fake = fake_with(&["Slow"]);
    let meter = Meter::new();
    fake.inject(Fault::trickle(&exports("Slow"), Duration::from_secs(1)).metered(&meter));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &["Slow"], Auth::Digest).await;
    // A 3 s scrape timeout: the collection's deadline is 2.5 s, and the scrape answers inside 3 s.
    let started = Instant::now();
    let scrape = exporter.scrape(3).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_only_hostile_failed(&scrape, &["Slow"]);
    exporter
        .log_line("Slow", "the body was still arriving after")
        .await;
    // Cut after a few bytes of the 40 it announced.
    within("the trickle to end", meter.ended(1)).await;
    assert!(meter.sent() < 10, "{}", meter.sent());
    exporter.stop();
}

#[tokio::test]
async fn broken_and_unparsable_bodies_fail_only_their_cluster() {
    let broken = ["Reset", "Truncated", "NotUtf8", "Deep"];
    let fake = fake_with(&broken);
    fake.inject(Fault::reset_mid_body(&exports("Reset")));
    fake.inject(Fault::truncated_chunked(&exports("Truncated")));
    fake.inject(Fault::invalid_utf8(&exports("NotUtf8")));
    fake.inject(Fault::deeply_nested(&exports("Deep"), 100_000));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &broken, Auth::Digest).await;
    let scrape = exporter.scrape(10).await;
    assert_only_hostile_failed(&scrape, &broken);
    exporter.log_line("Reset", "reset by peer").await;
    exporter
        .log_line(
            "Truncated",
            "reading the body: error decoding response body",
        )
        .await;
    exporter
        .log_line("NotUtf8", "the body is not UTF-8 text")
        .await;
    exporter
        .log_line("Deep", "the body nests JSON deeper than 128 levels")
        .await;
    // Still serving, and still failing only those.
    let scrape = exporter.scrape(10).await;
    assert_only_hostile_failed(&scrape, &broken);
    exporter.stop();
}

// ---- Redirects ----

#[tokio::test]
async fn redirects_are_not_followed_and_name_their_location() {
    for auth in [Auth::Digest, Auth::Bearer] {
        // Another Atlas that would take the same credentials: it must never hear of them.
        let elsewhere = support::fake();
        let elsewhere_url = elsewhere.start().await.unwrap();
        let fake = fake_with(&["Away", "Sideways"]);
        let away =
            format!("{elsewhere_url}/api/atlas/v2/groups/{GROUP}/clusters/Good/backup/exports");
        fake.inject(Fault::redirect(&exports("Away"), 302, &away));
        // The same host, another path: neither a digest answer nor a bearer token may go there.
        fake.inject(Fault::redirect(
            &exports("Sideways"),
            307,
            "/api/atlas/v2/somewhere-else",
        ));
        let base_url = fake.start().await.unwrap();
        let exporter = Running::start(&base_url, &["Away", "Sideways"], auth).await;
        let scrape = exporter.scrape(10).await;
        assert_only_hostile_failed(&scrape, &["Away", "Sideways"]);
        exporter
            .log_line(
                "Away",
                &format!("HTTP 302: redirect to \\\"{away}\\\" not followed"),
            )
            .await;
        exporter
            .log_line(
                "Sideways",
                "HTTP 307: redirect to \\\"/api/atlas/v2/somewhere-else\\\" not followed",
            )
            .await;
        assert_eq!(elsewhere.requests().total, 0, "{auth:?}");
        assert_eq!(fake.requests().endpoint("other"), 0, "{auth:?}");
        // A redirect is an answer, not retried: one request for each (plus digest challenges).
        assert_eq!(
            scrape.value(
                "atlas_backup_exporter_api_requests_total",
                &[("endpoint", "list_export_jobs"), ("code", "302")]
            ),
            Some(1.0)
        );
        exporter.stop();
        elsewhere.shutdown();
        fake.shutdown();
    }
}

#[tokio::test]
async fn a_redirected_token_request_keeps_the_secret_home() {
    let elsewhere = support::fake();
    let elsewhere_url = elsewhere.start().await.unwrap();
    let fake = fake_with(&[]);
    let away = format!("{elsewhere_url}/api/oauth/token");
    fake.inject(Fault::redirect("/api/oauth/token", 308, &away));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &[], Auth::Bearer).await;
    let scrape = exporter.scrape(10).await;
    assert_eq!(up(&scrape, GOOD), Some(0.0));
    exporter
        .log_line(
            GOOD,
            &format!("HTTP 308: redirect to \\\"{away}\\\" not followed"),
        )
        .await;
    assert_eq!(elsewhere.requests().total, 0);
    // Refused once, not retried.
    assert_eq!(fake.requests().endpoint("oauth_token"), 1);
    exporter.stop();
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused_once() {
    let fake = fake_with(&[]);
    let meter = Meter::new();
    fake.inject(Fault::oversized("/api/oauth/token", 64 << 20).metered(&meter));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &[], Auth::Bearer).await;
    let scrape = exporter.scrape(10).await;
    assert_eq!(up(&scrape, GOOD), Some(0.0));
    exporter
        .log_line(
            GOOD,
            "requesting an OAuth token: reading the answer: the answer is larger than \
             atlas.max_response_size (1MiB)",
        )
        .await;
    within("the token answer to end", meter.ended(1)).await;
    // A body past the limit would be past it again: not retried.
    assert_eq!(fake.requests().endpoint("oauth_token"), 1);
    exporter.stop();
}

// ---- Error bodies ----

/// Characters of hostile text in the error bodies below: under the 1 MiB limit, so the body is
/// read and its text would reach the log whole if nothing cut it.
const HUGE: usize = 600_000;

#[tokio::test]
async fn a_huge_error_detail_is_cut_in_the_log() {
    let fake = fake_with(&["Loud"]);
    let body = serde_json::json!({
        "error": 400,
        "errorCode": "E".repeat(HUGE / 2),
        "detail": format!("{}\nforged=line", "d".repeat(HUGE)),
    });
    fake.inject(Fault::raw(
        &exports("Loud"),
        400,
        "application/json",
        body.to_string(),
    ));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &["Loud"], Auth::Digest).await;
    let scrape = exporter.scrape(10).await;
    assert_only_hostile_failed(&scrape, &["Loud"]);
    let line = exporter
        .log_line(
            "Loud",
            &format!(
                "HTTP 400 {}… ({} more characters not shown): {}… ({} more characters not shown)",
                "E".repeat(200),
                HUGE / 2 - 200,
                "d".repeat(200),
                HUGE + "\nforged=line".len() - 200
            ),
        )
        .await;
    assert!(line.len() < 2_000, "a log line of {} bytes", line.len());
    exporter.stop();
}

#[tokio::test]
async fn a_huge_oauth_error_is_cut_in_the_log() {
    let fake = fake_with(&[]);
    let body = serde_json::json!({ "error": "e".repeat(HUGE) });
    fake.inject(Fault::raw(
        "/api/oauth/token",
        400,
        "application/json",
        body.to_string(),
    ));
    let base_url = fake.start().await.unwrap();
    let exporter = Running::start(&base_url, &[], Auth::Bearer).await;
    let scrape = exporter.scrape(10).await;
    assert_eq!(up(&scrape, GOOD), Some(0.0));
    let line = exporter
        .log_line(
            GOOD,
            &format!(
                "requesting an OAuth token: HTTP 400: {}… ({} more characters not shown)",
                "e".repeat(200),
                HUGE - 200
            ),
        )
        .await;
    assert!(line.len() < 2_000, "a log line of {} bytes", line.len());
    exporter.stop();
}
