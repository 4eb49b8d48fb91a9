//! Guarding the exporter's own endpoint: slow clients, too many scrapes at once, and a web config
//! whose certificates and users change on disk while the binary serves.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atlas_backup_exporter::Options;
use atlas_backup_exporter::config;
use fake_atlas::{FakeAtlas, Fault, Gate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, GROUP, Scrape, Serving, Spawn, TempDir};
use crate::web::{Ca, exporter_yaml, fake_with_a_job, up, write_exporter_config};

/// The exporter in this process, serving on loopback with `options`; its own metrics count the
/// answers. Serving ends with the test's runtime.
async fn serve(fake: &FakeAtlas, options: Options) -> SocketAddr {
    let base_url = fake.start().await.unwrap();
    let config = config::parse(&exporter_yaml(&base_url), "test.yml").unwrap();
    let app = atlas_backup_exporter::build(&config, support::api_key(), options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, std::future::pending()));
    addr
}

fn requests_total(scrape: &Scrape, handler: &str, code: &str) -> Option<f64> {
    scrape.value(
        "atlas_backup_exporter_http_requests_total",
        &[("handler", handler), ("code", code)],
    )
}

// ---------------------------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------------------------

/// A client that sends a request's headers a byte a second and never finishes them. Says that it
/// is connected on `connected`, counts itself in `closed` when the server closes the connection,
/// and returns how long after connecting that was; `None` if it is still open after 30 bytes.
async fn trickle(
    addr: SocketAddr,
    connected: tokio::sync::mpsc::Sender<()>,
    closed: Arc<AtomicUsize>,
) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let headers = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: never-ending-header-value";
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut buffer = [0u8; 1024];
    let mut sent = 0;
    let ended = loop {
        tokio::select! {
            _ = ticks.tick() => {
                if sent == 30 {
                    break None;
                }
                if stream.write_all(&headers[sent..=sent]).await.is_err() {
                    break Some(started.elapsed());
                }
                if sent == 0 {
                    let _ = connected.send(()).await;
                }
                sent += 1;
            }
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break Some(started.elapsed()),
                // Whatever the server says before closing, the connection is what counts.
                Ok(_) => {}
            },
        }
    };
    if ended.is_some() {
        closed.fetch_add(1, Ordering::SeqCst);
    }
    ended
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_slow_clients_are_cut_off_while_scrapes_are_answered() {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let fake = fake_with_a_job();
    let options = Options {
        header_read_timeout: TIMEOUT,
        ..Options::default()
    };
    let addr = serve(&fake, options).await;

    let (connected, mut connections) = tokio::sync::mpsc::channel(100);
    let closed = Arc::new(AtomicUsize::new(0));
    let slow: Vec<_> = (0..100)
        .map(|_| tokio::spawn(trickle(addr, connected.clone(), closed.clone())))
        .collect();
    drop(connected);
    for _ in 0..100 {
        support::within("100 slow connections", connections.recv())
            .await
            .expect("every slow client connects");
    }

    // With all 100 holding their connections, scrapes are answered as usual.
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let response = support::within(
            "a scrape",
            client.get(format!("http://{addr}/metrics")).send(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(up(&response.text().await.unwrap()), Some(1.0));
    }
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "slow clients were closed before the scrapes were answered (a machine too slow for a {TIMEOUT:?} timeout?)"
    );

    for client in slow {
        let lasted = client
            .await
            .unwrap()
            .expect("the slow connection is closed within 30 s");
        assert!(
            lasted >= TIMEOUT,
            "closed after {lasted:?}, before the timeout"
        );
    }
    // They never reached a route: no answer was counted for them, no collection ran for them.
    let scrape = Scrape::parse(
        &client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(requests_total(&scrape, "/metrics", "200"), Some(5.0));
    assert_eq!(
        scrape
            .find("atlas_backup_exporter_http_requests_total", &[])
            .len(),
        1,
        "{}",
        scrape.text
    );
}

// ---------------------------------------------------------------------------------------------------------
// Too many scrapes at once
// ---------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_past_max_requests_get_503_at_once() {
    let fake = fake_with_a_job();
    let options = Options {
        max_requests: 5,
        ..Options::default()
    };
    let addr = serve(&fake, options).await;
    let gate = Gate::new();
    fake.inject(Fault::hold("/backup/exports", &gate));

    let client = reqwest::Client::new();
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..60 {
        let request = client.get(format!("http://{addr}/metrics")).send();
        let answered = answered.clone();
        tokio::spawn(async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            let _ = answered.send((status, response.text().await.unwrap()));
        });
    }
    // /probe is not capped: it is held by the stand-in like the scrapes, not refused.
    let probe = tokio::spawn(
        client
            .get(format!(
                "http://{addr}/probe?group_id={GROUP}&cluster_name=Cluster0"
            ))
            .send(),
    );

    // While the stand-in holds the collection, 55 are refused and 5 wait.
    let mut refused = 0;
    for _ in 0..55 {
        let (status, body) = support::within("55 refused scrapes", answers.recv())
            .await
            .unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("--web.max-requests"), "{body}");
        refused += 1;
    }
    assert_eq!(refused, 55);
    support::within("the collection at the stand-in", gate.arrivals(1)).await;
    assert!(
        answers.try_recv().is_err(),
        "only 55 are answered while held"
    );

    gate.open();
    for _ in 0..5 {
        let (status, body) = support::within("the 5 held scrapes", answers.recv())
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(up(&body), Some(1.0), "{body}");
    }
    let probe = probe.await.unwrap().unwrap();
    assert_eq!(probe.status(), 200);

    let scrape = Scrape::parse(
        &client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(requests_total(&scrape, "/metrics", "503"), Some(55.0));
    assert_eq!(requests_total(&scrape, "/metrics", "200"), Some(5.0));
    assert_eq!(requests_total(&scrape, "/probe", "200"), Some(1.0));
}

