//! The receiver standalone: a pre-bound listener, bounded connections, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, TryAcquireError, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use daglo_core::BoxError;
use http::{Request, Response};
use hyper::body::Incoming;

use crate::config::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTION_TIME, DEFAULT_MAX_CONNECTIONS};

/// How long a graceful shutdown lets in-flight requests finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The read buffer per connection, which bounds the request head: a callback's head is a few
/// hundred bytes (the path, a credential, the content type and length).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Header lines accepted in one request.
const MAX_HEADERS: usize = 32;

/// File descriptors kept for everything but connections (the listener, logs, the registry…).
const RESERVED_FDS: usize = 64;

/// Accept errors (out of file descriptors, say) back off from this, doubling to [`MAX_ACCEPT_PAUSE`].
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// At the connection cap, a connection that has served requests and has none in flight is
/// closed to make room only once it has been idle this long. Closing an idle keep-alive connection races with a sender
/// that is reusing it at that instant — its request is then lost unless it retries, and Daglo
/// documents no retry — and a sender most often reuses a connection right after its answer.
const SHED_IDLE_AFTER: Duration = Duration::from_secs(1);

/// While at the cap, open connections are asked this often to make room (a busy one closes
/// after its answer, which says `connection: close`; an idle one once idle long enough).
const SHED_EVERY: Duration = Duration::from_millis(50);

/// The accept queue every listener of the project asks for: 1,024 connections (the kernel may
/// cap it at `net.core.somaxconn`). Tokio's `TcpListener::bind` asks for 128, which a burst of
/// callbacks overflows: the kernel then drops SYNs and senders retry after a second or more.
pub const DEFAULT_ACCEPT_BACKLOG: u32 = 1024;

/// Binds `addr` with a deep accept queue ([`DEFAULT_ACCEPT_BACKLOG`]) and `SO_REUSEADDR`, for
/// the receiver (or the app it is mounted in).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    bind_with_backlog(addr, DEFAULT_ACCEPT_BACKLOG)
}

/// Binds `addr` with an accept queue of `backlog` connections.
pub fn bind_with_backlog(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog.max(1))
}

/// A running standalone receiver. [`shutdown`](CallbackServer::shutdown) stops accepting and lets
/// in-flight requests finish; dropping it stops accepting at once.
#[derive(Debug)]
#[must_use = "dropping the CallbackServer stops receiving callbacks"]
pub struct CallbackServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl CallbackServer {
    /// Serves any tower service — an axum `Router` with the receiver mounted among your routes,
    /// say — on `listener` with the standalone receiver's protections: at most
    /// `max_connections` at once (never more than the open-file limit allows), a header-read
    /// timeout (which also bounds the idle wait between keep-alive requests), a 16 KiB head of at
    /// most 32 header lines, a lifetime per connection, back-off when `accept` fails, and
    /// graceful shutdown. This is what a mounted receiver
    /// ([`TranscriberBuilder::build_mounted`](https://docs.rs/daglo/latest/daglo/struct.TranscriberBuilder.html#method.build_mounted))
    /// needs from the server it is mounted in.
    ///
    /// ```no_run
    /// # async fn run(receiver: daglo::callback::CallbackReceiver) -> std::io::Result<()> {
    /// use daglo::callback::{CallbackServer, ConnectionLimits};
    ///
    /// let app = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .route_service("/daglo/{key}", receiver);
    /// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
    /// let server = CallbackServer::serve(listener, app, ConnectionLimits::default())?;
    /// # server.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn serve<S, B>(listener: TcpListener, service: S, limits: ConnectionLimits) -> std::io::Result<Self>
    where
        S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let local_addr = listener.local_addr()?;
        let limits = ConnectionLimits {
            max_connections: within_file_limit(limits.max_connections.max(1), open_file_limit()),
            ..limits
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, service, limits, stopped));
        info!(%local_addr, max_connections = limits.max_connections, "callback receiver listening");
        Ok(Self {
            local_addr,
            stop,
            task: Some(task),
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits (up to 10 s) for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// What bounds the connections of a server: how many at once, how long one may take to send a
/// request head, and how long one may stay open. The defaults are the receiver's
/// ([`CallbackConfig::connection_limits`](crate::CallbackConfig::connection_limits) gives a
/// configuration's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// At most this many connections at once (default [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
    /// How long a connection may take to send a request head, or idle between requests
    /// (default [`DEFAULT_HEADER_TIMEOUT`]).
    pub header_timeout: Duration,
    /// The longest a connection may stay open (default [`DEFAULT_MAX_CONNECTION_TIME`]).
    pub max_connection_time: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connection_time: DEFAULT_MAX_CONNECTION_TIME,
        }
    }
}

