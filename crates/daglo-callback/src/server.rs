//! The receiver standalone: a pre-bound listener, bounded connections, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::receiver::CallbackReceiver;

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
    pub(crate) fn start(
        listener: TcpListener,
        receiver: CallbackReceiver,
        max_connections: usize,
        header_timeout: Duration,
        max_connection_time: Duration,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let max_connections = within_file_limit(max_connections, open_file_limit());
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            max_connections,
            header_timeout,
            max_connection_time,
        };
        let task = tokio::spawn(accept_loop(listener, receiver, limits, stopped));
        info!(%local_addr, max_connections, "callback receiver listening");
        Ok(CallbackServer {
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

/// What bounds each connection.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    max_connection_time: Duration,
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

async fn accept_loop(
    listener: TcpListener,
    receiver: CallbackReceiver,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Keep-alive, as a sender that reuses connections expects: a connection's answers are
        // written in order and a peer that stops reading them stops being read (backpressure),
        // the header timeout covers the idle wait between requests, and every connection still
        // ends at `max_connection_time`.
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let mut pause = FIRST_ACCEPT_PAUSE;
    let mut failures_unlogged = 0u64;
    let mut last_logged: Option<tokio::time::Instant> = None;
    loop {
        // Take a connection slot first: at the limit, new connections wait in the backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                pause = FIRST_ACCEPT_PAUSE;
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
        let service = TowerToHyperService::new(receiver.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let lifetime = limits.max_connection_time;
        tokio::spawn(async move {
            // Whatever the peer does — trickles, never reads, idles — the connection ends in
            // bounded time and its slot comes back.
            if tokio::time::timeout(lifetime, connection).await.is_err() {
                debug!("connection outlived its time; closed");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("in-flight callbacks did not finish within the drain timeout");
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
