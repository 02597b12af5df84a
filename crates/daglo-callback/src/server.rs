//! The receiver standalone: a pre-bound listener, bounded connections, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioIo;
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

/// Header lines accepted in one request: a head with more is answered `431` and its
/// connection closed. Counted by the server itself ([`Tracked`]), not by hyper's
/// `max_headers`: any bound there makes hyper build its two header arrays per request through
/// a non-inlined `SmallVec::from_elem` and copy 6 KiB out of them, where without one it parses
/// into its inline array of 100 (hyper's own bound, `431` past it too).
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
    /// How long a connection may take to send a request head, or idle between requests —
    /// counted from its opening or from its last answer sent whole; a request whose body is
    /// still arriving, or whose answer is still being made or streamed, is never cut by it
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
    // The header timeout is the watcher's (below), not hyper's: hyper's arms a timer for every
    // request head — a boxed sleep registered in and removed from the runtime's timer wheel
    // each time, 5–10 % of a small callback's cost on two cores (`docs/architecture.md`, "The
    // header timeout on the watcher") — where the watcher looks once per timeout.
    http.header_read_timeout(None)
        // Keep-alive, as a sender that reuses connections expects: a connection's answers are
        // written in order and a peer that stops reading them stops being read (backpressure),
        // the header timeout covers the idle wait between requests, every connection still
        // ends at `max_connection_time`, and at the cap idle ones are shed.
        .keep_alive(true)
        // No `max_headers`: hyper's own bound (100 header lines) parses into an inline,
        // uninitialised array, where any other builds two arrays per request and copies 6 KiB
        // out of them; `MAX_HEADERS` is counted per request instead (`Tracked`).
        .max_buf_size(MAX_HEAD_BYTES);
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
        let service = Tracked {
            inner: std::cell::RefCell::new(service.clone()),
            activity: activity.clone(),
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let (lifetime, header_timeout) = (limits.max_connection_time, limits.header_timeout);
        // A watcher per connection waits for a shed, a stop, the end of the connection's
        // lifetime or a request head that takes too long, and tells the connection: the
        // connection's own task is woken by its socket alone, and polls no shared notifier (a
        // lock each) nor a timer per request.
        let (close, closing) = tokio::sync::oneshot::channel::<()>();
        let (cut, cutting) = tokio::sync::oneshot::channel::<()>();
        let (shed, mut stop) = (shed.clone(), stopped.clone());
        tasks.spawn(async move {
            let (mut close, mut cut) = (close, cut);
            let expired = tokio::time::sleep(lifetime);
            tokio::pin!(expired);
            // When to look whether the connection has waited too long for a request head.
            let head_due = tokio::time::sleep_until(later(header_timeout));
            tokio::pin!(head_due);
            loop {
                tokio::select! {
                    () = close.closed() => return,
                    () = &mut head_due => {
                        // Nothing in flight since the last answer (or since it opened) for the
                        // whole header timeout: a head that never came, or came too slowly.
                        // Otherwise look again when the current wait would reach it.
                        let waited = activity.waiting_for_head();
                        match waited {
                            Some(waited) if waited >= header_timeout => {
                                debug!("no request head within the header timeout; closed");
                                let _ = cut.send(());
                                return;
                            }
                            _ => {
                                let left = header_timeout - waited.unwrap_or_default();
                                head_due.as_mut().reset(later(left));
                            }
                        }
                    }
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

    /// How long the connection has waited for a request head: since its last answer was
    /// sent (or since it opened); `None` while a request is in flight — its body arriving, its
    /// answer being made or sent.
    fn waiting_for_head(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_since = self.idle_since_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(self.now_ms().saturating_sub(idle_since)))
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

/// `after` from now, for the watcher's timers (a lifetime of `Duration::MAX` is "never").
fn later(after: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    // About thirty years: far enough to be never, near enough not to overflow.
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

/// A connection's service: the tower service it was given, counting its requests in flight
/// — from the head, while the body arrives and the answer is made, until the answer's body is
/// sent or dropped — for shedding and the header timeout.
///
/// Hyper calls it from the connection's own task, one request after another, so the tower
/// service is kept in a `RefCell` and called in place when it is ready (a router, the
/// receiver: always): no clone of it per request, as hyper-util's `TowerToHyperService` makes.
/// One that is not ready yet is cloned and called once it is, as a tower service expects.
struct Tracked<S> {
    inner: std::cell::RefCell<S>,
    activity: Arc<Activity>,
}

pin_project_lite::pin_project! {
    /// A request's answer, counted in flight until its body is sent or dropped (no
    /// allocation of its own).
    struct Counted<F> {
        #[pin]
        answer: F,
        guard: Option<InFlight>,
        // Refused by the server itself (over `MAX_HEADERS`): answered `431`, `answer` never
        // polled.
        refused: bool,
    }
}

impl<F, B, E> std::future::Future for Counted<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CountedBody<B>>, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if *this.refused {
            let mut answer = Response::new(CountedBody {
                body: None,
                _guard: this.guard.take(),
            });
            *answer.status_mut() = http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            answer
                .headers_mut()
                .insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return std::task::Poll::Ready(Ok(answer));
        }
        let answer = std::task::ready!(this.answer.poll(cx));
        let guard = this.guard.take();
        std::task::Poll::Ready(answer.map(|answer| {
            answer.map(|body| CountedBody {
                body: Some(body),
                _guard: guard,
            })
        }))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, its request counted in flight until it is sent (hyper drops a body
    /// it has written whole) or dropped; `None` for the server's own (empty) refusals.
    struct CountedBody<B> {
        #[pin]
        body: Option<B>,
        _guard: Option<InFlight>,
    }
}

impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        match self.project().body.as_pin_mut() {
            Some(body) => body.poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), http_body::Body::size_hint)
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

pin_project_lite::pin_project! {
    /// What [`Tracked`] answers with: the ready service's own future, or a clone waiting to be
    /// ready and then called (what tower's `Oneshot` does).
    struct Answering<S, R>
    where
        S: tower::Service<R>,
    {
        #[pin]
        called: Option<S::Future>,
        waiting: Option<(S, R)>,
    }
}

impl<S: tower::Service<R>, R> std::future::Future for Answering<S, R> {
    type Output = Result<S::Response, S::Error>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let mut this = self.project();
        if let Some((service, _)) = this.waiting.as_mut() {
            if let Err(e) = std::task::ready!(service.poll_ready(cx)) {
                *this.waiting = None;
                return std::task::Poll::Ready(Err(e));
            }
            if let Some((mut service, request)) = this.waiting.take() {
                this.called.set(Some(service.call(request)));
            }
        }
        match this.called.as_pin_mut() {
            Some(answer) => answer.poll(cx),
            // Polled again after failing to be ready.
            None => std::task::Poll::Pending,
        }
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone,
    S::Future: Send + 'static,
{
    type Response = Response<CountedBody<B>>;
    type Error = S::Error;
    type Future = Counted<Answering<S, Request<Incoming>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.served.store(true, Ordering::Release);
        let guard = Some(InFlight(self.activity.clone()));
        if request.headers().len() > MAX_HEADERS {
            debug!(
                headers = request.headers().len(),
                "request head with too many header lines; answered 431"
            );
            let answer = Answering {
                called: None,
                waiting: None,
            };
            return Counted {
                answer,
                guard,
                refused: true,
            };
        }
        // Hyper calls a connection's service from its task alone, never while a call is on.
        let mut inner = self.inner.borrow_mut();
        let mut ready = std::task::Context::from_waker(std::task::Waker::noop());
        let answer = match inner.poll_ready(&mut ready) {
            std::task::Poll::Ready(Ok(())) => Answering {
                called: Some(inner.call(request)),
                waiting: None,
            },
            // Not ready (or failed: the clone's own readiness says so, to the connection).
            _ => Answering {
                called: None,
                waiting: Some((inner.clone(), request)),
            },
        };
        Counted {
            answer,
            guard,
            refused: false,
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
