//! The exporter's HTTP endpoints: the scrape, a landing page, and a health check; and the server
//! that answers on them, with TLS and basic authentication from the web config and bounds on
//! every request.
//!
//! Connections are axum-server's: its accept loop, its rustls acceptor (with a handshake timeout)
//! and its graceful shutdown with a grace period, over hyper's HTTP/1.1 with the header-read
//! timeout and head size bound set here. What the exporter adds are tower layers on the router
//! (request deadline, body bound, basic authentication), so bounds per route (such as a cap on
//! concurrent scrapes) are layers too. The acceptor reads its certificate through a
//! `RustlsConfig`, whose `reload_from_config` swaps it for the handshakes that follow: renewing
//! the certificate needs no new listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use futures_util::FutureExt as _;
use tokio::net::TcpListener;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::{Config, format_duration};
use crate::exporter::Exporter;
use crate::render::render;
use crate::web_config::WebConfig;

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How the exporter is reached, from the command line.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// `--web.external-url`: the URL Prometheus reaches the exporter at, for `/sd`.
    pub external_url: Option<String>,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            telemetry_path: "/metrics".into(),
            external_url: None,
        }
    }
}

/// Paths the exporter serves itself, which the telemetry path cannot take.
const OWN_PATHS: [&str; 4] = ["/", "/probe", "/sd", "/-/healthy"];

/// Whether `path` can be the telemetry path: absolute, not one of the exporter's other paths,
/// and plain (no `{capture}` or `*wildcard` the router would read as a pattern).
pub fn check_telemetry_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if OWN_PATHS.contains(&path) {
        return Err(format!(
            "is taken: the exporter serves {} itself",
            OWN_PATHS.join(", ")
        ));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~".contains(c);
    if !path.chars().all(plain) || path.contains("//") {
        return Err("may hold only letters, digits, '-', '.', '_', '~' and single '/'".into());
    }
    Ok(())
}

/// What the routes share.
#[derive(Clone)]
struct AppState {
    exporter: Arc<Exporter>,
    landing: Arc<str>,
    external: Option<Arc<ExternalUrl>>,
}

/// The router: the telemetry path (the scrape), `/probe`, `/sd`, `/` and `/-/healthy`; anything
/// else is 404.
pub fn router(exporter: Arc<Exporter>, config: &Config, options: &WebOptions) -> Router {
    let state = AppState {
        exporter,
        landing: landing_page(config, &options.telemetry_path).into(),
        external: options.external_url.as_deref().and_then(|url| {
            ExternalUrl::parse(url)
                .inspect_err(|problem| {
                    tracing::warn!(%problem, "--web.external-url ignored: /sd uses the Host header");
                })
                .ok()
                .map(Arc::new)
        }),
    };
    Router::new()
        .route(&options.telemetry_path, get(metrics))
        .route("/probe", get(probe))
        .route("/sd", get(service_discovery))
        .route("/", get(landing))
        .route("/-/healthy", get(healthy))
        .fallback(not_found)
        .with_state(state)
        // The fastest level: a scrape of 100,000 samples compresses in a third of the CPU time of
        // the default level, for a body about a quarter larger.
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .quality(CompressionLevel::Fastest),
        )
}

/// Serves `router` on `listener` over plain HTTP, with the default [`ServeOptions`], until
/// `shutdown` completes; then lets scrapes in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServeOptions::default(), shutdown).await
}

/// Prometheus's scrape timeout, from the header it sends with every scrape (at most a day).
fn scrape_timeout(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let text = state.exporter.scrape(scrape_timeout(&headers)).await;
    let chunks = [
        Ok::<_, std::convert::Infallible>(text.collection),
        Ok(text.own),
    ];
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

/// `/probe`'s query: one cluster.
#[derive(serde::Deserialize)]
struct ProbeQuery {
    group_id: Option<String>,
    cluster_name: Option<String>,
}

/// One cluster's series and its `up`, nothing process-wide (the blackbox exporter pattern).
async fn probe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ProbeQuery>,
) -> Response {
    let (Some(group_id), Some(cluster_name)) = (query.group_id, query.cluster_name) else {
        return (
            StatusCode::BAD_REQUEST,
            "/probe needs the query parameters group_id and cluster_name\n",
        )
            .into_response();
    };
    let deadline = state.exporter.deadline(scrape_timeout(&headers));
    let collector = state.exporter.collector();
    let Some(collection) = collector
        .collect_cluster(&group_id, &cluster_name, deadline)
        .await
    else {
        let message = format!(
            "cluster {cluster_name:?} of project {group_id:?} is neither configured nor discovered\n"
        );
        return (StatusCode::NOT_FOUND, message).into_response();
    };
    let mut text = String::with_capacity(16 * 1024);
    render(&collection, &mut text);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))],
        text,
    )
        .into_response()
}

