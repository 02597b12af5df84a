//! Memory per pending job: 100,000 jobs waited for at once, by polling and by callback, as the
//! growth of this process's resident set (Linux `/proc/self/status`).
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Polling: 100,000 watches on one scheduler whose status source says every job is still
//! transcribing (no network; the scheduler's budget paces the few polls that come due).
//! Callback: 100,000 prepared jobs — key, credential digest, registry entry and the ticket the
//! caller holds. Each figure is (RSS after − RSS before) / jobs, after a warm-up round so the
//! allocator's first growth is not counted.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daglo::callback::{CallbackConfig, CallbackDelivery};
use daglo::client::{Error, StatusAnswer};
use daglo::models::Status;
use daglo::poll::{PollPolicy, PollingConfig, PollingDelivery, StatusSource};
use daglo::{Client, JobOptions, ResultDelivery, Rid, StatusBody};

const JOBS: usize = 100_000;

/// Resident set, KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every job is still transcribing.
#[derive(Debug)]
struct Running;

#[async_trait]
impl StatusSource for Running {
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        let mut body = StatusBody::new(Status::Transcribing);
        body.rid = Some(rid.clone());
        body.progress = Some(40);
        Ok(StatusAnswer::Body(Box::new(body)))
    }
}

async fn polling(jobs: usize) -> (u64, u64) {
    let polling = PollingDelivery::with_source(
        Arc::new(Running),
        PollingConfig::default().policy(PollPolicy::Fixed(Duration::from_secs(3600))),
    );
    let before = rss_kib().unwrap_or_default();
    let watches: Vec<_> = (0..jobs)
        .map(|i| polling.follow(Rid::new(format!("{i:08x}-0000-4000-8000-000000000000"))))
        .collect();
    // The scheduler takes the watches in order: once it reports them all, they are in memory.
    while polling.stats().await.jobs < jobs {
        tokio::task::yield_now().await;
    }
    let after = rss_kib().unwrap_or_default();
    drop(watches);
    (before, after)
}

async fn callbacks(jobs: usize) -> (u64, u64) {
    let client = Client::builder()
        .token("t")
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let callbacks = CallbackDelivery::new(
        client,
        CallbackConfig::new("https://hooks.example.com/daglo").unwrap(),
    )
    .unwrap();
    let before = rss_kib().unwrap_or_default();
    let mut tickets = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let mut options = JobOptions::default();
        tickets.push(callbacks.prepare(&mut options).await.unwrap());
    }
    let after = rss_kib().unwrap_or_default();
    assert_eq!(callbacks.registered().await.unwrap(), jobs);
    drop(tickets);
    (before, after)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if rss_kib().is_none() {
        println!("no /proc/self/status here: nothing measured");
        return;
    }
    // Warm-up rounds, so the allocator's first growth is not counted.
    polling(JOBS / 10).await;
    callbacks(JOBS / 10).await;
    for (name, (before, after)) in [
        ("polling", polling(JOBS).await),
        ("callback", callbacks(JOBS).await),
    ] {
        let per_job = (after.saturating_sub(before) * 1024) as f64 / JOBS as f64;
        println!(
            "{name:<9} {JOBS} pending jobs: RSS {before} KiB -> {after} KiB, {per_job:.0} bytes ({:.2} KiB) per pending job",
            per_job / 1024.0
        );
    }
}
