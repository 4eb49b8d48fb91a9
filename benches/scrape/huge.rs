//! The largest estates (`--huge`): one exporter with the defaults watching thousands of
//! clusters of 100 jobs each, against the stand-in with latency. For each size, a fresh exporter
//! per encoding (identity, then gzip), a warm-up scrape and then the measured scrapes:
//! peak RSS (`VmHWM`), CPU per scrape, wall time against the ideal, the body's size, and how much
//! the resident set grew while one scrape was answered (sampled from `/proc` every few
//! milliseconds while the answer streams), which tells a streamed answer from one built whole.
//! Before each size, a bare client makes the same calls, to show what the stand-in and the
//! machine allow without the exporter.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fake_atlas::FakeAtlas;
use futures_util::StreamExt as _;

use crate::figures::{StandIn, median, mib, ms};
use crate::fleet::{Fleet, Retention};
use crate::process::{self, ExporterProcess};

/// Targets from the issue "The largest estates".
const MAX_WALL_RATIO: f64 = 1.1;
const MAX_CPU_AT_10K: Duration = Duration::from_secs(1);
/// Peak RSS bounds by size: at most 96 MiB at 2,000 clusters, 256 MiB at 10,000.
fn max_peak_rss(clusters: usize) -> Option<u64> {
    match clusters {
        2000 => Some(96 << 20),
        10000 => Some(256 << 20),
        _ => None,
    }
}

/// What `--huge` runs.
pub struct HugeOptions {
    pub sizes: Vec<usize>,
    pub latency: Duration,
    pub max_concurrent_requests: usize,
    pub scrapes: usize,
    pub verbose: bool,
}

/// One size and encoding's figures.
pub struct Huge {
    pub clusters: usize,
    pub gzip: bool,
    pub calls: u64,
    pub ideal: Duration,
    /// The same calls made by a client that does nothing else (see [`bare_client`]).
    pub floor: Duration,
    pub wall: Duration,
    pub cpu_median: Duration,
    pub cpu_mean: Duration,
    pub peak_rss: u64,
    pub body: usize,
    /// The most the resident set grew during one measured scrape, over its value just before.
    pub growth: u64,
}

impl Huge {
    fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.ideal.as_secs_f64().max(1e-9)
    }

    fn floor_ratio(&self) -> f64 {
        self.floor.as_secs_f64() / self.ideal.as_secs_f64().max(1e-9)
    }
}

pub async fn run(exporter: &Path, dir: &Path, options: &HugeOptions) -> io::Result<Vec<Huge>> {
    let fake = FakeAtlas::new().with_api_key(crate::fleet::PUBLIC_KEY, crate::fleet::PRIVATE_KEY);
    let base_url = fake.start().await?;
    let atlas = StandIn {
        fake: fake.clone(),
        base_url,
    };
    let widest = options.sizes.iter().copied().max().unwrap_or(0);
    let seeding = Instant::now();
    let fleet = Fleet::new(0xb7, widest, 100);
    fleet.seed(&fake, time::OffsetDateTime::now_utc());
    eprintln!(
        "seeded {} jobs in {:.1} s",
        fleet.jobs(),
        seeding.elapsed().as_secs_f64()
    );
    fake.set_latency(options.latency);
    let mut out = Vec::new();
    for &clusters in &options.sizes {
        let fleet = fleet.take(clusters);
        let floor = bare_client(&atlas, &fleet, options).await?;
        for gzip in [false, true] {
            let figures = one(&atlas, exporter, dir, &fleet, gzip, floor, options).await?;
            eprintln!(
                "huge {clusters} × 100{}: wall {:.0} ms (ideal {:.0} ms, bare client {:.0} ms), CPU {:.0} ms, peak RSS {:.1} MiB, body {:.1} MiB, growth {:.1} MiB",
                if gzip { " gzip" } else { "" },
                ms(figures.wall),
                ms(figures.ideal),
                ms(figures.floor),
                ms(figures.cpu_median),
                mib(figures.peak_rss),
                mib(figures.body as u64),
                mib(figures.growth)
            );
            out.push(figures);
        }
    }
    fake.shutdown();
    Ok(out)
}

