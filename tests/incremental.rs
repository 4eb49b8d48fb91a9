//! Incremental listing: a cluster with many finished jobs costs one call a scrape once they are
//! known, and the exporter still tells the truth when jobs are added, finish, or are pruned, and
//! when Atlas does not list newest first.

use fake_atlas::{Order, job};
use time::{Duration, OffsetDateTime};

use crate::support::{self, Exporter, GROUP};

const YAML: &str = "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n    clusters: [Big]\n";

/// 1,200 finished jobs, one an hour going back from a day ago.
fn big_cluster(order: Order) -> fake_atlas::FakeAtlas {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Big");
    fake.set_order(order);
    let now = OffsetDateTime::now_utc();
    fake.put_jobs(
        GROUP,
        "Big",
        (0..1200).map(|i| {
            let created = now - Duration::days(1) - Duration::hours(i);
            job(&format!("{i:024x}"))
                .state(if i % 100 == 7 { "Failed" } else { "Successful" })
                .created(created)
                .finished(created + Duration::minutes(10))
                .build()
        }),
    );
    fake
}

/// Scrapes once and returns it with the list calls it cost.
async fn scrape_counting(exporter: &Exporter) -> (support::Scrape, u64) {
    let before = exporter.fake.requests();
    let scrape = exporter.scrape().await;
    let after = exporter.fake.requests();
    assert_eq!(after.challenges, before.challenges, "nonce reused");
    let calls = after.endpoint("list_export_jobs") - before.endpoint("list_export_jobs");
    (scrape, calls)
}

fn count(scrape: &support::Scrape, state: &str) -> Option<f64> {
    scrape.value("atlas_backup_export_jobs", &[("state", state)])
}

