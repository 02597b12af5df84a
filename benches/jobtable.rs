//! The job table at scale, through `daglo serve`'s HTTP API in release: how long a page of
//! `GET /v1/jobs` takes with 10,000 to 1,000,000 jobs in the journal (and with a filter, and
//! deep in the list by cursor), `GET /v1/jobs/{id}`, how long the service takes to start
//! (ready to serve) on that journal, its peak memory, and the journal's bytes per job — and the
//! API while a retention sweep prunes a million jobs.
//!
//! ```text
//! cargo bench --bench jobtable                     # every row (about half an hour)
//! cargo bench --bench jobtable -- sqlite:10000     # some rows: backend:jobs, or prune:jobs
//! ```
//!
//! Writes `target/daglo-bench/jobtable.csv` after each row, keeping the rows of the last run that
//! were not measured again (kept as `docs/bench/jobtable.csv`, rendered in the
//! README by `tests/suite/readme_figures.rs`).
//!
//! Each journal is filled through the journal API (`Journal::claim`, `submitted`, `finished`),
//! as the service writes it: every job of the default tenant (its reserved label), with a `team`
//! label of 50 values and an idempotency key; 1 % still running, 2 % failed, the rest finished.
//! The SQLite journals live on a tmpfs (`/dev/shm`) so that a million synced writes fill in
//! minutes: reads come from the page cache either way. The service runs as a child process
//! (this binary, started again) so that its memory is its own; it is measured with one
//! connection per client, requests one after another:
//!
//! - `list`: `GET /v1/jobs?limit=20` (newest first);
//! - `filter`: `?limit=20&label=team=t7` and `?limit=20&state=failed`, alternately;
//! - `cursor`: `?limit=20&cursor=` a cursor half-way down the list (found by paging there);
//! - `get`: `GET /v1/jobs/{id}` of random jobs;
//! - `restart_ms`: from starting the process to its API answering, on the filled journal (it
//!   takes up the running jobs before it answers);
//! - `rss_mb`: the process's peak resident memory (`VmHWM`) after ten concurrent list calls
//!   and every measurement;
//! - `bytes_per_job`: the journal's file size (SQLite, its write-ahead log included) or Redis's
//!   `used_memory` growth, per job.
//!
//! The `prune` rows: a million ended jobs and sixteen clients listing one call after another.
//! `sqlite-16-readers`: the service without retention, for 20 s — the baseline. Then
//! `sqlite-pruning`: a service started with a `retention_days` every job is past, its `list`
//! columns measured while the sweep runs (the goal: p99 within 2× of the baseline's);
//! `restart_ms` there is the time the sweep took to delete them all.

#[path = "../crates/daglo-redis/tests/support/mod.rs"]
mod redis_support;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daglo::JobId;
use daglo::journal::{Intent, Journal, OutcomeKind};
use daglo::models::Status;
use daglo::sim::{SimConfig, Simulator};

/// The API key the bench's service takes.
const KEY: &str = "bench-key-0123456789abcdef0123456789abcdef";
/// The journal name `daglo serve` uses on Redis.
const REDIS_JOURNAL: &str = "daglo-serve";
/// Requests per measured kind.
const SAMPLES: usize = 300;
/// The CSV's header (the README's table renders it).
const HEADER: &str = "backend,jobs,running,list_p50_ms,list_p99_ms,filter_p99_ms,cursor_p99_ms,get_p99_ms,restart_ms,rss_mb,bytes_per_job";

/// The rows of a full run.
const ROWS: [(&str, usize); 6] = [
    ("sqlite", 10_000),
    ("sqlite", 100_000),
    ("sqlite", 1_000_000),
    ("redis", 10_000),
    ("redis", 100_000),
    ("prune", 1_000_000),
];

