//! Readiness: whether this service can take a job now — its stores can be written (the journal
//! answers and is not gone, the data directory takes a write) and Daglo accepts its token.
//! `/readyz` asks on every probe; the token is asked at start and then every
//! [`TOKEN_EVERY`], on the subtitles endpoint (its own 20 req/s budget, which only transcript
//! downloads use), never on the submit or status budgets jobs need.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daglo::Client;
use daglo::Rid;
use daglo::internal::{error_chain, lock};
use daglo::journal::Journal;

/// How often the token is asked about after start.
pub(crate) const TOKEN_EVERY: Duration = Duration::from_secs(300);

/// How long a caller is told to wait (`Retry-After`) after a storage failure.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// What `/readyz` asks.
#[derive(Debug, Clone)]
pub(crate) struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    journal: Arc<dyn Journal>,
    /// Where a probe write goes (the data directory: results and the SQLite journal live there).
    probe: PathBuf,
    client: Client,
    /// Why Daglo refused the token, when it did (`401`/`403`) at the last ask.
    token_refused: Mutex<Option<String>>,
}

impl Readiness {
    pub(crate) fn new(journal: Arc<dyn Journal>, data_dir: &std::path::Path, client: Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                journal,
                probe: data_dir.join(".readyz-probe"),
                client,
                token_refused: Mutex::new(None),
            }),
        }
    }

    /// Why the service is not ready, or `Ok`.
    pub(crate) async fn check(&self) -> Result<(), String> {
        if let Some(reason) = lock(&self.inner.token_refused).clone() {
            return Err(reason);
        }
        self.inner
            .journal
            .check()
            .await
            .map_err(|e| format!("the journal: {}", error_chain(&e)))?;
        let probe = self.inner.probe.clone();
        tokio::task::spawn_blocking(move || write_probe(&probe))
            .await
            .map_err(|e| format!("the data directory: {e}"))?
            .map_err(|e| format!("the data directory cannot be written: {e}"))
    }

    /// Asks Daglo whether it takes the token: a subtitles request for a job that does not
    /// exist (`404` says the token is good; `401`/`403` that it is not). Other failures (Daglo
    /// unreachable) say nothing about the token and change nothing.
    pub(crate) async fn ask_token(&self) {
        let probe = Rid::new("daglo-serve-token-check");
        let refused = match self.inner.client.srt(&probe).await {
            Err(e) if e.is_auth() => Some(format!("Daglo refuses the API token: {}", error_chain(&e))),
            Err(e) if e.status() == Some(404) => None,
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %error_chain(&e), "the token check could not reach Daglo");
                return;
            }
        };
        if let Some(reason) = &refused {
            tracing::error!(reason = %reason, "not ready: fix DAGLO_API_TOKEN");
        }
        *lock(&self.inner.token_refused) = refused;
    }

    /// Asks about the token now and then, for as long as the task lives.
    pub(crate) async fn watch_token(self) {
        loop {
            tokio::time::sleep(TOKEN_EVERY).await;
            self.ask_token().await;
        }
    }
}

/// Writes, syncs and removes a small file: fails on a full disk or an unwritable directory.
fn write_probe(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = daglo::internal::private_file(path)?;
    file.write_all(&[0_u8; 4096])?;
    file.sync_all()?;
    drop(file);
    std::fs::remove_file(path)
}
