//! Micro-benchmarks of the hot paths: decoding and encoding a long transcript, scheduling maths, the rate
//! budget, and the callback receiver's whole check-and-apply path in-process.
//!
//! ```text
//! cargo bench --bench micro
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use daglo::callback::{CallbackConfig, CallbackDelivery};
use daglo::client::{RateBudget, TokenBucket};
use daglo::models::decode_status_body;
use daglo::models::{Status, SttResult, TimeOffset, Word};
use daglo::poll::PollPolicy;
use daglo::test_util::ProgressTracker;
use daglo::{JobOptions, ResultDelivery, StatusBody};
use http_body_util::Full;
use tower::Service;

/// A 4-hour, 36,000-word final body with word timings: what a long meeting sends.
fn four_hour_body() -> Vec<u8> {
    let words = (0..36_000u64)
        .map(|i| {
            let mut word = Word::new(
                "회의를 ",
                TimeOffset::from(Duration::from_millis(i * 400)),
                TimeOffset::from(Duration::from_millis(i * 400 + 350)),
            );
            word.segment_id = Some((i / 12).to_string());
            word.speaker = Some((i / 12 % 3 + 1).to_string());
            word.has_keyword = Some(false);
            word
        })
        .collect();
    let mut result = SttResult::new("회의를 ".repeat(36_000));
    result.words = words;
    let mut body = StatusBody::new(Status::Transcribed);
    body.stt_results = Some(vec![result]);
    serde_json::to_vec(&body).unwrap()
}

fn decoding(c: &mut Criterion) {
    let body = four_hour_body();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("4h transcript ({} MB)", body.len() / 1_000_000), |b| {
        b.iter(|| decode_status_body(black_box(&body)).unwrap())
    });
    group.finish();
    // The other way: what the emulator (and a Redis registry's stored state) writes.
    let decoded = decode_status_body(&body).unwrap();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("4h transcript ({} MB)", body.len() / 1_000_000), |b| {
        b.iter(|| serde_json::to_vec(black_box(&decoded)).unwrap())
    });
    group.finish();
}

fn scheduling(c: &mut Criterion) {
    let policy = PollPolicy::default();
    let mut tracker = ProgressTracker::default();
    for second in 0..10u32 {
        tracker.observe(Duration::from_secs(u64::from(second)), Some(second * 3), 0.5);
    }
    c.bench_function("adaptive next_interval", |b| {
        b.iter(|| policy.next_interval(black_box(&tracker), Duration::from_secs(10), None, 0.5))
    });
    let bucket = TokenBucket::new(1e9, 1_000_000);
    let now = Instant::now();
    c.bench_function("token bucket try_acquire", |b| {
        b.iter(|| bucket.try_acquire(black_box(now)))
    });
}

fn receiving(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The ticket keeps the job registered for the whole benchmark.
    let (mut receiver, url, header, _ticket) = runtime.block_on(async {
        // The client is never used: the benchmark sends progress callbacks only.
        let client = daglo::Client::builder()
            .token("t")
            .base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let callbacks = CallbackDelivery::new(
            client,
            CallbackConfig::new("https://hooks.example.com/cb").unwrap(),
        )
        .unwrap();
        let mut options = JobOptions::default();
        let ticket = callbacks.prepare(&mut options).await.unwrap();
        let callback = options.callback.unwrap();
        let header = callback.headers.into_iter().next().unwrap();
        (callbacks.receiver(), callback.url, header, ticket)
    });
    let path = url::Url::parse(&url).unwrap().path().to_owned();
    let progress = Bytes::from(r#"{"status":"transcribing","progress":50}"#);
    c.bench_function("receiver: verify + apply a progress callback", |b| {
        b.iter(|| {
            let request = http::Request::post(path.as_str())
                .header(header.0.as_str(), header.1.as_str())
                .header("content-type", "application/json")
                .header("content-length", progress.len())
                .body(Full::new(progress.clone()))
                .unwrap();
            let answer = runtime.block_on(receiver.call(request)).unwrap();
            assert_eq!(answer.status(), 200);
        })
    });
    c.bench_function("receiver: reject a forged callback", |b| {
        b.iter(|| {
            let request = http::Request::post(path.as_str())
                .header(
                    "authorization",
                    "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                )
                .header("content-type", "application/json")
                .header("content-length", progress.len())
                .body(Full::new(progress.clone()))
                .unwrap();
            let answer = runtime.block_on(receiver.call(request)).unwrap();
            assert_eq!(answer.status(), 401);
        })
    });
}

criterion_group!(benches, decoding, scheduling, receiving);
criterion_main!(benches);
