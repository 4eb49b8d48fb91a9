//! Background collection (`collection.interval`) against the stand-in: scrapes, `/probe` and
//! `/sd` answer at once from the newest finished collection and never call Atlas; the loop's
//! turns follow the injected clock, overruns are counted, the first collection's progress shows,
//! and the loop stops with the server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atlas_backup_exporter::clock::ManualClock;
use atlas_backup_exporter::exporter::background::Background;
use fake_atlas::{FakeAtlas, Fault, Gate, job};

use crate::support::{self, Captured, Exporter, GROUP, Scrape, Spawn, within};

const PENDING: &str = "atlas_backup_exporter_first_collection_pending";
const INTERVAL: &str = "atlas_backup_exporter_collection_interval_seconds";
const LAST_TIMESTAMP: &str = "atlas_backup_exporter_last_collection_timestamp_seconds";
const LAST_DURATION: &str = "atlas_backup_exporter_last_collection_duration_seconds";
const OVERRUNS: &str = "atlas_backup_exporter_collection_overruns_total";
const UP: &str = "atlas_backup_export_up";
const COLLECTED_AT: &str = "atlas_backup_export_collection_timestamp_seconds";

/// A project with Cluster0 and Cluster1, one queued job each.
fn two_clusters() -> FakeAtlas {
    let fake = support::fake();
    for (cluster, id) in [
        ("Cluster0", "605ccba3c1c7613f423e1585"),
        ("Cluster1", "605ccba3c1c7613f423e1586"),
    ] {
        fake.add_cluster(GROUP, cluster);
        fake.put_job(GROUP, cluster, job(id).state("Queued").build());
    }
    fake
}

/// The config watching both clusters, with `collection` as the `collection:` section's body.
fn yaml(collection: &str) -> String {
    format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0, \
         Cluster1]\ncollection:\n{collection}"
    )
}

/// The exporter on a clock that moves when the test says; a service account, so the stand-in
/// counts no digest challenges.
async fn start(fake: FakeAtlas, yaml: &str) -> (Exporter, ManualClock) {
    let clock = ManualClock::new();
    let exporter =
        Exporter::start_with_clock(fake, yaml, support::service_account(), clock.clock()).await;
    (exporter, clock)
}

fn background(exporter: &Exporter) -> &Background {
    exporter
        .app
        .exporter
        .background()
        .expect("collection.interval starts the background loop")
}

/// Waits until the loop has finished `n` collections.
async fn finished(exporter: &Exporter, n: u64) {
    within(
        &format!("background collection {n}"),
        background(exporter).finished(n),
    )
    .await;
}

fn up(scrape: &Scrape, cluster: &str) -> Option<f64> {
    scrape.value(UP, &[("cluster_name", cluster)])
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn probe_path(cluster: &str) -> String {
    format!("/probe?group_id={GROUP}&cluster_name={cluster}")
}

#[tokio::test]
async fn while_the_first_collection_is_held_scrapes_answer_at_once_and_show_it_pending() {
    let fake = two_clusters();
    // Every call takes a while, and Cluster1's listing waits for the test.
    fake.set_latency(Duration::from_millis(200));
    let gate = Gate::new();
    fake.inject(Fault::hold("/clusters/Cluster1/backup/exports", &gate));
    let (exporter, clock) = start(fake.clone(), &yaml("  interval: 1m\n")).await;
    let started = unix_now();
    within("Cluster1's listing held", gate.arrivals(1)).await;
    // Cluster0's listing has arrived too; nothing else is asked before the listings are done.
    let before = within(
        "both listings",
        fake.wait_for_requests(|c| c.endpoint("list_export_jobs") == 2),
    )
    .await;
    clock.advance(Duration::from_secs(5));

    // The collection is held: every one of these answers without waiting for it.
    for _ in 0..10 {
        let scrape = within("a scrape during the first collection", exporter.scrape()).await;
        assert_eq!(scrape.value(PENDING, &[]), Some(1.0));
        assert_eq!(scrape.value(INTERVAL, &[]), Some(60.0));
        assert_eq!(scrape.value(OVERRUNS, &[]), Some(0.0));
        assert!(
            scrape.find(UP, &[]).is_empty(),
            "no up 0 flood:\n{}",
            scrape.text
        );
        assert_eq!(scrape.value(LAST_TIMESTAMP, &[]), None);
        assert_eq!(scrape.value(LAST_DURATION, &[]), None);
        assert_eq!(
            scrape.find("atlas_backup_exporter_build_info", &[]).len(),
            1
        );
    }
    // A watched cluster probes empty until a collection reached it; /sd knows the configured.
    let (status, body) = exporter.get(&probe_path("Cluster0")).await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _) = exporter.get(&probe_path("Unknown")).await;
    assert_eq!(status, 404);
    let (status, sd) = exporter.get("/sd").await;
    assert_eq!(status, 200);
    assert_eq!(sd.matches("__param_cluster_name").count(), 2, "{sd}");
    assert_eq!(gate.arrived(), 1, "still held");
    assert_eq!(fake.requests(), before, "no answer called Atlas");

    gate.open();
    finished(&exporter, 1).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value(PENDING, &[]), Some(0.0));
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    assert_eq!(up(&scrape, "Cluster1"), Some(1.0));
    assert_eq!(
        scrape.value(
            "atlas_backup_export_jobs",
            &[("cluster_name", "Cluster1"), ("state", "Queued")]
        ),
        Some(1.0)
    );
    // The time it took on the exporter's clock, which moved 5 s while it was held.
    assert_eq!(scrape.value(LAST_DURATION, &[]), Some(5.0));
    let finished_at = scrape.value(LAST_TIMESTAMP, &[]).unwrap();
    assert!(
        (started..=unix_now()).contains(&finished_at),
        "{finished_at}"
    );
    // Each cluster keeps its own time, from before the collection finished.
    for cluster in ["Cluster0", "Cluster1"] {
        let at = scrape
            .value(COLLECTED_AT, &[("cluster_name", cluster)])
            .unwrap();
        assert!((started..=finished_at).contains(&at), "{cluster}: {at}");
    }
}

