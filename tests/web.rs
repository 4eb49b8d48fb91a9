//! The exporter's own endpoint: TLS, client certificates and basic authentication from the web
//! config, the bounds on requests, and shutting down with scrapes in flight.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas_backup_exporter::config;
use atlas_backup_exporter::web::{self, WebConfig};
use atlas_backup_exporter::{App, Options};
use axum::Router;
use axum::routing::get;
use fake_atlas::{FakeAtlas, Fault, Gate, job};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{self, Exited, GROUP, Scrape, Spawn, TempDir};

/// One cluster with one successful export job.
pub(crate) fn fake_with_a_job() -> FakeAtlas {
    let fake = support::fake();
    fake.add_cluster(GROUP, "Cluster0");
    fake.put_job(GROUP, "Cluster0", job("6a0000000000000000000001").build());
    fake
}

pub(crate) fn exporter_yaml(base_url: &str) -> String {
    format!(
        "atlas:\n  base_url: {base_url}\ntargets:\n  - group_id: {GROUP}\n    clusters: [Cluster0]\n\
         export_jobs:\n  max_age: 0\n"
    )
}

pub(crate) fn up(text: &str) -> Option<f64> {
    Scrape::parse(text).value("atlas_backup_export_up", &[("cluster_name", "Cluster0")])
}

// ---------------------------------------------------------------------------------------------------------
// Certificates made for the test
// ---------------------------------------------------------------------------------------------------------

/// A CA with a server certificate for 127.0.0.1 and a client certificate, another CA with a client
/// certificate of its own, all as PEM files in a directory of the test's own.
struct Pki {
    dir: PathBuf,
    _tmp: TempDir,
    ca: String,
    client: String,
    stranger: String,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let tmp = TempDir::new(name);
        let dir = tmp.path().to_owned();
        let ca = Ca::new("test CA");
        let (server_cert, server_key) = ca.issue("127.0.0.1");
        let (client_cert, client_key) = ca.issue("prometheus");
        let other = Ca::new("another CA");
        let (stranger_cert, stranger_key) = other.issue("prometheus");
        std::fs::write(dir.join("ca.pem"), ca.issuer.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), &server_cert).unwrap();
        std::fs::write(dir.join("server.key"), &server_key).unwrap();
        Pki {
            dir,
            _tmp: tmp,
            ca: ca.issuer.pem(),
            client: format!("{client_cert}{client_key}"),
            stranger: format!("{stranger_cert}{stranger_key}"),
        }
    }

    /// Loads `yaml` as the web config, with paths relative to the certificates.
    fn web(&self, yaml: &str) -> Arc<WebConfig> {
        let path = self.dir.join("web.yml");
        std::fs::write(&path, yaml).unwrap();
        Arc::new(web::config::load(&path).unwrap_or_else(|e| panic!("{e}")))
    }

    /// An HTTPS client that trusts only the test CA, presenting `identity` if given.
    fn client(&self, identity: Option<&str>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.as_bytes()).unwrap()])
            .timeout(Duration::from_secs(10));
        if let Some(identity) = identity {
            builder = builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}

pub(crate) struct Ca {
    pub(crate) issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        Ca { issuer }
    }

    /// A certificate and key (PEM) for `name`, signed by this CA.
    pub(crate) fn issue(&self, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The TLS alert that ended a refused request, as reqwest's error shows it.
fn refusal(result: &reqwest::Result<reqwest::Response>) -> String {
    match result {
        Ok(response) => panic!("answered {}", response.status()),
        Err(error) => format!("{error:?}"),
    }
}

const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

// ---------------------------------------------------------------------------------------------------------
// The exporter in this process, served with chosen options
// ---------------------------------------------------------------------------------------------------------

/// The exporter served on loopback until `stop`.
struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn app(app: App) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        Served {
            addr,
            stop: Some(stop),
            done,
        }
    }

    /// The exporter, in front of a running stand-in Atlas.
    async fn exporter(fake: &FakeAtlas, options: Options) -> Served {
        let base_url = fake.start().await.unwrap();
        let config = config::parse(&exporter_yaml(&base_url), "test.yml").unwrap();
        let app = atlas_backup_exporter::build(&config, support::api_key(), options).unwrap();
        Served::app(app).await
    }

    /// `router` in place of the exporter's routes, served as the exporter is (TLS, users, bounds,
    /// draining); the stand-in Atlas behind it is never called.
    async fn start(router: Router, options: Options) -> Served {
        Served::routes(router, options, "30s").await
    }

    /// [`Served::start`] where a request without Prometheus's timeout header gets
    /// `collection_timeout`.
    async fn routes(router: Router, options: Options, collection_timeout: &str) -> Served {
        let base_url = support::fake().start().await.unwrap();
        let yaml = format!(
            "{}collection:\n  timeout: {collection_timeout}\n",
            exporter_yaml(&base_url)
        );
        let config = config::parse(&yaml, "test.yml").unwrap();
        let mut app = atlas_backup_exporter::build(&config, support::api_key(), options).unwrap();
        app.router = router;
        Served::app(app).await
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Starts shutdown and waits for `serve` to return.
    async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.done)
            .await
            .expect("serve returns")
            .expect("serve does not panic")
            .expect("serve ends without an error");
        started.elapsed()
    }
}

