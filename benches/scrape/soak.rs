//! The long soak (`--soak`): the release exporter scraped back to back for half an hour (or
//! `--soak-minutes`) while the estate churns (`churn.rs`, the same churn as the soak test of the
//! test suite), with its RSS, CPU per scrape and open file descriptors read at regular points
//! and reported as a table and as small plots in text.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use fake_atlas::FakeAtlas;

use crate::churn::{self, Churn};
use crate::process::ExporterProcess;

/// Scrapes before the first point, when the baselines are taken: a few hundred, like the
/// soak test's.
const WARM_UP: usize = 300;
/// Points read over the run (the plots' width); every fifth is a row of the table.
const POINTS: u32 = 60;
const ROW_EVERY: usize = 5;
/// Height of each plot in rows of characters.
const PLOT_ROWS: usize = 6;
/// The issue's bound on RSS growth after the warm-up.
const MAX_RSS_GROWTH: f64 = 0.10;

/// One reading.
struct Point {
    elapsed: Duration,
    scrapes: u64,
    rss: u64,
    /// Exporter CPU time over the scrapes since the previous point.
    cpu_per_scrape: Duration,
    fds: u64,
    /// Sample lines of the last scrape.
    samples: usize,
}

/// Runs the soak for `duration` and returns its report (Markdown).
pub async fn run(
    binary: &Path,
    dir: &Path,
    duration: Duration,
    verbose: bool,
) -> io::Result<String> {
    // Tokens live two minutes (renewed at half their life), and the churn revokes them too.
    let fake = FakeAtlas::new().with_token_lifetime(Duration::from_secs(120));
    let mut churn = Churn::new(fake.clone(), time::OffsetDateTime::now_utc());
    let base_url = fake.start().await?;
    let exporter = ExporterProcess::start(binary, dir, &churn.config_yaml(&base_url)).await?;

    let mut unexpected = 0_u64;
    let mut scrapes = 0_u64;
    for _ in 0..WARM_UP {
        scrape(&exporter, &mut churn, &mut unexpected).await?;
    }
    let started = Instant::now();
    let mut last_cpu = exporter.cpu_time()?;
    let mut points = vec![Point {
        elapsed: Duration::ZERO,
        scrapes: 0,
        rss: exporter.rss()?,
        cpu_per_scrape: Duration::ZERO,
        fds: exporter.open_fds()?,
        samples: 0,
    }];
    let step = duration / POINTS;
    for i in 1..=POINTS {
        let until = step * i;
        let mut samples = 0;
        let first = scrapes;
        while started.elapsed() < until || scrapes == first {
            samples = scrape(&exporter, &mut churn, &mut unexpected).await?;
            scrapes += 1;
        }
        let cpu = exporter.cpu_time()?;
        let point = Point {
            elapsed: started.elapsed(),
            scrapes,
            rss: exporter.rss()?,
            cpu_per_scrape: (cpu - last_cpu) / (scrapes - first) as u32,
            fds: exporter.open_fds()?,
            samples,
        };
        last_cpu = cpu;
        if verbose {
            eprintln!(
                "soak {:>5.0} s: {} scrapes, RSS {:.1} MiB, {:.2} ms CPU a scrape, {} fds, {} samples",
                point.elapsed.as_secs_f64(),
                point.scrapes,
                mib(point.rss),
                ms(point.cpu_per_scrape),
                point.fds,
                point.samples
            );
        }
        points.push(point);
    }
    fake.shutdown();
    let tokens = fake.requests().endpoint("oauth_token");
    Ok(report(duration, &points, &churn, tokens, unexpected))
}

/// One step of churn and one scrape; counts a scrape whose clusters up are not the ones the
/// churn expects, and returns its sample lines.
async fn scrape(
    exporter: &ExporterProcess,
    churn: &mut Churn,
    unexpected: &mut u64,
) -> io::Result<usize> {
    churn.step(time::OffsetDateTime::now_utc());
    let scraped = exporter.scrape(false).await?;
    if scraped.clusters_up != Some(churn.expected_up()) {
        *unexpected += 1;
    }
    Ok(scraped.samples.unwrap_or_default())
}