#[tokio::test]
async fn ten_scrapes_probes_and_sd_within_an_interval_cause_no_atlas_call() {
    let fake = two_clusters();
    fake.set_latency(Duration::from_millis(20));
    let (exporter, clock) = start(fake.clone(), &yaml("  interval: 5m\n")).await;
    finished(&exporter, 1).await;
    let first = exporter.scrape().await;
    let collected_at = |scrape: &Scrape| {
        scrape
            .value(COLLECTED_AT, &[("cluster_name", "Cluster0")])
            .unwrap()
    };
    fake.reset_counts();
    clock.advance(Duration::from_secs(299));
    for round in 0..10 {
        let scrape = exporter.scrape().await;
        assert_eq!(collected_at(&scrape), collected_at(&first), "round {round}");
        assert_eq!(up(&scrape, "Cluster1"), Some(1.0));
        let cluster = ["Cluster0", "Cluster1"][round % 2];
        let (status, probed) = exporter.get(&probe_path(cluster)).await;
        assert_eq!(status, 200);
        let probed = Scrape::parse(&probed);
        assert_eq!(up(&probed, cluster), Some(1.0), "{}", probed.text);
        assert_eq!(probed.job_ids(cluster).len(), 1);
        assert!(
            probed.find(PENDING, &[]).is_empty(),
            "a probe is the cluster only"
        );
        let (status, sd) = exporter.get("/sd").await;
        assert_eq!(status, 200);
        assert_eq!(sd.matches("/probe").count(), 2, "{sd}");
    }
    assert_eq!(fake.requests().total, 0, "{:?}", fake.requests());

    // The next turn is due one interval after the first started.
    clock.advance(Duration::from_secs(1));
    finished(&exporter, 2).await;
    let counts = fake.requests();
    assert_eq!(counts.endpoint("list_export_jobs"), 2, "{counts:?}");
    let second = exporter.scrape().await;
    assert!(collected_at(&second) > collected_at(&first));
    assert_eq!(second.value(OVERRUNS, &[]), Some(0.0));
}

#[tokio::test]
async fn an_overrun_is_counted_and_the_next_collection_starts_at_once() {
    let fake = two_clusters();
    let gate = Gate::new();
    // The first collection's Cluster1 listing only.
    fake.inject(Fault::hold("/clusters/Cluster1/backup/exports", &gate).times(1));
    let (exporter, clock) = start(fake.clone(), &yaml("  interval: 1m\n")).await;
    within("the first listing held", gate.arrivals(1)).await;
    clock.advance(Duration::from_secs(90));
    gate.open();
    // The clock does not move again: only an overrun starts the second collection.
    finished(&exporter, 2).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value(OVERRUNS, &[]), Some(1.0));
    assert_eq!(
        scrape.value(LAST_DURATION, &[]),
        Some(0.0),
        "the second one"
    );
    assert_eq!(up(&scrape, "Cluster1"), Some(1.0));
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 4);
    // One that ends in time waits for its turn: a minute after it started.
    clock.advance(Duration::from_secs(59));
    assert_eq!(exporter.scrape().await.value(OVERRUNS, &[]), Some(1.0));
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 4);
    clock.advance(Duration::from_secs(1));
    finished(&exporter, 3).await;
    assert_eq!(exporter.scrape().await.value(OVERRUNS, &[]), Some(1.0));
}

