//! The scrape benchmark: the real exporter binary, as a child process, against the stand-in Atlas
//! (in this process) with injected latency; prints a Markdown report with the targets of the
//! "Scale and speed" issue, pass or fail.
//!
//! ```text
//! cargo bench --bench scrape                       # everything, about two minutes
//! cargo bench --bench scrape -- --quick            # without the 1,000-cluster scenarios
//! cargo bench --bench scrape -- --latency-ms 100   # or ATLAS_BENCH_LATENCY_MS=100
//! cargo bench --bench scrape -- --help
//! cargo bench --bench scrape -- --soak             # the long soak, 30 minutes
//! cargo bench --bench scrape -- --soak --soak-minutes 5
//! cargo bench --bench scrape -- --huge             # 1,000, 2,000 and 10,000 clusters × 100 jobs
//! cargo bench --bench scrape -- --huge --huge-clusters 2000
//! ```
//!
//! Layout: `fleet` (the clusters and jobs served, shared with the smoke test in the test suite),
//! `process` (the exporter as a child process: start, scrape, `/proc` figures), `render_step`
//! (the render step alone against a hand-written writer and the `prometheus` crate), `soak` (the
//! long soak) over `churn` (an estate that keeps changing, shared with the soak test).

mod churn;
mod figures;
mod fleet;
mod huge;
mod process;
mod render_step;
mod soak;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fake_atlas::FakeAtlas;

use figures::{StandIn, check_up, count, median, mib, ms, pass};
use fleet::{Fleet, Retention};
use process::ExporterProcess;

const USAGE: &str = "\
Scrape benchmark of atlas-backup-exporter (see BENCHMARKS.md).

Usage: cargo bench --bench scrape -- [OPTIONS]

Options:
  --latency-ms N     stand-in Atlas latency per request for the wall-time scenarios
                     [default 50, env ATLAS_BENCH_LATENCY_MS]
  --scrapes N        measured scrapes per wall-time scenario, after one warm-up [default 5]
  --cpu-scrapes N    measured scrapes per CPU scenario, after one warm-up [default 20]
  --quick            leave out the 1,000-cluster scenarios
  --only PARTS       comma-separated: wall, cpu, render [default all three]
  --exporter PATH    exporter binary [default: the one cargo built with this benchmark]
  --markdown PATH    also write the report to PATH; with --soak, replace the part of PATH
                     between its soak markers (BENCHMARKS.md has them)
  --verbose          print every scrape's figures as it goes
  --soak             run the long soak instead: scrapes back to back while Atlas churns,
                     RSS, CPU per scrape and open descriptors over time
  --soak-minutes N   how long the soak runs [default 30]
  --huge             run the largest estates instead: peak RSS, CPU, wall time, body and
                     RSS growth during a scrape at 1,000, 2,000 and 10,000 clusters × 100
                     jobs (latency 20 ms unless given); with --markdown, replaces the part
                     of PATH between its huge markers
  --huge-clusters L  comma-separated cluster counts for --huge [default 1000,2000,10000]
  --huge-concurrency N  max_concurrent_requests for --huge [default 32]
  -h, --help         this text";

/// Thresholds from the issue.
const MAX_WALL_RATIO: f64 = 1.2;
const MAX_REQUESTS_PER_CALL: f64 = 1.05;
const MAX_WORST_CPU: Duration = Duration::from_millis(100);
const MAX_WORST_RSS: u64 = 100 * 1024 * 1024;
const MAX_RENDER_RATIO: f64 = 3.0;