async fn one(
    atlas: &StandIn,
    binary: &Path,
    dir: &Path,
    fleet: &Fleet,
    gzip: bool,
    floor: Duration,
    options: &HugeOptions,
) -> io::Result<Huge> {
    let yaml = fleet.config_yaml(
        &atlas.base_url,
        options.max_concurrent_requests,
        Retention::Defaults,
    );
    let exporter = ExporterProcess::start(binary, dir, &yaml).await?;
    let first = exporter.scrape(false).await?;
    crate::figures::check_up(&first, fleet)?;
    let mut cpus = Vec::new();
    let mut walls = Vec::new();
    let mut calls = Vec::new();
    let mut growth = 0;
    let mut body = 0;
    let started = exporter.cpu_time()?;
    for _ in 0..options.scrapes {
        let rss_before = exporter.rss()?;
        let (sampling, highest) = sample_rss(&exporter);
        let before = atlas.fake.requests();
        let cpu_before = exporter.cpu_time()?;
        let scraped = exporter.scrape(gzip).await;
        let cpu = exporter.cpu_time()? - cpu_before;
        let after = atlas.fake.requests();
        sampling.store(false, Ordering::Relaxed);
        let scraped = scraped?;
        let high = highest.load(Ordering::Relaxed).max(exporter.rss()?);
        let grew = high.saturating_sub(rss_before);
        growth = growth.max(grew);
        body = scraped.bytes;
        cpus.push(cpu);
        walls.push(scraped.wall);
        calls.push((after.total - before.total) - (after.challenges - before.challenges));
        if options.verbose {
            eprintln!(
                "  scrape: {:.0} ms wall, {:.0} ms CPU, RSS {:.1} MiB (+{:.1} MiB), body {:.1} MiB",
                ms(scraped.wall),
                ms(cpu),
                mib(rss_before),
                mib(grew),
                mib(scraped.bytes as u64)
            );
        }
    }
    let cpu_mean = (exporter.cpu_time()? - started) / options.scrapes as u32;
    calls.sort_unstable();
    let calls = calls[calls.len() / 2];
    let rounds = calls.div_ceil(options.max_concurrent_requests as u64) as u32;
    Ok(Huge {
        clusters: fleet.clusters.len(),
        gzip,
        calls,
        ideal: options.latency * rounds,
        floor,
        wall: median(&mut walls),
        cpu_median: median(&mut cpus),
        cpu_mean,
        peak_rss: exporter.peak_rss()?,
        body,
        growth,
    })
}

/// What the stand-in and this machine allow: the same listings, as many in flight, over digest
/// auth with the nonce reused, made by a client that does nothing else (no parsing, no
/// rendering; run in this process, beside the stand-in). The median of `options.scrapes`
/// rounds after one warm-up. The exporter's wall time over this is its own cost.
async fn bare_client(
    atlas: &StandIn,
    fleet: &Fleet,
    options: &HugeOptions,
) -> io::Result<Duration> {
    use atlas_backup_exporter::atlas::{Endpoint, Path as AtlasPath};
    use diqwest::{DigestAuthSession, WithDigestAuth};
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.max_concurrent_requests)
        .build()
        .map_err(io::Error::other)?;
    let session = DigestAuthSession::new(crate::fleet::PUBLIC_KEY, crate::fleet::PRIVATE_KEY);
    let urls: Vec<String> = fleet
        .clusters
        .iter()
        .map(|c| {
            let path = AtlasPath::ListExportJobs {
                group_id: &c.group_id,
                cluster: &c.name,
            };
            format!(
                "{}/api/atlas/v2{path}?pageNum=1&itemsPerPage={}",
                atlas.base_url,
                crate::fleet::ITEMS_PER_PAGE
            )
        })
        .collect();
    let accept = Endpoint::ListExportJobs.media_type();
    let (http, session, accept) = (&http, &session, accept.as_str());
    let mut walls = Vec::new();
    for _ in 0..=options.scrapes {
        let started = Instant::now();
        let answers: Vec<io::Result<()>> = futures_util::stream::iter(&urls)
            .map(|url| async move {
                let response = http
                    .get(url)
                    .header("accept", accept)
                    .send_digest_auth(session)
                    .await
                    .map_err(io::Error::other)?;
                if !response.status().is_success() {
                    return Err(io::Error::other(format!("{url}: {}", response.status())));
                }
                response.bytes().await.map_err(io::Error::other)?;
                Ok(())
            })
            .buffer_unordered(options.max_concurrent_requests)
            .collect()
            .await;
        answers.into_iter().collect::<io::Result<()>>()?;
        walls.push(started.elapsed());
    }
    walls.remove(0);
    Ok(median(&mut walls))
}