#[tokio::test]
async fn a_collection_is_bounded_by_the_interval_or_an_explicit_timeout_and_calls_by_the_request_timeout()
 {
    // Cluster1's listing never answers: each way of bounding the collection cuts it, and
    // Cluster0 is served from the same collection.
    for (collection, atlas) in [
        ("  interval: 1s\n", ""),
        ("  interval: 1h\n  timeout: 1s\n", ""),
        ("  interval: 1h\n", "  request_timeout: 1s\n"),
    ] {
        let fake = two_clusters();
        fake.inject(Fault::hang("/clusters/Cluster1/backup/exports"));
        let config = yaml(collection).replace(
            "  base_url: BASE_URL\n",
            &format!("  base_url: BASE_URL\n{atlas}"),
        );
        let (exporter, _clock) = start(fake, &config).await;
        finished(&exporter, 1).await;
        let scrape = exporter.scrape().await;
        assert_eq!(up(&scrape, "Cluster0"), Some(1.0), "{collection}{atlas}");
        assert_eq!(up(&scrape, "Cluster1"), Some(0.0), "{collection}{atlas}");
    }
}

// One thread: the background loop runs where the log is captured.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_cluster_keeps_its_up_0_and_its_reason_in_every_background_collection() {
    let (captured, _log) = Captured::on_this_thread(atlas_backup_exporter::logging::LogLevel::Info);
    let fake = two_clusters();
    fake.inject(Fault::atlas_error(
        "/clusters/Cluster1/backup/exports",
        403,
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
    ));
    let (exporter, clock) = start(fake, &yaml("  interval: 1m\n")).await;
    let reason = [
        "collecting export jobs failed",
        "cluster_name=Cluster1",
        "IP_ADDRESS_NOT_ON_ACCESS_LIST",
    ];
    for n in 1..=2 {
        finished(&exporter, n).await;
        let scrape = exporter.scrape().await;
        assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
        assert_eq!(up(&scrape, "Cluster1"), Some(0.0), "collection {n}");
        assert!(
            scrape
                .find("atlas_backup_export_jobs", &[("cluster_name", "Cluster1")])
                .is_empty()
        );
        let refused = [("endpoint", "list_export_jobs"), ("code", "403")];
        assert_eq!(
            scrape.value("atlas_backup_exporter_api_requests_total", &refused),
            Some(n as f64)
        );
        let (_, probed) = exporter.get(&probe_path("Cluster1")).await;
        assert_eq!(up(&Scrape::parse(&probed), "Cluster1"), Some(0.0));
        assert_eq!(
            captured.lines_with(&reason),
            n as usize,
            "one line per collection"
        );
        clock.advance(Duration::from_secs(60));
    }
}

#[tokio::test]
async fn probe_and_sd_answer_from_the_background_collection_of_discovered_clusters() {
    let fake = two_clusters();
    let config = format!(
        "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: {GROUP}\ncollection:\n  \
         interval: 10m\n  on_metrics: false\n"
    );
    let gate = Gate::new();
    fake.inject(Fault::hold("/clusters/Cluster1/backup/exports", &gate).times(1));
    let (exporter, _clock) = start(fake.clone(), &config).await;
    within("the first collection", gate.arrivals(1)).await;
    // Discovery ran inside the collection: /sd knows both clusters; the held one probes empty.
    let (_, sd) = exporter.get("/sd").await;
    assert_eq!(sd.matches("__param_cluster_name").count(), 2, "{sd}");
    let (status, body) = exporter.get(&probe_path("Cluster1")).await;
    assert_eq!((status, body.as_str()), (200, ""));
    gate.open();
    finished(&exporter, 1).await;

    fake.reset_counts();
    for cluster in ["Cluster0", "Cluster1"] {
        let (status, probed) = exporter.get(&probe_path(cluster)).await;
        assert_eq!(status, 200);
        let probed = Scrape::parse(&probed);
        assert_eq!(up(&probed, cluster), Some(1.0));
        assert_eq!(probed.find(UP, &[]).len(), 1, "the probed cluster only");
    }
    fake.remove_cluster(GROUP, "Cluster1");
    let (_, sd) = exporter.get("/sd").await;
    assert_eq!(
        sd.matches("__param_cluster_name").count(),
        2,
        "until rediscovered"
    );
    // /metrics carries the discovery and the exporter's own metrics, no cluster series.
    let scrape = exporter.scrape().await;
    assert!(scrape.find(UP, &[]).is_empty());
    assert_eq!(
        scrape.value("atlas_backup_export_discovery_up", &[("group_id", GROUP)]),
        Some(1.0)
    );
    assert_eq!(scrape.value(PENDING, &[]), Some(0.0));
    assert_eq!(fake.requests().total, 0, "{:?}", fake.requests());
}

