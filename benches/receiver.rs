//! How many callbacks a second the receiver answers, against a bare hyper server on the same
//! machine in the same run.
//!
//! ```text
//! cargo bench --bench receiver
//! ```
//!
//! Valid callbacks (a progress body for a registered job: path and key recognised, credential
//! checked, body read and decoded, state applied) against a bare hyper 1 server that reads each
//! body and answers `{}` — the least a server taking callbacks does — at 16 and 64 keep-alive
//! HTTP/1.1 connections: `ROUNDS` rounds of `DURATION` per target, the targets back to back in
//! each round and the first of them alternating between rounds (so neither always follows the
//! other), the medians of the rates and the median of the rounds' own ratios kept (a pair
//! measured back to back shares the machine's state of the moment, which drifts between
//! rounds); each load twice, by the in-process generator (which shares the two cores
//! with the server, as a sender on the same machine would) and by `wrk` (`-t1`, an external
//! process; its rows are left out with a message when it is not installed). Then forged
//! callbacks (a wrong credential: `401`) at `CONNECTIONS`. Printed: answers per second and the
//! ratio of each to bare hyper.
//!
//! Then the registry's share: 1,000 registered jobs, each request a progress body that moves
//! its job forward (60 per job, the same 60,000 requests for each target), against the
//! receiver on the in-memory registry and on the Redis registry (`daglo-redis`, a private
//! `redis-server` or `DAGLO_TEST_REDIS_URL`; skipped with a message when there is none).
//! Printed: callbacks per second and the Redis/in-memory ratio; written to
//! `target/daglo-bench/receiver.csv`. Between the two, a reference row without Redis: the
//! in-memory registry with each change first handed to a thread of its own that answers at
//! once (`HandedOff`) — what any registry that answers a callback only once another thread
//! says its write is stored pays for the hand-off alone (`docs/architecture.md`, "Where the
//! Redis row's time goes").
//!
//! Diagnostics: `DAGLO_RECEIVER_SERVER_ONLY=1` measures bare hyper's own handler behind the
//! receiver's server (`CallbackServer`, default limits) against bare hyper — the server's share
//! alone; `DAGLO_RECEIVER_PROFILE=1` runs valid callbacks alone for 15 s, to `perf record -p`
//! (`DAGLO_RECEIVER_PROFILE=bare`: bare hyper under the same load, to compare).
//!
//! Last, where each registry row's CPU went, written to `target/daglo-bench/receiver-cpu.csv`:
//! this process's CPU time per callback (generator, receiver, and any thread the registry runs,
//! from `/proc/self/stat`), `redis-server`'s (from its `INFO cpu`), how busy the cores were, and
//! the *ceiling*: the in-memory row's process time over that plus the row's `redis-server` time
//! — the ratio a registry whose work cost this process nothing more than the in-memory one
//! would reach, with `redis-server` on the same cores.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use daglo::callback::{CallbackConfig, CallbackDelivery, FinalCallbacks};
use daglo::{JobOptions, ResultDelivery};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 32;
/// The loads valid callbacks are measured at against bare hyper.
const LOADS: [usize; 2] = [16, 64];
/// Rounds per load: each a pair of runs, one per target, the first alternating.
const ROUNDS: usize = 6;
const DURATION: Duration = Duration::from_secs(2);
/// Registered jobs in the registry comparison, and progress bodies sent to each.
const JOBS: usize = 1000;
const BODIES_PER_JOB: usize = 60;

// The Redis tests' own helper: a private `redis-server` (or `DAGLO_TEST_REDIS_URL`).
#[path = "../crates/daglo-redis/tests/support/mod.rs"]
mod redis_support;

