//! The accept loop and the connections, with the limits poem's `Server` does not set: a
//! header-read timeout, an idle timeout and a cap on open connections, so a client that
//! trickles its headers or sends nothing cannot hold a connection (and a file descriptor) for
//! long, and a flood of them cannot exhaust the process.
//!
//! - **Header read** (`server.header_read_timeout`): a request's headers must arrive whole within
//!   this long of the connection opening, or of the previous response on a keep-alive
//!   connection (hyper's HTTP/1 deadline, which the watchdog's looks make hyper check), so it
//!   also bounds an idle keep-alive connection; closed within an eighth of it more.
//! - **Idle** (`server.idle_timeout`): a connection on which nothing is read or written for this
//!   long is dropped (a body trickling slower than that, a client that stopped reading its
//!   response), within an eighth of it more (`watchdog`). An event stream writes a heartbeat
//!   well inside it, so streams are never cut.
//! - **Connections** (`server.max_connections`): at the cap, the loop stops accepting until one
//!   closes; new connections wait in the kernel's backlog, as nginx's `worker_connections` does.
//!
//! At shutdown the loop stops accepting, every connection finishes its in-flight requests (idle
//! ones close at once) within the drain timeout, and what is left is dropped.

use std::{
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use poem::{
    Addr, Endpoint, IntoResponse, Request,
    web::{LocalAddr, RemoteAddr},
};
use prometheus_client::metrics::gauge::Gauge;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    lanes::Lanes,
    watchdog::{Alarm, HeadDeadlines, Stopping, Watchdog, Watched},
};

/// What bounds the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `server.header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `server.idle_timeout`.
    pub idle_timeout: Duration,
    /// `server.max_connections`.
    pub max_connections: usize,
    /// The event loops connections are spread over (`server.threads`, resolved); `0` serves
    /// them on the caller's runtime.
    pub threads: usize,
}

/// Serves `endpoint` on `listener` until `signal` resolves; then drains the connections for up
/// to `drain`. `open` counts the open connections (for `/metrics`).
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ConnectionLimits,
    open: Gauge,
    signal: impl Future<Output = ()>,
    drain: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = LocalAddr(listener.local_addr().map(Addr::SocketAddr).unwrap_or_default());
    let endpoint = Arc::new(endpoint);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, cut) = (Stopping::default(), CancellationToken::new());
    let connections = TaskTracker::new();
    let lanes = Lanes::start(limits.threads)?;
    let saturated = AtomicBool::new(false);
    tokio::pin!(signal);
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !saturated.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "at the connection cap (`server.max_connections`); new connections wait"
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                    () = &mut signal => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(error = %err, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if slots.available_permits() > 0 {
            saturated.store(false, Ordering::Relaxed);
        }
        let _ = stream.set_nodelay(true);
        // The socket moves to its lane's event loop: registered there, it wakes that loop only.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::debug!(error = %err, %peer, "could not hand a connection to its lane");
                continue;
            }
        };
        let (endpoint, local, open) = (endpoint.clone(), local.clone(), open.clone());
        let (stopping, cut) = (stopping.clone(), cut.clone());
        let tracked = connections.token();
        lanes.spawn(move || async move {
            let _tracked = tracked;
            let stream = match TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::debug!(error = %err, %peer, "could not register a connection on its lane");
                    return;
                }
            };
            open.inc();
            connection(stream, peer, local, endpoint, limits, stopping, cut).await;
            open.dec();
            drop(permit);
        });
    }
    drop(listener);
    stopping.stop();
    connections.close();
    if tokio::time::timeout(drain, connections.wait()).await.is_err() {
        tracing::warn!(drain = ?drain, "requests still running after the shutdown timeout are cut");
        cut.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), connections.wait()).await;
    }
    lanes.stop().await;
    Ok(())
}

/// Serves one connection until it ends, idles out, or the server stops.
async fn connection<E: Endpoint + 'static>(
    stream: TcpStream,
    peer: SocketAddr,
    local: LocalAddr,
    endpoint: Arc<E>,
    limits: ConnectionLimits,
    stopping: Stopping,
    cut: CancellationToken,
) {
    let remote = RemoteAddr(Addr::SocketAddr(peer));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (endpoint, local, remote) = (endpoint.clone(), local.clone(), remote.clone());
        async move {
            let req = Request::from((req, local, remote, poem::http::uri::Scheme::HTTP));
            // Not `get_response`, nor the `Arc`'s own `call`: each wraps the call in a state
            // machine of its own that holds the request and the whole request future once more.
            let resp = match E::call(&endpoint, req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            Ok::<_, Infallible>(hyper::Response::<http_body_util::combinators::BoxBody<Bytes, io::Error>>::from(resp))
        }
    });
    let (io, activity) = Watched::new(stream);
    let io = TokioIo::new(io);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(HeadDeadlines).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    // hyper reads the first bytes to tell HTTP/1 from HTTP/2 before its header timer runs: a
    // client that sends nothing at all is closed by the watchdog instead.
    let mut watchdog = Watchdog::new(activity, limits.header_read_timeout, limits.idle_timeout, stopping);
    tokio::select! {
        biased;
        _ = conn.as_mut() => return,
        alarm = &mut watchdog => match alarm {
            Alarm::Stopping => conn.as_mut().graceful_shutdown(),
            Alarm::Silent => {
                tracing::debug!(%peer, "closing a connection that sent nothing within `server.header_read_timeout`");
                return;
            }
            Alarm::Idle => {
                tracing::debug!(%peer, "closing a connection idle for `server.idle_timeout`");
                return;
            }
        },
    }
    tokio::select! {
        biased;
        _ = conn => {}
        () = cut.cancelled() => {}
        _ = watchdog => {}
    }
}
