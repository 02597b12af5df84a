//! Everything daglo keeps in one process's memory, shared through Redis by every replica and
//! process on one Daglo account:
//!
//! - [`RedisRegistry`] — the callback registry. Daglo's callback for a job lands on *any*
//!   replica behind the load balancer; with the registry on Redis (and one key secret for all
//!   replicas) that replica stores it and the waiter on the replica that prepared the job wakes
//!   within milliseconds (pub/sub), or reads it later (a late or restarted waiter).
//! - [`RedisBudget`] — one rate budget per endpoint (submit, status, SRT) for every process:
//!   GCRA on Redis's clock; a `429` one process sees slows all.
//! - [`RedisJournal`] — the job journal, so any replica can recover any replica's pending jobs.
//!
//! One [`RedisStore`] (one multiplexed connection, reconnecting on its own) serves all three.
//!
//! ```no_run
//! use std::sync::Arc;
//! use daglo::callback::{CallbackConfig, CallbackDelivery, Secret};
//! use daglo::redis::{RedisJournal, RedisRegistry, RedisStore, SharedBudgets};
//! use daglo::{Client, Transcriber};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
//! let budgets = SharedBudgets::new(&store, "my-account");
//! let client = budgets.apply(Client::builder().token(std::env::var("DAGLO_API_TOKEN")?)).build()?;
//!
//! // Every replica: the same key secret, the same Redis.
//! let config = CallbackConfig::new("https://api.example.com/daglo")?
//!     .key_secret(Secret::new(std::env::var("DAGLO_CALLBACK_KEY_SECRET")?));
//! let registry = Arc::new(RedisRegistry::new(store.clone()).await);
//! let callbacks = CallbackDelivery::with_registry(client.clone(), config, registry)?;
//!
//! let transcriber = Transcriber::builder(client)
//!     .delivery(callbacks)
//!     .journal(Arc::new(RedisJournal::new(store, "meetings")))
//!     .build()
//!     .await?;
//! # let _ = transcriber;
//! # Ok(())
//! # }
//! ```
//!
//! **When Redis is down or slow**, nothing panics and nothing is lost silently: every command
//! fails within [`RedisOptions::response_timeout`]; the receiver answers a callback it cannot
//! store with `503` and `Retry-After` (the sender retries); a waiter's `prepare` or `wait`
//! returns the error; a journal write returns [`daglo_core::JournalError`]; a budget falls back to
//! a small local rate ([`BudgetOptions::fallback_per_second`]) and returns to the shared one when
//! Redis answers again. Connections come back on their own, and the wake-up subscription reads
//! every watched job's stored state when it does.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod budget;
mod commit;
mod journal;
mod known;
mod registry;
mod replicas;
mod store;
mod stored;
mod wakeups;

use std::sync::Arc;

pub use budget::{BudgetOptions, RedisBudget};
pub use journal::RedisJournal;
pub use registry::RedisRegistry;
pub use replicas::Replicas;
pub use store::{Durability, RedisError, RedisOptions, RedisStore};

/// The three endpoint budgets of one account, shared through Redis.
#[derive(Debug, Clone)]
pub struct SharedBudgets {
    /// `POST /transcripts`.
    pub submit: Arc<RedisBudget>,
    /// `GET /transcripts/{rid}`: give it to the poller too (`PollingConfig::budget`).
    pub status: Arc<RedisBudget>,
    /// `GET /transcripts/{rid}/srt`.
    pub srt: Arc<RedisBudget>,
}

impl SharedBudgets {
    /// The budgets of `account` with the default options (16 requests/s per endpoint for all
    /// processes together).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(store: &RedisStore, account: &str) -> Self {
        Self::with_options(store, account, &BudgetOptions::default())
    }

    /// The budgets of `account` with `options` for each endpoint.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn with_options(store: &RedisStore, account: &str, options: &BudgetOptions) -> Self {
        let budget = |endpoint| Arc::new(RedisBudget::new(store, account, endpoint, options.clone()));
        Self {
            submit: budget("submit"),
            status: budget("status"),
            srt: budget("srt"),
        }
    }

    /// `builder` drawing every endpoint's requests from these budgets.
    pub fn apply(&self, builder: daglo_client::ClientBuilder) -> daglo_client::ClientBuilder {
        builder
            .submit_budget(self.submit.clone())
            .status_budget(self.status.clone())
            .srt_budget(self.srt.clone())
    }
}
