//! Test support: the stand-in Atlas and the exporter's real router, both on loopback, and a
//! small reader of the text format.

#![allow(dead_code)]

use std::collections::BTreeMap;
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

/// `future`, or a failed test naming `what` if it takes longer than a busy machine explains:
/// the bound on every wait for an event.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(std::time::Duration::from_secs(30), future).await {
        Ok(value) => value,
        Err(_) => panic!("still waiting for {what} after 30 s"),
    }
}

/// The Atlas credentials the binary reads from its environment: removed from every child's, so
/// a developer's own never reach a test.
const CREDENTIAL_VARS: [&str; 4] = [
    "MONGODB_ATLAS_PUBLIC_API_KEY",
    "MONGODB_ATLAS_PRIVATE_API_KEY",
    "MONGODB_ATLAS_CLIENT_ID",
    "MONGODB_ATLAS_CLIENT_SECRET",
];

/// The exporter's binary, as cargo built it for the tests.
const EXPORTER: &str = env!("CARGO_BIN_EXE_atlas-backup-exporter");

/// The one place a test starts a process: the exporter's binary as a user runs it
/// ([`Spawn::exporter`]), or another program ([`Spawn::program`]: an example, Prometheus).
/// Its standard input is empty and no Atlas credential is in its environment unless the test
/// puts one there. Run it to its end with [`Spawn::output`], or start it with [`Spawn::start`]
/// (or [`Spawn::serve`], which waits for the address it listens on) and get a [`Running`].
pub struct Spawn {
    command: Command,
    program: String,
    /// What [`Spawn::output`] writes to its stdin.
    input: Option<Vec<u8>>,
}

impl Spawn {
    /// The exporter's binary.
    pub fn exporter() -> Spawn {
        Spawn::program(Path::new(EXPORTER))
    }

