//! The exporter's HTTP endpoints: the scrape, a landing page, and a health check; and the server
//! that answers on them, with TLS and basic authentication from the web config and bounds on
//! every request.

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
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
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
        external: options
            .external_url
            .as_deref()
            .map(|url| Arc::new(ExternalUrl::parse(url))),
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
            ExternalUrl::parse(host)
        }
    };
    let deadline = state.exporter.deadline(None);
    let clusters = state.exporter.collector().discover_clusters(deadline).await;
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
    /// Parses `scheme://host:port/prefix`, or a bare `host:port` (a `Host` header).
    fn parse(url: &str) -> ExternalUrl {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_end_matches('/');
        ExternalUrl {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_owned(),
            path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        }
    }
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
    let service = guard(router, &options);
    let tls = options
        .web
        .as_ref()
        .and_then(|web| web.tls())
        .map(|config| TlsAcceptor::from(config.clone()));
    if let Some(web) = &options.web {
        tracing::info!(web_config = web.describe(), "endpoint protection");
    }
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(
                        stream,
                        peer,
                        tls.clone(),
                        service.clone(),
                        options.header_read_timeout,
                        stopping.clone(),
                    ));
                }
                Err(error) => accept_failed(error).await,
            },
            // Reap finished connections as they go, so the set holds only open ones.
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    tracing::error!(%error, "a connection's task failed");
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = %format_duration(options.shutdown_grace),
            "requests still running after the shutdown grace period: closing their connections"
        );
        connections.shutdown().await;
    }
    Ok(())
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

/// Accepting fails for a connection that went away (nothing to do) or for want of file
/// descriptors or memory, where retrying at once would spin.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            tracing::debug!(%error, "accepting a connection");
        }
        _ => {
            tracing::warn!(%error, "accepting a connection; retrying in a second");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One connection: the TLS handshake if any (bounded like a request's headers), then HTTP/1.1
/// until the client leaves or shutdown begins.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    service: Router,
    header_read_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    // Answers are written in one go; no reason to wait for more (Nagle).
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return http1(stream, peer, service, header_read_timeout, stopping).await;
    };
    let handshake = tokio::time::timeout(header_read_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        finished = handshake => match finished {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    http1(stream, peer, service, header_read_timeout, stopping).await
}

async fn http1<I>(
    io: I,
    peer: SocketAddr,
    service: Router,
    header_read_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        finished = conn.as_mut() => {
            if let Err(error) = finished {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            return;
        }
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    // Finishes the request in flight, if any, then closes; an idle connection closes at once.
    conn.as_mut().graceful_shutdown();
    if let Err(error) = conn.await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
