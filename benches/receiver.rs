//! How many callbacks a second the receiver answers, against a bare hyper server on the same
//! machine in the same run.
//!
//! ```text
//! cargo bench --bench receiver
//! ```
//!
//! An in-process load generator keeps `CONNECTIONS` keep-alive HTTP/1.1 connections busy for
//! `DURATION` against each target in turn: the daglo receiver with valid callbacks (a progress
//! body for a registered job: credential checked, body decoded, state applied), the same
//! receiver with forged ones (a wrong credential: `401`), and a bare hyper 1 server that answers
//! every request `{}` without reading anything. Printed: answers per second and the ratio of
//! each to bare hyper. The generator shares the two cores with the server, as a real sender on
//! the same machine would.
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
const DURATION: Duration = Duration::from_secs(3);
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

/// Answers per second from `addr` for `shot`, and how many were not the `expected` status.
async fn load(addr: SocketAddr, shot: Shot, expected: u16) -> (f64, u64) {
    let answered = Arc::new(AtomicU64::new(0));
    let unexpected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
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

/// The registry comparison: in memory, then Redis; rows for the CSV.
async fn registries() -> Vec<(String, f64, f64)> {
    let mut rows = Vec::new();
    {
        // A warm-up on receivers of their own, so neither target measured pays cold caches.
        let (addr, jobs, _alive) = receiver_with_jobs(None, JOBS).await;
        let _ = load_jobs(addr, jobs).await;
    }
    let (addr, jobs, alive) = receiver_with_jobs(None, JOBS).await;
    let (memory, bad) = load_jobs(addr, jobs).await;
    assert_eq!(bad, 0, "an in-memory callback was not answered 200");
    drop(alive);
    println!(
        "{:<40} {:>12.0} {:>8}",
        "receiver, in-memory registry", memory, "1.00x"
    );
    rows.push(("in-memory registry".to_owned(), memory, 1.0));
    let (addr, jobs, alive) = receiver_with_jobs(Some(Arc::new(HandedOff::new())), JOBS).await;
    let (handed_off, bad) = load_jobs(addr, jobs).await;
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
        return rows;
    };
    let store = daglo::redis::RedisStore::connect_with(
        &redis.url,
        daglo::redis::RedisOptions::default().namespace(redis_support::namespace("receiver-bench")),
    )
    .await
    .unwrap();
    let registry = Arc::new(daglo::redis::RedisRegistry::new(store).await);
    let (addr, jobs, alive) = receiver_with_jobs(Some(registry), JOBS).await;
    let (rate, bad) = load_jobs(addr, jobs).await;
    assert_eq!(bad, 0, "a Redis-backed callback was not answered 200");
    drop(alive);
    println!(
        "{:<40} {:>12.0} {:>7.2}x",
        "receiver, Redis registry",
        rate,
        rate / memory
    );
    rows.push(("Redis registry".to_owned(), rate, rate / memory));
    rows
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

/// A bare hyper 1 server answering `{}` to everything.
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
                let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                    let mut answer = Response::new(Full::new(Bytes::from_static(b"{}")));
                    answer
                        .headers_mut()
                        .insert("content-type", http::HeaderValue::from_static("application/json"));
                    Ok::<_, Infallible>(answer)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
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
    println!(
        "{CONNECTIONS} keep-alive connections, {} s per target, 2 cores shared with the generator",
        DURATION.as_secs()
    );
    // Warm-up, so the first target measured pays no cold caches.
    let _ = load(bare, valid.clone(), 200).await;
    let (bare_rate, _) = load(bare, valid.clone(), 200).await;
    let (valid_rate, valid_bad) = load(addr, valid, 200).await;
    let (forged_rate, forged_bad) = load(addr, forged, 401).await;
    println!("{:<40} {:>12} {:>8}", "target", "answers/s", "ratio");
    println!(
        "{:<40} {:>12.0} {:>8}",
        "bare hyper 1, answering {}", bare_rate, "1.00x"
    );
    println!(
        "{:<40} {:>12.0} {:>7.2}x",
        "daglo receiver, valid callbacks",
        valid_rate,
        valid_rate / bare_rate
    );
    println!(
        "{:<40} {:>12.0} {:>7.2}x",
        "daglo receiver, forged callbacks (401)",
        forged_rate,
        forged_rate / bare_rate
    );
    assert_eq!(valid_bad, 0, "a valid callback was not answered 200");
    assert_eq!(forged_bad, 0, "a forged callback was not answered 401");
    drop(alive);

    println!("\n{JOBS} registered jobs, {BODIES_PER_JOB} progress bodies each, {CONNECTIONS} connections");
    println!("{:<40} {:>12} {:>8}", "target", "callbacks/s", "ratio");
    let rows = registries().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/daglo-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("target,connections,answers_per_s,ratio\n");
    csv.push_str(&format!("bare hyper 1,{CONNECTIONS},{bare_rate:.0},1.00\n"));
    csv.push_str(&format!(
        "receiver valid callbacks (one job),{CONNECTIONS},{valid_rate:.0},{:.2}\n",
        valid_rate / bare_rate
    ));
    csv.push_str(&format!(
        "receiver forged callbacks (401),{CONNECTIONS},{forged_rate:.0},{:.2}\n",
        forged_rate / bare_rate
    ));
    for (name, rate, ratio) in rows {
        csv.push_str(&format!(
            "receiver {JOBS} jobs {name},{CONNECTIONS},{rate:.0},{ratio:.2}\n"
        ));
    }
    std::fs::write(dir.join("receiver.csv"), csv).unwrap();
    println!("written: {}", dir.join("receiver.csv").display());
}