/// Polls the exporter's resident set every 2 ms on a thread of its own until the flag is
/// cleared; the second value is the highest seen.
fn sample_rss(exporter: &ExporterProcess) -> (Arc<AtomicBool>, Arc<AtomicU64>) {
    let running = Arc::new(AtomicBool::new(true));
    let highest = Arc::new(AtomicU64::new(0));
    let status = format!("/proc/{}/status", exporter.pid());
    let (run, high) = (running.clone(), highest.clone());
    std::thread::spawn(move || {
        while run.load(Ordering::Relaxed) {
            if let Some(rss) = process::status_field(&status, "VmRSS:") {
                high.fetch_max(rss, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    (running, highest)
}

/// The Markdown section: one table, the targets, and the command that made it.
pub fn report(options: &HugeOptions, figures: &[Huge], machine: &str) -> String {
    let mut out = String::new();
    let sizes: Vec<String> = options.sizes.iter().map(|s| s.to_string()).collect();
    let command = if options.sizes == [1000, 2000, 10000] {
        "cargo bench --bench scrape -- --huge".to_owned()
    } else {
        format!(
            "cargo bench --bench scrape -- --huge --huge-clusters {}",
            sizes.join(",")
        )
    };
    let _ = writeln!(
        out,
        "From `{command}` {machine}. Stand-in latency {} ms a request, max_concurrent_requests {}, \
         otherwise the defaults (`max_age: 7d`, `max_per_cluster: 50`, collection on each scrape); \
         a fresh exporter per row, one warm-up scrape, then {} measured scrapes (medians). \
         Bare client: the same calls, as many in flight, made by a client that does nothing \
         else, in the benchmark's process.\n",
        options.latency.as_millis(),
        options.max_concurrent_requests,
        options.scrapes
    );
    let _ = writeln!(
        out,
        "| Clusters × jobs | Encoding | Calls | Ideal | Bare client | Bare client / ideal | Wall | Ratio | CPU per scrape (median) | CPU per scrape (mean) | CPU per 1,000 clusters | Body | Peak RSS | RSS growth during a scrape | Growth / text |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for h in figures {
        let text = text_size(figures, h);
        let _ = writeln!(
            out,
            "| {} × 100 | {} | {} | {:.0} ms | {:.0} ms | {:.2} | {:.0} ms | {:.2} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.3} |",
            crate::figures::count(h.clusters as u64),
            if h.gzip { "gzip" } else { "identity" },
            crate::figures::count(h.calls),
            ms(h.ideal),
            ms(h.floor),
            h.floor_ratio(),
            ms(h.wall),
            h.ratio(),
            ms(h.cpu_median),
            ms(h.cpu_mean),
            ms(h.cpu_median) / (h.clusters as f64 / 1000.0),
            mib(h.body as u64),
            mib(h.peak_rss),
            mib(h.growth),
            h.growth as f64 / text.max(1) as f64,
        );
    }
    let _ = writeln!(out, "\n| Target | Measured | Result |\n|---|---|---|");
    for h in figures {
        let text = text_size(figures, h);
        let label = format!(
            "{} × 100, {}",
            crate::figures::count(h.clusters as u64),
            if h.gzip { "gzip" } else { "identity" }
        );
        if let Some(max) = max_peak_rss(h.clusters) {
            let _ = writeln!(
                out,
                "| {label}: peak RSS ≤ {} MiB | {:.1} MiB | {} |",
                max >> 20,
                mib(h.peak_rss),
                crate::figures::pass(h.peak_rss <= max)
            );
        }
        if h.clusters == 10000 {
            let _ = writeln!(
                out,
                "| {label}: CPU ≤ {} s per scrape | {:.2} s | {} |",
                MAX_CPU_AT_10K.as_secs(),
                h.cpu_median.as_secs_f64(),
                crate::figures::pass(h.cpu_median <= MAX_CPU_AT_10K)
            );
        }
        let _ = writeln!(
            out,
            "| {label}: wall ≤ {MAX_WALL_RATIO}× the ideal | {:.2}× | {} |",
            h.ratio(),
            crate::figures::pass(h.ratio() <= MAX_WALL_RATIO)
        );
        let _ = writeln!(
            out,
            "| {label}: RSS growth during a scrape < a tenth of the text | {:.1} MiB of {:.1} MiB | {} |",
            mib(h.growth),
            mib(text),
            crate::figures::pass(h.growth * 10 < text)
        );
    }
    out
}

/// The size of the text a row answered: a gzip row is held to the size uncompressed (that of its
/// identity twin), since the growth that matters is the text's.
fn text_size(figures: &[Huge], h: &Huge) -> u64 {
    figures
        .iter()
        .find(|t| t.clusters == h.clusters && !t.gzip)
        .map_or(h.body, |t| t.body) as u64
}