#[tokio::test]
async fn answers_are_counted_by_route_and_other_paths_as_other() {
    let fake = fake_with_a_job();
    let addr = serve(&fake, Options::default()).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
    for path in [
        "/nope",
        "/metrics/x",
        "/.env",
        "/-/healthy",
        "/-/healthy",
        "/-/ready",
    ] {
        get(path).await.unwrap();
    }
    let post = client
        .post(format!("http://{addr}/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    let scrape = Scrape::parse(&text);
    assert_eq!(requests_total(&scrape, "other", "404"), Some(3.0));
    assert_eq!(requests_total(&scrape, "/-/healthy", "200"), Some(2.0));
    assert_eq!(requests_total(&scrape, "/-/healthy", "405"), Some(1.0));
    assert_eq!(requests_total(&scrape, "/-/ready", "200"), Some(1.0));
    assert_eq!(requests_total(&scrape, "/metrics", "200"), None);
}

// ---------------------------------------------------------------------------------------------------------
// The web config changing on disk
// ---------------------------------------------------------------------------------------------------------

const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

/// Writes `text` to `name` in `dir` as a tool that renews certificates should: a new file renamed
/// over the old one, so a reader never sees it half-written.
fn replace(dir: &Path, name: &str, text: &str) {
    let new = dir.join(format!(".{name}.new"));
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, dir.join(name)).unwrap();
}

/// The binary with `--web.config.file dir/web.yml`, in front of `fake`.
async fn start(fake: &FakeAtlas, dir: &Path) -> Serving {
    let base_url = fake.start().await.unwrap();
    let config = write_exporter_config(dir, &base_url);
    Spawn::exporter()
        .config(&config)
        .args(["--web.config.file", dir.join("web.yml").to_str().unwrap()])
        .serve()
        .await
}

/// The certificate the exporter at `addr` presents in a new TLS handshake, as DER.
async fn served_certificate(addr: SocketAddr, ca: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio::task::spawn_blocking(move || {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).expect("the handshake completes");
        }
        tls.peer_certificates()
            .expect("the server sent a certificate")[0]
            .to_vec()
    })
    .await
    .unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A directory with a CA and a first server certificate and key for 127.0.0.1, and `web.yml`.