#[tokio::test]
async fn collecting_on_each_scrape_shows_interval_0_and_its_last_collection() {
    let fake = two_clusters();
    let (exporter, clock) = start(fake.clone(), &yaml("  timeout: 10s\n")).await;
    assert!(exporter.app.exporter.background().is_none());
    let started = unix_now();
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.value(INTERVAL, &[]), Some(0.0));
    assert_eq!(scrape.value(PENDING, &[]), Some(0.0));
    assert_eq!(scrape.value(OVERRUNS, &[]), Some(0.0));
    assert_eq!(
        scrape.value(LAST_DURATION, &[]),
        Some(0.0),
        "the clock stood still"
    );
    let first = scrape.value(LAST_TIMESTAMP, &[]).unwrap();
    assert!((started..=unix_now()).contains(&first), "{first}");
    assert_eq!(up(&scrape, "Cluster0"), Some(1.0));
    // Each scrape collects, as before.
    clock.advance(Duration::from_secs(1));
    let second = exporter.scrape().await.value(LAST_TIMESTAMP, &[]).unwrap();
    assert!(second >= first);
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 4);
}

#[tokio::test]
async fn the_loop_stops_with_the_server_even_in_the_middle_of_a_collection() {
    let fake = two_clusters();
    let base_url = fake.start().await.unwrap();
    let gate = Gate::new();
    fake.inject(Fault::hold("/backup/exports", &gate));
    let config = yaml("  interval: 1m\n").replace("BASE_URL", &base_url);
    let config = atlas_backup_exporter::config::parse(&config, "test.yml").unwrap();
    let options = atlas_backup_exporter::Options::default();
    let app = atlas_backup_exporter::build(&config, support::service_account(), options)
        .expect("exporter builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(app.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    within("the collection held", gate.arrivals(2)).await;
    stop.send(()).unwrap();
    // Serving ends by stopping the loop: the held collection is abandoned, not waited for.
    within("the server", serving).await.unwrap().unwrap();
    let background = app.exporter.background().unwrap();
    assert!(background.newest().is_none());
    // A stopped loop finishes nothing: waiting for it returns at once (a running one would wait
    // for the held collection).
    within("a stopped loop", background.finished(1)).await;
    gate.open();
}

#[test]
fn the_binary_collects_in_the_background_and_stops_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = two_clusters();
    let base_url = runtime.block_on(fake.start()).unwrap();
    let gate = Gate::new();
    fake.inject(Fault::hold("/clusters/Cluster1/backup/exports", &gate).times(1));
    let dir = support::TempDir::new("background");
    let config = yaml("  interval: 1h\n")
        .replace("BASE_URL", &base_url)
        .replace(
            "atlas:\n",
            &format!(
                "atlas:\n  auth:\n    service_account:\n      client_id: {}\n      client_secret: \
             {}\n",
                support::CLIENT_ID,
                support::CLIENT_SECRET
            ),
        );
    let path = dir.write("exporter.yml", &config);
    let exporter = runtime.block_on(
        Spawn::exporter()
            .config(&path)
            .args(["--log.level", "debug"])
            .serve(),
    );
    let log = &exporter.log;
    runtime.block_on(async {
        let address = exporter.addr;
        log.line_with("collecting in the background").await;
        within("the first collection held", gate.arrivals(1)).await;
        let body = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains(&format!("{PENDING} 1\n")), "{body}");
        assert!(body.contains(&format!("{INTERVAL} 3600\n")), "{body}");
        gate.open();
        log.line_with("background collection finished").await;
        let body = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let scrape = Scrape::parse(&body);
        assert_eq!(scrape.value(PENDING, &[]), Some(0.0));
        assert_eq!(up(&scrape, "Cluster1"), Some(1.0));
    });
    let stderr = exporter.stop_cleanly();
    // The loop ends with the server, before the process does.
    let stopped = stderr.find("msg=\"background collection stopped\"");
    let ended = stderr.rfind("msg=\"stopped\"");
    assert!(stopped.is_some() && stopped < ended, "{stderr}");
}

#[test]
fn cache_ttl_with_an_interval_is_refused_by_config_check() {
    let dir = support::TempDir::new("background-check");
    let path = dir.write(
        "exporter.yml",
        &format!(
            "targets:\n  - group_id: {GROUP}\ncollection:\n  interval: 1m\n  cache_ttl: 30s\n"
        ),
    );
    let output = Spawn::exporter()
        .arg("--config.check")
        .config(&path)
        .env("MONGODB_ATLAS_CLIENT_ID", support::CLIENT_ID)
        .env("MONGODB_ATLAS_CLIENT_SECRET", support::CLIENT_SECRET)
        .output();
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    assert!(
        stderr.contains(&format!(
            "{}: line 5: collection.cache_ttl: cannot be used with collection.interval (line 4)",
            path.display()
        )),
        "{stderr}"
    );
}