fn main() {
    // Started again as the service: run it until stdin closes.
    if let Some(config) = std::env::var_os("DAGLO_JOBTABLE_CHILD") {
        child(Path::new(&config));
        return;
    }
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let rows: Vec<(&str, usize)> = ROWS
        .into_iter()
        .filter(|(backend, jobs)| named.is_empty() || named.iter().any(|n| *n == format!("{backend}:{jobs}")))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let out = output_dir();
    std::fs::create_dir_all(&out).expect("the bench's directory");
    let path = out.join("jobtable.csv");
    // Rows not measured this time are kept from the last run (same columns), so that a run of
    // some rows completes the table instead of replacing it.
    let mut kept: Vec<(String, String)> = std::fs::read_to_string(&path)
        .ok()
        .filter(|text| text.lines().next() == Some(HEADER))
        .map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| Some((row_name(line)?, line.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    for (backend, jobs) in rows {
        for row in runtime.block_on(measure(backend, jobs)) {
            println!("{row}");
            let name = row_name(&row).expect("a row names its backend and jobs");
            kept.retain(|(n, _)| *n != name);
            kept.push((name, row));
        }
        // In the order of `ROWS`; the prune row's two (idle readers, then pruning) last.
        let order = |name: &str| {
            ROWS.iter()
                .position(|(b, j)| name == format!("{b}:{j}"))
                .unwrap_or(if name.starts_with("sqlite-16-readers") {
                    ROWS.len()
                } else {
                    ROWS.len() + 1
                })
        };
        kept.sort_by_key(|(n, _)| order(n));
        let lines: Vec<&str> = std::iter::once(HEADER)
            .chain(kept.iter().map(|(_, l)| l.as_str()))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").expect("write the CSV");
    }
    println!("wrote {}", path.display());
}

/// A CSV row's `backend:jobs`.
fn row_name(line: &str) -> Option<String> {
    let mut fields = line.split(',');
    Some(format!("{}:{}", fields.next()?, fields.next()?))
}

/// Where the results go: `target/daglo-bench/` (or under `CARGO_TARGET_DIR`).
fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("daglo-bench")
}

/// The service, in this process started again: ready line on stdout, ends when stdin closes.
fn child(config: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let text = std::fs::read_to_string(config).expect("the bench's config");
        let config = daglo_serve::Config::from_toml(&text).expect("a valid config");
        let server = daglo_serve::Server::start(config, "bench-token".to_owned())
            .await
            .expect("the service starts");
        println!("ready {}", server.local_addr());
        let _ = std::io::stdout().flush();
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .read_line(&mut sink)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await;
        server.drain(Duration::from_secs(1)).await;
    });
}

/// The service as a child process.
struct Service {
    child: std::process::Child,
    base: String,
    started: Duration,
}

impl Service {
    fn start(config: &Path) -> Self {
        let began = Instant::now();
        let mut child = std::process::Command::new(std::env::current_exe().expect("this binary"))
            .env("DAGLO_JOBTABLE_CHILD", config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the service");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its ready line");
        let addr = line
            .trim()
            .strip_prefix("ready ")
            .expect("a ready line")
            .to_owned();
        Self {
            child,
            base: format!("http://{addr}"),
            started: began.elapsed(),
        }
    }

    /// Peak resident memory, in MB.
    fn peak_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, base_url: &str, redis: Option<&str>, retention_days: Option<f64>) -> PathBuf {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\nbase_url = \"{base_url}\"\ndata_dir = \"{}\"\napi_keys = [\"{KEY}\"]\n\
         strategy = \"polling\"\nallow_insecure_http = true\n",
        dir.join("data").display()
    );
    if let Some(url) = redis {
        text.push_str(&format!("redis_url = \"{url}\"\nredis_allow_volatile = true\n"));
    }
    if let Some(days) = retention_days {
        text.push_str(&format!("retention_days = {days}\n"));
    }
    let path = dir.join("daglo.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// Fills `journal` with `jobs` jobs as the service writes them; their ids.
async fn fill(journal: Arc<dyn Journal>, jobs: usize, ended_only: bool) -> Vec<JobId> {
    let began = Instant::now();
    let workers = 8;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let rid = daglo::Rid::new("bench-rid");
            for i in (worker..jobs).step_by(workers) {
                let labels = [
                    ("daglo.tenant".to_owned(), "default".to_owned()),
                    ("team".to_owned(), format!("t{}", i % 50)),
                ];
                let intent = Intent::new(
                    format!("https://media.example/calls/{i}.wav"),
                    "fnv1a64:0123456789abcdef",
                    "polling",
                )
                .with_key(Some(format!("default/call-{i}")))
                .with_labels(labels.into())
                .with_owner(Some("bench:1".to_owned()));
                ids.push(intent.job.clone());
                let daglo::journal::Claim::Created(id) = journal.claim(intent).await.expect("claim") else {
                    panic!("a fresh key");
                };
                journal.submitted(id, &rid).await.expect("submitted");
                if i % 100 == 0 && !ended_only {
                    continue;
                }
                let outcome = if i % 50 == 1 {
                    OutcomeKind::Failed(Status::parse("file_error"))
                } else {
                    OutcomeKind::Transcript
                };
                journal
                    .finished(id, &outcome, Some("digest"))
                    .await
                    .expect("finished");
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(jobs);
    for task in tasks {
        ids.extend(task.await.expect("a fill task"));
    }
    eprintln!("filled {jobs} jobs in {:.1} s", began.elapsed().as_secs_f64());
    ids
}

fn quantile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return f64::NAN;
    }
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[at.min(samples.len() - 1)]
}