/// Prometheus HTTP service discovery: every watched cluster as a `/probe` target.
async fn service_discovery(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let external = match &state.external {
        Some(external) => external.as_ref().clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            ExternalUrl::from_host(host)
        }
    };
    let deadline = state.exporter.deadline(None);
    let clusters = state.exporter.collector().clusters(deadline).await;
    let groups: Vec<serde_json::Value> = clusters
        .into_iter()
        .map(|cluster| {
            let mut labels = serde_json::Map::new();
            labels.insert("__param_group_id".into(), cluster.group_id.clone().into());
            labels.insert(
                "__param_cluster_name".into(),
                cluster.cluster_name.clone().into(),
            );
            labels.insert(
                "__metrics_path__".into(),
                format!("{}/probe", external.path).into(),
            );
            labels.insert("__scheme__".into(), external.scheme.clone().into());
            labels.insert("group_id".into(), cluster.group_id.into());
            labels.insert("cluster_name".into(), cluster.cluster_name.into());
            for (name, value) in cluster.labels.iter() {
                labels.insert(name.clone(), value.clone().into());
            }
            serde_json::json!({"targets": [external.host], "labels": labels})
        })
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::Value::Array(groups).to_string(),
    )
        .into_response()
}

/// The parts of `--web.external-url` that `/sd` hands to Prometheus.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExternalUrl {
    scheme: String,
    host: String,
    /// The path prefix, without a trailing slash ("" at the root).
    path: String,
}