struct Options {
    latency: Duration,
    scrapes: usize,
    cpu_scrapes: usize,
    quick: bool,
    wall: bool,
    cpu: bool,
    render: bool,
    exporter: PathBuf,
    markdown: Option<PathBuf>,
    verbose: bool,
    soak: Option<Duration>,
    huge: Option<huge::HugeOptions>,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let env_latency = std::env::var("ATLAS_BENCH_LATENCY_MS").ok();
        let mut options = Options {
            latency: Duration::from_millis(50),
            scrapes: 5,
            cpu_scrapes: 20,
            quick: false,
            wall: true,
            cpu: true,
            render: true,
            exporter: PathBuf::from(env!("CARGO_BIN_EXE_atlas-backup-exporter")),
            markdown: None,
            verbose: false,
            soak: None,
            huge: None,
        };
        let mut soak_minutes = 30;
        let mut huge = false;
        let mut latency_given = env_latency.is_some();
        let mut huge_sizes = vec![1000, 2000, 10000];
        let mut huge_concurrency = 32;
        if let Some(ms) = env_latency {
            options.latency = Duration::from_millis(number("ATLAS_BENCH_LATENCY_MS", &ms)?);
        }
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                // `cargo bench` passes this to every benchmark binary.
                "--bench" => {}
                "-h" | "--help" => return Err(String::new()),
                "--latency-ms" => {
                    options.latency = Duration::from_millis(number(&flag, &value()?)?);
                    latency_given = true;
                }
                "--huge" => huge = true,
                "--huge-clusters" => {
                    huge_sizes = value()?
                        .split(',')
                        .map(|n| number(&flag, n).map(|n| n.max(1) as usize))
                        .collect::<Result<_, _>>()?
                }
                "--huge-concurrency" => {
                    huge_concurrency = number(&flag, &value()?)?.max(1) as usize
                }
                "--scrapes" => options.scrapes = number(&flag, &value()?)?.max(1) as usize,
                "--cpu-scrapes" => options.cpu_scrapes = number(&flag, &value()?)?.max(1) as usize,
                "--quick" => options.quick = true,
                "--soak" => options.soak = Some(Duration::ZERO),
                "--soak-minutes" => soak_minutes = number(&flag, &value()?)?.max(1),
                "--verbose" => options.verbose = true,
                "--only" => {
                    let parts = value()?;
                    options.wall = false;
                    options.cpu = false;
                    options.render = false;
                    for part in parts.split(',') {
                        match part.trim() {
                            "wall" => options.wall = true,
                            "cpu" => options.cpu = true,
                            "render" => options.render = true,
                            other => return Err(format!("--only: unknown part {other:?}")),
                        }
                    }
                }
                "--exporter" => options.exporter = PathBuf::from(value()?),
                "--markdown" => options.markdown = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.soak.is_some() {
            options.soak = Some(Duration::from_secs(60 * soak_minutes));
        }
        if huge {
            options.huge = Some(huge::HugeOptions {
                sizes: huge_sizes,
                latency: if latency_given {
                    options.latency
                } else {
                    Duration::from_millis(20)
                },
                max_concurrent_requests: huge_concurrency,
                scrapes: 4,
                verbose: options.verbose,
            });
        }
        Ok(options)
    }
}

