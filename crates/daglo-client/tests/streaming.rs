//! A large upload is streamed from disk: the process's peak memory does not grow with the file.
//!
//! This test runs in its own binary so the peak (VmHWM) belongs to it alone.

#![cfg(target_os = "linux")]

mod support;

use daglo_client::StatusAnswer;
use daglo_core::JobOptions;
use support::{TempDir, client, quick, sim};

const FILE_BYTES: u64 = 256 * 1024 * 1024;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_upload_does_not_load_the_file_into_memory() {
    let sim = sim(quick()).await;
    let client = client(&sim);
    let dir = TempDir::new("stream");
    let path = dir.0.join("long-meeting.wav");
    // A sparse file: no disk space used, reads back as zeros (so the job ends silent).
    std::fs::File::create(&path).unwrap().set_len(FILE_BYTES).unwrap();

    let before = peak_rss_bytes();
    let job = client.submit_file(&path, &JobOptions::default()).await.unwrap();
    let growth = peak_rss_bytes().saturating_sub(before);
    println!(
        "peak RSS grew by {} KiB for a {} MiB upload",
        growth / 1024,
        FILE_BYTES >> 20
    );

    assert!(
        growth < FILE_BYTES / 4,
        "peak memory grew by {growth} bytes for a {FILE_BYTES}-byte upload"
    );
    // The emulator saw every byte (all zero: silent audio).
    assert_eq!(client.status(&job.rid).await.unwrap(), StatusAnswer::Empty);
}
