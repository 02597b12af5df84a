//! `cargo bench -p daglo-serve --bench front_door`: how late Daglo's callbacks finish jobs, and
//! how long `/healthz` takes, while a crowd of event-stream clients hammers the service — as
//! browsers' `EventSource` does: each client opens a stream, and when it is refused or ends,
//! opens it again a second later.
//!
//! The service (hybrid strategy, in-process, on loopback) and the emulator run here; for each
//! crowd size, 20 jobs of 2 s are submitted and the time from their completion at the emulator
//! to their end at the service is measured (the final callback, its confirmation and the
//! journal write), with the emulator's failed callbacks counted. Rows go to
//! `target/daglo-bench/front_door.csv`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use daglo::sim::{Planner, SimConfig, Simulator};
use daglo_serve::{Config, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Jobs measured per crowd size.
const JOBS: usize = 20;
/// API keys the crowd spreads over (each holds at most `max_streams_per_key` streams).
const KEYS: usize = 40;
const PROCESSING: Duration = Duration::from_secs(2);

fn key(i: usize) -> String {
    format!("sk-bench-{i:04}-0123456789abcdef")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `EventSource`-like client: opens the stream of `job`, reads until it ends or is refused,
/// waits a second, and again — until `stop`.
async fn crowd_client(
    addr: SocketAddr,
    job: String,
    key: String,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
) {
    let request =
        format!("GET /v1/jobs/{job}/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n");
    let mut buffer = vec![0_u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await
            && stream.write_all(request.as_bytes()).await.is_ok()
        {
            opened.fetch_add(1, Ordering::Relaxed);
            loop {
                let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await;
                match read {
                    Ok(Ok(0) | Err(_)) => break,
                    _ if stop.load(Ordering::Relaxed) => return,
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Row {
    streams: usize,
    finish_p50_ms: f64,
    finish_p99_ms: f64,
    healthz_p99_ms: f64,
    callbacks_failed: usize,
    stream_requests: u64,
}

async fn run(streams: usize) -> Row {
    let sim = Simulator::start(
        SimConfig::default()
            .processing_time(PROCESSING)
            .planner(Planner::new(|submission, plan| {
                if submission.audio_name.contains("long") {
                    plan.processing_time = Duration::from_secs(3600);
                }
            })),
    )
    .await
    .unwrap();
    let port = free_port();
    let data = std::env::temp_dir().join(format!("daglo-bench-front-door-{}-{streams}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let toml = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nbase_url = \"{}\"\n\
         data_dir = \"{}\"\napi_keys = {:?}\nstrategy = \"hybrid\"\n",
        sim.base_url(),
        data.display(),
        keys
    );
    let server = Server::start(Config::from_toml(&toml).unwrap(), sim.token().to_owned())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();
    let submit = |url: String| {
        let (http, base, key) = (http.clone(), base.clone(), keys[0].clone());
        async move {
            loop {
                let answer = http
                    .post(format!("{base}/v1/jobs"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({ "url": url }))
                    .send()
                    .await;
                if let Ok(answer) = answer
                    && answer.status().is_success()
                {
                    let job: serde_json::Value = answer.json().await.unwrap();
                    return (job["id"].as_str().unwrap().to_owned(), Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (long, _) = submit("https://bench.example/long.wav".to_owned()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let mut crowd = Vec::new();
    for i in 0..streams {
        crowd.push(tokio::spawn(crowd_client(
            server.local_addr(),
            long.clone(),
            keys[i % KEYS].clone(),
            stop.clone(),
            opened.clone(),
        )));
    }
    if streams > 0 {
        tokio::time::sleep(Duration::from_secs(3)).await; // the crowd is in and reconnecting
    }
    // The probe, every 100 ms while the jobs run.
    let probing = Arc::new(AtomicBool::new(true));
    let probe = {
        let (http, base, probing) = (http.clone(), base.clone(), probing.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            while probing.load(Ordering::Relaxed) {
                let started = Instant::now();
                let ok = http
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|a| a.status() == 200);
                times.push(if ok {
                    started.elapsed().as_secs_f64() * 1000.0
                } else {
                    f64::INFINITY
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            times
        })
    };
    let mut submitted = Vec::new();
    for i in 0..JOBS {
        submitted.push(submit(format!("https://bench.example/job-{i}.wav")).await);
    }
    // Each job's end is timed as it comes (all awaited at once).
    let waits = submitted.iter().map(|(id, at)| {
        let id: daglo::JobId = id.parse().unwrap();
        let transcriber = server.transcriber().clone();
        let at = *at;
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(120), transcriber.outcome(&id)).await;
            // Done at the emulator PROCESSING after the submit's answer (at the latest).
            (at.elapsed().as_secs_f64() - PROCESSING.as_secs_f64()).max(0.0) * 1000.0
        }
    });
    let mut late = futures_util::future::join_all(waits).await;
    probing.store(false, Ordering::Relaxed);
    let mut probes = probe.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in crowd {
        client.abort();
    }
    let failed = sim.callback_log().iter().filter(|c| c.answer != Ok(200)).count();
    server.drain(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&data);
    late.sort_by(f64::total_cmp);
    probes.sort_by(f64::total_cmp);
    Row {
        streams,
        finish_p50_ms: percentile(&late, 50.0),
        finish_p99_ms: percentile(&late, 99.0),
        healthz_p99_ms: percentile(&probes, 99.0),
        callbacks_failed: failed,
        stream_requests: opened.load(Ordering::Relaxed),
    }
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for streams in [0_usize, 2000] {
        if filter
            .as_deref()
            .is_some_and(|f| !streams.to_string().contains(f))
        {
            continue;
        }
        let row = runtime.block_on(run(streams));
        println!(
            "stream clients {:>5}: job end after Daglo's p50 {:>7.1} ms p99 {:>7.1} ms; /healthz p99 {:>7.1} ms; callbacks failed {}; stream requests {}",
            row.streams,
            row.finish_p50_ms,
            row.finish_p99_ms,
            row.healthz_p99_ms,
            row.callbacks_failed,
            row.stream_requests
        );
        rows.push(row);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/daglo-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from(
        "stream_clients,jobs,finish_p50_ms,finish_p99_ms,healthz_p99_ms,callbacks_failed,stream_requests\n",
    );
    for row in &rows {
        csv.push_str(&format!(
            "{},{JOBS},{:.1},{:.1},{:.1},{},{}\n",
            row.streams,
            row.finish_p50_ms,
            row.finish_p99_ms,
            row.healthz_p99_ms,
            row.callbacks_failed,
            row.stream_requests
        ));
    }
    std::fs::write(dir.join("front_door.csv"), csv).unwrap();
}
