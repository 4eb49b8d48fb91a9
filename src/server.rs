//! The exporter's HTTP endpoints: the scrape, a landing page, and a health check.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

use crate::config::Config;
use crate::exporter::Exporter;
use crate::render::render;

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
        .layer(CompressionLayer::new().gzip(true))
}

/// Serves `router` on `listener` until `shutdown` completes, then lets scrapes in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Prometheus's scrape timeout, from the header it sends with every scrape.
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
            // On Linux an IPv6 wildcard socket also accepts IPv4; a host without IPv6 gets
            // the IPv4 wildcard instead.
            match TcpListener::bind(("::", port)).await {
                Ok(listener) => Ok(listener),
                Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
            }
        }
        None => TcpListener::bind(address).await,
    }
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