/// One request's time in ms; panics on an answer that is not 200.
async fn timed(client: &reqwest::Client, url: &str) -> (f64, serde_json::Value) {
    let began = Instant::now();
    let answer = client.get(url).bearer_auth(KEY).send().await.expect("an answer");
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.expect("a JSON answer");
    let ms = began.elapsed().as_secs_f64() * 1000.0;
    assert!(status.is_success(), "{url}: {status} {body}");
    (ms, body)
}

/// A cursor about half-way down the list, found by paging there.
async fn deep_cursor(client: &reqwest::Client, base: &str, jobs: usize) -> String {
    let mut cursor: Option<String> = None;
    for _ in 0..(jobs / 2 / 500).max(1) {
        let url = match &cursor {
            Some(c) => format!("{base}/v1/jobs?limit=500&cursor={c}"),
            None => format!("{base}/v1/jobs?limit=500"),
        };
        let (_, body) = timed(client, &url).await;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    cursor.expect("a list longer than a page")
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v:.2}")
    }
}

async fn measure(backend: &str, jobs: usize) -> Vec<String> {
    let base_dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base_dir.join(format!("daglo-jobtable-{backend}-{jobs}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).expect("the bench's directory");
    let sim = Simulator::start(SimConfig::default().rate_limit(None))
        .await
        .expect("the emulator starts");
    let redis = match backend {
        "redis" => Some(
            redis_support::OwnRedis::start("the jobtable bench")
                .await
                .expect("redis-server is installed"),
        ),
        _ => None,
    };
    let redis_url = redis.as_ref().map(redis_support::OwnRedis::url);
    // Fill.
    let (ids, bytes_per_job) = match &redis_url {
        Some(url) => {
            let store = daglo::redis::RedisStore::connect(url).await.expect("Redis");
            let before = used_memory(url).await;
            let journal: Arc<dyn Journal> = Arc::new(daglo::redis::RedisJournal::new(store, REDIS_JOURNAL));
            let ids = fill(journal, jobs, false).await;
            let after = used_memory(url).await;
            (ids, (after - before) / jobs as f64)
        }
        None => {
            let path = dir.join("data/journal.sqlite");
            let journal = Arc::new(daglo::journal::SqliteJournal::open(&path).expect("the journal"));
            let ids = fill(journal.clone(), jobs, backend == "prune").await;
            drop(journal);
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let bytes = size(&path) + size(&dir.join("data/journal.sqlite-wal"));
            (ids, bytes as f64 / jobs as f64)
        }
    };
    let running = if backend == "prune" { 0 } else { jobs.div_ceil(100) };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .expect("a client");
    let row = if backend == "prune" {
        // The same sixteen readers first on the idle service (no retention): the baseline the
        // sweep's row is compared with.
        let idle = {
            let service = Service::start(&config(&dir, &sim.base_url(), None, None));
            let readers = Readers::start(&client, &service.base);
            tokio::time::sleep(Duration::from_secs(20)).await;
            let mut samples = readers.stop().await;
            let rss = service.peak_mb();
            service.stop();
            format!(
                "sqlite-16-readers,{jobs},0,{},{},,,,,{rss:.0},{bytes_per_job:.0}",
                fmt(quantile(&mut samples, 0.5)),
                fmt(quantile(&mut samples, 0.99)),
            )
        };
        println!("{idle}");
        // Every job is past a retention of a second; the sweep starts with the service.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let service = Service::start(&config(&dir, &sim.base_url(), None, Some(1.0 / 86_400.0)));
        let began = Instant::now();
        let base = service.base.clone();
        let readers = Readers::start(&client, &base);
        // Until the sweep has deleted every job.
        loop {
            let (_, body) = timed(&client, &format!("{base}/v1/jobs?limit=1")).await;
            if body["jobs"].as_array().is_none_or(Vec::is_empty) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let swept = began.elapsed();
        let mut samples = readers.stop().await;
        eprintln!(
            "pruned {jobs} jobs in {:.1} s while 16 clients made {} list calls",
            swept.as_secs_f64(),
            samples.len()
        );
        let rss = service.peak_mb();
        service.stop();
        let p50 = quantile(&mut samples, 0.5);
        let p99 = quantile(&mut samples, 0.99);
        vec![
            idle,
            format!(
                "sqlite-pruning,{jobs},0,{},{},,,,{:.0},{rss:.0},{bytes_per_job:.0}",
                fmt(p50),
                fmt(p99),
                swept.as_secs_f64() * 1000.0
            ),
        ]
    } else {
        let service = Service::start(&config(&dir, &sim.base_url(), redis_url.as_deref(), None));
        let restart = service.started;
        let base = service.base.clone();
        // Warm up: the first requests open connections.
        for _ in 0..20 {
            timed(&client, &format!("{base}/v1/jobs?limit=20")).await;
        }
        // Ten list calls at once.
        let burst: Vec<_> = (0..10)
            .map(|_| {
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move { timed(&client, &format!("{base}/v1/jobs?limit=20")).await.0 })
            })
            .collect();
        for call in burst {
            call.await.expect("a burst call");
        }
        let mut list = Vec::new();
        for _ in 0..SAMPLES {
            list.push(timed(&client, &format!("{base}/v1/jobs?limit=20")).await.0);
        }
        let mut filter = Vec::new();
        for n in 0..SAMPLES {
            let url = if n % 2 == 0 {
                format!("{base}/v1/jobs?limit=20&label=team=t{}", n % 50)
            } else {
                format!("{base}/v1/jobs?limit=20&state=failed")
            };
            filter.push(timed(&client, &url).await.0);
        }
        let deep = deep_cursor(&client, &base, jobs).await;
        let mut cursor = Vec::new();
        for _ in 0..SAMPLES {
            cursor.push(
                timed(&client, &format!("{base}/v1/jobs?limit=20&cursor={deep}"))
                    .await
                    .0,
            );
        }
        let mut get = Vec::new();
        let mut pick = daglo::internal::fnv1a64(b"jobtable");
        for _ in 0..SAMPLES {
            pick = pick
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = &ids[(pick >> 33) as usize % ids.len()];
            get.push(timed(&client, &format!("{base}/v1/jobs/{id}")).await.0);
        }
        let rss = service.peak_mb();
        service.stop();
        vec![format!(
            "{backend},{jobs},{running},{},{},{},{},{},{:.0},{rss:.0},{bytes_per_job:.0}",
            fmt(quantile(&mut list.clone(), 0.5)),
            fmt(quantile(&mut list, 0.99)),
            fmt(quantile(&mut filter, 0.99)),
            fmt(quantile(&mut cursor, 0.99)),
            fmt(quantile(&mut get, 0.99)),
            restart.as_secs_f64() * 1000.0
        )]
    };
    drop(redis);
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
    row
}

/// Sixteen clients listing `GET /v1/jobs?limit=20` one call after another, until stopped.
struct Readers {
    stop: Arc<std::sync::atomic::AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<Vec<f64>>>,
}

impl Readers {
    fn start(client: &reqwest::Client, base: &str) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers = (0..16)
            .map(|_| {
                let (client, base, stop) = (client.clone(), base.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        samples.push(timed(&client, &format!("{base}/v1/jobs?limit=20")).await.0);
                    }
                    samples
                })
            })
            .collect();
        Self { stop, readers }
    }

    /// Stops them; every call's time, in ms.
    async fn stop(self) -> Vec<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut samples = Vec::new();
        for reader in self.readers {
            samples.extend(reader.await.expect("a reader"));
        }
        samples
    }
}

/// Redis's `used_memory`, in bytes (asked with `redis-cli`, installed with `redis-server`).
async fn used_memory(url: &str) -> f64 {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-u", url, "INFO", "memory"])
        .output()
        .await
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}
