//! Test support: the stand-in Atlas and the exporter's real router, both on loopback, and a
//! small reader of the text format.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use atlas_backup_exporter::Options;
use atlas_backup_exporter::clock::Clock;
use atlas_backup_exporter::config::{self, Credentials};
use fake_atlas::FakeAtlas;
use secrecy::SecretString;

pub const GROUP: &str = "5f1a2b3c4d5e6f7a8b9c0d1e";
pub const GROUP2: &str = "6a799efbc0eb9e7a177d7e0e";
pub const PUBLIC_KEY: &str = "testpublickey";
pub const PRIVATE_KEY: &str = "0a1b2c3d-aaaa-bbbb-cccc-0123456789ab";
pub const CLIENT_ID: &str = "mdb_sa_id_0123456789abcdef01234567";
pub const CLIENT_SECRET: &str = "mdb_sa_sk_secretsecretsecretsecret";

/// A stand-in Atlas that knows the test credentials.
pub fn fake() -> FakeAtlas {
    FakeAtlas::new()
        .with_api_key(PUBLIC_KEY, PRIVATE_KEY)
        .with_service_account(CLIENT_ID, CLIENT_SECRET)
}

pub fn api_key() -> Credentials {
    Credentials::ApiKey {
        public_key: SecretString::from(PUBLIC_KEY),
        private_key: SecretString::from(PRIVATE_KEY),
    }
}

pub fn service_account() -> Credentials {
    Credentials::ServiceAccount {
        client_id: SecretString::from(CLIENT_ID),
        client_secret: SecretString::from(CLIENT_SECRET),
    }
}

/// The exporter's router serving on loopback, in front of a running stand-in Atlas.
pub struct Exporter {
    pub fake: FakeAtlas,
    pub addr: SocketAddr,
    pub app: atlas_backup_exporter::App,
    http: reqwest::Client,
}

impl Exporter {
    /// Starts the stand-in and the exporter with `yaml` as its config, where
    /// `BASE_URL` stands for the stand-in's address.
    pub async fn start(fake: FakeAtlas, yaml: &str, credentials: Credentials) -> Exporter {
        Exporter::start_with(fake, yaml, credentials, Options::default()).await
    }

    /// [`Exporter::start`] with the exporter on `clock`, a `ManualClock`'s handle that the test
    /// moves past token renewals and cache expiries.
    pub async fn start_with_clock(
        fake: FakeAtlas,
        yaml: &str,
        credentials: Credentials,
        clock: Clock,
    ) -> Exporter {
        let options = Options {
            clock,
            ..Options::default()
        };
        Exporter::start_with(fake, yaml, credentials, options).await
    }

    /// [`Exporter::start`] with `options`: the command line's (`--web.max-requests`, …) and the
    /// clock.
    pub async fn start_with(
        fake: FakeAtlas,
        yaml: &str,
        credentials: Credentials,
        options: Options,
    ) -> Exporter {
        let base_url = fake.start().await.expect("stand-in Atlas starts");
        let yaml = yaml.replace("BASE_URL", &base_url);
        let config = config::parse(&yaml, "test.yml").expect("test config is valid");
        let app =
            atlas_backup_exporter::build(&config, credentials, options).expect("exporter builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(app.clone().serve(listener, std::future::pending()));
        Exporter {
            fake,
            addr,
            app,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Scrapes `/metrics` and parses the answer.
    pub async fn scrape(&self) -> Scrape {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        Scrape::parse(&response.text().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// One sample of the text format.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(parse_line)
            .collect();
        Scrape {
            text: text.to_owned(),
            samples,
        }
    }

    /// Every sample of `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with `labels`; `None` if there is none. Panics if
    /// there are several.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().map(|s| s.value)
    }

    /// Export job ids that have per-job series on a cluster.
    pub fn job_ids(&self, cluster: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .find(
                "atlas_backup_export_job_created_timestamp_seconds",
                &[("cluster_name", cluster)],
            )
            .iter()
            .map(|s| s.labels["export_job_id"].clone())
            .collect();
        ids.sort();
        ids
    }
}

fn parse_line(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.to_owned(), BTreeMap::new()),
        Some((name, rest)) => (
            name.to_owned(),
            parse_labels(rest.strip_suffix('}').unwrap()),
        ),
    };
    Sample {
        name,
        labels,
        value,
    }
}

fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// A directory under the system's temporary directory, named after `tag`, removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("atlas-backup-exporter-test-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a temporary directory for {tag}: {e}"));
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `text` to `name` in this directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &Child) {
    signal(child, nix::sys::signal::Signal::SIGTERM);
}

/// Sends a signal (SIGTERM, SIGINT, …) to a child process.
pub fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id().try_into().expect("a pid fits in i32"));
    nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
}

/// Waits for a child process to end; returns its exit code and everything it wrote to stderr.
pub fn exit_code_and_stderr(child: &mut Child) -> (Option<i32>, String) {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    (child.wait().unwrap().code(), stderr)
}

/// `future`, or a failed test naming `what` if it takes longer than a busy machine explains:
/// the bound on every wait for an event.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(std::time::Duration::from_secs(30), future).await {
        Ok(value) => value,
        Err(_) => panic!("still waiting for {what} after 30 s"),
    }
}

