//! Many scrapes at once: scrapes that overlap share one collection, and `collection.cache_ttl`
//! lets scrapes that follow each other share one too.

use std::time::Duration;

use atlas_backup_exporter::clock::ManualClock;
use fake_atlas::{FakeAtlas, Fault, Gate, job};
use futures_util::FutureExt;
use futures_util::future::join_all;

use crate::support::{self, Exporter, GROUP, Scrape};

const CLUSTERS: [&str; 3] = ["Alpha", "Beta", "Gamma"];

fn config(sections: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [{}]\nexport_jobs:\n  max_age: 0\n{sections}",
        CLUSTERS.join(", ")
    )
}

/// Alpha: two successful jobs and a failed one; Beta: one running; Gamma: none.
fn fake() -> FakeAtlas {
    let fake = support::fake();
    for cluster in CLUSTERS {
        fake.add_cluster(GROUP, cluster);
    }
    fake.put_jobs(
        GROUP,
        "Alpha",
        [
            job("a00000000000000000000001")
                .state("Successful")
                .created_at("2026-08-01T00:00:00Z")
                .finished_at("2026-08-01T00:15:00Z")
                .build(),
            job("a00000000000000000000002")
                .state("Successful")
                .created_at("2026-08-02T00:00:00Z")
                .finished_at("2026-08-02T00:20:00Z")
                .build(),
            job("a00000000000000000000003")
                .state("Failed")
                .created_at("2026-08-03T00:00:00Z")
                .finished_at("2026-08-03T00:01:00Z")
                .state_reason("EXPORT_BUCKET_NOT_ACCESSIBLE", "denied")
                .build(),
        ],
    );
    fake.put_job(
        GROUP,
        "Beta",
        job("b00000000000000000000001")
            .state("InProgress")
            .created_at("2026-08-04T00:00:00Z")
            .build(),
    );
    fake
}

/// Asserts the values every answer must carry, whichever collection produced it.
fn assert_right_values(scrape: &Scrape) {
    for cluster in CLUSTERS {
        assert_eq!(
            scrape.value("atlas_backup_export_up", &[("cluster_name", cluster)]),
            Some(1.0),
            "{cluster}"
        );
    }
    let jobs = |cluster: &str, state: &str| {
        scrape.value(
            "atlas_backup_export_jobs",
            &[("cluster_name", cluster), ("state", state)],
        )
    };
    assert_eq!(jobs("Alpha", "Successful"), Some(2.0));
    assert_eq!(jobs("Alpha", "Failed"), Some(1.0));
    assert_eq!(jobs("Beta", "InProgress"), Some(1.0));
    assert_eq!(jobs("Gamma", "Queued"), Some(0.0));
    assert_eq!(
        scrape.value(
            "atlas_backup_export_last_success_timestamp_seconds",
            &[("cluster_name", "Alpha")]
        ),
        Some(1_785_630_000.0)
    );
    assert_eq!(
        scrape.job_ids("Alpha"),
        [
            "a00000000000000000000001",
            "a00000000000000000000002",
            "a00000000000000000000003"
        ]
    );
    assert_eq!(scrape.job_ids("Beta"), ["b00000000000000000000001"]);
    assert!(scrape.job_ids("Gamma").is_empty());
}

