//! The exporter as a child process: started from its release binary with a generated config,
//! scraped over HTTP, and measured through `/proc` (CPU time and peak RSS), so the stand-in
//! Atlas in the benchmark's own process is not counted.

use std::io::{self, BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING};

/// A running exporter; killed when dropped.
pub struct ExporterProcess {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    http: reqwest::Client,
}

/// What one scrape returned.
pub struct Scraped {
    pub wall: Duration,
    pub bytes: usize,
    /// Sample lines, counted only for uncompressed answers.
    pub samples: Option<usize>,
    /// Clusters with `atlas_backup_export_up 1`, likewise.
    pub clusters_up: Option<usize>,
}

impl ExporterProcess {
    /// Writes `yaml` next to the other run files in `dir` and starts `binary` on a port of its
    /// own choosing, waiting for the `listening` line that names it.
    pub async fn start(binary: &Path, dir: &Path, yaml: &str) -> io::Result<ExporterProcess> {
        let config = dir.join(format!("exporter-{}.yml", unique()));
        std::fs::write(&config, yaml)?;
        let log = std::fs::File::create(config.with_extension("log"))?;
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            // `listening` is an info line. Above it only warnings, which a steady scrape does
            // not write: failed jobs are logged once each, in the warm-up.
            .arg("--log.level=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let listening = copy_log(stderr, log);
        let http = reqwest::Client::builder()
            .gzip(false)
            .no_proxy()
            .build()
            .map_err(io::Error::other)?;
        let mut process = ExporterProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
            http,
        };
        match tokio::time::timeout(Duration::from_secs(20), listening).await {
            Ok(Ok(addr)) => {
                process.addr = addr;
                Ok(process)
            }
            Ok(Err(_)) => {
                // Its stderr ended before a `listening` line: the exporter exited.
                let status = process.child.wait()?;
                let log = std::fs::read_to_string(process.config.with_extension("log"))
                    .unwrap_or_default();
                Err(io::Error::other(format!(
                    "the exporter exited ({status}): {log}"
                )))
            }
            Err(_) => Err(io::Error::other(
                "the exporter said nothing about listening in 20 s",
            )),
        }
    }

    /// One `/metrics` scrape, read to the end; `gzip` asks for a compressed answer and checks
    /// that it is one.
    pub async fn scrape(&self, gzip: bool) -> io::Result<Scraped> {
        let mut request = self.http.get(format!("http://{}/metrics", self.addr));
        if gzip {
            request = request.header(ACCEPT_ENCODING, "gzip");
        }
        let started = Instant::now();
        let response = request.send().await.map_err(io::Error::other)?;
        let status = response.status();
        let encoding = response
            .headers()
            .get(CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(io::Error::other)?;
        let wall = started.elapsed();
        if !status.is_success() {
            return Err(io::Error::other(format!("scrape answered {status}")));
        }
        if gzip != (encoding.as_deref() == Some("gzip"))
            || (gzip && !body.starts_with(&[0x1f, 0x8b]))
        {
            return Err(io::Error::other(format!(
                "asked for gzip: {gzip}, got Content-Encoding {encoding:?}"
            )));
        }
        let lines = || {
            body.split(|b| *b == b'\n')
                .filter(|line| !line.is_empty() && line[0] != b'#')
        };
        let samples = (!gzip).then(|| lines().count());
        let clusters_up = (!gzip).then(|| {
            lines()
                .filter(|l| l.starts_with(b"atlas_backup_export_up{") && l.ends_with(b"} 1"))
                .count()
        });
        Ok(Scraped {
            wall,
            bytes: body.len(),
            samples,
            clusters_up,
        })
    }

    /// User plus system CPU time the exporter has used so far.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        cpu_time(&self.child.id().to_string())
    }

    /// Peak resident set size in bytes (`VmHWM` of `/proc/PID/status`).
    pub fn peak_rss(&self) -> io::Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// Resident set size now, in bytes (`VmRSS`).
    pub fn rss(&self) -> io::Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// File descriptors open now (the entries of `/proc/PID/fd`).
    pub fn open_fds(&self) -> io::Result<u64> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))?.count() as u64)
    }

    /// The exporter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status_kib(&self, field: &str) -> io::Result<u64> {
        status_field(&format!("/proc/{}/status", self.child.id()), field)
            .ok_or_else(|| io::Error::other(format!("no {field} in /proc/PID/status")))
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(self.config.with_extension("log"));
    }
}

/// Copies the exporter's stderr into `log` on a thread of its own, for as long as the
/// exporter runs; the answer is the address of its `listening` line (logfmt's `address=`).
fn copy_log(
    stderr: ChildStderr,
    mut log: std::fs::File,
) -> tokio::sync::oneshot::Receiver<SocketAddr> {
    let (tell, listening) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tell = Some(tell);
        for line in io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log, "{line}");
            let addr = || {
                line.split(' ')
                    .find_map(|field| field.strip_prefix("address="))
                    .and_then(|a| a.trim_matches('"').parse().ok())
            };
            if tell.is_some()
                && line.contains("listening")
                && let Some(addr) = addr()
                && let Some(tell) = tell.take()
            {
                let _ = tell.send(addr);
            }
        }
    });
    listening
}

/// A `kB` field of a `/proc/PID/status` file at `path`, in bytes.
pub fn status_field(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// User plus system CPU time process `pid` (or `self`) has used so far (`/proc/PID/stat`: the
/// whole process, exited threads included; the kernel counts in ticks of usually 10 ms).
pub fn cpu_time(pid: &str) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime); `fields[0]` is field 3.
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / ticks_per_second()))
}

/// `CLK_TCK`, the unit of the CPU times in `/proc/PID/stat` (100 on every common Linux).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}