    /// Another program.
    pub fn program(path: &Path) -> Spawn {
        let mut command = Command::new(path);
        command.stdin(std::process::Stdio::null());
        for var in CREDENTIAL_VARS {
            command.env_remove(var);
        }
        Spawn {
            command,
            program: path.display().to_string(),
            input: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Spawn {
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Spawn {
        self.command.args(args);
        self
    }

    /// `--config.file path`.
    pub fn config(self, path: &Path) -> Spawn {
        self.arg("--config.file").arg(path)
    }

    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Spawn {
        self.command.env(name, value);
        self
    }

    pub fn envs<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Spawn {
        self.command.envs(vars);
        self
    }

    /// The test API key in the environment, as an operator's unit file would set it.
    pub fn api_key_env(self) -> Spawn {
        self.env("MONGODB_ATLAS_PUBLIC_API_KEY", PUBLIC_KEY)
            .env("MONGODB_ATLAS_PRIVATE_API_KEY", PRIVATE_KEY)
    }

    /// The exporter's binary first on `PATH`, as an installed one is for a shell.
    pub fn exporter_on_path(self) -> Spawn {
        let bin_dir = Path::new(EXPORTER)
            .parent()
            .expect("the binary's directory");
        let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("a PATH");
        self.env("PATH", path)
    }

    pub fn current_dir(mut self, dir: &Path) -> Spawn {
        self.command.current_dir(dir);
        self
    }

    /// `input` on its stdin when it runs to its end with [`Spawn::output`].
    pub fn stdin(mut self, input: Vec<u8>) -> Spawn {
        self.input = Some(input);
        self
    }

    /// Runs it to its end, both streams captured.
    pub fn output(mut self) -> Exited {
        use std::io::Write;
        use std::process::Stdio;
        let program = self.program;
        let mut child = self
            .command
            .stdin(if self.input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        // Written from a thread of its own, so a program that answers before it has read
        // everything cannot block on a full pipe while this blocks writing.
        let writer = self
            .input
            .zip(child.stdin.take())
            .map(|(input, mut pipe)| std::thread::spawn(move || pipe.write_all(&input)));
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {program}: {e}"));
        if let Some(writer) = writer {
            writer
                .join()
                .expect("the stdin writer")
                .unwrap_or_else(|e| panic!("writing to {program}'s stdin: {e}"));
        }
        Exited {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// [`Spawn::output`] off the async workers, so the servers of the test's runtime (the
    /// stand-in) keep answering while it runs.
    pub async fn output_async(self) -> Exited {
        tokio::task::spawn_blocking(move || self.output())
            .await
            .expect("the thread running the program")
    }

    /// Starts it with its stderr read line by line into [`Running::log`]; its stdout is kept
    /// for [`Running::stdout`] if `keep_stdout`, else dropped.
    pub fn start_with_stdout(mut self, keep_stdout: bool) -> Running {
        use std::process::Stdio;
        let mut child = self
            .command
            .stdout(if keep_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.program));
        let log = StderrLog::read(&mut child);
        Running { child, log }
    }

    /// Starts it, its stdout dropped.
    pub fn start(self) -> Running {
        self.start_with_stdout(false)
    }

    /// Starts the exporter on a port of its choosing (`--web.listen-address 127.0.0.1:0`) and
    /// waits for the `listening` line that names it: the listener is bound before the line is
    /// logged, so the first request gets through.
    pub async fn serve(self) -> Serving {
        let running = self.args(["--web.listen-address", "127.0.0.1:0"]).start();
        let addr = running.log.listening_address().await;
        Serving { running, addr }
    }
}

/// A program that ran to its end.
#[derive(Debug)]
pub struct Exited {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Exited {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both streams, for the assertions' messages.
    pub fn text(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// A started process, its stderr read into [`Running::log`]; killed when dropped, so a failed
/// assertion does not leave it behind.
pub struct Running {
    child: Child,
    pub log: StderrLog,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its piped stdout (started with [`Spawn::start_with_stdout`]).
    pub fn stdout(&mut self) -> std::process::ChildStdout {
        self.child
            .stdout
            .take()
            .expect("the child's stdout is piped")
    }

    /// Sends `signal` (SIGTERM, SIGINT, …).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid().try_into().expect("a pid fits in i32"));
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
    }

    pub fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits for it to end; returns its exit code and everything it wrote to stderr.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let code = self.child.wait().expect("the child's exit status").code();
        (code, self.log.finish())
    }

    /// [`Running::wait`] bounded: fails the test if it has not ended within 30 s.
    pub async fn exited(self) -> (Option<i32>, String) {
        self.log.closed().await;
        self.wait()
    }

    /// SIGKILL, then everything it wrote to stderr.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("killing the child");
        self.wait().1
    }

    /// SIGTERM, then the exit code and everything it wrote to stderr.
    pub fn stop(self) -> (Option<i32>, String) {
        self.sigterm();
        self.wait()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exporter serving on loopback, at the address its `listening` line names.
pub struct Serving {
    running: Running,
    pub addr: SocketAddr,
}

impl Serving {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then a clean exit (code 0) it must make; returns its stderr.
    pub fn stop_cleanly(self) -> String {
        let (code, text) = self.running.stop();
        assert_eq!(code, Some(0), "{text}");
        text
    }

    pub fn into_running(self) -> Running {
        self.running
    }
}

impl std::ops::Deref for Serving {
    type Target = Running;
    fn deref(&self) -> &Running {
        &self.running
    }
}

impl std::ops::DerefMut for Serving {
    fn deref_mut(&mut self) -> &mut Running {
        &mut self.running
    }
}

/// The binary's standard error, read line by line on a thread of its own, so a test can wait
/// for a line (the `listening` line and its address, `shutting down`) while the binary runs.
pub struct StderrLog {
    text: std::sync::Arc<tokio::sync::watch::Sender<String>>,
    /// Set once the pipe closes: the process ended.
    closed: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrLog {
    /// Takes `child`'s piped stderr and starts reading it.
    fn read(child: &mut Child) -> StderrLog {
        use std::io::BufRead;
        let pipe = child.stderr.take().expect("the child's stderr is piped");
        let text = std::sync::Arc::new(tokio::sync::watch::Sender::new(String::new()));
        let closed = std::sync::Arc::new(tokio::sync::watch::Sender::new(false));
        let reader = std::thread::spawn({
            let (text, closed) = (text.clone(), closed.clone());
            move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    text.send_modify(|t| {
                        t.push_str(&line);
                        t.push('\n');
                    });
                }
                closed.send_replace(true);
            }
        });
        StderrLog {
            text,
            closed,
            reader: Some(reader),
        }
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

    /// Waits for the process to close its stderr, as it does when it ends.
    pub async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let waited = closed.wait_for(|closed| *closed);
        if tokio::time::timeout(std::time::Duration::from_secs(30), waited)
            .await
            .is_err()
        {
            panic!("the process did not end within 30 s:\n{}", self.text());
        }
    }

    /// Everything the process wrote, once it has closed its stderr (it ended).
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader");
        }
        self.text()
    }
}

/// The exporter's binary, as users run it, serving on loopback in front of a running stand-in
/// Atlas with the test API key in its environment; killed when dropped.
pub struct Binary {
    pub fake: FakeAtlas,
    serving: Serving,
    _dir: TempDir,
}

impl Binary {
    /// Starts the stand-in, then the binary with `yaml` as its config file, where `BASE_URL`
    /// stands for the stand-in's address; returns once the binary logs its address.
    pub async fn start(fake: FakeAtlas, yaml: &str) -> Binary {
        let base_url = fake.start().await.expect("stand-in Atlas starts");
        let dir = TempDir::new("binary");
        let config = dir.write("exporter.yml", &yaml.replace("BASE_URL", &base_url));
        let serving = Spawn::exporter()
            .config(&config)
            .api_key_env()
            .serve()
            .await;
        Binary {
            fake,
            serving,
            _dir: dir,
        }
    }
}

impl std::ops::Deref for Binary {
    type Target = Serving;
    fn deref(&self) -> &Serving {
        &self.serving
    }
}

/// Log lines written to it, kept as one text: a `tracing` writer for tests that count what an
/// exporter in the test's own process logs, or wait for it to log something.
#[derive(Clone)]
pub struct Captured(std::sync::Arc<tokio::sync::watch::Sender<Vec<u8>>>);

impl Default for Captured {
    fn default() -> Captured {
        Captured(std::sync::Arc::new(tokio::sync::watch::Sender::new(
            Vec::new(),
        )))
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send_modify(|bytes| bytes.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many lines of `bytes` hold every one of `needles`.
fn count_lines_with(bytes: &[u8], needles: &[&str]) -> usize {
    let all = |line: &&str| needles.iter().all(|n| line.contains(n));
    String::from_utf8_lossy(bytes).lines().filter(all).count()
}

impl Captured {
    /// The exporter's log at `level`, in logfmt, captured from this thread (which is every
    /// task's on a `current_thread` runtime) until the guard is dropped.
    pub fn on_this_thread(
        level: atlas_backup_exporter::logging::LogLevel,
    ) -> (Captured, tracing::dispatcher::DefaultGuard) {
        use atlas_backup_exporter::logging::{LogFormat, dispatch};
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let guard = tracing::dispatcher::set_default(&dispatch(level, LogFormat::Logfmt, writer));
        // A test on another thread may be registering a log line's callsite while this
        // subscriber is being registered, and leave it cached as "nobody listens": make
        // tracing ask every subscriber again, this one included.
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }

    /// How many times `needle` was written.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// How many lines hold every one of `needles`.
    pub fn lines_with(&self, needles: &[&str]) -> usize {
        count_lines_with(&self.0.borrow(), needles)
    }

    /// Waits until `n` lines hold every one of `needles`.
    pub async fn wait_for_lines(&self, needles: &[&str], n: usize) {
        let mut written = self.0.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let waited = written.wait_for(|bytes| count_lines_with(bytes, needles) >= n);
        if tokio::time::timeout(std::time::Duration::from_secs(30), waited)
            .await
            .is_err()
        {
            panic!(
                "not {n} lines with {needles:?} after 30 s:\n{}",
                self.text()
            );
        }
    }
}
