//! The two health endpoints and the server's life cycle behind them.
//!
//! - `/-/healthy` (liveness, in `routes`): 200 while the process can answer HTTP at all.
//! - `/-/ready` (readiness, here): 200 once the server is serving, 503 from the moment shutdown
//!   begins.
//!
//! Neither calls Atlas nor says anything about it: an Atlas outage shows in the metrics
//! (`atlas_backup_export_up`), and restarting or unlisting the exporter would not fix it. Both
//! answer without credentials when basic authentication is on (a kubelet's probe has none), so
//! their bodies are one fixed word.
//!
//! Shutting down drains: readiness turns 503, requests for anything else than the health
//! endpoints get 503 ("no new scrapes") while the ones already running finish, and the listener
//! stays open until they have (at most the shutdown grace period), so a probe or a load balancer
//! sees "not ready" rather than a refused connection while scrapes finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

/// The liveness endpoint.
pub const HEALTHY: &str = "/-/healthy";

/// The readiness endpoint.
pub const READY: &str = "/-/ready";

/// The paths that answer without credentials and stay open while the server drains.
pub const HEALTH_PATHS: [&str; 2] = [HEALTHY, READY];

/// Whether `path` is one of the health endpoints.
pub fn is_health_path(path: &str) -> bool {
    HEALTH_PATHS.contains(&path)
}

/// Serving or draining, and how many requests (health checks aside) are running.
#[derive(Debug)]
pub(super) struct Lifecycle {
    draining: AtomicBool,
    in_flight: watch::Sender<usize>,
}

impl Lifecycle {
    pub(super) fn new() -> Arc<Lifecycle> {
        Arc::new(Lifecycle {
            draining: AtomicBool::new(false),
            in_flight: watch::Sender::new(0),
        })
    }

    /// From now on: not ready, and no new requests but health checks.
    pub(super) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Completes once no request admitted before draining began is still running.
    pub(super) async fn drained(&self) {
        let mut in_flight = self.in_flight.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = in_flight.wait_for(|&running| running == 0).await;
    }

    /// Counts a request in, unless draining has begun. The count is raised before the check, so
    /// that [`drained`](Self::drained) either sees this request or this request sees the drain.
    fn admit(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.send_modify(|running| *running += 1);
        let guard = InFlight(self.clone());
        (!self.is_draining()).then_some(guard)
    }
}

/// One admitted request; counted out when dropped, whether it finished or was cut off.
struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|running| *running -= 1);
    }
}

/// The readiness route, on the server's life cycle.
pub(super) fn routes(lifecycle: Arc<Lifecycle>) -> Router {
    Router::new().route(READY, get(ready)).with_state(lifecycle)
}

async fn ready(State(lifecycle): State<Arc<Lifecycle>>) -> Response {
    if lifecycle.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "Shutting down\n").into_response()
    } else {
        "Ready\n".into_response()
    }
}

/// Middleware: while draining, anything but the health endpoints gets 503; otherwise the
/// request is counted as running until its answer is written.
pub(super) async fn admit(
    State(lifecycle): State<Arc<Lifecycle>>,
    request: Request,
    next: Next,
) -> Response {
    if is_health_path(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(_running) = lifecycle.admit() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down: no new requests\n",
        )
            .into_response();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    #[tokio::test]
    async fn draining_waits_for_the_requests_admitted_before_it() {
        let lifecycle = Lifecycle::new();
        let first = lifecycle.admit().expect("admitted while serving");
        let second = lifecycle.admit().expect("admitted while serving");
        lifecycle.start_draining();
        assert!(lifecycle.admit().is_none(), "refused while draining");
        let mut drained = std::pin::pin!(lifecycle.drained());
        assert!(drained.as_mut().now_or_never().is_none());
        drop(first);
        assert!(drained.as_mut().now_or_never().is_none());
        drop(second);
        assert!(drained.as_mut().now_or_never().is_some());
        assert_eq!(
            *lifecycle.in_flight.borrow(),
            0,
            "the refused one is not counted"
        );
    }

    #[test]
    fn health_paths_are_exact() {
        assert!(is_health_path("/-/healthy") && is_health_path("/-/ready"));
        for other in ["/-/ready/", "/-/healthy/x", "/-/Ready", "/metrics", "/", ""] {
            assert!(!is_health_path(other), "{other}");
        }
    }
}
