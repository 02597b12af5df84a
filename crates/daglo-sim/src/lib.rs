//! A faithful local emulator of the Daglo asynchronous speech-to-text service.
//!
//! It serves every endpoint of the contract over real HTTP — bearer auth, JSON and streamed
//! multipart submits, status progression `ai_requested → … → transcribed` with rising
//! `progress`, deterministic transcripts with word timings, `204` for silent audio, `/srt` with
//! `202` while running, `{"error": …}` bodies, `429` above 20 requests per second per endpoint —
//! and POSTs callbacks with the caller's headers. Faults can be injected globally or per job,
//! and everything it served is recorded, so tests and benchmarks can count requests and measure
//! how long after completion a result was seen.
//!
//! ```
//! use std::time::Duration;
//! use daglo_sim::{SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let sim = Simulator::start(SimConfig::default().processing_time(Duration::ZERO)).await?;
//! let http = reqwest::Client::new();
//! let answer: serde_json::Value = http
//!     .post(format!("{}/stt/v1/async/transcripts", sim.base_url()))
//!     .bearer_auth(sim.token())
//!     .json(&serde_json::json!({"audio": {"source": {"url": "https://example.com/a.wav"}}}))
//!     .send().await.unwrap().json().await.unwrap();
//! let rid = answer["rid"].as_str().unwrap();
//! let status: serde_json::Value = http
//!     .get(format!("{}/stt/v1/async/transcripts/{rid}", sim.base_url()))
//!     .bearer_auth(sim.token())
//!     .send().await.unwrap().json().await.unwrap();
//! assert_eq!(status["status"], "transcribed");
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Choosing what happens to a job
//! The audio's name steers the default plan: `silent` → empty result (`204`); `file-error`,
//! `transcript-error`, `input-error` → that failure; `duration=SECONDS` in a URL → that audio
//! length. An uploaded file of only zero bytes is silent too, and invalid options end the job in
//! `input_error` naming the field. A [`Planner`] can change anything per job, including its
//! [`Faults`].
//!
//! ## Where the contract is silent
//! - `/srt` of a failed job answers `204`: the endpoint documents only `200`, `202`, `204` and
//!   the errors of a GET, a failed job has no subtitles, and its failure is what the status
//!   endpoint reports.
//! - Audio too short to hold a word is an empty result, like silence: `204` on both GETs.
//! - Omitted `enable` flags are off and an omitted `keywordBoost.boost` is 5, as the service
//!   documents; invalid values end the job in `input_error` naming the field.
//! - `hasKeyword` marks the words keyword *extraction* selected, in agreement with `keywords`.
//! - `docs/contract.md` in the repository lists every field.
//!
//! ## Time
//! With [`Clock::manual`] jobs and the rate limiter stand still until the test moves the clock,
//! which makes progression tests exact without sleeping. With [`Clock::Scaled`] virtual time runs
//! faster than real time; give the client side (a poller) the same
//! [`TimeScale`](daglo_core::TimeScale) and "20 requests per second" holds in virtual seconds on
//! both sides, so thousands of rate-limited jobs run in seconds.

mod callbacks;
pub mod cli;
mod clock;
mod config;
mod logs;
mod plan;
mod rate;
mod rng;
mod server;
mod state;
mod submit;
mod transcript;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use daglo_core::Rid;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Makes *ring* the process's rustls crypto provider unless one is installed (reqwest is built
/// without one): the workspace's one provider, which `daglo_client::install_crypto_provider`
/// also installs.
use daglo_core::internal::install_crypto_provider;

pub use clock::{Clock, ManualClock};
pub use config::{DEFAULT_TOKEN, SimConfig};
pub use logs::LogCapture;
pub use plan::{Ending, ErrorBurst, Faults, JobPlan, Planner, Submission};
pub use state::{CallbackRecord, Endpoint, EndpointStats, JobRecord, Stats};

use daglo_core::internal::lock;
use state::Shared;

/// How long a graceful shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running emulator. Dropping it stops the server and every callback driver.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

/// The accept queue the emulator asks for: 1,024 connections (Tokio's `TcpListener::bind` asks
/// for 128, which a burst of clients overflows).
pub const ACCEPT_BACKLOG: u32 = 1024;

/// Binds `addr` with an accept queue of [`ACCEPT_BACKLOG`] and `SO_REUSEADDR`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

impl Simulator {
    /// Starts an emulator on `127.0.0.1` at a port the system picks, with an accept queue of
    /// [`ACCEPT_BACKLOG`] connections.
    pub async fn start(config: SimConfig) -> io::Result<Self> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        Self::serve(listener, config)
    }

    /// Serves on a listener the caller bound.
    pub fn serve(listener: TcpListener, config: SimConfig) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        info!(%addr, "daglo emulator listening");
        Ok(Self {
            shared,
            addr,
            stop,
            server: Some(server),
        })
    }

    /// The base URL to give a client, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the emulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token it accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The clock jobs follow.
    pub fn clock(&self) -> &Clock {
        &self.shared.config.clock
    }

    /// Request counters per endpoint.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// What the emulator knows about one job.
    pub fn job(&self, rid: &Rid) -> Option<JobRecord> {
        lock(&self.shared.jobs).get(rid).map(state::Job::record)
    }

    /// Every job, in no particular order.
    pub fn jobs(&self) -> Vec<JobRecord> {
        lock(&self.shared.jobs).values().map(state::Job::record).collect()
    }

    /// Every callback POST made so far, in sending order.
    pub fn callback_log(&self) -> Vec<CallbackRecord> {
        lock(&self.shared.callback_log).clone()
    }

    /// Waits until the job's callback driver has nothing left to send (at once for a job
    /// without callbacks or an unknown rid).
    pub async fn callbacks_done(&self, rid: &Rid) {
        let receiver = lock(&self.shared.jobs)
            .get(rid)
            .map(|job| job.callbacks_done.clone());
        if let Some(mut receiver) = receiver {
            let _ = receiver.wait_for(|done| *done).await;
        }
    }

    /// Answers the next `burst.count` requests to `endpoint` (after auth and the rate limit)
    /// with `burst.status`.
    pub fn inject_errors(&self, endpoint: Endpoint, burst: ErrorBurst) {
        if burst.count > 0 {
            lock(&self.shared.injected).insert(endpoint, burst);
        }
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s), and stops the
    /// callback drivers.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.abort_drivers();
    }

    fn abort_drivers(&self) {
        for driver in lock(&self.shared.drivers).drain(..) {
            driver.abort();
        }
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.abort_drivers();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // Like a real service, a client that never finishes its request head is cut off.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let shared = shared.clone();
                let service = service_fn(move |request| server::handle(shared.clone(), request));
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            _ = stopped.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}
