//! Shared set-up for the Redis tests: which Redis, a fresh namespace per test, a private
//! `redis-server` a test may stop and start, and a round-robin forwarder.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::IntoResponse;
use daglo::redis::{RedisOptions, RedisStore};

/// The Redis a test uses: `DAGLO_TEST_REDIS_URL` when set (CI starts one), or else a private
/// `redis-server` of the test's own when one is installed (stopped when the returned value is
/// dropped). With neither, the test says on the terminal that it did not run, and passes —
/// except under CI (`CI` set), where Redis tests must run.
pub async fn redis(test: &str) -> Option<TestRedis> {
    if let Ok(url) = std::env::var("DAGLO_TEST_REDIS_URL")
        && !url.is_empty()
    {
        return Some(TestRedis { url, _own: None });
    }
    let own = OwnRedis::start(test).await?;
    Some(TestRedis {
        url: own.url(),
        _own: Some(own),
    })
}

/// The Redis of one test, and the private server behind it if the test started one.
pub struct TestRedis {
    pub url: String,
    _own: Option<OwnRedis>,
}

/// Says on the terminal — past the test harness's capture — that a test did not run.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// A namespace no other test (or earlier run) uses.
pub fn namespace(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "test:{test}:{}:{nanos}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn store(url: &str, namespace: &str) -> RedisStore {
    RedisStore::connect_with(url, RedisOptions::default().namespace(namespace))
        .await
        .expect("connect to the test Redis")
}

/// A `redis-server` of the test's own, without persistence, that the test may stop and start.
pub struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// Starts one on a free loopback port; `None` (with a message) if `redis-server` is not
    /// installed and this is not CI.
    pub async fn start(test: &str) -> Option<Self> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have redis-server installed"
            );
            skipped(
                test,
                "redis-server is not installed (apt-get install redis-server)",
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.resume().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port, and waits until it answers.
    pub async fn resume(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut answer = [0u8; 7];
                    if stream.write_all(b"PING\r\n").await.is_ok()
                        && stream.read_exact(&mut answer).await.is_ok()
                        && &answer == b"+PONG\r\n"
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "redis-server did not start on port {}", self.port);
    }

    /// Stops it (everything in it is lost: no persistence) and waits until it has exited.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

/// An HTTP forwarder that sends each request to the next of `targets` in turn: the load
/// balancer in front of receiver replicas. Like nginx's `proxy_next_upstream error
/// non_idempotent`, a request whose exchange with a target failed at the transport level (the
/// connection refused, or closed before an answer — a pooled keep-alive connection the replica
/// had just closed, say) goes to the next target, twice round them at most: a callback is safe to
/// deliver again, the receiver keeps the first final. An answer, whatever it is, is passed back
/// as is. (The emulator sends each callback once and retries nothing, as the real service may.)
pub struct Forwarder {
    pub addr: SocketAddr,
    pub forwarded: Arc<AtomicUsize>,
}

impl Forwarder {
    pub async fn start(targets: Vec<SocketAddr>) -> Self {
        let listener = daglo::callback::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::new();
        let count = forwarded.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let http = http.clone();
            let targets = targets.clone();
            let count = count.clone();
            async move {
                let first = count.fetch_add(1, Ordering::Relaxed);
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
                let mut headers = parts.headers.clone();
                headers.remove(http::header::HOST);
                let mut answer = None;
                for attempt in 0..2 * targets.len() {
                    let target = targets[(first + attempt) % targets.len()];
                    let sent = http
                        .request(
                            parts.method.clone(),
                            format!("http://{target}{}", parts.uri.path()),
                        )
                        .headers(headers.clone())
                        .body(body.clone())
                        .send()
                        .await;
                    let failed = sent.is_err();
                    answer = Some(sent);
                    if !failed {
                        break;
                    }
                }
                let answer = answer.expect("at least one target");
                match answer {
                    Ok(answer) => {
                        let status = answer.status();
                        let bytes = answer.bytes().await.unwrap_or_default();
                        (status, bytes).into_response()
                    }
                    Err(_) => http::StatusCode::BAD_GATEWAY.into_response(),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, forwarded }
    }
}

/// A TCP (layer 4) forwarder: each connection it accepts is joined to a fresh connection to the
/// next of `targets` in turn, and bytes are copied both ways until either side closes — a network
/// load balancer (HAProxy's `mode tcp`, a cloud NLB). It never parses HTTP, so it costs a few
/// system calls per exchange where [`Forwarder`] decodes and re-encodes each request; balancing
/// is per connection, so a job's callbacks reach whichever replica the sender's pooled connection
/// leads to. A refused connect goes to the next target, once round them at most; a connection
/// that no target takes is closed unanswered. The bench's Redis rows go through it (see
/// `benches/strategies.rs`).
pub struct TcpForwarder {
    pub addr: SocketAddr,
}

impl TcpForwarder {
    pub async fn start(targets: Vec<SocketAddr>) -> Self {
        let listener = daglo::callback::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let targets: Arc<[SocketAddr]> = targets.into();
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    // Out of descriptors, say: give the connections in flight a moment to end.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let first = next.fetch_add(1, Ordering::Relaxed);
                let targets = targets.clone();
                tokio::spawn(async move {
                    for attempt in 0..targets.len() {
                        let target = targets[(first + attempt) % targets.len()];
                        let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                            continue;
                        };
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                });
            }
        });
        Self { addr }
    }
}

/// The `p`-quantile of sorted `values`.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
