//! Serving the stand-in: binding a listener, serving until shut down, and the router.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

use crate::connections;
use crate::http;
use crate::state::{FakeAtlas, lock};

/// A stand-in Atlas bound to its address and not yet serving: what [`FakeAtlas::bind`] returns.
pub struct BoundAtlas {
    fake: FakeAtlas,
    listener: TcpListener,
    addr: SocketAddr,
}

impl BoundAtlas {
    /// `http://ADDRESS:PORT`, the value for the exporter's `atlas.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes.
    ///
    /// Requests held by a [`Fault::hang`] are released with a 503 when shutting down, so
    /// the graceful shutdown does not wait for them forever.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        // This server's own flag: its shutdown releases its hung requests, no other server's.
        let closing = Arc::new(watch::Sender::new(false));
        let fake = FakeAtlas {
            inner: self.fake.inner,
            closing: closing.clone(),
        };
        let listener = connections::Connections(self.listener);
        let app = fake
            .router()
            .into_make_service_with_connect_info::<connections::ResetSwitch>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                closing.send_replace(true);
            })
            .await
    }
}

impl FakeAtlas {
    /// Binds `addr` and returns the bound server, which knows its address before it serves.
    ///
    /// The address comes from the bound listener, never from state a task fills in later, so
    /// [`BoundAtlas::base_url`] can be asked for before [`BoundAtlas::serve`] runs.
    pub async fn bind(&self, addr: impl ToSocketAddrs) -> io::Result<BoundAtlas> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(BoundAtlas {
            fake: self.clone(),
            listener,
            addr,
        })
    }

    /// Binds `127.0.0.1:0`, serves in a background task and returns the base URL
    /// (`http://127.0.0.1:PORT`), the value for the exporter's `atlas.base_url`.
    ///
    /// The server runs until [`FakeAtlas::shutdown`] or the end of the tokio runtime.
    pub async fn start(&self) -> io::Result<String> {
        let bound = self.bind("127.0.0.1:0").await?;
        let base_url = bound.base_url();
        let (stop_sender, mut stopped) = watch::channel(false);
        lock(&self.inner.started).push(stop_sender);
        tokio::spawn(async move {
            let stop = async move {
                // An error means the sender is gone, which cannot happen while `bound` lives.
                let _ = stopped.wait_for(|c| *c).await;
            };
            if let Err(err) = bound.serve(stop).await {
                tracing::warn!(%err, "stand-in Atlas stopped");
            }
        });
        Ok(base_url)
    }

    /// Stops the servers [`FakeAtlas::start`] launched (on any clone) and releases their hung
    /// requests. Servers of [`BoundAtlas::serve`] stop with their own shutdown future, and
    /// a later `start` serves anew.
    pub fn shutdown(&self) {
        for stop in lock(&self.inner.started).drain(..) {
            stop.send_replace(true);
        }
    }

    /// The whole API as an axum router, for serving it some other way.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(http::handle)
            .with_state(self.clone())
    }
}
