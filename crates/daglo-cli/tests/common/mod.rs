//! What the `daglo` binary's tests share: running it, temporary directories, audio files, an
//! emulator that outlives the binary, and a private Redis.
#![allow(dead_code)] // Each test binary uses some of these.

use std::path::PathBuf;
use std::process::{Command, Output};

pub(crate) const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/standup.wav");

pub(crate) fn daglo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daglo"))
        .args(args)
        .env_remove("DAGLO_API_TOKEN")
        .output()
        .expect("the binary runs")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("daglo-cli-{}-{name}", std::process::id()))
}

/// Returns once the batch journal in `out` holds `count` entries, every one with its rid.
pub(crate) async fn all_submitted(out: &std::path::Path, count: usize) {
    use daglo::journal::Journal;
    let path = out.join("daglo-journal.sqlite");
    loop {
        if let Ok(journal) = daglo::journal::SqliteJournal::open(&path)
            && let Ok(entries) = journal.entries().await
            && entries.len() == count
            && entries
                .iter()
                .all(|e| matches!(e.state, daglo::journal::EntryState::Submitted { .. }))
        {
            return;
        }
        // Polling the journal file another process writes: there is no event to wait on.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A service that outlives the CLI — the emulator, running in this test process, which the CLI
/// reaches over HTTP — with jobs of `seconds`; `files` inputs and a fresh output directory.
pub(crate) async fn outliving_service(
    name: &str,
    files: usize,
    seconds: u64,
) -> (daglo::sim::Simulator, PathBuf, PathBuf) {
    let sim = daglo::sim::Simulator::start(
        daglo::sim::SimConfig::default().processing_time(std::time::Duration::from_secs(seconds)),
    )
    .await
    .unwrap();
    let out = temp(&format!("{name}-out"));
    let _ = std::fs::remove_dir_all(&out);
    (sim, audio_dir(name, files), out)
}

/// `count` small audio files in a fresh directory.
pub(crate) fn audio_dir(name: &str, count: usize) -> PathBuf {
    let dir = temp(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        // Three seconds at the emulator's 16,000 bytes a second: a few words each.
        std::fs::write(
            dir.join(format!("call-{i:03}.wav")),
            vec![(i % 250) as u8 + 1; 48_000],
        )
        .unwrap();
    }
    dir
}

/// The Redis a test uses: `DAGLO_TEST_REDIS_URL` when set (CI starts one), or else a private
/// `redis-server` of the test's own when one is installed (killed when the guard drops). With
/// neither the test says so on the terminal, past the harness's capture, and passes — except
/// under CI, which must run it.
pub(crate) fn test_redis(test: &str) -> Option<(String, Option<RedisGuard>)> {
    if let Ok(url) = std::env::var("DAGLO_TEST_REDIS_URL")
        && !url.is_empty()
    {
        return Some((url, None));
    }
    let (url, guard) = private_redis(test)?;
    Some((url, Some(guard)))
}

#[path = "../../../../tests/shared/private_redis.rs"]
mod shared_redis;
pub(crate) use shared_redis::{RedisGuard, private_redis};
