//! The stand-in's connections: TCP streams that a request can ask to end with a reset (RST)
//! instead of an orderly close, for [`Fault::reset_mid_body`](crate::Fault::reset_mid_body).
//!
//! Each accepted stream carries a [`ResetSwitch`], handed to its requests as connect info. A
//! fault flips it and fails the body; hyper then drops the connection, and the stream, on its
//! way out, sets `SO_LINGER` to zero so the kernel answers the close with a reset.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The listener [`BoundAtlas::serve`](crate::BoundAtlas::serve) accepts on.
pub(super) struct Connections(pub(super) TcpListener);

impl Listener for Connections {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let (tcp, addr) = Listener::accept(&mut self.0).await;
        // Small answers must not wait for Nagle's algorithm: benchmarks measure latency.
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            tcp,
            reset: ResetSwitch::default(),
        };
        (connection, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Asks the connection a request arrived on to end with a reset when it closes.
#[derive(Clone, Debug, Default)]
pub(super) struct ResetSwitch(Arc<AtomicBool>);

impl ResetSwitch {
    pub(super) fn flip(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, Connections>> for ResetSwitch {
    fn connect_info(stream: IncomingStream<'_, Connections>) -> Self {
        stream.io().reset.clone()
    }
}

/// One accepted TCP stream, which resets instead of closing when its switch was flipped.
pub(super) struct Connection {
    tcp: TcpStream,
    reset: ResetSwitch,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.reset.0.load(Ordering::SeqCst) {
            // A zero linger makes close() send RST and never block.
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