impl ConnectionLimits {
    /// At most `max` connections at once.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a connection may take to send a request head.
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// The longest a connection may stay open.
    #[must_use]
    pub fn max_connection_time(mut self, time: Duration) -> Self {
        self.max_connection_time = time;
        self
    }
}

/// The connection limit, lowered to what the process's open-file limit can hold: past it,
/// `accept` fails with `EMFILE` instead of connections waiting in the backlog.
fn within_file_limit(max_connections: usize, file_limit: Option<usize>) -> usize {
    match file_limit {
        Some(limit) if max_connections + RESERVED_FDS > limit => {
            let lowered = limit.saturating_sub(RESERVED_FDS).max(1);
            warn!(
                configured = max_connections,
                lowered,
                open_file_limit = limit,
                "max_connections lowered to fit the open-file limit"
            );
            lowered
        }
        _ => max_connections,
    }
}

/// The soft open-file limit, where the platform says (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn accept_loop<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // At the connection cap, every open connection is asked to close once its in-flight
    // request is answered: idle keep-alive peers (and peers that pipeline and never read) make
    // room at once instead of holding their slot until the lifetime ends.
    let shed = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Keep-alive, as a sender that reuses connections expects: a connection's answers are
        // written in order and a peer that stops reading them stops being read (backpressure),
        // the header timeout covers the idle wait between requests, every connection still
        // ends at `max_connection_time`, and at the cap idle ones are shed.
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let mut pause = FIRST_ACCEPT_PAUSE;
    let mut failures_unlogged = 0u64;
    let mut last_logged: Option<tokio::time::Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        // Take a connection slot first: at the limit, new connections wait in the backlog while
        // the open ones are asked to make room.
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => break,
            Err(TryAcquireError::NoPermits) => {
                let waited = async {
                    loop {
                        shed.notify_waiters();
                        if let Ok(permit) =
                            tokio::time::timeout(SHED_EVERY, connections.clone().acquire_owned()).await
                        {
                            return permit.ok();
                        }
                    }
                };
                tokio::select! {
                    permit = waited => match permit {
                        Some(permit) => permit,
                        None => break,
                    },
                    _ = stopped.wait_for(|stop| *stop) => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                pause = FIRST_ACCEPT_PAUSE;
                // Answers go out as written: Nagle's algorithm would hold a small answer's
                // last segment for the peer's delayed ACK (tens of milliseconds).
                let _ = stream.set_nodelay(true);
                stream
            }
            Err(e) => {
                // Out of file descriptors, say: pause instead of spinning, and log at most once
                // a second with how many failures went unlogged.
                failures_unlogged += 1;
                let now = tokio::time::Instant::now();
                if last_logged.is_none_or(|at| now - at >= Duration::from_secs(1)) {
                    warn!(error = %e, failures = failures_unlogged, "accepting connections failed; pausing");
                    failures_unlogged = 0;
                    last_logged = Some(now);
                }
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopped.wait_for(|stop| *stop) => break,
                }
                pause = (pause * 2).min(MAX_ACCEPT_PAUSE);
                continue;
            }
        };
        let activity = Arc::new(Activity::new());
        let service = TowerToHyperService::new(Tracked {
            inner: service.clone(),
            activity: activity.clone(),
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let lifetime = limits.max_connection_time;
        // A watcher per connection waits for a shed, a stop or the end of the connection's
        // lifetime and tells the connection: the connection's own task is woken by its socket
        // alone, and polls no shared notifier (a lock each) nor a timer per request.
        let (close, closing) = tokio::sync::oneshot::channel::<()>();
        let (cut, cutting) = tokio::sync::oneshot::channel::<()>();
        let (shed, mut stop) = (shed.clone(), stopped.clone());
        tasks.spawn(async move {
            let (mut close, mut cut) = (close, cut);
            let expired = tokio::time::sleep(lifetime);
            tokio::pin!(expired);
            loop {
                tokio::select! {
                    () = close.closed() => return,
                    () = &mut expired => {
                        // Whatever the peer does — trickles, never reads, idles — the
                        // connection ends in bounded time and its slot comes back.
                        debug!("connection outlived its time; closed");
                        let _ = cut.send(());
                        return;
                    }
                    () = shed.notified() => {
                        if activity.may_close() {
                            debug!("connection asked to make room at the cap");
                            break;
                        }
                    }
                    _ = stop.wait_for(|stop| *stop) => break,
                }
            }
            let _ = close.send(());
            // The lifetime still bounds the graceful close.
            tokio::select! {
                () = cut.closed() => {}
                () = &mut expired => {
                    debug!("connection outlived its time while closing; closed");
                    let _ = cut.send(());
                }
            }
        });
        tasks.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut cutting = cutting;
            tokio::select! {
                // The connection first, so a request already sent is read before a shed or a
                // stop is looked at (and so counts as in flight).
                biased;
                _ = connection.as_mut() => {}
                _ = &mut cutting => {}
                _ = closing => {
                    // Finish the request in flight, if any, then close.
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        biased;
                        _ = connection.as_mut() => {}
                        _ = cutting => {}
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("in-flight callbacks did not finish within the drain timeout");
    }
}

/// What a connection is doing, for shedding at the cap: requests in flight, and when the last
/// one ended.
struct Activity {
    in_flight: AtomicUsize,
    /// Whether a request ever came.
    served: AtomicBool,
    opened: tokio::time::Instant,
    /// Milliseconds after `opened` when the connection last had nothing in flight.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            opened: tokio::time::Instant::now(),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether closing it now loses nothing a sender sent: with a request in flight the answer
    /// is written first and says `connection: close`; a connection that has served requests
    /// and has none in flight is closed only once idle for [`SHED_IDLE_AFTER`] (it may be being
    /// reused at this instant).
    fn may_close(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) > 0 || !self.served.load(Ordering::Acquire) {
            // Busy, or never used: hyper finishes a first request that has begun to arrive, and
            // a connection that sent nothing yet (a flood's, say) makes room at once.
            return true;
        }
        let idle_for = self
            .now_ms()
            .saturating_sub(self.idle_since_ms.load(Ordering::Acquire));
        Duration::from_millis(idle_for) >= SHED_IDLE_AFTER
    }
}

/// The connection's service, counting its requests in flight.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

pin_project_lite::pin_project! {
    /// A request's answer, counted in flight until it is ready or dropped (no allocation of its
    /// own).
    struct Counted<F> {
        #[pin]
        answer: F,
        _guard: InFlight,
    }
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        self.project().answer.poll(cx)
    }
}

/// Counts one request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since_ms.store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.served.store(true, Ordering::Release);
        let guard = InFlight(self.activity.clone());
        Counted {
            answer: self.inner.call(request),
            _guard: guard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_fits_the_file_limit() {
        assert_eq!(within_file_limit(1024, Some(1024)), 1024 - RESERVED_FDS);
        assert_eq!(within_file_limit(100, Some(1024)), 100);
        assert_eq!(within_file_limit(100, None), 100);
        assert_eq!(within_file_limit(100, Some(10)), 1);
    }

    #[test]
    fn this_platform_reports_its_file_limit() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|limit| limit > 0));
        }
    }
}
