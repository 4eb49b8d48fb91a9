//! Long runs in miniature: the binary as its own process, scraped a few thousand times while
//! the estate churns (`benches/scrape/churn.rs`, shared with the benchmark's long soak), and
//! restarted mid-run.

#[path = "../benches/scrape/churn.rs"]
mod churn;

use std::collections::{BTreeMap, BTreeSet};

use churn::Churn;
use fake_atlas::FakeAtlas;
use time::OffsetDateTime;

use crate::support::{Sample, Scrape, Serving, Spawn, TempDir};

/// Scrapes in the soak, and those of them that warm it up before the baselines are taken.
const SCRAPES: usize = 3_000;
const WARM_UP: usize = 500;
/// RSS is read every this many scrapes; the baseline is the median over the window after the
/// warm-up, the final figure the median over the last window. The allocator keeps and returns
/// a megabyte or two from one reading to the next; a median looks through that, a leak
/// still moves it.
const RSS_EVERY: usize = 10;
const RSS_WINDOW: usize = 300;

/// Families that carry `export_job_id` but keep a series on purpose after the job is gone (a
/// metadata lookup's last good value): not per-job series. None so far.
const LAST_GOOD_VALUE_FAMILIES: &[&str] = &[];

/// The exporter binary, running on `config`; killed when dropped, so a failed assertion does
/// not leave it behind.
struct Running(Serving);

impl Running {
    async fn start(config: &std::path::Path) -> Running {
        Running(Spawn::exporter().config(config).serve().await)
    }

    /// Resident set size now, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    async fn scrape(&self, http: &reqwest::Client) -> Scrape {
        let response = http
            .get(self.0.url("/metrics"))
            .send()
            .await
            .expect("the exporter answers");
        assert_eq!(response.status(), 200);
        Scrape::parse(&response.text().await.unwrap())
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(self) {
        self.0.stop_cleanly();
    }
}

/// Checks one scrape against the estate it was taken of: every per-job series belongs to a job
/// in its cluster's listing, no cluster has more per-job series than the retention rules
/// allow, and every watched cluster is up unless its project is failing.
fn check(scrape: &Scrape, churn: &Churn, gone: &[String], n: usize) {
    let listed = churn.listed();
    let mut per_cluster: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for sample in job_samples(scrape) {
        let cluster = cluster_of(sample);
        let id = sample.labels["export_job_id"].as_str();
        assert!(
            !gone.iter().any(|g| g == id),
            "scrape {n}: job {id} left the listing before this scrape, yet: {sample:?}"
        );
        let known = listed
            .get(&cluster)
            .unwrap_or_else(|| panic!("scrape {n}: a series of a cluster not watched: {sample:?}"));
        assert!(
            known.ids.contains(id),
            "scrape {n}: job {id} is not in {cluster:?}'s listing: {sample:?}"
        );
        per_cluster.entry(cluster).or_default().insert(id);
    }
    for (cluster, ids) in &per_cluster {
        let bound = listed[cluster].series_bound();
        assert!(
            ids.len() <= bound,
            "scrape {n}: {cluster:?} has per-job series for {} jobs, more than {bound}: {ids:?}",
            ids.len()
        );
    }
    for (group, cluster) in listed.keys() {
        let labels = [
            ("group_id", group.as_str()),
            ("cluster_name", cluster.as_str()),
        ];
        let expected = if group == churn::LISTED && churn.failing() {
            0.0
        } else {
            1.0
        };
        assert_eq!(
            scrape.value("atlas_backup_export_up", &labels),
            Some(expected),
            "scrape {n}: {group} {cluster}"
        );
    }
    let up_series = scrape.find("atlas_backup_export_up", &[]).len();
    assert_eq!(
        up_series,
        listed.len(),
        "scrape {n}: a vanished cluster is still up"
    );
}

fn job_samples(scrape: &Scrape) -> impl Iterator<Item = &Sample> {
    scrape.samples.iter().filter(|s| {
        s.labels.contains_key("export_job_id")
            && !LAST_GOOD_VALUE_FAMILIES.contains(&s.name.as_str())
    })
}

fn cluster_of(sample: &Sample) -> (String, String) {
    let label = |name: &str| sample.labels.get(name).cloned().unwrap_or_default();
    (label("group_id"), label("cluster_name"))
}