/// One request the generator repeats.
#[derive(Clone)]
struct Shot {
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// Answers per second from `addr` for `shot` over `connections` keep-alive connections, and
/// how many were not the `expected` status.
async fn load(addr: SocketAddr, shot: Shot, expected: u16, connections: usize) -> (f64, u64) {
    let answered = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (shot, answered, unexpected) = (shot.clone(), answered.clone(), unexpected.clone());
            tokio::spawn(async move {
                let connect = || async {
                    let stream = TcpStream::connect(addr).await.expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                    tokio::spawn(connection);
                    sender
                };
                let mut sender = connect().await;
                while started.elapsed() < DURATION {
                    // A server may close a connection (its lifetime cap): open another, as a
                    // real sender would.
                    if sender.ready().await.is_err() {
                        sender = connect().await;
                    }
                    let mut request = Request::post(&shot.path)
                        .header("host", "bench")
                        .header("content-type", "application/json");
                    for (name, value) in &shot.headers {
                        request = request.header(name, value);
                    }
                    let request = request.body(Full::new(shot.body.clone())).expect("request");
                    let Ok(answer) = sender.send_request(request).await else {
                        break;
                    };
                    let status = answer.status().as_u16();
                    let _ = answer.into_body().collect().await;
                    answered.fetch_add(1, Ordering::Relaxed);
                    if status != expected {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    (
        answered.load(Ordering::Relaxed) as f64 / seconds,
        unexpected.load(Ordering::Relaxed),
    )
}

/// One registered job's callback: its path and credential.
struct JobShot {
    path: String,
    headers: Vec<(String, String)>,
}

/// Sends `JOBS * BODIES_PER_JOB` progress bodies to `addr` over `CONNECTIONS` keep-alive
/// connections, job after job, each body one percent further for its job than the last; returns
/// callbacks per second and how many were not answered 200.
async fn load_jobs(addr: SocketAddr, jobs: Arc<Vec<JobShot>>) -> (f64, u64) {
    let total = (JOBS * BODIES_PER_JOB) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (jobs, next, unexpected) = (jobs.clone(), next.clone(), unexpected.clone());
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(connection);
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let job = &jobs[(n % JOBS as u64) as usize];
                    let percent = 1 + n / JOBS as u64;
                    let mut request = Request::post(&job.path)
                        .header("host", "bench")
                        .header("content-type", "application/json");
                    for (name, value) in &job.headers {
                        request = request.header(name, value);
                    }
                    let body = format!(r#"{{"status":"transcribing","progress":{percent}}}"#);
                    let request = request.body(Full::new(Bytes::from(body))).expect("request");
                    if sender.ready().await.is_err() {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let Ok(answer) = sender.send_request(request).await else {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    if answer.status() != 200 {
                        unexpected.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = answer.into_body().collect().await;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    (
        total as f64 / started.elapsed().as_secs_f64(),
        unexpected.load(Ordering::Relaxed),
    )
}

/// A receiver on `registry` (in memory when `None`) with `jobs` registered jobs: its address,
/// the jobs' callbacks, and what must live while it is measured.
async fn receiver_with_jobs(
    registry: Option<Arc<dyn daglo::callback::JobRegistry>>,
    jobs: usize,
) -> (SocketAddr, Arc<Vec<JobShot>>, impl Sized) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = daglo::Client::builder()
        .token("unused")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let config = CallbackConfig::new(&format!("http://{addr}/daglo"))
        .unwrap()
        .key_secret(daglo::callback::Secret::new("the receiver bench's key secret"))
        .finals(FinalCallbacks::TrustBody)
        .max_connections(CONNECTIONS * 4);
    let callbacks = match registry {
        Some(registry) => CallbackDelivery::with_registry(client, config, registry).unwrap(),
        None => CallbackDelivery::new(client, config).unwrap(),
    };
    let server = callbacks.serve(listener).unwrap();
    let mut tickets = Vec::new();
    let mut shots = Vec::new();
    for _ in 0..jobs {
        let mut options = JobOptions::default();
        tickets.push(callbacks.prepare(&mut options).await.unwrap());
        let callback = options.callback.expect("prepare set the callback");
        shots.push(JobShot {
            path: url::Url::parse(&callback.url).unwrap().path().to_owned(),
            headers: callback.headers.into_iter().collect(),
        });
    }
    (addr, Arc::new(shots), (server, tickets, callbacks))
}

/// The registry comparison: in memory, then Redis; rows for the CSV, and where each row's CPU
/// went (`None` where the process's CPU time cannot be read).
async fn registries() -> (Vec<(String, f64, f64)>, Option<Vec<Spent>>) {
    let mut rows = Vec::new();
    let mut spent = Vec::new();
    {
        // A warm-up on receivers of their own, so neither target measured pays cold caches.
        let (addr, jobs, _alive) = receiver_with_jobs(None, JOBS).await;
        let _ = load_jobs(addr, jobs).await;
    }
    let (addr, jobs, alive) = receiver_with_jobs(None, JOBS).await;
    let ((memory, bad), cpu) = Spent::measure("in-memory registry", None, load_jobs(addr, jobs)).await;
    spent.push(cpu);
    assert_eq!(bad, 0, "an in-memory callback was not answered 200");
    drop(alive);
    println!(
        "{:<40} {:>12.0} {:>8}",
        "receiver, in-memory registry", memory, "1.00x"
    );
    rows.push(("in-memory registry".to_owned(), memory, 1.0));
    let (addr, jobs, alive) = receiver_with_jobs(Some(Arc::new(HandedOff::new())), JOBS).await;
    let ((handed_off, bad), cpu) = Spent::measure(
        "in-memory registry writes answered by another thread",
        None,
        load_jobs(addr, jobs),
    )
    .await;
    spent.push(cpu);
    assert_eq!(bad, 0, "a handed-off callback was not answered 200");
    drop(alive);
    println!(
        "{:<40} {:>12.0} {:>7.2}x",
        "receiver, in-memory, writes handed off",
        handed_off,
        handed_off / memory
    );
    rows.push((
        "in-memory registry writes answered by another thread".to_owned(),
        handed_off,
        handed_off / memory,
    ));
    let Some(redis) = redis_support::redis("the receiver bench's Redis row").await else {
        return (rows, spent.into_iter().collect());
    };
    let store = daglo::redis::RedisStore::connect_with(
        &redis.url,
        daglo::redis::RedisOptions::default().namespace(redis_support::namespace("receiver-bench")),
    )
    .await
    .unwrap();
    let registry = Arc::new(daglo::redis::RedisRegistry::new(store).await);
    let (addr, jobs, alive) = receiver_with_jobs(Some(registry), JOBS).await;
    let ((rate, bad), cpu) = Spent::measure("Redis registry", Some(&redis.url), load_jobs(addr, jobs)).await;
    spent.push(cpu);
    assert_eq!(bad, 0, "a Redis-backed callback was not answered 200");
    drop(alive);
    println!(
        "{:<40} {:>12.0} {:>7.2}x",
        "receiver, Redis registry",
        rate,
        rate / memory
    );
    rows.push(("Redis registry".to_owned(), rate, rate / memory));
    (rows, spent.into_iter().collect())
}

/// Where one registry row's CPU went, per callback: the bench process's (generator, receiver,
/// and any thread a registry runs) and `redis-server`'s, which shares the same cores.
#[derive(Debug)]
struct Spent {
    target: &'static str,
    rate: f64,
    /// The process's CPU time per callback, in µs.
    process_us: f64,
    /// `redis-server`'s CPU time per callback, in µs (0 for a row without Redis; `None` when
    /// its `INFO cpu` could not be read).
    redis_us: Option<f64>,
    /// The CPU time both used over the row, against the wall time times the cores.
    busy: f64,
}

impl Spent {
    /// Runs `row` (callbacks per second, and how many were not answered 200), measuring the
    /// CPU time this process and the Redis at `redis` spent over it.
    async fn measure(
        target: &'static str,
        redis: Option<&str>,
        row: impl std::future::Future<Output = (f64, u64)>,
    ) -> ((f64, u64), Option<Self>) {
        let redis_before = match redis {
            Some(url) => redis_cpu(url).await,
            None => Some(Duration::ZERO),
        };
        let (process_before, started) = (process_cpu(), Instant::now());
        let answered = row.await;
        let (process_after, elapsed) = (process_cpu(), started.elapsed());
        let redis_after = match redis {
            Some(url) => redis_cpu(url).await,
            None => Some(Duration::ZERO),
        };
        let (Some(before), Some(after)) = (process_before, process_after) else {
            return (answered, None);
        };
        let callbacks = (JOBS * BODIES_PER_JOB) as f64;
        let process = after.saturating_sub(before);
        let redis = redis_before
            .zip(redis_after)
            .map(|(before, after)| after.saturating_sub(before));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let spent = Self {
            target,
            rate: answered.0,
            process_us: process.as_secs_f64() * 1e6 / callbacks,
            redis_us: redis.map(|redis| redis.as_secs_f64() * 1e6 / callbacks),
            busy: (process + redis.unwrap_or_default()).as_secs_f64() / (elapsed.as_secs_f64() * cores),
        };
        (answered, Some(spent))
    }
}

/// The CPU time (user and system) this process has used, from `/proc/self/stat`; `None` where
/// there is no such file.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces):
    // state is the 3rd field of the line, utime the 14th and stime the 15th.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // `/proc` counts in USER_HZ, which Linux fixes at 100 for user space.
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time (user and system) `redis-server` at `url` has used, from its `INFO cpu`; `None`
/// for a URL this bench does not speak to (a password, TLS) or a server that did not answer.
async fn redis_cpu(url: &str) -> Option<Duration> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn info<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> Option<String> {
        stream
            .write_all(b"*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n")
            .await
            .ok()?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            reply.extend_from_slice(&chunk[..read]);
            // A bulk string: `$<length>\r\n<length bytes>\r\n`.
            let text = std::str::from_utf8(&reply).ok()?;
            let (length, rest) = text.strip_prefix('$')?.split_once("\r\n")?;
            let length: usize = length.parse().ok()?;
            if rest.len() >= length {
                return Some(rest[..length].to_owned());
            }
        }
    }
    let parsed = url::Url::parse(url).ok()?;
    if parsed.password().is_some() {
        return None;
    }
    let text = match parsed.scheme() {
        "redis" => {
            let host = parsed.host_str()?;
            let stream = TcpStream::connect((host, parsed.port().unwrap_or(6379)))
                .await
                .ok()?;
            info(stream).await?
        }
        "unix" | "redis+unix" => info(tokio::net::UnixStream::connect(parsed.path()).await.ok()?).await?,
        _ => return None,
    };
    let seconds = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.trim().parse::<f64>().ok())
    };
    Some(Duration::from_secs_f64(
        seconds("used_cpu_user")? + seconds("used_cpu_sys")?,
    ))
}

/// The in-memory registry, with every change (`apply`, `set_rid`) first handed to a thread of
/// its own, which answers at once: the cost of waiting for another thread, without Redis.
#[derive(Debug)]
struct HandedOff {
    inner: daglo::callback::InMemoryRegistry,
    thread: std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
}

impl HandedOff {
    fn new() -> Self {
        let (thread, answers) = std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<()>>();
        std::thread::Builder::new()
            .name("bench-hand-off".to_owned())
            .spawn(move || {
                for answer in answers {
                    let _ = answer.send(());
                }
            })
            .expect("the hand-off thread");
        Self {
            inner: daglo::callback::InMemoryRegistry::default(),
            thread,
        }
    }

    /// Waits until the thread answers.
    async fn hand_off(&self) {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.thread.send(answer).expect("the hand-off thread runs");
        answered.await.expect("the hand-off thread answers");
    }
}

#[async_trait::async_trait]
impl daglo::callback::JobRegistry for HandedOff {
    async fn register(
        &self,
        key: daglo::callback::JobKey,
        registered: daglo::callback::Registered,
        expires_at: Instant,
    ) -> Result<(), daglo::callback::RegistryError> {
        self.inner.register(key, registered, expires_at).await
    }
    async fn lookup(
        &self,
        key: &daglo::callback::JobKey,
    ) -> Result<Option<daglo::callback::Registered>, daglo::callback::RegistryError> {
        self.inner.lookup(key).await
    }
    async fn apply(
        &self,
        key: &daglo::callback::JobKey,
        body: daglo::StatusBody,
    ) -> Result<Option<daglo::callback::Applied>, daglo::callback::RegistryError> {
        self.hand_off().await;
        self.inner.apply(key, body).await
    }
    async fn set_rid(
        &self,
        key: &daglo::callback::JobKey,
        rid: daglo::Rid,
    ) -> Result<Option<Result<(), daglo::Rid>>, daglo::callback::RegistryError> {
        self.hand_off().await;
        self.inner.set_rid(key, rid).await
    }
    async fn subscribe(
        &self,
        key: &daglo::callback::JobKey,
    ) -> Result<Option<tokio::sync::watch::Receiver<daglo::callback::JobView>>, daglo::callback::RegistryError>
    {
        self.inner.subscribe(key).await
    }
    async fn remove(&self, key: &daglo::callback::JobKey) -> Result<(), daglo::callback::RegistryError> {
        self.inner.remove(key).await
    }
    async fn expire(&self, now: Instant) -> usize {
        self.inner.expire(now).await
    }
    async fn count(&self) -> Result<usize, daglo::callback::RegistryError> {
        self.inner.count().await
    }
}

/// The least a server taking callbacks does: reads the body, answers `{}`.
async fn bare_answer(request: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request.into_body().collect().await.map(|b| b.to_bytes());
    std::hint::black_box(&body);
    let mut answer = Response::new(Full::new(Bytes::from_static(b"{}")));
    answer
        .headers_mut()
        .insert("content-type", http::HeaderValue::from_static("application/json"));
    Ok(answer)
}

/// A bare hyper 1 server that reads each request's body and answers `{}`: the least any
/// server taking a callback must do.
async fn bare_hyper() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(bare_answer);
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Bare hyper's handler served by the receiver's own server (`CallbackServer` with the default
/// `ConnectionLimits`): what the server's protections cost, apart from the receiver's checks.
async fn guarded_hyper() -> (SocketAddr, daglo::callback::CallbackServer) {
    let listener = daglo::callback::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let service = tower::service_fn(bare_answer);
    let server = daglo::callback::CallbackServer::serve(
        listener,
        service,
        daglo::callback::ConnectionLimits::default(),
    )
    .unwrap();
    (server.local_addr(), server)
}

/// Answers per second `wrk` (an external load generator, one thread) gets from `addr` for
/// `shot` over `connections` connections in `DURATION`; `None` when `wrk` is not installed.
/// Panics if any answer was not 2xx.
async fn wrk(addr: SocketAddr, shot: &Shot, connections: usize) -> Option<f64> {
    let lua = |text: &str| text.replace('\\', "\\\\").replace('\'', "\\'");
    let mut script = format!(
        "wrk.method = 'POST'\nwrk.body = '{}'\nwrk.headers['Content-Type'] = 'application/json'\n",
        lua(std::str::from_utf8(&shot.body).expect("a text body"))
    );
    for (name, value) in &shot.headers {
        script.push_str(&format!("wrk.headers['{}'] = '{}'\n", lua(name), lua(value)));
    }
    let path = std::env::temp_dir().join(format!("daglo-receiver-bench-{}.lua", std::process::id()));
    std::fs::write(&path, script).expect("write the wrk script");
    let output = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{}s", DURATION.as_secs()),
            "-s",
        ])
        .arg(&path)
        .arg(format!("http://{addr}{}", shot.path))
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx or 3xx responses"),
        "wrk saw answers that were not 2xx:\n{text}"
    );
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Valid callbacks against bare hyper reading the body, at `connections`: `ROUNDS` rounds, each
/// a pair of runs back to back (bare hyper first in even rounds, the receiver in odd ones), by
/// the in-process generator and by `wrk`; the medians of the rates, and the median of the
/// pairs' ratios.
async fn against_bare(
    receiver: SocketAddr,
    bare: SocketAddr,
    valid: &Shot,
    connections: usize,
) -> Vec<(String, f64, f64)> {
    let in_process = |target: SocketAddr| async move {
        let (rate, bad) = load(target, valid.clone(), 200, connections).await;
        assert_eq!(bad, 0, "a valid callback was not answered 200");
        rate
    };
    let (mut bare_rates, mut valid_rates, mut bare_wrk, mut valid_wrk) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            bare_rates.push(in_process(bare).await);
            valid_rates.push(in_process(receiver).await);
        } else {
            valid_rates.push(in_process(receiver).await);
            bare_rates.push(in_process(bare).await);
        }
        let (first, second) = if round % 2 == 0 {
            (bare, receiver)
        } else {
            (receiver, bare)
        };
        let first = wrk(first, valid, connections).await;
        let second = wrk(second, valid, connections).await;
        if let (Some(first), Some(second)) = (first, second) {
            let (bare_rate, valid_rate) = if round % 2 == 0 {
                (first, second)
            } else {
                (second, first)
            };
            bare_wrk.push(bare_rate);
            valid_wrk.push(valid_rate);
        }
    }
    let paired = |bare: &[f64], valid: &[f64]| median(valid.iter().zip(bare).map(|(v, b)| v / b).collect());
    let mut rows = vec![
        (
            "bare hyper reading the body".to_owned(),
            median(bare_rates.clone()),
            1.0,
        ),
        (
            "receiver valid callbacks (one job)".to_owned(),
            median(valid_rates.clone()),
            paired(&bare_rates, &valid_rates),
        ),
    ];
    if !bare_wrk.is_empty() {
        rows.push((
            "bare hyper reading the body (wrk)".to_owned(),
            median(bare_wrk.clone()),
            1.0,
        ));
        rows.push((
            "receiver valid callbacks (one job; wrk)".to_owned(),
            median(valid_wrk.clone()),
            paired(&bare_wrk, &valid_wrk),
        ));
    } else {
        println!("wrk is not installed (apt-get install wrk): the external generator's rows are left out");
    }
    for (name, rate, ratio) in &rows {
        println!("{name:<44} {connections:>5} {rate:>12.0} {ratio:>7.2}x");
    }
    let rounds = |bare: &[f64], valid: &[f64]| {
        let ratios: Vec<String> = valid
            .iter()
            .zip(bare)
            .map(|(v, b)| format!("{:.2}", v / b))
            .collect();
        ratios.join(" ")
    };
    println!(
        "  each round's ratio, in-process: {}",
        rounds(&bare_rates, &valid_rates)
    );
    if !bare_wrk.is_empty() {
        println!("  each round's ratio, wrk: {}", rounds(&bare_wrk, &valid_wrk));
    }
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (addr, one_job, alive) = receiver_with_jobs(None, 1).await;
    let path = one_job[0].path.clone();
    let headers = one_job[0].headers.clone();
    let body = Bytes::from_static(br#"{"status":"transcribing","progress":40}"#);
    let valid = Shot {
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    };
    let forged = Shot {
        path,
        headers: headers
            .iter()
            .map(|(name, _)| {
                (
                    name.clone(),
                    "forged-credential-forged-credential-forged".to_owned(),
                )
            })
            .collect(),
        body,
    };
    let bare = bare_hyper().await;
    let (guarded, _guarded_server) = guarded_hyper().await;
    if let Some(profiled) = std::env::var_os("DAGLO_RECEIVER_PROFILE") {
        // Valid callbacks alone for a while, to profile the receiver (`perf record -p`); with
        // `DAGLO_RECEIVER_PROFILE=bare`, bare hyper under the same load, to compare.
        let (target, name) = if profiled == "bare" {
            (bare, "bare hyper")
        } else {
            (addr, "receiver valid callbacks")
        };
        for _ in 0..5 {
            let (rate, _) = load(target, valid.clone(), 200, 64).await;
            println!("{name}: {rate:.0}/s");
        }
        return;
    }
    if std::env::var_os("DAGLO_RECEIVER_SERVER_ONLY").is_some() {
        // The server's share alone: bare hyper against its handler behind `CallbackServer`.
        for connections in LOADS {
            for (name, rate, ratio) in against_bare(guarded, bare, &valid, connections).await {
                println!("server only: {name} {connections} {rate:.0} {ratio:.2}");
            }
        }
        return;
    }
    println!(
        "keep-alive connections, {} s per target and round, {ROUNDS} rounds of the targets back to back, the first alternating \
         (medians of the rates; the ratio the median of the rounds' ratios), \
         2 cores shared with the generator",
        DURATION.as_secs()
    );
    // Warm-up, so the first target measured pays no cold caches.
    let _ = load(bare, valid.clone(), 200, 16).await;
    let _ = load(addr, valid.clone(), 200, 16).await;
    println!(
        "{:<44} {:>5} {:>12} {:>8}",
        "target", "conns", "answers/s", "ratio"
    );
    let mut measured: Vec<(String, usize, f64, f64)> = Vec::new();
    for connections in LOADS {
        for (name, rate, ratio) in against_bare(addr, bare, &valid, connections).await {
            measured.push((name, connections, rate, ratio));
        }
    }
    let (bare_rate, _) = load(bare, forged.clone(), 200, CONNECTIONS).await;
    let (forged_rate, forged_bad) = load(addr, forged, 401, CONNECTIONS).await;
    assert_eq!(forged_bad, 0, "a forged callback was not answered 401");
    println!(
        "{:<44} {CONNECTIONS:>5} {forged_rate:>12.0} {:>7.2}x",
        "receiver forged callbacks (401)",
        forged_rate / bare_rate
    );
    measured.push((
        "bare hyper reading the body".to_owned(),
        CONNECTIONS,
        bare_rate,
        1.0,
    ));
    measured.push((
        "receiver forged callbacks (401)".to_owned(),
        CONNECTIONS,
        forged_rate,
        forged_rate / bare_rate,
    ));
    drop(alive);

    println!("\n{JOBS} registered jobs, {BODIES_PER_JOB} progress bodies each, {CONNECTIONS} connections");
    println!("{:<40} {:>12} {:>8}", "target", "callbacks/s", "ratio");
    let (rows, spent) = registries().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/daglo-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("target,connections,answers_per_s,ratio\n");
    for (name, connections, rate, ratio) in measured {
        csv.push_str(&format!("{name},{connections},{rate:.0},{ratio:.2}\n"));
    }
    for (name, rate, ratio) in rows {
        csv.push_str(&format!(
            "receiver {JOBS} jobs {name},{CONNECTIONS},{rate:.0},{ratio:.2}\n"
        ));
    }
    std::fs::write(dir.join("receiver.csv"), csv).unwrap();
    println!("written: {}", dir.join("receiver.csv").display());
    let Some(spent) = spent else {
        println!("no CPU time per callback: this system has no /proc/self/stat");
        return;
    };
    // What bounds the Redis row on shared cores: whatever the registry does in this process,
    // `redis-server`'s own CPU comes on top of the in-memory row's.
    let memory_us = spent[0].process_us;
    println!("\nCPU time per callback (the cores are shared: the generator, the receiver, redis-server)");
    println!(
        "{:<54} {:>10} {:>10} {:>6} {:>8}",
        "target", "process µs", "redis µs", "busy", "ceiling"
    );
    let mut csv = String::from(
        "target,callbacks_per_s,process_us_per_callback,redis_server_us_per_callback,busy,ceiling\n",
    );
    for row in &spent {
        let (redis, ceiling) = match row.redis_us {
            Some(redis) => (
                format!("{redis:.1}"),
                format!("{:.2}", memory_us / (memory_us + redis)),
            ),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        println!(
            "{:<54} {:>10.1} {:>10} {:>6.2} {:>8}",
            row.target, row.process_us, redis, row.busy, ceiling
        );
        csv.push_str(&format!(
            "receiver {JOBS} jobs {},{:.0},{:.1},{redis},{:.2},{ceiling}\n",
            row.target, row.rate, row.process_us, row.busy
        ));
    }
    std::fs::write(dir.join("receiver-cpu.csv"), csv).unwrap();
    println!("written: {}", dir.join("receiver-cpu.csv").display());
}