fn with_web(web: Arc<WebConfig>) -> Options {
    Options {
        web_config: Some(web),
        ..Options::default()
    }
}

/// Writes `request` on a fresh connection and reads until the server closes it or 5 s pass.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    // The server may close before taking everything: what it answered is what counts.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

// ---------------------------------------------------------------------------------------------------------
// TLS and client certificates
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_scrape_over_tls_answers_and_plain_http_does_not() {
    let pki = Pki::new("web-tls");
    let fake = fake_with_a_job();
    let served = Served::exporter(&fake, with_web(pki.web(TLS))).await;

    let response = pki
        .client(None)
        .get(served.url("https", "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(up(&response.text().await.unwrap()), Some(1.0));

    // A client that does not trust the test CA refuses the server.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(served.url("https", "/metrics"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP on the TLS port gets no answer.
    let (answer, _) = raw_exchange(served.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!answer.contains("200 OK"), "{answer}");
    served.stop().await;
}

#[tokio::test]
async fn min_version_tls13_refuses_a_tls12_client() {
    let pki = Pki::new("web-tls13");
    let served = Served::start(
        Router::new().route("/", get(|| async { "hello" })),
        with_web(pki.web(&format!("{TLS}  min_version: TLS13\n"))),
    )
    .await;
    let url = served.url("https", "/");
    let tls12_only = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap()])
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let refused = tls12_only.get(&url).send().await;
    assert!(refusal(&refused).contains("ProtocolVersion"), "{refused:?}");
    let response = pki.client(None).get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    served.stop().await;
}

#[tokio::test]
async fn require_and_verify_client_cert_lets_in_only_clients_the_ca_signed() {
    let pki = Pki::new("web-mtls");
    let fake = fake_with_a_job();
    let web = pki.web(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n"
    ));
    let served = Served::exporter(&fake, with_web(web)).await;
    let url = served.url("https", "/metrics");

    let response = pki
        .client(Some(&pki.client))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(up(&response.text().await.unwrap()), Some(1.0));

    let without = pki.client(None).get(&url).send().await;
    assert!(
        refusal(&without).contains("CertificateRequired"),
        "{without:?}"
    );
    let stranger = pki.client(Some(&pki.stranger)).get(&url).send().await;
    assert!(refusal(&stranger).contains("UnknownCA"), "{stranger:?}");
    served.stop().await;
}