/// The binary's standard error, read line by line on a thread of its own, so a test can wait
/// for a line (the `listening` line and its address, `shutting down`) while the binary runs.
pub struct StderrLog {
    text: std::sync::Arc<tokio::sync::watch::Sender<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl StderrLog {
    /// Takes `child`'s piped stderr and starts reading it.
    pub fn read(child: &mut Child) -> StderrLog {
        use std::io::BufRead;
        let pipe = child.stderr.take().expect("the child's stderr is piped");
        let text = std::sync::Arc::new(tokio::sync::watch::Sender::new(String::new()));
        let reader = std::thread::spawn({
            let text = text.clone();
            move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    text.send_modify(|t| {
                        t.push_str(&line);
                        t.push('\n');
                    });
                }
            }
        });
        StderrLog { text, reader }
    }

    /// Waits for the first line that contains `needle` and returns it.
    pub async fn line_with(&self, needle: &str) -> String {
        let first_line = |text: &str| text.lines().find(|l| l.contains(needle)).map(str::to_owned);
        let mut text = self.text.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let waited = text.wait_for(|t| first_line(t).is_some());
        if tokio::time::timeout(std::time::Duration::from_secs(30), waited)
            .await
            .is_err()
        {
            panic!("no {needle:?} in stderr after 30 s:\n{}", self.text());
        }
        first_line(&self.text.borrow()).unwrap_or_default()
    }

    /// Waits until `n` lines contain `needle` and returns the `n`th: for an event the binary
    /// logs again and again (a reload).
    pub async fn nth_line_with(&self, needle: &str, n: usize) -> String {
        let nth = |text: &str| {
            text.lines()
                .filter(|l| l.contains(needle))
                .nth(n - 1)
                .map(str::to_owned)
        };
        let mut text = self.text.subscribe();
        let waited = text.wait_for(|t| nth(t).is_some());
        if tokio::time::timeout(std::time::Duration::from_secs(30), waited)
            .await
            .is_err()
        {
            panic!(
                "no {n} lines with {needle:?} in stderr after 30 s:\n{}",
                self.text()
            );
        }
        nth(&self.text.borrow()).unwrap_or_default()
    }

    /// The address the binary listens on, from its `listening` line (logfmt `address=` or
    /// JSON `"address"`): start it with `--web.listen-address 127.0.0.1:0` and ask this.
    pub async fn listening_address(&self) -> SocketAddr {
        let line = self.line_with("listening").await;
        let address = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(json) => json["address"]
                .as_str()
                .or_else(|| json["fields"]["address"].as_str())
                .unwrap_or_default()
                .to_owned(),
            Err(_) => line
                .split(' ')
                .find_map(|field| field.strip_prefix("address="))
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned(),
        };
        address
            .parse()
            .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
    }

    /// Everything the binary wrote so far.
    pub fn text(&self) -> String {
        self.text.borrow().clone()
    }

    /// Waits for `child` to end; returns its exit code and everything it wrote to stderr.
    pub fn exit_code_and_text(self, child: &mut Child) -> (Option<i32>, String) {
        let code = child.wait().unwrap().code();
        self.reader.join().expect("the stderr reader");
        (code, self.text.borrow().clone())
    }
}

/// The exporter's binary, as users run it, serving on loopback in front of a running stand-in
/// Atlas with the test API key in its environment; killed when dropped.
pub struct Binary {
    pub fake: FakeAtlas,
    pub addr: SocketAddr,
    pub log: StderrLog,
    child: Child,
    _dir: TempDir,
}

impl Binary {
    /// Starts the stand-in, then the binary with `yaml` as its config file, where `BASE_URL`
    /// stands for the stand-in's address; returns once the binary logs its address.
    pub async fn start(fake: FakeAtlas, yaml: &str) -> Binary {
        use std::process::Stdio;
        let base_url = fake.start().await.expect("stand-in Atlas starts");
        let dir = TempDir::new("binary");
        let config = dir.write("exporter.yml", &yaml.replace("BASE_URL", &base_url));
        let mut child = Command::new(env!("CARGO_BIN_EXE_atlas-backup-exporter"))
            .arg("--config.file")
            .arg(&config)
            .args(["--web.listen-address", "127.0.0.1:0"])
            .env_remove("MONGODB_ATLAS_CLIENT_ID")
            .env_remove("MONGODB_ATLAS_CLIENT_SECRET")
            .env("MONGODB_ATLAS_PUBLIC_API_KEY", PUBLIC_KEY)
            .env("MONGODB_ATLAS_PRIVATE_API_KEY", PRIVATE_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter's binary starts");
        let log = StderrLog::read(&mut child);
        let addr = log.listening_address().await;
        Binary {
            fake,
            addr,
            log,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log lines written to it, kept as one text: a `tracing` writer for tests that count what an
/// exporter in the test's own process logs.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// How many times `needle` was written.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// How many lines hold every one of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> usize {
        let all = |line: &&str| needles.iter().all(|n| line.contains(n));
        self.text().lines().filter(all).count()
    }
}
