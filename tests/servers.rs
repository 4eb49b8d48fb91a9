//! Real Prometheus and Alertmanager servers for the end-to-end tests: each on a loopback port with
//! its data in a temporary directory, asked through its HTTP API, and killed when dropped.

pub use crate::support::TempDir;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Running, Spawn};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use tokio::net::{TcpListener, TcpStream};

/// The bound on every wait: generous for two shared cores, short enough to fail a hung test.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 250 ms until it returns `Ok`, and fails the test with `what` and the last
/// complaint once [`WAIT`] has passed.
///
/// The one poll of the suite, on purpose: what it waits for (a series Prometheus scraped, a
/// rule it evaluated, an alert Alertmanager holds) is state inside another program, which says
/// nothing when it changes; its HTTP API is the only way to see it.
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() > WAIT => {
                panic!("gave up after {WAIT:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The path of a file of this repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A shipped YAML file, parsed.
pub fn repo_yaml(relative: &str) -> Yaml {
    let text = std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"))
}

/// A YAML mapping key.
pub fn key(name: &str) -> Yaml {
    Yaml::String(name.to_owned())
}

/// Sets `map[name] = value`; `map` must be a mapping.
pub fn set(map: &mut Yaml, name: &str, value: impl Into<Yaml>) {
    let Some(mapping) = map.as_mapping_mut() else {
        panic!("setting {name} in a non-mapping {map:?}")
    };
    mapping.insert(key(name), value.into());
}

/// What a command-line tool said.
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Both streams, for messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `program` to completion off the async workers (so the servers in this process keep
/// answering), feeding it `stdin`.
pub async fn run_tool(program: &Path, args: &[&str], stdin: Option<Vec<u8>>) -> Ran {
    let mut spawn = Spawn::program(program).args(args);
    if let Some(input) = stdin {
        spawn = spawn.stdin(input);
    }
    let output = spawn.output_async().await;
    Ran {
        success: output.success(),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// The address in the `msg="Listening on" address=HOST:PORT` line that Prometheus and
/// Alertmanager (the exporter toolkit) log once their listener is bound.
fn listening_address(line: &str) -> Option<String> {
    line.split(' ')
        .find_map(|f| f.strip_prefix("address="))
        .map(|address| address.trim_matches('"').to_owned())
}

/// A running Prometheus or Alertmanager; killed when dropped.
pub struct Server {
    name: &'static str,
    running: Running,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    http: reqwest::Client,
}

impl Server {
    /// Prometheus with `config`, its TSDB in `dir`.
    pub async fn prometheus(binary: &Path, config: &Path, dir: &Path) -> Server {
        let data = dir.join("prometheus-data");
        let args = [
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data.display()),
            "--web.listen-address=127.0.0.1:0".into(),
            "--log.level=info".into(),
        ];
        // Logged once the TSDB is open and the config loaded, when /-/ready turns 200.
        let ready = r#"msg="Server is ready to receive web requests.""#;
        Server::spawn("prometheus", Spawn::program(binary).args(args), dir, ready).await
    }

    /// Alertmanager with `config`, its state in `dir`, without its cluster port.
    pub async fn alertmanager(binary: &Path, config: &Path, dir: &Path) -> Server {
        let data = dir.join("alertmanager-data");
        let args = [
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", data.display()),
            "--web.listen-address=127.0.0.1:0".into(),
            // An empty address turns off high-availability gossip, which would bind 0.0.0.0:9094.
            "--cluster.listen-address=".into(),
        ];
        // Its config is loaded before it listens, and its /-/ready answers 200 from then on.
        let ready = r#"msg="Listening on""#;
        Server::spawn(
            "alertmanager",
            Spawn::program(binary).args(args),
            dir,
            ready,
        )
        .await
    }

    /// Starts the server on a port it chooses itself (`127.0.0.1:0`), reads that port from its
    /// `Listening on` line, and waits for the line `ready` that says it is ready; then checks
    /// that its `/-/ready` agrees.
    async fn spawn(name: &'static str, spawn: Spawn, dir: &Path, ready: &str) -> Server {
        let running = spawn.current_dir(dir).start();
        let listening = running.log.line_with(r#"msg="Listening on""#).await;
        let address = listening_address(&listening)
            .unwrap_or_else(|| panic!("{name}: no address in {listening:?}"));
        running.log.line_with(ready).await;
        let server = Server {
            name,
            running,
            url: format!("http://{address}"),
            http: reqwest::Client::new(),
        };
        let answer = server
            .http
            .get(format!("{}/-/ready", server.url))
            .send()
            .await;
        assert!(
            answer.is_ok_and(|r| r.status().is_success()),
            "{name} said it was ready, but /-/ready does not agree:\n{}",
            server.log()
        );
        server
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.running.log.text()
    }

    /// `GET path?params` as JSON, or why not.
    pub async fn get_json(&self, path: &str, params: &[(&str, &str)]) -> Result<Json, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), params)
            .map_err(|e| format!("bad URL for {path}: {e}"))?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("{} {url}: {e}", self.name))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{} {url}: {e}", self.name))?;
        if !status.is_success() {
            return Err(format!("{} {url}: HTTP {status}: {text}", self.name));
        }
        serde_json::from_str(&text).map_err(|e| format!("{} {url}: {e}: {text}", self.name))
    }

    /// `POST path` with a JSON body, failing the test unless it succeeds.
    pub async fn post_json(&self, path: &str, body: &Json) {
        let url = format!("{}{path}", self.url);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} POST {url}: {e}", self.name));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "{} POST {url}: HTTP {status}: {text}",
            self.name
        );
    }

    /// The `data` of a Prometheus API answer (`/api/v1/...`), failing the test on an error.
    pub async fn api(&self, path: &str, params: &[(&str, &str)]) -> Json {
        let answer = self
            .get_json(path, params)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{} log:\n{}", self.name, self.log()));
        assert_eq!(answer["status"], "success", "{path} {params:?}: {answer}");
        answer["data"].clone()
    }

    /// An instant query's series (`data.result` of a vector).
    pub async fn query(&self, expr: &str) -> Vec<Json> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await;
        assert_eq!(data["resultType"], "vector", "{expr}: {data}");
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

/// A Kubernetes Service in miniature: one loopback address that hands each new connection to the
/// next of several backends in turn.
pub struct RoundRobin {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    pub async fn start(backends: Vec<SocketAddr>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("the bound address");
        let task = tokio::spawn(async move {
            for next in (0..backends.len()).cycle() {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let backend = backends[next];
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        RoundRobin { addr, task }
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of a label of a series from the query API.
pub fn label<'a>(series: &'a Json, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or_default()
}
