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
use tracing::{info, warn};

use crate::receiver::CallbackReceiver;

/// How long a graceful shutdown lets in-flight requests finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            receiver,
            max_connections,
            header_timeout,
            stopped,
        ));
        info!(%local_addr, "callback receiver listening");
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

async fn accept_loop(
    listener: TcpListener,
    receiver: CallbackReceiver,
    max_connections: usize,
    header_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        // Take a connection slot first: at the limit, new connections wait in the backlog.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let service = TowerToHyperService::new(receiver.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
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