#[tokio::test]
async fn verify_client_cert_if_given_checks_only_certificates_that_come() {
    let pki = Pki::new("web-mtls-optional");
    let web = pki.web(&format!(
        "{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"
    ));
    let served = Served::start(
        Router::new().route("/", get(|| async { "hello" })),
        with_web(web),
    )
    .await;
    let url = served.url("https", "/");
    for identity in [None, Some(&pki.client)] {
        let response = pki
            .client(identity.map(String::as_str))
            .get(&url)
            .send()
            .await;
        assert_eq!(response.unwrap().status(), 200);
    }
    let stranger = pki.client(Some(&pki.stranger)).get(&url).send().await;
    assert!(refusal(&stranger).contains("UnknownCA"), "{stranger:?}");
    served.stop().await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    let pki = Pki::new("web-tls-stall");
    let options = Options {
        header_read_timeout: Duration::from_millis(300),
        ..with_web(pki.web(TLS))
    };
    let served = Served::start(Router::new(), options).await;
    let addr = served.addr;
    // Connects and never says hello.
    let (answer, elapsed) = tokio::task::spawn_blocking(move || raw_exchange(addr, b""))
        .await
        .unwrap();
    assert_eq!(answer, "");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Basic authentication
// ---------------------------------------------------------------------------------------------------------

fn users_yaml() -> String {
    // Cost 4 keeps the test fast; the format is what htpasswd -B writes.
    let alice = bcrypt::hash("wonderland", 4).unwrap();
    let bob = bcrypt::hash("builder", 4).unwrap();
    format!("basic_auth_users:\n  alice: {alice}\n  bob: '{bob}'\n")
}

#[tokio::test]
async fn basic_auth_lets_in_the_right_password_only() {
    let pki = Pki::new("web-auth");
    let fake = fake_with_a_job();
    let web = pki.web(&format!("{TLS}{}", users_yaml()));
    let users = web.users().unwrap().clone();
    let served = Served::exporter(&fake, with_web(web)).await;
    let client = pki.client(None);
    let metrics = served.url("https", "/metrics");

    let response = client
        .get(&metrics)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(up(&response.text().await.unwrap()), Some(1.0));

    let challenge = "Basic realm=\"atlas-backup-exporter\"";
    for (user, password) in [
        (Some("alice"), Some("Wonderland")),
        (Some("alice"), None),
        (Some("bob"), Some("wonderland")),
        (Some("mallory"), Some("wonderland")),
        (None, None),
    ] {
        let mut request = client.get(&metrics);
        if let Some(user) = user {
            request = request.basic_auth(user, password);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{user:?} {password:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            challenge,
            "{user:?} {password:?}"
        );
        assert!(!response.text().await.unwrap().contains("atlas_backup"));
    }
    // Everything else, unknown paths and look-alikes of the health endpoints included, is behind
    // the same door.
    for path in [
        "/",
        "/sd",
        "/probe?group_id=5f1a2b3c4d5e6f7a8b9c0d1e&cluster_name=Cluster0",
        "/nope",
        "/-/healthy/",
        "/-/ready/x",
        "/-/",
    ] {
        let response = client.get(served.url("https", path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(response.headers()["www-authenticate"], challenge, "{path}");
    }
    // The health endpoints answer a probe without credentials, with one word and nothing else;
    // a wrong password does not matter to them either.
    for (path, word) in [("/-/healthy", "Healthy\n"), ("/-/ready", "Ready\n")] {
        for credentials in [
            None,
            Some(("mallory", "wonderland")),
            Some(("bob", "builder")),
        ] {
            let mut request = client.get(served.url("https", path));
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password));
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} {credentials:?}");
            assert!(response.headers().get("www-authenticate").is_none());
            assert_eq!(response.text().await.unwrap(), word, "{path}");
        }
    }

    // Scrapes with the same credentials pay for bcrypt once.
    let runs = users.bcrypt_runs();
    for _ in 0..3 {
        let response = client
            .get(&metrics)
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(users.bcrypt_runs(), runs);
    served.stop().await;
}

#[tokio::test]
async fn basic_auth_works_without_tls_too() {
    let pki = Pki::new("web-auth-plain");
    let web = pki.web(&users_yaml());
    assert!(web.tls().is_none());
    let served = Served::start(
        Router::new().route("/", get(|| async { "hello" })),
        with_web(web),
    )
    .await;
    let client = reqwest::Client::new();
    let url = served.url("http", "/");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    let response = client
        .get(&url)
        .basic_auth("bob", Some("builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_over_mtls_with_basic_auth() {
    let Some(prometheus) = crate::tools::tool("prometheus") else {
        return;
    };
    let pki = Pki::new("web-prometheus");
    let fake = fake_with_a_job();
    let web = pki.web(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n{}",
        users_yaml()
    ));
    let served = Served::exporter(&fake, with_web(web)).await;
    // Go reads the certificate and the key from the same file as well as from two.
    std::fs::write(pki.dir.join("client.pem"), &pki.client).unwrap();
    let job = |name: &str, auth: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: ca.pem\n      \
             cert_file: client.pem\n      key_file: client.pem\n{auth}    static_configs:\n      \
             - targets: ['{}']\n",
            served.addr
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job(
            "with-password",
            "    basic_auth:\n      username: alice\n      password: wonderland\n"
        ),
        job("without-password", ""),
    );
    let config_path = pki.dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let server = crate::servers::Server::prometheus(&prometheus, &config_path, &pki.dir).await;

    crate::servers::wait_until("both jobs scraped over TLS", || async {
        let targets = server.api("/api/v1/targets", &[]).await;
        let active = targets["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let health = |job: &str| {
            active
                .iter()
                .find(|t| t["labels"]["job"] == job)
                .map(|t| (t["health"].clone(), t["lastError"].clone()))
        };
        match (health("with-password"), health("without-password")) {
            (Some((up, _)), Some((down, error)))
                if up == "up"
                    && down == "down"
                    && error.as_str().is_some_and(|e| e.contains("401")) =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let series = server
        .query("atlas_backup_export_up{job=\"with-password\",cluster_name=\"Cluster0\"}")
        .await;
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["value"][1], "1", "{series:?}");
    drop(server);
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Bounds on requests
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_methods_get_405_and_unknown_paths_404() {
    let fake = fake_with_a_job();
    let served = Served::exporter(&fake, Options::default()).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/-/healthy", "/-/ready", "/"] {
        let response = client.post(served.url("http", path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "POST {path}");
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains("GET"), "{allow}");
    }
    let response = client
        .delete(served.url("http", "/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = client
        .get(served.url("http", "/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    served.stop().await;
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let fake = fake_with_a_job();
    let served = Served::exporter(&fake, Options::default()).await;
    let client = reqwest::Client::new();
    let body = vec![b'x'; web::MAX_REQUEST_BODY + 1];
    for path in ["/metrics", "/nope"] {
        let response = client
            .post(served.url("http", path))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "POST {path}");
    }
    // A body within the bound on a GET is no reason to refuse.
    let response = client
        .get(served.url("http", "/metrics"))
        .body(vec![b'x'; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Headers beyond the bound.
    let addr = served.addr;
    let (answer, _) = tokio::task::spawn_blocking(move || {
        let padding = "a".repeat(web::MAX_REQUEST_HEAD);
        raw_exchange(
            addr,
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n").as_bytes(),
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    served.stop().await;
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let options = Options {
        header_read_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let served = Served::start(Router::new().route("/", get(|| async { "hello" })), options).await;
    let addr = served.addr;
    let (answer, elapsed) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = Instant::now();
        // A request line and one header, then a byte now and then, never the blank line.
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        let mut answer = Vec::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            if stream.write_all(b"X").is_err() {
                break;
            }
        }
        let _ = stream.read_to_end(&mut answer);
        (
            String::from_utf8_lossy(&answer).into_owned(),
            started.elapsed(),
        )
    })
    .await
    .unwrap();
    assert!(!answer.contains("hello"), "{answer}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    served.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let fake = fake_with_a_job();
    let served = Served::exporter(&fake, Options::default()).await;
    let addr = served.addr;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answers = String::new();
        for (n, close) in [(1, ""), (2, "Connection: close\r\n")] {
            stream
                .write_all(format!("GET /-/healthy HTTP/1.1\r\nHost: x\r\n{close}\r\n").as_bytes())
                .unwrap();
            let mut buffer = [0u8; 4096];
            while answers.matches("Healthy\n").count() < n {
                let read = stream.read(&mut buffer).unwrap();
                assert!(read > 0, "closed after {answers}");
                answers.push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        }
        // `Connection: close` is honoured: nothing more, then the end.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        answers
    })
    .await
    .unwrap();
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert_eq!(answer.matches("Healthy").count(), 2, "{answer}");
    served.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_read_timeout() {
    let options = Options {
        header_read_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let served = Served::start(Router::new().route("/", get(|| async { "hello" })), options).await;
    let addr = served.addr;
    let (silent, idle) = tokio::task::spawn_blocking(move || {
        // A connection that never sends a byte.
        let silent = raw_exchange(addr, b"");
        // A keep-alive connection left idle after one answer.
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let mut buffer = [0u8; 4096];
        while !answer.contains("hello") {
            let read = stream.read(&mut buffer).unwrap();
            assert!(read > 0, "closed after {answer}");
            answer.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
        let idle_since = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (silent, (answer, rest, idle_since.elapsed()))
    })
    .await
    .unwrap();
    assert_eq!(silent.0, "");
    assert!(silent.1 < Duration::from_secs(3), "{:?}", silent.1);
    let (answer, rest, elapsed) = idle;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    served.stop().await;
}

#[tokio::test]
async fn a_request_that_outlives_its_deadline_gets_503() {
    let router = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        }),
    );
    let options = Options {
        request_timeout_margin: Duration::from_millis(100),
        ..Options::default()
    };
    let served = Served::routes(router, options, "200ms").await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let response = client
        .get(served.url("http", "/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        response.text().await.unwrap(),
        "the request took longer than 300ms\n"
    );
    // Prometheus's timeout header sets the deadline when it comes.
    let response = client
        .get(served.url("http", "/slow"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.unwrap(),
        "the request took longer than 600ms\n"
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------------------
// Shutting down
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_drains_not_ready_then_refuses_new_connections() {
    let fake = fake_with_a_job();
    let served = Served::exporter(&fake, Options::default()).await;
    let client = reqwest::Client::new();
    let addr = served.addr;
    let get = |path: &str| {
        let request = client.get(format!("http://{addr}{path}")).send();
        async move {
            let response = request.await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Ready once serving; Atlas has not been called yet.
    assert_eq!(get("/-/ready").await, (200, "Ready\n".to_owned()));
    assert_eq!(fake.requests().total, 0, "readiness does not ask Atlas");

    // The scrape stays in flight until the gate opens.
    let gate = Gate::new();
    fake.inject(Fault::hold("/backup/exports", &gate));
    let url = served.url("http", "/metrics");
    let scrape = tokio::spawn(async move {
        let response = reqwest::get(url).await.unwrap();
        (response.status(), response.text().await.unwrap())
    });
    support::within("the scrape's listing at the stand-in", gate.arrivals(1)).await;
    // Atlas not answering does not make the exporter unready.
    assert_eq!(get("/-/ready").await.0, 200);
    let stopping = tokio::spawn(served.stop());

    // Draining: readiness turns 503 as soon as the server has taken the signal (each try is a
    // request answered while the listener is still open), liveness stays 200, and a new scrape
    // is refused while the one in flight runs on.
    let ready = support::within("/-/ready answering 503", async {
        loop {
            let answer = get("/-/ready").await;
            if answer.0 != 200 {
                break answer;
            }
        }
    })
    .await;
    assert_eq!(ready, (503, "Shutting down\n".to_owned()));
    assert_eq!(get("/-/healthy").await, (200, "Healthy\n".to_owned()));
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("shutting down"), "{body}");
    assert!(!scrape.is_finished(), "the scrape should still be running");

    gate.open();
    let (status, body) = scrape.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(up(&body), Some(1.0), "{body}");
    stopping.await.unwrap();
    // Drained and stopped: the listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_waits_no_longer_than_its_grace_period() {
    // The handler says when the request has reached it, then never answers.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let arrived = arrived.clone();
        move || async move {
            arrived.notify_one();
            std::future::pending::<&'static str>().await
        }
    };
    let router = Router::new().route("/forever", get(handler));
    let options = Options {
        shutdown_grace: Duration::from_millis(300),
        ..Options::default()
    };
    let served = Served::start(router, options).await;
    let request = tokio::spawn(reqwest::get(served.url("http", "/forever")));
    support::within("the request at its handler", arrived.notified()).await;
    let took = served.stop().await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The request in flight is dropped with its connection: an error, not an answer.
    assert!(request.await.unwrap().is_err());
}

#[test]
fn the_shipped_example_web_config_loads() {
    let pki = Pki::new("web-example");
    // The example's names; server.key is already there.
    for (from, to) in [("server.pem", "server.crt"), ("ca.pem", "clients-ca.crt")] {
        std::fs::copy(pki.dir.join(from), pki.dir.join(to)).unwrap();
    }
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/web-config.yml");
    let path = pki.dir.join("web-config.yml");
    std::fs::copy(example, &path).unwrap();
    let web = web::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(web.tls().is_some());
    assert_eq!(web.users().map(|users| users.len()), Some(1));
    assert!(
        web.describe().contains("client certificates required"),
        "{}",
        web.describe()
    );
}

// ---------------------------------------------------------------------------------------------------------
// The binary with --web.config.file
// ---------------------------------------------------------------------------------------------------------

fn run(args: &[&str]) -> Exited {
    Spawn::exporter().args(args).output()
}

/// An exporter config with its own credential, for a stand-in at `base_url`.
pub(crate) fn write_exporter_config(dir: &Path, base_url: &str) -> PathBuf {
    let path = dir.join("exporter.yml");
    let yaml = exporter_yaml(base_url).replace(
        "atlas:\n",
        &format!(
            "atlas:\n  auth:\n    api_key:\n      public_key: {}\n      private_key: {}\n",
            support::PUBLIC_KEY,
            support::PRIVATE_KEY
        ),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn config_check_validates_the_web_config_file() {
    let pki = Pki::new("web-check");
    let config = write_exporter_config(&pki.dir, "http://127.0.0.1:9");
    let config = config.to_str().unwrap();
    let web = pki.dir.join("web.yml");
    std::fs::write(&web, format!("{TLS}{}", users_yaml())).unwrap();
    let web = web.to_str().unwrap();

    let output = run(&[
        "--config.check",
        "--config.file",
        config,
        "--web.config.file",
        web,
    ]);
    let stdout = &output.stdout;
    assert!(output.success(), "{stdout}{}", output.stderr);
    assert!(stdout.contains(&format!("{web}: OK")), "{stdout}");
    assert!(stdout.contains("TLS with"), "{stdout}");
    assert!(stdout.contains("basic authentication: 2 users"), "{stdout}");

    std::fs::write(web, format!("{TLS}  min_version: TLS10\n")).unwrap();
    for check in [true, false] {
        let mut args = vec!["--config.file", config, "--web.config.file", web];
        if check {
            args.push("--config.check");
        } else {
            args.extend(["--web.listen-address", "127.0.0.1:0"]);
        }
        let output = run(&args);
        assert_eq!(output.code, Some(1), "--config.check {check}");
        let stderr = &output.stderr;
        assert!(
            stderr.contains(&format!(
                "{web}: line 4: tls_server_config.min_version: TLS10 is not supported"
            )),
            "{stderr}"
        );
    }

    std::fs::write(
        web,
        format!("{TLS}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
    )
    .unwrap();
    let output = run(&[
        "--config.check",
        "--config.file",
        config,
        "--web.config.file",
        web,
    ]);
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    assert!(
        stderr.contains(&format!(
            "{web}: line 4: tls_server_config: cipher_suites is not supported"
        )),
        "{stderr}"
    );

    let output = run(&[
        "--config.check",
        "--config.file",
        config,
        "--web.config.file",
        "/nonexistent/web.yml",
    ]);
    assert_eq!(output.code, Some(1));
    assert!(output.stderr.contains("/nonexistent/web.yml"));
}

#[test]
fn the_binary_serves_tls_with_basic_auth_and_finishes_a_scrape_in_flight_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pki = Pki::new("web-binary");
    let fake = fake_with_a_job();
    let base_url = runtime.block_on(fake.start()).unwrap();
    let config = write_exporter_config(&pki.dir, &base_url);
    let web = pki.dir.join("web.yml");
    std::fs::write(&web, format!("{TLS}{}", users_yaml())).unwrap();
    let exporter = runtime.block_on(
        Spawn::exporter()
            .config(&config)
            .args(["--web.config.file", web.to_str().unwrap()])
            .serve(),
    );
    let client = pki.client(None);

    runtime.block_on(async {
        let url = |path: &str| format!("https://{}{path}", exporter.addr);
        let ready = client.get(url("/-/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "ready without credentials");
        let refused = client.get(url("/metrics")).send().await.unwrap();
        assert_eq!(refused.status(), 401);

        // Atlas holds the scrape in flight until the exporter has taken the SIGTERM.
        let gate = Gate::new();
        fake.inject(Fault::hold("/backup/exports", &gate));
        let scrape = tokio::spawn(
            client
                .get(url("/metrics"))
                .basic_auth("alice", Some("wonderland"))
                .send(),
        );
        support::within("the scrape's listing at the stand-in", gate.arrivals(1)).await;
        exporter.sigterm();
        exporter.log.line_with("shutting down").await;
        // Logged once draining has begun: not ready, still alive, both without credentials; a
        // new scrape, even with them, is refused while the one in flight finishes.
        let ready = client.get(url("/-/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503);
        let healthy = client.get(url("/-/healthy")).send().await.unwrap();
        assert_eq!(healthy.status(), 200);
        let late = client
            .get(url("/metrics"))
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .unwrap();
        assert_eq!(late.status(), 503);
        assert!(!scrape.is_finished(), "the scrape in flight is still held");
        gate.open();
        let response = scrape
            .await
            .unwrap()
            .expect("the scrape in flight is answered");
        assert_eq!(response.status(), 200);
        assert_eq!(up(&response.text().await.unwrap()), Some(1.0));
    });

    let (code, stderr) = exporter.into_running().wait();
    assert_eq!(code, Some(0));
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains(support::PRIVATE_KEY), "{stderr}");
}