impl ExternalUrl {
    /// Parses `--web.external-url`: `scheme://host[:port][/prefix]`, or without a scheme for
    /// plain HTTP. Only what Prometheus can use is taken: an `http` or `https` URL with a host
    /// and no user, query or fragment.
    fn parse(text: &str) -> Result<ExternalUrl, String> {
        let url = if text.contains("://") {
            url::Url::parse(text)
        } else {
            url::Url::parse(&format!("http://{text}"))
        }
        .map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "the scheme must be http or https, not {}",
                url.scheme()
            ));
        }
        let Some(host) = url.host_str() else {
            return Err("it has no host".into());
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("it may not carry a user or password".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("it may not have a query or a fragment".into());
        }
        Ok(ExternalUrl {
            scheme: url.scheme().to_owned(),
            host: match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            path: url.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The exporter as the request reached it (its `Host` header): plain HTTP at the root.
    fn from_host(host: &str) -> ExternalUrl {
        ExternalUrl {
            scheme: "http".into(),
            host: host.to_owned(),
            path: String::new(),
        }
    }
}

/// Whether `url` can be the `--web.external-url`, and why not.
pub fn check_external_url(url: &str) -> Result<(), String> {
    ExternalUrl::parse(url).map(drop)
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    Html(state.landing.to_string())
}

async fn healthy() -> &'static str {
    "Healthy\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}

/// The landing page: what this is, where the metrics are, and what it watches (no secrets).
fn landing_page(config: &Config, telemetry_path: &str) -> String {
    let mut targets = String::new();
    for target in &config.targets {
        let clusters = match &target.clusters {
            None => "every cluster (discovered)".to_owned(),
            Some(clusters) => clusters
                .iter()
                .map(|c| match &c.export_job_ids {
                    None => html_escape(&c.name),
                    Some(ids) => format!(
                        "{} (jobs {})",
                        html_escape(&c.name),
                        html_escape(&ids.join(", "))
                    ),
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        let labels = target
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", html_escape(k), html_escape(v)))
            .collect::<Vec<_>>()
            .join(", ");
        targets.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{clusters}</td><td>{labels}</td></tr>\n",
            html_escape(&target.group_id)
        ));
    }
    if config.discovery.all_projects {
        targets.push_str(
            "<tr><td>every project the credential can see</td><td>every cluster (discovered)</td><td></td></tr>\n",
        );
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Atlas Backup Exporter</title></head>\n\
         <body>\n<h1>Atlas Backup Exporter</h1>\n<p>Version {version} (revision {revision}). \
         Prometheus metrics for MongoDB Atlas Cloud Backup snapshot export jobs.</p>\n\
         <p><a href=\"{path}\">Metrics</a> · <a href=\"/-/healthy\">Health</a></p>\n\
         <p>Atlas: <code>{base_url}</code></p>\n\
         <table border=\"1\" cellpadding=\"4\">\n<tr><th>Project (group_id)</th><th>Clusters</th><th>Static labels</th></tr>\n\
         {targets}</table>\n</body></html>\n",
        version = crate::metrics::VERSION,
        revision = crate::metrics::REVISION,
        path = html_escape(telemetry_path),
        base_url = html_escape(&config.atlas.base_url),
    )
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Binds the `--web.listen-address`: `:PORT` is every interface (IPv6 and IPv4 where the host
/// has them), `HOST:PORT` and `[V6]:PORT` one address.
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    match address.strip_prefix(':') {
        Some(port) => {
            let port: u16 = port.parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{address:?} is not :PORT, HOST:PORT or [V6]:PORT"),
                )
            })?;
            // One IPv6 wildcard socket that takes IPv4 too (whatever the host's bindv6only
            // default); a host without IPv6 gets the IPv4 wildcard instead.
            match dual_stack(port) {
                Ok(listener) => Ok(listener),
                Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
            }
        }
        None => TcpListener::bind(address).await,
    }
}

/// Listens on `[::]:port` for IPv6 and IPv4 alike.
fn dual_stack(port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    let address = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new scrapes, finishing the ones in flight");
}

// ---------------------------------------------------------------------------------------------------------
// The server: connections, TLS, bounds and graceful shutdown
// ---------------------------------------------------------------------------------------------------------

/// The largest request body accepted: scrapes and the other pages have none.
pub const MAX_REQUEST_BODY: usize = 4 * 1024;

/// The most a request line and its headers may take (hyper allows no less than 8 KiB).
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// How the server treats connections and requests, apart from its routes.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// TLS and basic authentication, from `--web.config.file`; `None` is plain HTTP for anyone.
    pub web: Option<Arc<WebConfig>>,
    /// A scrape's deadline when Prometheus sends no timeout header: `collection.timeout`.
    pub scrape_timeout: Duration,
    /// Added to a request's scrape deadline (its header's, else `scrape_timeout`) to bound the
    /// whole request, authentication included. A scrape ends inside its deadline by itself: this
    /// is the backstop that answers 503 if something still hangs.
    pub request_timeout_margin: Duration,
    /// How long a client may take over the TLS handshake and over each request's headers
    /// (slowloris). hyper runs this timer while a keep-alive connection waits for its next
    /// request too, so it is also how long an idle connection stays open.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for requests in flight before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            web: None,
            scrape_timeout: crate::config::CollectionConfig::default().timeout,
            request_timeout_margin: Duration::from_secs(5),
            // Prometheus scraping more often than this keeps its connection; a client trickling
            // its headers holds one for no longer than this.
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` with TLS, authentication and the bounds of `options` until
/// `shutdown` completes. Then it stops accepting, lets requests in flight finish for up to
/// `options.shutdown_grace`, closes idle connections, and returns.
///
/// HTTP/1.1 only: Prometheus scrapes with it, and HTTP/2 would need bounds of its own.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = guard(router, &options).into_make_service();
    if let Some(web) = &options.web {
        tracing::info!(web_config = web.describe(), "endpoint protection");
    }
    let handle = Handle::new();
    let mut server = axum_server::Server::from_listener(listener)
        .handle(handle.clone())
        .http1_only()
        .accept_error_handler(accept_failed());
    server
        .http_builder()
        .http1()
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(true);
    // Answers are written in one go: no reason to wait for more (Nagle).
    let tls = options.web.as_ref().and_then(|web| web.tls());
    let serving = match tls {
        None => server.acceptor(NoDelayAcceptor).serve(app).boxed(),
        Some(config) => {
            let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config.clone()))
                .handshake_timeout(options.header_read_timeout)
                .acceptor(NoDelayAcceptor);
            server.acceptor(acceptor).serve(app).boxed()
        }
    };
    let mut serving = std::pin::pin!(serving);
    let served = tokio::select! {
        served = &mut serving => served,
        () = shutdown => {
            handle.graceful_shutdown(Some(options.shutdown_grace));
            serving.await
        }
    };
    let cut_off = handle.connection_count();
    if cut_off > 0 {
        tracing::warn!(
            connections = cut_off,
            grace = %format_duration(options.shutdown_grace),
            "requests still running after the shutdown grace period: closing their connections"
        );
    }
    served
}

/// Wraps the routes in what every request goes through, outermost first: the whole-request
/// timeout, the body size bound, then basic authentication when the web config asks for it.
fn guard(router: Router, options: &ServeOptions) -> Router {
    let router = match options.web.as_ref().and_then(|web| web.users()) {
        Some(users) => router.layer(axum::middleware::from_fn_with_state(
            users.clone(),
            crate::basic_auth::require,
        )),
        None => router,
    };
    let limits = RequestTimeout {
        scrape_timeout: options.scrape_timeout,
        margin: options.request_timeout_margin,
    };
    router
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(axum::middleware::from_fn_with_state(limits, bound_request))
}

#[derive(Clone, Copy)]
struct RequestTimeout {
    scrape_timeout: Duration,
    margin: Duration,
}

/// Answers 503 when a request outlives its scrape deadline plus the margin.
async fn bound_request(
    State(limits): State<RequestTimeout>,
    request: Request,
    next: Next,
) -> Response {
    let limit = scrape_timeout(request.headers()).unwrap_or(limits.scrape_timeout) + limits.margin;
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let limit = format_duration(limit);
            tracing::warn!(%path, %limit, "request cut off: it took longer than its limit");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the request took longer than {limit}\n"),
            )
                .into_response()
        }
    }
}

/// Logs what went wrong before a connection could serve: a failed or slow TLS handshake (with
/// the peer's address, at debug: clients do this), or the listener failing to accept. A listener
/// out of file descriptors fails on every try (axum-server waits 50 ms between them), so that
/// warning is given at most once a second.
fn accept_failed() -> impl Fn(Option<&SocketAddr>, &std::io::Error) + Send + Sync + 'static {
    use std::io::ErrorKind;
    let last_warning = std::sync::Mutex::new(None::<std::time::Instant>);
    move |peer, error| match (peer, error.kind()) {
        (Some(peer), _) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        (
            None,
            ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted,
        ) => {
            tracing::debug!(%error, "accepting a connection");
        }
        (None, _) => {
            let mut last = last_warning
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(%error, "accepting a connection; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String, String) {
        let url = ExternalUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        (url.scheme, url.host, url.path)
    }

    #[test]
    fn external_urls_give_scheme_host_and_prefix() {
        let expect = |scheme: &str, host: &str, path: &str| {
            (scheme.to_owned(), host.to_owned(), path.to_owned())
        };
        assert_eq!(
            parts("https://exporter.example.com:9443/atlas/"),
            expect("https", "exporter.example.com:9443", "/atlas")
        );
        assert_eq!(
            parts("HTTP://Exporter.example.com"),
            expect("http", "exporter.example.com", "")
        );
        assert_eq!(
            parts("exporter:9947/a/b"),
            expect("http", "exporter:9947", "/a/b")
        );
        assert_eq!(
            parts("http://[::1]:9947/"),
            expect("http", "[::1]:9947", "")
        );
        // The scheme's own port is the one Prometheus uses anyway.
        assert_eq!(
            parts("https://exporter:443"),
            expect("https", "exporter", "")
        );
    }

    #[test]
    fn external_urls_prometheus_cannot_use_are_refused() {
        for url in [
            "ftp://exporter/",
            "http://",
            "http://exporter:99999/",
            "https://user:secret@exporter/",
            "https://exporter/?x=1",
            "https://exporter/#top",
        ] {
            assert!(check_external_url(url).is_err(), "{url}");
        }
        assert_eq!(check_external_url("https://exporter/atlas"), Ok(()));
    }
}