fn gauge(scrape: &Scrape, name: &str) -> f64 {
    scrape
        .value(name, &[])
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_with_churn_keeps_memory_descriptors_and_series_bounded() {
    // Tokens expire every 8 s (renewed at half their life) besides the churn's revocations.
    let fake = FakeAtlas::new().with_token_lifetime(std::time::Duration::from_secs(8));
    let mut churn = Churn::new(fake.clone(), OffsetDateTime::now_utc());
    let base_url = fake.start().await.unwrap();
    let dir = TempDir::new("soak");
    let config = dir.write("soak.yml", &churn.config_yaml(&base_url));
    let exporter = Running::start(&config).await;
    let http = reqwest::Client::new();

    let mut base_fds: Option<f64> = None;
    let mut peak_fds = 0.0_f64;
    let mut rss: Vec<(usize, u64)> = Vec::new();
    let mut failing_scrapes = 0;
    for n in 1..=SCRAPES {
        let gone = churn.step(OffsetDateTime::now_utc());
        let scrape = exporter.scrape(&http).await;
        check(&scrape, &churn, &gone, n);
        failing_scrapes += usize::from(churn.failing());
        let fds = gauge(&scrape, "process_open_fds");
        if n == WARM_UP {
            base_fds = Some(fds);
        }
        if let Some(base) = base_fds {
            assert!(
                fds <= base + churn::POOL as f64,
                "scrape {n}: {fds} open descriptors, baseline {base} + a pool of {}",
                churn::POOL
            );
            peak_fds = peak_fds.max(fds);
        }
        if n > WARM_UP && n % RSS_EVERY == 0 {
            rss.push((n, exporter.rss()));
        }
    }
    let median = |window: std::ops::RangeInclusive<usize>| {
        let mut values: Vec<u64> = rss
            .iter()
            .filter(|(n, _)| window.contains(n))
            .map(|(_, v)| *v)
            .collect();
        values.sort_unstable();
        values[values.len() / 2]
    };
    let base_rss = median(WARM_UP + 1..=WARM_UP + RSS_WINDOW);
    let final_rss = median(SCRAPES - RSS_WINDOW + 1..=SCRAPES);
    let peak_rss = rss.iter().map(|(_, v)| *v).max().unwrap_or_default();
    eprintln!(
        "soak: {SCRAPES} scrapes, {} steps of churn; RSS {base_rss} after warm-up, {final_rss} \
         at the end (medians), peak {peak_rss}; open fds {} after warm-up, peak {peak_fds}",
        churn.steps(),
        base_fds.unwrap_or_default()
    );
    assert!(
        (final_rss as f64) < base_rss as f64 * 1.10,
        "RSS grew from {base_rss} bytes after warm-up to {final_rss} (medians of their windows)"
    );

    // The churn happened: the project failed and recovered, clusters came and went, tokens
    // were revoked and renewed without a failed scrape (every check above saw `up 1`).
    assert!(
        failing_scrapes >= 15 * (SCRAPES / 100) - 15,
        "{failing_scrapes}"
    );
    let tokens = fake.requests().endpoint("oauth_token");
    assert!(
        tokens > churn.revocations() && churn.revocations() >= 80,
        "{tokens} token requests for {} revocations",
        churn.revocations()
    );
    exporter.stop();
}

/// Every series but the excluded ones, by name and labels: what a restart must give back.
fn comparable(scrape: &Scrape) -> BTreeMap<String, f64> {
    let counters: BTreeSet<&str> = scrape
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let excluded = |name: &str| {
        name.starts_with("process_")
            || counters.contains(name)
            || counters.contains(name.strip_suffix("_total").unwrap_or(name))
            || name == "atlas_backup_export_collection_duration_seconds"
            || name == "atlas_backup_export_collection_timestamp_seconds"
            || name == "atlas_backup_exporter_last_collection_timestamp_seconds"
            || name == "atlas_backup_exporter_last_collection_duration_seconds"
    };
    scrape
        .samples
        .iter()
        .filter(|s| !excluded(&s.name))
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_run_gives_back_every_series_on_its_first_scrape() {
    let fake = FakeAtlas::new();
    // Jobs age out five minutes after they start: none between the two scrapes compared.
    let mut churn = Churn::new(fake.clone(), OffsetDateTime::now_utc()).with_age_margin(300);
    let base_url = fake.start().await.unwrap();
    let dir = TempDir::new("restart");
    let config = dir.write("restart.yml", &churn.config_yaml(&base_url));
    let exporter = Running::start(&config).await;
    let http = reqwest::Client::new();

    // Mid-run: jobs running and finished, a transient cluster discovered, the incremental
    // listing of the long history in use; stopped before the project's failure at step 50.
    for n in 1..=45 {
        let gone = churn.step(OffsetDateTime::now_utc());
        check(&exporter.scrape(&http).await, &churn, &gone, n);
    }
    assert!(!churn.failing());
    let before = exporter.scrape(&http).await;
    exporter.stop();

    let restarted = Running::start(&config).await;
    let after = restarted.scrape(&http).await;
    let (before, after) = (comparable(&before), comparable(&after));
    assert!(
        before
            .keys()
            .any(|k| k.starts_with("atlas_backup_export_job_state"))
            && before.keys().any(|k| k.contains("Transient")),
        "{before:#?}"
    );
    let lost: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .collect();
    let new: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        lost.is_empty() && new.is_empty(),
        "after the restart, changed or missing: {lost:#?}\nnew: {new:#?}"
    );
    restarted.stop();
}
