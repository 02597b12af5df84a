//! Shared set-up: an emulator and a client pointed at it.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use daglo_client::{Client, RetryPolicy};
use daglo_sim::{SimConfig, Simulator};

/// An emulator with the rate limit off and instant jobs, unless `config` says otherwise.
pub async fn sim(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("emulator starts")
}

pub fn quick() -> SimConfig {
    SimConfig::default()
        .rate_limit(None)
        .processing_time(Duration::ZERO)
}

/// A client for `sim` whose retries wait at most a millisecond, so retry tests stay fast.
pub fn client(sim: &Simulator) -> Client {
    client_with_retry(
        sim,
        RetryPolicy {
            max_attempts: 4,
            backoff: daglo_core::Backoff::new(Duration::from_millis(1), 1.0, Duration::from_millis(1)),
        },
    )
}

pub fn client_with_retry(sim: &Simulator, retry: RetryPolicy) -> Client {
    Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .retry(retry)
        .build()
        .expect("client builds")
}

/// Submits audio by URL with default options; the test fails if the submit does.
pub async fn submit(client: &Client, audio: &str) -> daglo_core::SubmitResponse {
    client
        .submit_url(audio, &daglo_core::JobOptions::default())
        .await
        .expect("submit succeeds")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("daglo-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `bytes` to a file in the directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
