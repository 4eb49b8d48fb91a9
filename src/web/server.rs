//! The exporter's HTTP server: it binds `--web.listen-address`, serves the routes of [`router`]
//! (in `routes`) and the readiness endpoint (in `health`) with TLS and basic authentication from
//! the web config and bounds on every request, and on a signal drains (not ready, no new requests,
//! the ones in flight finish) and shuts down.
//!
//! Connections are axum-server's: its accept loop, its rustls acceptor (with a handshake timeout)
//! and its graceful shutdown with a grace period, over hyper's HTTP/1.1 with the header-read
//! timeout and head size bound set here. What the exporter adds are tower layers on the router
//! (answer counter, request deadline, body bound, basic authentication); the cap on concurrent
//! scrapes is a layer on the scrape's route (in `routes`). The acceptor reads its certificate
//! through a `RustlsConfig`, whose `reload_from_config` swaps it for the handshakes that follow:
//! `reload` watches the web config and its files and swaps certificates and users without a new
//! listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use futures_util::FutureExt as _;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

use super::basic_auth::{self, CurrentUsers};
use super::routes::scrape_timeout;
use super::{health, reload};
use crate::config::format_duration;
use crate::metrics::OwnMetrics;
use crate::options::Options;

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

/// A future that completes on SIGTERM or Ctrl-C (SIGINT).
///
/// The handlers are installed when this is called, not when the future is first polled: call it
/// before telling anyone the exporter is up, so a signal sent right after the `listening` line
/// (or the demo's printed address) stops the process cleanly instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = received(interrupt) => {},
                _ = received(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The server: connections, TLS, bounds and graceful shutdown
// ---------------------------------------------------------------------------------------------------------

/// The largest request body accepted: scrapes and the other pages have none.
pub const MAX_REQUEST_BODY: usize = 4 * 1024;

/// The most a request line and its headers may take (hyper allows no less than 8 KiB).
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Serves `router` on `listener` with TLS, authentication and the bounds of `options`, and the
/// readiness endpoint `/-/ready`, until `shutdown` completes. Then it drains: `/-/ready` answers
/// 503, new requests but the health checks get 503, and the ones in flight finish, for up to
/// `options.shutdown_grace` in all; then it stops accepting, closes the connections, and returns.
/// Answers are counted in `metrics`; a request without Prometheus's timeout header gets
/// `scrape_timeout` (`collection.timeout`) and the margin.
///
/// HTTP/1.1 only: Prometheus scrapes with it, and HTTP/2 would need bounds of its own.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    options: &Options,
    metrics: Arc<OwnMetrics>,
    scrape_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let users = options
        .web_config
        .as_ref()
        .map(|web| Arc::new(CurrentUsers::new(web.users().cloned())));
    let lifecycle = health::Lifecycle::new();
    let router = router.merge(health::routes(lifecycle.clone()));
    let limits = RequestTimeout {
        scrape_timeout,
        margin: options.request_timeout_margin,
    };
    // What every request goes through, outermost first: the answer counter, the whole-request
    // timeout, the body size bound, basic authentication when there is a web config (its users
    // may come and go while serving; the health endpoints are open), then the admission that
    // refuses new requests while draining.
    let router = router.layer(from_fn_with_state(lifecycle.clone(), health::admit));
    let router = match &users {
        Some(users) => router.layer(from_fn_with_state(users.clone(), basic_auth::require)),
        None => router,
    };
    let app = router
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(from_fn_with_state(limits, bound_request))
        .layer(from_fn_with_state(metrics.clone(), count_answer))
        .into_make_service();
    if let Some(web) = &options.web_config {
        tracing::info!(web_config = web.describe(), "endpoint protection");
    }
    let tls = options
        .web_config
        .as_ref()
        .and_then(|web| web.tls())
        .map(|config| RustlsConfig::from_config(config.clone()));
    // Stopped when serving ends, whichever way.
    let _watcher = match (&options.web_config, users) {
        (Some(web), Some(users)) if let Some(path) = &web.file => Some(reload::watch(
            path.to_owned(),
            web.clone(),
            reload::InForce {
                tls: tls.clone(),
                users,
            },
            metrics,
        )),
        _ => None,
    };
    let handle = Handle::new();
    let mut server = axum_server::Server::from_listener(listener)
        .handle(handle.clone())
        .http1_only()
        .accept_error_handler(log_accept_error());
    server
        .http_builder()
        .http1()
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        .keep_alive(true);
    // TCP_NODELAY: answers are written in one go, no reason to wait for more (Nagle).
    let serving = match tls {
        None => server.acceptor(NoDelayAcceptor).serve(app).boxed(),
        Some(config) => {
            let acceptor = RustlsAcceptor::new(config)
                .handshake_timeout(options.header_read_timeout)
                .acceptor(NoDelayAcceptor);
            server.acceptor(acceptor).serve(app).boxed()
        }
    };
    let mut serving = std::pin::pin!(serving);
    let served = tokio::select! {
        served = &mut serving => served,
        () = shutdown => {
            lifecycle.start_draining();
            tracing::info!("shutting down: not ready, no new scrapes, finishing the ones in flight");
            // The listener stays open while the requests in flight finish, so that probes see
            // "not ready" instead of a refused connection; then the connections close.
            let draining_since = tokio::time::Instant::now();
            let drained = tokio::select! {
                served = &mut serving => Some(served),
                _ = tokio::time::timeout(options.shutdown_grace, lifecycle.drained()) => None,
            };
            match drained {
                Some(served) => served,
                None => {
                    let left = options.shutdown_grace.saturating_sub(draining_since.elapsed());
                    handle.graceful_shutdown(Some(left));
                    serving.await
                }
            }
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

/// Counts the answer in `atlas_backup_exporter_http_requests_total`: `handler` is the route the
/// router matched, `other` for any path that is none, so a scan of random paths adds one series.
async fn count_answer(
    State(metrics): State<Arc<OwnMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .http_requests
        .with_label_values(&[handler.as_str(), response.status().as_str()])
        .inc();
    response
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
fn log_accept_error() -> impl Fn(Option<&SocketAddr>, &std::io::Error) + Send + Sync + 'static {
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
