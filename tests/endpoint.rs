//! Guarding the exporter's own endpoint: slow clients and too many scrapes at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atlas_backup_exporter::config;
use atlas_backup_exporter::server::{self, ServeOptions, WebOptions};
use fake_atlas::{FakeAtlas, Fault, Gate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, GROUP, Scrape};
use crate::web::{exporter_yaml, fake_with_a_job, up};

/// The exporter in this process, serving on loopback with `web` and the bounds of `options`;
/// its own metrics count the answers. Serving ends with the test's runtime.
async fn serve(fake: &FakeAtlas, web: WebOptions, options: ServeOptions) -> SocketAddr {
    let base_url = fake.start().await.unwrap();
    let config = config::parse(&exporter_yaml(&base_url), "test.yml").unwrap();
    let app = atlas_backup_exporter::build_with(&config, support::api_key(), &web).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServeOptions {
        metrics: Some(app.exporter.metrics().clone()),
        ..options
    };
    tokio::spawn(server::serve_with(
        listener,
        app.router,
        options,
        std::future::pending(),
    ));
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
    let options = ServeOptions {
        header_read_timeout: TIMEOUT,
        ..ServeOptions::default()
    };
    let addr = serve(&fake, WebOptions::default(), options).await;

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
    let web = WebOptions {
        max_requests: 5,
        ..WebOptions::default()
    };
    let addr = serve(&fake, web, ServeOptions::default()).await;
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
    assert!(
        gate.arrived() >= 1,
        "the collection is held at the stand-in"
    );
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
    let addr = serve(&fake, WebOptions::default(), ServeOptions::default()).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{addr}{path}")).send();
    for path in ["/nope", "/metrics/x", "/.env", "/-/healthy", "/-/healthy"] {
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
    assert_eq!(requests_total(&scrape, "/metrics", "200"), None);
}