fn report(
    duration: Duration,
    points: &[Point],
    churn: &Churn,
    tokens: u64,
    unexpected: u64,
) -> String {
    let mut out = String::new();
    let last = points.last().expect("the first point is always read");
    let base = &points[0];
    // RSS moves by a megabyte or two from one point to the next as the allocator keeps and
    // returns memory; a leak shows as the second half's peak above the first half's.
    let half = points.len() / 2;
    let peak = |points: &[Point]| points.iter().map(|p| p.rss).max().unwrap_or_default();
    let (first_peak, late_peak) = (peak(&points[..half]), peak(&points[half..]));
    let growth = late_peak as f64 / first_peak as f64 - 1.0;
    let cpu_total: Duration = points
        .windows(2)
        .map(|w| w[1].cpu_per_scrape * (w[1].scrapes - w[0].scrapes) as u32)
        .sum();
    let _ = writeln!(
        out,
        "{} minutes of scrapes back to back after {WARM_UP} of warm-up: {} scrapes ({:.0} a second), \
         {} steps of churn, {} token revocations and {tokens} token requests, the listed project \
         failing 15 steps in every 100; scrapes with a cluster up or down unexpectedly: {unexpected}.\n",
        duration.as_secs() / 60,
        last.scrapes,
        last.scrapes as f64 / last.elapsed.as_secs_f64(),
        churn.steps(),
        churn.revocations(),
    );
    let _ = writeln!(
        out,
        "- RSS: {:.1} MiB after warm-up, at most {:.1} MiB in the first half of the run and \
         {:.1} MiB in the second ({:+.1} %; the bound is {:.0} %): {}",
        mib(base.rss),
        mib(first_peak),
        mib(late_peak),
        growth * 100.0,
        MAX_RSS_GROWTH * 100.0,
        if growth < MAX_RSS_GROWTH {
            "pass"
        } else {
            "FAIL"
        }
    );
    let _ = writeln!(
        out,
        "- CPU per scrape: {:.2} ms on average over the run",
        ms(cpu_total / last.scrapes.max(1) as u32)
    );
    let peak_fds = points.iter().map(|p| p.fds).max().unwrap_or_default();
    let _ = writeln!(
        out,
        "- open file descriptors: {} after warm-up, {peak_fds} at most (the bound is {} + the pool of {}): {}\n",
        base.fds,
        base.fds,
        churn::POOL,
        if peak_fds <= base.fds + churn::POOL as u64 {
            "pass"
        } else {
            "FAIL"
        }
    );
    let _ = writeln!(
        out,
        "| elapsed | scrapes | RSS (MiB) | CPU per scrape (ms) | open fds | samples in the last scrape |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    for (i, p) in points.iter().enumerate() {
        if i % ROW_EVERY != 0 && i != points.len() - 1 {
            continue;
        }
        let cpu = if i == 0 {
            "".to_owned()
        } else {
            format!("{:.2}", ms(p.cpu_per_scrape))
        };
        let samples = if i == 0 {
            "".to_owned()
        } else {
            p.samples.to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {cpu} | {} | {samples} |",
            clock(p.elapsed),
            p.scrapes,
            mib(p.rss),
            p.fds
        );
    }
    let rest = &points[1..];
    let _ = writeln!(out, "\n```text");
    plot(
        &mut out,
        "RSS (MiB)",
        &points.iter().map(|p| mib(p.rss)).collect::<Vec<_>>(),
    );
    plot(
        &mut out,
        "CPU per scrape (ms)",
        &rest
            .iter()
            .map(|p| ms(p.cpu_per_scrape))
            .collect::<Vec<_>>(),
    );
    plot(
        &mut out,
        "open fds",
        &points.iter().map(|p| p.fds as f64).collect::<Vec<_>>(),
    );
    let _ = writeln!(
        out,
        "{:>9} one column per {:.0} s, {} in all",
        "",
        duration.as_secs_f64() / f64::from(POINTS),
        clock(last.elapsed)
    );
    let _ = writeln!(out, "```");
    out
}

/// A bar chart of `values` in [`PLOT_ROWS`] rows, one column per value, its range on the left.
fn plot(out: &mut String, title: &str, values: &[f64]) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        return;
    }
    // A flat line still gets a bar a row high.
    let span = (hi - lo).max(hi.abs() * 1e-3).max(1e-9);
    let _ = writeln!(out, "{title}");
    for row in (0..PLOT_ROWS).rev() {
        let label = match row {
            r if r == PLOT_ROWS - 1 => format!("{hi:>8.2}"),
            0 => format!("{lo:>8.2}"),
            _ => String::new(),
        };
        let bars: String = values
            .iter()
            .map(|v| {
                let level = ((v - lo) / span * (PLOT_ROWS - 1) as f64).round() as usize;
                if level >= row { '#' } else { ' ' }
            })
            .collect();
        let _ = writeln!(out, "{label:>8} |{bars}");
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
