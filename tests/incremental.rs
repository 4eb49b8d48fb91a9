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