#[tokio::test]
async fn newest_first_listings_stop_at_the_first_page_already_known() {
    let exporter = Exporter::start(big_cluster(Order::NewestFirst), YAML, support::api_key()).await;
    let first = exporter.scrape().await;
    assert_eq!(count(&first, "Successful"), Some(1188.0));
    assert_eq!(count(&first, "Failed"), Some(12.0));

    // Nothing changed: page 1 alone shows it.
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 1);
    assert_eq!(count(&scrape, "Successful"), Some(1188.0));
    assert_eq!(count(&scrape, "Failed"), Some(12.0));

    // A new job: page 1 is not all known, page 2 is.
    let fake = exporter.fake.clone();
    let new_id = "ffffffffffffffffffff0001";
    let created = OffsetDateTime::now_utc() - Duration::minutes(3);
    fake.put_job(
        GROUP,
        "Big",
        job(new_id).state("InProgress").created(created).build(),
    );
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 2);
    assert_eq!(count(&scrape, "InProgress"), Some(1.0));
    assert_eq!(count(&scrape, "Successful"), Some(1188.0));
    assert!(scrape.job_ids("Big").contains(&new_id.to_string()));

    // It finishes: seen running before, so the listing must see it again.
    let finished = created + Duration::minutes(2);
    fake.put_job(
        GROUP,
        "Big",
        job(new_id)
            .state("Successful")
            .created(created)
            .finished(finished)
            .build(),
    );
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 2);
    assert_eq!(count(&scrape, "InProgress"), Some(0.0));
    assert_eq!(count(&scrape, "Successful"), Some(1189.0));
    let last_success = scrape.value("atlas_backup_export_last_success_timestamp_seconds", &[]);
    assert_eq!(last_success, Some(finished.unix_timestamp() as f64));

    // Settled again: now that the job is known finished, page 1 alone is enough.
    for _ in 0..2 {
        let (scrape, calls) = scrape_counting(&exporter).await;
        assert_eq!(calls, 1);
        assert_eq!(count(&scrape, "Successful"), Some(1189.0));
        assert_eq!(count(&scrape, "InProgress"), Some(0.0));
    }

    // Atlas prunes an old job: totalCount no longer matches what is kept, so it pages through.
    fake.remove_job(GROUP, "Big", &format!("{:024x}", 1100));
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 3);
    assert_eq!(count(&scrape, "Successful"), Some(1188.0));
    let (_, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn other_orders_fall_back_to_full_listings() {
    for order in [Order::OldestFirst, Order::Unordered] {
        let exporter = Exporter::start(big_cluster(order), YAML, support::api_key()).await;
        exporter.scrape().await;
        for _ in 0..2 {
            let (scrape, calls) = scrape_counting(&exporter).await;
            assert_eq!(calls, 3, "{order:?}");
            assert_eq!(count(&scrape, "Successful"), Some(1188.0), "{order:?}");
            assert_eq!(count(&scrape, "Failed"), Some(12.0), "{order:?}");
        }
    }
}

/// `count` finished jobs in each of `clusters` clusters (`C0`, `C1`, …), one an hour going back
/// from a day ago, with a `totalCount` off by `error`.
fn many_clusters(clusters: usize, count: i64, error: i64) -> fake_atlas::FakeAtlas {
    let fake = support::fake();
    fake.set_total_count_error(error);
    let now = OffsetDateTime::now_utc();
    for c in 0..clusters {
        let name = format!("C{c}");
        fake.add_cluster(GROUP, &name);
        fake.put_jobs(
            GROUP,
            &name,
            (0..count).map(|i| {
                let created = now - Duration::days(1) - Duration::hours(i);
                job(&format!("{c:04x}{i:020x}"))
                    .state("Successful")
                    .created(created)
                    .finished(created + Duration::minutes(10))
                    .build()
            }),
        );
    }
    fake
}

/// The reasons counted so far, with their counts (every reason has a series from the start, at
/// 0; those are left out here).
fn full_listings(scrape: &support::Scrape) -> Vec<(String, f64)> {
    let mut found: Vec<(String, f64)> = scrape
        .find("atlas_backup_exporter_full_listings_total", &[])
        .iter()
        .filter(|s| s.value != 0.0)
        .map(|s| (s.labels["reason"].clone(), s.value))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[tokio::test]
async fn a_steadily_inexact_total_count_costs_no_full_listing_after_the_first() {
    let yaml = "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\n";
    let fake = many_clusters(10, 2000, 3);
    let exporter = Exporter::start(fake.clone(), yaml, support::api_key()).await;
    let first = exporter.scrape().await;
    // 2,003 announced: five pages asked for, the fifth empty.
    assert_eq!(fake.requests().endpoint("list_export_jobs"), 50);
    assert_eq!(full_listings(&first), [("first".to_owned(), 10.0)]);
    let mut reasons: Vec<String> = first
        .find("atlas_backup_exporter_full_listings_total", &[])
        .iter()
        .map(|s| s.labels["reason"].clone())
        .collect();
    reasons.sort();
    let every = [
        "count",
        "first",
        "invalid_job",
        "missing_job",
        "new_jobs",
        "order",
    ];
    assert_eq!(reasons, every, "every reason has a series from the start");
    for _ in 0..20 {
        let (scrape, calls) = scrape_counting(&exporter).await;
        assert_eq!(calls, 10, "one page a cluster");
        assert_eq!(full_listings(&scrape), [("first".to_owned(), 10.0)]);
        let c3 = [("cluster_name", "C3"), ("state", "Successful")];
        assert_eq!(scrape.value("atlas_backup_export_jobs", &c3), Some(2000.0));
    }
    // Atlas prunes an old job of C3: the estimate is still 3 over, but over fewer jobs than
    // the exporter keeps, so C3 alone is listed in full, once.
    fake.remove_job(GROUP, "C3", &format!("{:04x}{:020x}", 3, 1500));
    let before = fake.requests();
    let scrape = exporter.scrape().await;
    let after = fake.requests();
    assert_eq!(
        after.endpoint("list_export_jobs") - before.endpoint("list_export_jobs"),
        14
    );
    assert_eq!(
        full_listings(&scrape),
        [("count".to_owned(), 1.0), ("first".to_owned(), 10.0)]
    );
    let c3 = [("cluster_name", "C3"), ("state", "Successful")];
    assert_eq!(scrape.value("atlas_backup_export_jobs", &c3), Some(1999.0));
    let c4 = [("cluster_name", "C4"), ("state", "Successful")];
    assert_eq!(scrape.value("atlas_backup_export_jobs", &c4), Some(2000.0));
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 10);
    assert_eq!(full_listings(&scrape).len(), 2);
}

#[tokio::test]
async fn a_job_pruned_under_an_inexact_total_count_loses_its_series() {
    // Every job gets per-job series here, so the pruned one's can be seen to go.
    let yaml = "atlas:\n  base_url: BASE_URL\ntargets:\n  - group_id: 5f1a2b3c4d5e6f7a8b9c0d1e\nexport_jobs:\n  max_age: 0\n  max_per_cluster: 0\n";
    let fake = many_clusters(1, 1200, -3);
    let exporter = Exporter::start(fake.clone(), yaml, support::api_key()).await;
    let pruned = format!("{:04x}{:020x}", 0, 1100);
    exporter.scrape().await;
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 1);
    assert!(scrape.job_ids("C0").contains(&pruned));
    fake.remove_job(GROUP, "C0", &pruned);
    let (scrape, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 3, "page 1, then the rest in full");
    assert!(!scrape.job_ids("C0").contains(&pruned));
    assert_eq!(scrape.job_ids("C0").len(), 1199);
    assert_eq!(
        full_listings(&scrape),
        [("count".to_owned(), 1.0), ("first".to_owned(), 1.0)]
    );
    let (_, calls) = scrape_counting(&exporter).await;
    assert_eq!(calls, 1);
}
