//! The exporter as a child process: started from its release binary with a generated config,
//! scraped over HTTP, and measured through `/proc` (CPU time and peak RSS), so the stand-in
//! Atlas in the benchmark's own process is not counted.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    /// Writes `yaml` next to the other run files in `dir` and starts `binary` on a free port,
    /// waiting until it answers `/-/healthy`.
    pub async fn start(binary: &Path, dir: &Path, yaml: &str) -> io::Result<ExporterProcess> {
        let config = dir.join(format!("exporter-{}.yml", unique()));
        std::fs::write(&config, yaml)?;
        let addr = free_port()?;
        let log = std::fs::File::create(config.with_extension("log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let http = reqwest::Client::builder()
            .gzip(false)
            .no_proxy()
            .build()
            .map_err(io::Error::other)?;
        let mut process = ExporterProcess {
            child,
            addr,
            config,
            http,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = process.child.try_wait()? {
                let log = std::fs::read_to_string(process.config.with_extension("log"))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "the exporter exited ({status}): {log}"
                )));
            }
            let healthy = process
                .http
                .get(format!("http://{addr}/-/healthy"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(process);
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(io::Error::other("the exporter did not come up in 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
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

    fn status_kib(&self, field: &str) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
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

/// A loopback address nobody listens on right now.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
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
