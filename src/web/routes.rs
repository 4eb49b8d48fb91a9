//! The routes: the scrape, `/probe`, `/sd`, the landing page and the liveness check, and what they
//! need from the command line.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use tower_http::compression::{CompressionLayer, CompressionLevel};

use super::health::{HEALTHY, READY};
use crate::config::Config;
use crate::exporter::Exporter;
use crate::labels::{CLUSTER_NAME, GROUP_ID};
use crate::options::Options;

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Paths the exporter serves itself, which the telemetry path cannot take.
const OWN_PATHS: [&str; 5] = ["/", "/probe", "/sd", HEALTHY, READY];

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
/// else is 404. The server adds `/-/ready`, which follows its life cycle (see `health`).
pub fn router(exporter: Arc<Exporter>, config: &Config, options: &Options) -> Router {
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
        .route(
            &options.telemetry_path,
            capped(get(metrics), options.max_requests),
        )
        .route("/probe", get(probe))
        .route("/sd", get(service_discovery))
        .route("/", get(landing))
        .route(HEALTHY, get(healthy))
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

/// `route` serving at most `max_requests` requests at once (0: no limit); one more gets 503 at
/// once rather than waiting, so a pile-up of scrapers cannot hold connections and memory.
fn capped(route: MethodRouter<AppState>, max_requests: usize) -> MethodRouter<AppState> {
    if max_requests == 0 {
        return route;
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(max_requests));
    route.route_layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let slots = slots.clone();
            async move {
                let Ok(_slot) = slots.try_acquire_owned() else {
                    tracing::debug!(max_requests, "scrape refused: too many at once");
                    let message = format!(
                        "too many scrapes at once: at most {max_requests} (--web.max-requests)\n"
                    );
                    return (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
                };
                next.run(request).await
            }
        },
    ))
}

/// Prometheus's scrape timeout, from the header it sends with every scrape (at most a day).
pub(super) fn scrape_timeout(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let text = state.exporter.scrape(scrape_timeout(&headers)).await;
    // Written chunk by chunk as the connection takes them (and gzipped so, by the compression
    // layer): the answer never holds the whole text of a large estate.
    let chunks = text.into_chunks().map(Ok::<_, std::convert::Infallible>);
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
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
    let probed = state
        .exporter
        .probe(&group_id, &cluster_name, scrape_timeout(&headers));
    let Some(answer) = probed.await else {
        let message = format!(
            "cluster {cluster_name:?} of project {group_id:?} is neither configured nor discovered\n"
        );
        return (StatusCode::NOT_FOUND, message).into_response();
    };
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], answer.to_text()).into_response()
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
    let clusters = state.exporter.service_discovery().await;
    let groups: Vec<serde_json::Value> = clusters
        .into_iter()
        .map(|cluster| {
            let own = [
                ("__param_group_id", cluster.group_id.clone()),
                ("__param_cluster_name", cluster.cluster_name.clone()),
                ("__metrics_path__", format!("{}/probe", external.path)),
                ("__scheme__", external.scheme.clone()),
                (GROUP_ID, cluster.group_id),
                (CLUSTER_NAME, cluster.cluster_name),
            ];
            let static_labels = cluster.labels.iter().map(|(n, v)| (n.clone(), v.clone()));
            let labels: serde_json::Map<String, serde_json::Value> = own
                .map(|(name, value)| (name.to_owned(), value))
                .into_iter()
                .chain(static_labels)
                .map(|(name, value)| (name, value.into()))
                .collect();
            serde_json::json!({"targets": [external.host], "labels": labels})
        })
        .collect();
    let body = serde_json::Value::Array(groups).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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

/// Liveness: the process answers HTTP. Nothing else is checked, Atlas least of all.
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
         <p><a href=\"{path}\">Metrics</a> · <a href=\"/-/healthy\">Health</a> (liveness) · \
         <a href=\"/-/ready\">Ready</a> (readiness)</p>\n\
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
