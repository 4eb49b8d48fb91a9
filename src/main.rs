//! `atlas-backup-exporter`: parse the command line, load the config, build the exporter, serve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use atlas_backup_exporter::Options;
use atlas_backup_exporter::config::{self, Config};
use atlas_backup_exporter::logging::{self, LogFormat, LogLevel};
use atlas_backup_exporter::web::{self, WebConfig};
use clap::Parser;

/// jemalloc rather than glibc's malloc: at 10,000 clusters a scrape makes millions of small
/// allocations (mostly inside the HTTP client), and glibc's malloc cost about a fifth of its CPU;
/// jemalloc takes about a fifth less CPU per scrape for the same peak memory (BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before its first allocation: one arena, not four per core. With the
/// default arenas the resident set grew during a scrape at 1,000 clusters by a quarter of the
/// answer's size; with one it grows by less than a tenth, as with glibc, and the peak is lower.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 10] = b"narenas:1\0";

/// Prometheus exporter for MongoDB Atlas Cloud Backup snapshot export jobs.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Path to the YAML configuration file.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "atlas-backup-exporter.yml"
    )]
    config_file: PathBuf,

    /// Address to listen on: ":PORT" for every interface, "HOST:PORT" or "[V6]:PORT" for one.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDR",
        default_value = ":9947"
    )]
    listen_address: String,

    /// Path under which to expose the metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,

    /// The URL Prometheus reaches the exporter at (for /sd targets); default: the request's Host.
    #[arg(long = "web.external-url", value_name = "URL")]
    external_url: Option<String>,

    /// Path to a web config file (Prometheus exporter-toolkit format) for TLS and basic
    /// authentication on the exporter's endpoint.
    #[arg(long = "web.config.file", value_name = "PATH")]
    web_config_file: Option<PathBuf>,

    /// How long a client may take to send a request's headers (and the TLS handshake), and how
    /// long an idle keep-alive connection stays open.
    #[arg(
        long = "web.read-header-timeout",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = positive_duration
    )]
    read_header_timeout: Duration,

    /// Scrapes of the telemetry path served at once; more get 503 (0 = no limit).
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = atlas_backup_exporter::DEFAULT_MAX_REQUESTS)]
    max_requests: usize,

    /// Only log messages with at least this severity.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,

    /// Output format of log messages.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    log_format: LogFormat,

    /// Validate the configuration, print what would be scraped, and exit (0 if valid, 1 if not).
    #[arg(long = "config.check")]
    config_check: bool,

    /// Make one collection against Atlas with the config and credentials, print per project and
    /// cluster `ok` or what failed and the fix, and exit (0 if all is readable, 1 if not).
    #[arg(long = "atlas.check")]
    atlas_check: bool,
}

/// A duration in Prometheus's form (`30s`, `1m`), more than zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match config::parse_duration(text)? {
        Duration::ZERO => Err("must be more than 0".to_owned()),
        duration => Ok(duration),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_level, args.log_format);
    if let Err(problem) = web::check_telemetry_path(&args.telemetry_path) {
        eprintln!("--web.telemetry-path {:?}: {problem}", args.telemetry_path);
        return ExitCode::FAILURE;
    }
    if let Some(url) = &args.external_url
        && let Err(problem) = web::check_external_url(url)
    {
        eprintln!("--web.external-url {url:?}: {problem}");
        return ExitCode::FAILURE;
    }
    let (config, credentials) = match load(&args) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    let web = match args.web_config_file.as_deref().map(web::config::load) {
        None => None,
        Some(Ok(web)) => Some(web),
        Some(Err(error)) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if args.config_check {
        println!(
            "{}: OK\n{}Using credentials from {}",
            args.config_file.display(),
            config.describe(),
            credentials.source
        );
        if let (Some(path), Some(web)) = (&args.web_config_file, &web) {
            println!("{}: OK\nWeb: {}", path.display(), web.describe());
        }
        if !args.atlas_check {
            return ExitCode::SUCCESS;
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.atlas_check {
        let checked = runtime.block_on(check_atlas(&config, credentials));
        // A call still hanging is not waited for: the check ends within collection.timeout.
        runtime.shutdown_background();
        return checked;
    }
    match runtime.block_on(run(args, config, credentials, web)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--atlas.check`: the report on stdout, exit 0 when everything the exporter needs is readable.
async fn check_atlas(config: &Config, credentials: config::ResolvedCredentials) -> ExitCode {
    if let Some(notice) = &credentials.notice {
        tracing::info!("{notice}");
    }
    eprintln!(
        "Checking {} with the credentials from {}, within {} (collection.timeout)",
        config.atlas.base_url,
        credentials.source,
        config::format_duration(config.collection.timeout)
    );
    match atlas_backup_exporter::check::run(config, credentials.credentials).await {
        Ok(report) => {
            print!("{report}");
            match report.passed() {
                true => ExitCode::SUCCESS,
                false => ExitCode::FAILURE,
            }
        }
        Err(error) => {
            eprintln!("building the Atlas client: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &Args) -> anyhow::Result<(Config, config::ResolvedCredentials)> {
    let config = config::load(&args.config_file)?;
    let credentials =
        config::resolve_credentials(config.atlas.auth.as_ref(), |name| std::env::var(name).ok())?;
    Ok((config, credentials))
}

async fn run(
    args: Args,
    config: Config,
    credentials: config::ResolvedCredentials,
    web: Option<WebConfig>,
) -> anyhow::Result<()> {
    if let Some(notice) = &credentials.notice {
        tracing::info!("{notice}");
    }
    let options = Options {
        telemetry_path: args.telemetry_path.clone(),
        external_url: args.external_url,
        max_requests: args.max_requests,
        web_config: web.map(Arc::new),
        header_read_timeout: args.read_header_timeout,
        ..Options::default()
    };
    let app = atlas_backup_exporter::build(&config, credentials.credentials, options)
        .context("building the Atlas client")?;
    let listener = web::bind(&args.listen_address)
        .await
        .with_context(|| format!("listening on {}", args.listen_address))?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen_address.clone());
    // Installed before the `listening` line, so a signal sent on reading it stops us cleanly.
    let shutdown = web::shutdown_signal();
    tracing::info!(
        address = %address,
        telemetry_path = %args.telemetry_path,
        targets = config.targets.len(),
        credentials = %credentials.source,
        version = atlas_backup_exporter::metrics::VERSION,
        "listening"
    );
    // The background collection (if any) ends with the server, whichever way it ended.
    app.serve(listener, shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}