/// Each cluster's `atlas_backup_export_collection_timestamp_seconds`, in cluster order.
fn collected_at(scrape: &Scrape) -> Vec<f64> {
    CLUSTERS
        .iter()
        .map(|cluster| {
            scrape
                .value(
                    "atlas_backup_export_collection_timestamp_seconds",
                    &[("cluster_name", cluster)],
                )
                .unwrap_or_else(|| panic!("no collection timestamp for {cluster}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_scrapes_share_one_collection() {
    let fake = fake();
    // A slow Atlas: a token, then listings, 2 s in all, so that all 200 scrapes arrive while
    // the first collection runs even on a busy machine.
    fake.set_latency(Duration::from_millis(300));
    fake.inject(Fault::delay("/backup/exports", Duration::from_millis(1400)));
    // No --web.max-requests cap (default 40): all 200 are to reach the shared collection.
    let uncapped = atlas_backup_exporter::Options {
        max_requests: 0,
        ..Default::default()
    };
    let exporter = Exporter::start_with(
        fake.clone(),
        &config(""),
        support::service_account(),
        uncapped,
    )
    .await;
    let http = reqwest::Client::new();
    let url = exporter.url("/metrics");
    let answers = join_all((0..200).map(|_| {
        let request = http.get(&url).send();
        tokio::spawn(async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        })
    }))
    .await;

    let counts = fake.requests();
    assert_eq!(counts.endpoint("oauth_token"), 1, "{counts:?}");
    assert_eq!(
        counts.endpoint("list_export_jobs"),
        CLUSTERS.len() as u64,
        "{counts:?}"
    );
    // One collection's metadata lookups too: the project's name and buckets, and each
    // configured cluster's details.
    assert_eq!(counts.endpoint("get_cluster"), CLUSTERS.len() as u64);
    assert_eq!(
        counts.endpoint("get_project") + counts.endpoint("list_export_buckets"),
        2
    );
    // Each cluster's backup schedule, and the snapshot of Alpha's newest success (the only
    // cluster with one).
    assert_eq!(
        counts.endpoint("get_backup_schedule"),
        CLUSTERS.len() as u64
    );
    assert_eq!(counts.endpoint("get_snapshot"), 1);
    assert_eq!(
        counts.total,
        1 + 3 * CLUSTERS.len() as u64 + 2 + 1,
        "{counts:?}"
    );
    let first = Scrape::parse(answers[0].as_ref().unwrap());
    let stamps = collected_at(&first);
    assert_eq!(answers.len(), 200);
    for answer in answers {
        let scrape = Scrape::parse(&answer.unwrap());
        assert_right_values(&scrape);
        assert_eq!(collected_at(&scrape), stamps, "one collection answered all");
    }
}

#[tokio::test]
async fn within_cache_ttl_a_scrape_reuses_the_last_collection() {
    let fake = fake();
    let yaml = config("collection:\n  cache_ttl: 5s\n");
    // A clock that stands still: however slow the machine, the second scrape comes within 5 s.
    let clock = ManualClock::new();
    let exporter =
        Exporter::start_with_clock(fake.clone(), &yaml, support::api_key(), clock.clock()).await;
    let first = exporter.scrape().await;
    assert_right_values(&first);
    let requests = fake.requests();
    // Sent once the first is answered, so it arrives after that collection finished: only
    // the cache can answer it.
    let second = exporter.scrape().await;
    assert_right_values(&second);
    assert_eq!(fake.requests(), requests, "no new request to Atlas");
    // The timestamp says when the data was collected, not when it was served.
    assert_eq!(collected_at(&second), collected_at(&first));
}

#[tokio::test]
async fn a_cached_collection_expires_after_cache_ttl() {
    let fake = fake();
    let yaml = config("collection:\n  cache_ttl: 1s\n");
    let clock = ManualClock::new();
    let exporter =
        Exporter::start_with_clock(fake.clone(), &yaml, support::api_key(), clock.clock()).await;
    let first = exporter.scrape().await;
    let listed = fake.requests().endpoint("list_export_jobs");
    assert_eq!(collected_at(&exporter.scrape().await), collected_at(&first));
    // A collection is reused for less than cache_ttl, up to its last moment...
    clock.advance(Duration::from_millis(999));
    assert_eq!(collected_at(&exporter.scrape().await), collected_at(&first));
    assert_eq!(fake.requests().endpoint("list_export_jobs"), listed);
    // ...and not once it is cache_ttl old.
    clock.advance(Duration::from_millis(1));
    let later = exporter.scrape().await;
    assert_right_values(&later);
    assert_eq!(
        fake.requests().endpoint("list_export_jobs"),
        listed + CLUSTERS.len() as u64
    );
    let (before, after) = (collected_at(&first), collected_at(&later));
    for (before, after) in before.iter().zip(&after) {
        assert!(after > before, "{after} after {before}");
    }
}

#[tokio::test]
async fn without_cache_every_scrape_collects_again() {
    let fake = fake();
    let exporter = Exporter::start(fake.clone(), &config(""), support::api_key()).await;
    let first = exporter.scrape().await;
    let listed = fake.requests().endpoint("list_export_jobs");
    let second = exporter.scrape().await;
    assert_right_values(&second);
    assert_eq!(
        fake.requests().endpoint("list_export_jobs"),
        listed + CLUSTERS.len() as u64
    );
    let (before, after) = (collected_at(&first), collected_at(&second));
    for (before, after) in before.iter().zip(&after) {
        assert!(after > before, "{after} after {before}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_that_hangs_up_does_not_cost_a_second_collection() {
    let fake = fake();
    // The collection waits at the stand-in until the gate opens.
    let gate = Gate::new();
    fake.inject(Fault::hold("/backup/exports", &gate));
    let exporter = Exporter::start(fake.clone(), &config(""), support::service_account()).await;
    // The first scraper gives up after 200 ms, while its collection waits.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let first = tokio::spawn({
        let url = exporter.url("/metrics");
        async move { impatient.get(url).send().await }
    });
    support::within(
        "the collection's listings at the stand-in",
        gate.arrivals(CLUSTERS.len()),
    )
    .await;
    // A second scrape arrives while that collection runs (the exporter's scrape behind
    // `/metrics`, polled once so that it has arrived before the gate opens) and waits for it.
    let mut second = Box::pin(exporter.app.exporter.scrape(None));
    assert!(
        (&mut second).now_or_never().is_none(),
        "the collection runs"
    );
    assert!(first.await.unwrap().is_err(), "the first scraper hung up");
    gate.open();
    let second = second.await.to_text();
    assert_right_values(&Scrape::parse(&second));
    let counts = fake.requests();
    assert_eq!(counts.endpoint("oauth_token"), 1);
    assert_eq!(counts.endpoint("list_export_jobs"), CLUSTERS.len() as u64);
}