fn number(name: &str, text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{name}: {text:?} is not a whole number"))
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match (&options.huge, options.soak) {
        (Some(huge), _) => runtime.block_on(run_huge(&options, huge)),
        (None, Some(duration)) => runtime.block_on(run_soak(&options, duration)),
        (None, None) => runtime.block_on(run(&options)),
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            let written = match (&options.markdown, options.soak, &options.huge) {
                (None, _, _) => Ok(()),
                (Some(path), _, Some(_)) => write_section(path, &report, HUGE_BEGIN, HUGE_END),
                (Some(path), Some(_), None) => write_section(path, &report, SOAK_BEGIN, SOAK_END),
                (Some(path), None, None) => std::fs::write(path, &report),
            };
            if let (Some(path), Err(error)) = (&options.markdown, written) {
                eprintln!("writing {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One wall-time scenario's figures.
struct Wall {
    label: String,
    max_concurrent_requests: usize,
    full_calls: u64,
    /// Calls made per scrape (median): successful answers, challenges left out.
    calls: u64,
    ideal: Duration,
    /// What the paging rule allows with no CPU cost: see [`paging_rounds`].
    schedule: Duration,
    wall: Duration,
    requests_per_call: f64,
    saved: f64,
    /// CPU time per scrape (mean) of the exporter, and of this process (the stand-in Atlas
    /// and the scraping client): with two cores, their sum close to twice the wall time means
    /// the scrape waited for CPU, not for Atlas.
    exporter_cpu: Duration,
    stand_in_cpu: Duration,
    /// The warm-up scrape: a full listing, with the digest challenges of a fresh client.
    first_wall: Duration,
    first_calls: u64,
    first_requests: u64,
}

impl Wall {
    fn ratio(&self) -> Option<f64> {
        (!self.ideal.is_zero()).then(|| self.wall.as_secs_f64() / self.ideal.as_secs_f64())
    }
}

/// One CPU scenario's figures.
struct Cpu {
    label: String,
    retention: Retention,
    gzip: bool,
    jobs: u64,
    samples: Option<usize>,
    bytes: usize,
    cpu_mean: Duration,
    cpu_median: Duration,
    /// The warm-up scrape: nothing known yet, every page parsed.
    first_cpu: Duration,
    peak_rss: u64,
    wall: Duration,
}

impl Cpu {
    fn is_worst_case(&self) -> bool {
        self.retention == Retention::Everything && !self.gzip
    }
}

/// The soak's markers in a Markdown file: the report goes between them.
const SOAK_BEGIN: &str = "<!-- soak report: begin -->";
const SOAK_END: &str = "<!-- soak report: end -->";

async fn run_soak(options: &Options, duration: Duration) -> io::Result<String> {
    let machine = Machine::read();
    eprintln!(
        "machine: {} cores, {}, {} memory; load {}; soak for {} minutes",
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.load,
        duration.as_secs() / 60
    );
    let dir = std::env::temp_dir().join(format!("atlas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = soak::run(&options.exporter, &dir, duration, options.verbose).await;
    let _ = std::fs::remove_dir_all(&dir);
    let command = match duration.as_secs() / 60 {
        30 => "cargo bench --bench scrape -- --soak".to_owned(),
        minutes => format!("cargo bench --bench scrape -- --soak --soak-minutes {minutes}"),
    };
    Ok(format!(
        "From `{command}` on a machine of {} cores ({}), load {} before and {} after.\n\n{}",
        machine.cores,
        machine.cpu,
        machine.load,
        Machine::read().load,
        result?
    ))
}

/// The largest estates' markers in a Markdown file.
const HUGE_BEGIN: &str = "<!-- huge report: begin -->";
const HUGE_END: &str = "<!-- huge report: end -->";

/// Replaces the text between the markers `begin` and `end` of `path` with `report`; a file
/// without them is left alone and the error says so.
fn write_section(path: &Path, report: &str, begin: &str, end: &str) -> io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let (Some(first), Some(last)) = (text.find(begin), text.find(end)) else {
        return Err(io::Error::other(format!(
            "no {begin:?} … {end:?} markers to write the report between"
        )));
    };
    if last < first {
        return Err(io::Error::other(format!(
            "the end marker {end:?} comes before its beginning"
        )));
    }
    let updated = format!("{}{begin}\n{report}\n{}", &text[..first], &text[last..]);
    std::fs::write(path, updated)
}

async fn run_huge(options: &Options, huge: &huge::HugeOptions) -> io::Result<String> {
    let machine = Machine::read();
    eprintln!(
        "machine: {} cores, {}, {} memory; load {}; huge estates {:?}",
        machine.cores, machine.cpu, machine.memory, machine.load, huge.sizes
    );
    let dir = std::env::temp_dir().join(format!("atlas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = huge::run(&options.exporter, &dir, huge).await;
    let _ = std::fs::remove_dir_all(&dir);
    let where_ = format!(
        "on a machine of {} cores ({}), load {} before and {} after",
        machine.cores,
        machine.cpu,
        machine.load,
        Machine::read().load
    );
    Ok(huge::report(huge, &result?, &where_))
}

async fn run(options: &Options) -> io::Result<String> {
    let machine = Machine::read();
    eprintln!(
        "machine: {} cores, {}, {} memory; load {}",
        machine.cores, machine.cpu, machine.memory, machine.load
    );
    let dir = std::env::temp_dir().join(format!("atlas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(options, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (walls, cpus, render) = result?;
    let load_after = Machine::read().load;
    Ok(report(
        options,
        &machine,
        &load_after,
        &walls,
        &cpus,
        render.as_ref(),
    ))
}

type Measured = (Vec<Wall>, Vec<Cpu>, Option<render_step::RenderFigures>);

async fn measure(options: &Options, dir: &Path) -> io::Result<Measured> {
    // First, while this process's heap is small: after the stand-in has held 150,000 jobs both
    // writers run 2 to 4 times slower (their ratio stays), and `--only render` should agree
    // with a full run.
    let render = options.render.then(|| {
        let figures = render_step::run(100, 100, 30);
        eprintln!(
            "render: {:.1} ms, hand-written {:.1} ms",
            ms(figures.render),
            ms(figures.handwritten)
        );
        figures
    });
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    if options.wall || options.cpu {
        let fake = FakeAtlas::new().with_api_key(fleet::PUBLIC_KEY, fleet::PRIVATE_KEY);
        let base_url = fake.start().await?;
        let atlas = StandIn {
            fake: fake.clone(),
            base_url,
        };
        let widest = if options.quick { 100 } else { 1000 };
        let seeding = Instant::now();
        let now = time::OffsetDateTime::now_utc();
        let wide = Fleet::new(0xa1, widest, 100);
        let deep = Fleet::new(0xd5, 10, 5000);
        wide.seed(&fake, now);
        deep.seed(&fake, now);
        eprintln!(
            "seeded {} jobs in {:.1} s",
            wide.jobs() + deep.jobs(),
            seeding.elapsed().as_secs_f64()
        );
        if options.wall {
            fake.set_latency(options.latency);
            let mut fleets = vec![("10 × 100", wide.take(10)), ("100 × 100", wide.take(100))];
            if !options.quick {
                fleets.push(("1,000 × 100", wide.take(1000)));
            }
            fleets.push(("10 × 5,000", deep.clone()));
            for (label, fleet) in &fleets {
                for mcr in [8, 32] {
                    let w = wall(&atlas, options, dir, label, fleet, mcr).await?;
                    eprintln!(
                        "wall {label}, {mcr} concurrent: {:.0} ms (ideal {:.0} ms), {:.2} requests per call",
                        ms(w.wall),
                        ms(w.ideal),
                        w.requests_per_call
                    );
                    walls.push(w);
                }
            }
        }
        if options.cpu {
            fake.set_latency(Duration::ZERO);
            let mut cases = vec![("100 × 100", wide.take(100), Retention::Everything)];
            if !options.quick {
                cases.push(("1,000 × 100", wide.take(1000), Retention::Defaults));
            }
            for (label, fleet, retention) in &cases {
                for gzip in [false, true] {
                    let c = cpu(&atlas, options, dir, label, fleet, *retention, gzip).await?;
                    eprintln!(
                        "cpu {label} {retention:?}{}: {:.1} ms CPU per scrape, peak RSS {:.1} MiB",
                        if gzip { " gzip" } else { "" },
                        ms(c.cpu_mean),
                        mib(c.peak_rss)
                    );
                    cpus.push(c);
                }
            }
        }
        fake.shutdown();
    }
    Ok((walls, cpus, render))
}

/// Scrapes once to warm up (digest challenges, connections), then `options.scrapes` times,
/// counting what the stand-in saw during each.
async fn wall(
    atlas: &StandIn,
    options: &Options,
    dir: &Path,
    label: &str,
    fleet: &Fleet,
    max_concurrent_requests: usize,
) -> io::Result<Wall> {
    let yaml = fleet.config_yaml(
        &atlas.base_url,
        max_concurrent_requests,
        Retention::Defaults,
    );
    let exporter = ExporterProcess::start(&options.exporter, dir, &yaml).await?;
    let before = atlas.fake.requests();
    let first = exporter.scrape(false).await?;
    let after = atlas.fake.requests();
    check_up(&first, fleet)?;
    let first_requests = after.total - before.total;
    let first_calls = first_requests - (after.challenges - before.challenges);
    let mut walls = Vec::new();
    let mut calls = Vec::new();
    let (mut requests, mut answered) = (0, 0);
    let exporter_started = exporter.cpu_time()?;
    let own_started = process::cpu_time("self")?;
    for _ in 0..options.scrapes {
        let before = atlas.fake.requests();
        let scraped = exporter.scrape(false).await?;
        let after = atlas.fake.requests();
        check_up(&scraped, fleet)?;
        let total = after.total - before.total;
        let made = total - (after.challenges - before.challenges);
        requests += total;
        answered += made;
        walls.push(scraped.wall);
        calls.push(made);
        if options.verbose {
            eprintln!(
                "  scrape: {:.0} ms wall, {made} calls, {total} requests",
                ms(scraped.wall)
            );
        }
    }
    let exporter_cpu = (exporter.cpu_time()? - exporter_started) / options.scrapes as u32;
    let stand_in_cpu = (process::cpu_time("self")? - own_started) / options.scrapes as u32;
    calls.sort_unstable();
    let calls = calls[calls.len() / 2];
    let full_calls = fleet.full_listing_calls();
    let rounds = calls.div_ceil(max_concurrent_requests as u64) as u32;
    Ok(Wall {
        label: label.to_owned(),
        max_concurrent_requests,
        full_calls,
        calls,
        ideal: options.latency * rounds,
        schedule: options.latency * paging_rounds(fleet, max_concurrent_requests),
        wall: median(&mut walls),
        requests_per_call: requests as f64 / answered.max(1) as f64,
        saved: (full_calls as f64 - calls as f64) / full_calls as f64,
        exporter_cpu,
        stand_in_cpu,
        first_wall: first.wall,
        first_calls,
        first_requests,
    })
}

/// Round trips a full listing takes with `permits` requests in flight, if answers cost no CPU:
/// a cluster's first page comes alone (it tells how many there are), pages 2 to
/// ceil(totalCount / 500) follow together, and a full last page is confirmed by one more.
/// Requests wait for a permit in the order they were made, as on the exporter's semaphore.
fn paging_rounds(fleet: &Fleet, permits: usize) -> u32 {
    let stages: Vec<Vec<usize>> = fleet
        .clusters
        .iter()
        .map(|c| {
            let per_page = fleet::ITEMS_PER_PAGE;
            let mut stages = vec![1];
            if c.jobs > per_page {
                stages.push(c.jobs.div_ceil(per_page) - 1);
            }
            if c.jobs >= per_page && c.jobs % per_page == 0 {
                stages.push(1);
            }
            debug_assert_eq!(
                stages.iter().sum::<usize>() as u64,
                fleet::pages_for(c.jobs)
            );
            stages
        })
        .collect();
    let mut next_stage = vec![1; stages.len()];
    let mut left: Vec<usize> = vec![1; stages.len()];
    let mut waiting: std::collections::VecDeque<usize> = (0..stages.len()).collect();
    let mut rounds = 0;
    while !waiting.is_empty() {
        rounds += 1;
        let answered: Vec<usize> = waiting.drain(..permits.min(waiting.len())).collect();
        for cluster in answered {
            left[cluster] -= 1;
            if left[cluster] == 0
                && let Some(&pages) = stages[cluster].get(next_stage[cluster])
            {
                next_stage[cluster] += 1;
                left[cluster] = pages;
                waiting.extend(std::iter::repeat_n(cluster, pages));
            }
        }
    }
    rounds
}

/// A fresh exporter (so its peak RSS is this scenario's), one warm-up scrape, then
/// `options.cpu_scrapes` scrapes with the CPU time each one cost.
async fn cpu(
    atlas: &StandIn,
    options: &Options,
    dir: &Path,
    label: &str,
    fleet: &Fleet,
    retention: Retention,
    gzip: bool,
) -> io::Result<Cpu> {
    let yaml = fleet.config_yaml(&atlas.base_url, 8, retention);
    let exporter = ExporterProcess::start(&options.exporter, dir, &yaml).await?;
    let before_first = exporter.cpu_time()?;
    let first = exporter.scrape(gzip).await?;
    let first_cpu = exporter.cpu_time()? - before_first;
    if !gzip {
        check_up(&first, fleet)?;
    }
    let mut times = Vec::new();
    let mut walls = Vec::new();
    let started = exporter.cpu_time()?;
    let mut last = first;
    for _ in 0..options.cpu_scrapes {
        let before = exporter.cpu_time()?;
        last = exporter.scrape(gzip).await?;
        times.push(exporter.cpu_time()? - before);
        walls.push(last.wall);
        if options.verbose {
            eprintln!(
                "  scrape: {:.0} ms wall, {:.0} ms CPU, RSS {:.1} MiB, peak {:.1} MiB",
                ms(last.wall),
                ms(times[times.len() - 1]),
                mib(exporter.rss()?),
                mib(exporter.peak_rss()?)
            );
        }
    }
    let total = exporter.cpu_time()? - started;
    Ok(Cpu {
        label: label.to_owned(),
        retention,
        gzip,
        jobs: fleet.jobs(),
        samples: last.samples,
        bytes: last.bytes,
        cpu_mean: total / options.cpu_scrapes as u32,
        cpu_median: median(&mut times),
        first_cpu,
        peak_rss: exporter.peak_rss()?,
        wall: median(&mut walls),
    })
}

struct Machine {
    cores: usize,
    cpu: String,
    memory: String,
    load: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)),
            );
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory,
            load,
        }
    }
}

fn report(
    options: &Options,
    machine: &Machine,
    load_after: &str,
    walls: &[Wall],
    cpus: &[Cpu],
    render: Option<&render_step::RenderFigures>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Scrape benchmark\n");
    let _ = writeln!(
        out,
        "Machine: {} cores ({}), {} memory. Load average (1, 5, 15 min) {} before, {} after.\n",
        machine.cores, machine.cpu, machine.memory, machine.load, load_after
    );
    if !walls.is_empty() {
        let _ = writeln!(
            out,
            "### Wall time per scrape (stand-in latency {} ms a request; median of {} scrapes after a warm-up)\n",
            options.latency.as_millis(),
            options.scrapes
        );
        let _ = writeln!(
            out,
            "| Clusters × jobs | max_concurrent_requests | Calls made (full listing) | Calls saved | Ideal | Wall | Ratio | Paging rule | Wall / paging rule | HTTP requests per call |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for w in walls {
            let ratio = w.ratio().map_or("n/a".to_owned(), |r| format!("{r:.2}"));
            // The simulated schedule is a full listing's; an incremental one is not comparable.
            let (schedule, to_schedule) = if w.schedule.is_zero() || w.calls != w.full_calls {
                ("n/a".to_owned(), "n/a".to_owned())
            } else {
                (
                    format!("{:.0} ms", ms(w.schedule)),
                    format!("{:.2}", w.wall.as_secs_f64() / w.schedule.as_secs_f64()),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} ({}) | {:.0} % | {:.0} ms | {:.0} ms | {} | {} | {} | {:.3} |",
                w.label,
                w.max_concurrent_requests,
                count(w.calls),
                count(w.full_calls),
                w.saved * 100.0,
                ms(w.ideal),
                ms(w.wall),
                ratio,
                schedule,
                to_schedule,
                w.requests_per_call,
            );
        }
        let _ = writeln!(
            out,
            "\nThe same scenarios: CPU per scrape (mean of the measured scrapes), and the warm-up scrape (a fresh exporter: full listing, digest challenges).\n"
        );
        let _ = writeln!(
            out,
            "| Clusters × jobs | max_concurrent_requests | Exporter CPU per scrape | Stand-in CPU per scrape | Warm-up: wall | Warm-up: calls | Warm-up: HTTP requests |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for w in walls {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} |",
                w.label,
                w.max_concurrent_requests,
                ms(w.exporter_cpu),
                ms(w.stand_in_cpu),
                ms(w.first_wall),
                count(w.first_calls),
                count(w.first_requests),
            );
        }
        let _ = writeln!(out);
    }
    if !cpus.is_empty() {
        let _ = writeln!(
            out,
            "### Exporter CPU time and memory (latency 0; {} scrapes after a warm-up, each on a fresh exporter process)\n",
            options.cpu_scrapes
        );
        let _ = writeln!(
            out,
            "| Clusters × jobs | Retention | Encoding | Samples | Body | CPU per scrape (mean) | CPU per scrape (median) | CPU per 1,000 jobs | Warm-up scrape CPU | Peak RSS | Wall |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for c in cpus {
            let retention = match c.retention {
                Retention::Everything => "max_age 0, max_per_cluster 0",
                Retention::Defaults => "defaults",
            };
            let samples = c.samples.map_or("".to_owned(), |s| count(s as u64));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.1} MiB | {:.1} ms | {:.0} ms | {:.2} ms | {:.0} ms | {:.1} MiB | {:.0} ms |",
                c.label,
                retention,
                if c.gzip { "gzip" } else { "identity" },
                samples,
                mib(c.bytes as u64),
                ms(c.cpu_mean),
                ms(c.cpu_median),
                ms(c.cpu_mean) / (c.jobs as f64 / 1000.0),
                ms(c.first_cpu),
                mib(c.peak_rss),
                ms(c.wall)
            );
        }
        let _ = writeln!(out);
    }
    if let Some(r) = render {
        let _ = writeln!(
            out,
            "### Render step alone ({} jobs, {} samples; median of timed runs)\n",
            count(r.jobs as u64),
            count(r.samples as u64)
        );
        let _ = writeln!(
            out,
            "| Writer | Time | Samples per second | vs hand-written |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let rows = [
            ("`render::render`", r.render),
            ("hand-written `writeln!` per line", r.handwritten),
            (
                "`prometheus` GaugeVec fill + TextEncoder",
                r.prometheus_full,
            ),
            (
                "`prometheus` gather + TextEncoder only",
                r.prometheus_encode,
            ),
        ];
        for (name, t) in rows {
            let _ = writeln!(
                out,
                "| {name} | {:.1} ms | {} | {:.2}× |",
                ms(t),
                count((r.samples as f64 / t.as_secs_f64()) as u64),
                t.as_secs_f64() / r.handwritten.as_secs_f64()
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(out, "### Targets\n");
    let _ = writeln!(out, "| Target | Measured | Result |");
    let _ = writeln!(out, "|---|---|---|");
    if let Some(worst) = walls
        .iter()
        .filter_map(|w| w.ratio().map(|r| (r, w)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        let _ = writeln!(
            out,
            "| Wall-time ratio ≤ {MAX_WALL_RATIO} everywhere | worst {:.2} ({}, {} concurrent) | {} |",
            worst.0,
            worst.1.label,
            worst.1.max_concurrent_requests,
            pass(worst.0 <= MAX_WALL_RATIO)
        );
    }
    if let Some(worst) = walls
        .iter()
        .max_by(|a, b| a.requests_per_call.total_cmp(&b.requests_per_call))
    {
        let _ = writeln!(
            out,
            "| HTTP requests per Atlas call ≤ {MAX_REQUESTS_PER_CALL} in steady state | worst {:.3} | {} |",
            worst.requests_per_call,
            pass(worst.requests_per_call <= MAX_REQUESTS_PER_CALL)
        );
    }
    if let Some(worst) = cpus.iter().find(|c| c.is_worst_case()) {
        let _ = writeln!(
            out,
            "| Worst case (100 × 100, everything shown), uncompressed: CPU ≤ {} ms per scrape | {:.1} ms (mean), {:.0} ms (median) | {} |",
            MAX_WORST_CPU.as_millis(),
            ms(worst.cpu_mean),
            ms(worst.cpu_median),
            pass(worst.cpu_mean <= MAX_WORST_CPU)
        );
        let _ = writeln!(
            out,
            "| Worst case, uncompressed: peak RSS ≤ {:.0} MiB | {:.1} MiB | {} |",
            mib(MAX_WORST_RSS),
            mib(worst.peak_rss),
            pass(worst.peak_rss <= MAX_WORST_RSS)
        );
    }
    if let Some(r) = render {
        let ratio = r.render.as_secs_f64() / r.handwritten.as_secs_f64();
        let _ = writeln!(
            out,
            "| Render within {MAX_RENDER_RATIO}× of the hand-written writer | {ratio:.2}× | {} |",
            pass(ratio <= MAX_RENDER_RATIO)
        );
    }
    out
}