fn tls_dir(name: &str, web: &str) -> (TempDir, Ca, String) {
    let dir = TempDir::new(name);
    let ca = Ca::new("reload CA");
    let (cert, key) = ca.issue("127.0.0.1");
    dir.write("server.pem", &cert);
    dir.write("server.key", &key);
    dir.write("web.yml", web);
    (dir, ca, cert)
}

fn https_client(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.issuer.pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn scrape(client: &reqwest::Client, url: &str) -> Scrape {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    Scrape::parse(&response.text().await.unwrap())
}

const RELOADED: &str = "web config reloaded";
const RELOAD_FAILED: &str = "web config reload failed";
const SUCCESSFUL: &str = "atlas_backup_exporter_web_config_last_reload_successful";
const SUCCESS_TIME: &str = "atlas_backup_exporter_web_config_last_reload_success_timestamp_seconds";

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections() {
    let (dir, ca, first) = tls_dir("endpoint-renew", TLS);
    let fake = fake_with_a_job();
    let binary = start(&fake, dir.path()).await;
    let ca_pem = ca.issuer.pem();
    assert_eq!(served_certificate(binary.addr, &ca_pem).await, der(&first));

    let (renewed, key) = ca.issue("127.0.0.1");
    replace(dir.path(), "server.key", &key);
    replace(dir.path(), "server.pem", &renewed);
    binary.log.nth_line_with(RELOADED, 1).await;
    let served = served_certificate(binary.addr, &ca_pem).await;
    assert_eq!(served, der(&renewed));
    assert_ne!(served, der(&first));

    let client = https_client(&ca);
    let scrape = scrape(&client, &format!("https://{}/metrics", binary.addr)).await;
    assert_eq!(scrape.value(SUCCESSFUL, &[]), Some(1.0));
    assert_eq!(up(&scrape.text), Some(1.0));
    let stderr = binary.stop_cleanly();
    assert!(!stderr.contains(RELOAD_FAILED), "{stderr}");
}

#[tokio::test]
async fn a_broken_pair_leaves_the_old_certificate_in_use() {
    let (dir, ca, first) = tls_dir("endpoint-broken-pair", TLS);
    let fake = fake_with_a_job();
    let binary = start(&fake, dir.path()).await;
    let ca_pem = ca.issuer.pem();
    let client = https_client(&ca);
    let metrics = format!("https://{}/metrics", binary.addr);
    let before = scrape(&client, &metrics).await;
    assert_eq!(before.value(SUCCESSFUL, &[]), Some(1.0));
    let loaded_at = before.value(SUCCESS_TIME, &[]).unwrap();
    assert!(loaded_at > 1.7e9, "{loaded_at}");

    // A new certificate whose key is not the one beside it.
    let (renewed, key) = ca.issue("127.0.0.1");
    replace(dir.path(), "server.pem", &renewed);
    let failed = binary.log.nth_line_with(RELOAD_FAILED, 1).await;
    assert!(
        failed.contains("does not belong to the certificate"),
        "{failed}"
    );
    assert!(failed.contains("server.key"), "{failed}");
    assert_eq!(served_certificate(binary.addr, &ca_pem).await, der(&first));
    let after = scrape(&client, &metrics).await;
    assert_eq!(after.value(SUCCESSFUL, &[]), Some(0.0));
    assert_eq!(after.value(SUCCESS_TIME, &[]), Some(loaded_at));
    assert_eq!(up(&after.text), Some(1.0), "the exporter goes on serving");

    // Its key arrives: the pair is taken.
    replace(dir.path(), "server.key", &key);
    binary.log.nth_line_with(RELOADED, 1).await;
    assert_eq!(
        served_certificate(binary.addr, &ca_pem).await,
        der(&renewed)
    );
    let fixed = scrape(&client, &metrics).await;
    assert_eq!(fixed.value(SUCCESSFUL, &[]), Some(1.0));
    assert!(fixed.value(SUCCESS_TIME, &[]).unwrap() >= loaded_at);
    let stderr = binary.stop_cleanly();
    assert_eq!(
        stderr.matches(RELOAD_FAILED).count(),
        1,
        "logged once:\n{stderr}"
    );
}

fn users(pairs: &[(&str, &str)]) -> String {
    let mut yaml = "basic_auth_users:\n".to_owned();
    for (user, password) in pairs {
        let hash = bcrypt::hash(password, 4).unwrap();
        yaml.push_str(&format!("  {user}: {hash}\n"));
    }
    yaml
}

#[tokio::test]
async fn users_added_changed_and_removed_on_disk_take_effect() {
    let dir = TempDir::new("endpoint-users");
    dir.write(
        "web.yml",
        &users(&[("alice", "wonderland"), ("bob", "builder")]),
    );
    let fake = fake_with_a_job();
    let binary = start(&fake, dir.path()).await;
    let client = reqwest::Client::new();
    // The landing page: the health endpoints answer without credentials.
    let landing = format!("http://{}/", binary.addr);
    let status = |user: &'static str, password: &'static str| {
        let request = client.get(&landing).basic_auth(user, Some(password)).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    // Both pass, and are remembered.
    assert_eq!(status("alice", "wonderland").await, 200);
    assert_eq!(status("bob", "builder").await, 200);
    assert_eq!(status("carol", "singer").await, 401);

    // bob removed, alice's password changed, carol added.
    replace(
        dir.path(),
        "web.yml",
        &users(&[("alice", "looking-glass"), ("carol", "singer")]),
    );
    binary.log.nth_line_with(RELOADED, 1).await;
    assert_eq!(status("bob", "builder").await, 401);
    assert_eq!(status("alice", "wonderland").await, 401);
    assert_eq!(status("alice", "looking-glass").await, 200);
    assert_eq!(status("carol", "singer").await, 200);

    // A file that no longer parses: the users above stay in force.
    replace(
        dir.path(),
        "web.yml",
        "basic_auth_users: [not, a, mapping\n",
    );
    let failed = binary.log.nth_line_with(RELOAD_FAILED, 1).await;
    assert!(failed.contains("web.yml"), "{failed}");
    assert_eq!(status("alice", "looking-glass").await, 200);
    assert_eq!(status("bob", "builder").await, 401);
    let response = client
        .get(format!("http://{}/metrics", binary.addr))
        .basic_auth("carol", Some("singer"))
        .send()
        .await
        .unwrap();
    let scrape = Scrape::parse(&response.text().await.unwrap());
    assert_eq!(scrape.value(SUCCESSFUL, &[]), Some(0.0));
    assert_eq!(
        requests_total(&scrape, "/", "401"),
        Some(4.0),
        "{}",
        scrape.text
    );
    binary.stop_cleanly();
}

#[tokio::test]
async fn turning_tls_on_needs_a_restart() {
    let dir = TempDir::new("endpoint-tls-on");
    dir.write("web.yml", "");
    let ca = Ca::new("later CA");
    let (cert, key) = ca.issue("127.0.0.1");
    dir.write("server.pem", &cert);
    dir.write("server.key", &key);
    let fake = fake_with_a_job();
    let binary = start(&fake, dir.path()).await;
    replace(dir.path(), "web.yml", TLS);
    let failed = binary.log.nth_line_with(RELOAD_FAILED, 1).await;
    assert!(failed.contains("needs a restart"), "{failed}");
    let plain = reqwest::get(format!("http://{}/metrics", binary.addr))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200, "still plain HTTP");
    binary.stop_cleanly();
}
