//! `daglo`: get speech-to-text results out of the [Daglo](https://daglo.ai) asynchronous API —
//! by **polling** or by **callback** — with a local emulator for offline tests.
//!
//! **Start with [`Transcriber`]**: it submits a job and waits for its outcome through the
//! strategy you chose. This runs a whole job against the in-process emulator (feature `sim`), no
//! token and no network needed; against the real service, build the client with
//! [`Client::new`]`(token)` instead.
//!
//! ```
//! use daglo::{JobOptions, Language, Outcome, ProgressEvent, Transcriber};
//! use daglo::sim::{SimConfig, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::start(SimConfig::default().processing_time(std::time::Duration::from_millis(300))).await?;
//! let client = daglo::sim::client(&sim)?;                  // or Client::new(token)
//! let transcriber = Transcriber::polling(client);
//!
//! let options = JobOptions::builder().language(Language::EnUs).speaker_diarization(Some(2)).build()?;
//! let pending = transcriber.submit_url("https://example.com/standup.wav", &options).await?;
//! let rid: daglo::Rid = pending.rid().clone();             // persist it: a restart can resume
//! let show = |event: &ProgressEvent| println!("{event}");
//! match transcriber.wait_with(pending, &show).await? {
//!     Outcome::Transcript { body, .. } => println!("{}", body.full_transcript()),
//!     Outcome::Empty { .. } => println!("no speech"),
//!     Outcome::Failed { status, message, .. } => println!("failed: {status} {message:?}"),
//!     other => println!("{other:?}"),                       // GaveUp: resume with the rid
//! }
//! # let _ = rid;
//! # sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## Choosing a strategy
//! Every strategy implements [`ResultDelivery`]; a [`Transcriber`] takes any of them, and
//! [`Transcriber::builder`] builds one from a [`StrategyConfig`](https://docs.rs/daglo/latest/daglo/enum.StrategyConfig.html) (serde), receiver included — so
//! switching is one value. The builder also takes the journal that makes jobs survive a crash.
//!
//! | strategy | costs | choose it when |
//! |---|---|---|
//! | polling ([`Transcriber::polling`](https://docs.rs/daglo/latest/daglo/struct.Transcriber.html#method.polling), [`poll`](https://docs.rs/daglo/latest/daglo/poll/index.html)) | a handful of status requests per job with the adaptive policy (5.4–5.6 in the strategies bench), under a shared 16 req/s budget | you cannot expose an https endpoint, or jobs are few |
//! | callback ([`callback`](https://docs.rs/daglo/latest/daglo/callback/index.html)) | one status request per job, confirming the final callback; a public https endpoint that nobody can forge | you run a server anyway and want results within milliseconds |
//! | hybrid ([`HybridDelivery`](https://docs.rs/daglo/latest/daglo/struct.HybridDelivery.html)) | callbacks, plus sparse polling for a job whose final callback is late | results must never be lost, even when a callback is |
//!
//! | polling policy | choose it when |
//! |---|---|
//! | `Adaptive` (default) | almost always: fewest requests for a given latency when the service reports progress |
//! | `Exponential { initial, factor, max }` | job lengths vary widely and progress is useless; latency up to `max` on long jobs |
//! | `Fixed(interval)` | short, similar jobs and a predictable request rate; cost grows with job length |
//!
//! Submits are **never retried once they may have reached the service**: Daglo has no
//! idempotency, so a second POST creates and bills a second job.
//! [`TranscribeError::may_have_created_job`] says when a failed call may still have created one,
//! and [`TranscribeError::rid`] hands back the rid of a job that exists.
//!
//! ## Modules and feature flags
//! | module | feature | default | what |
//! |---|---|---|---|
//! | root | — | — | [`Transcriber`] and its builder, [`StrategyConfig`](https://docs.rs/daglo/latest/daglo/enum.StrategyConfig.html), [`Client`], the common models, [`Outcome`], the [`ResultDelivery`] seam |
//! | [`client`] | — | — | the client's builder, its typed [`Error`](client::Error), retries and rate budgets |
//! | [`jobs`] | — | — | jobs as durable objects: event streams, filters, result stores, recovery reports |
//! | [`delivery`] | — | — | the rest of the delivery seam |
//! | [`strategy`] | `poll` or `callback` | yes | each strategy's settings, as configuration |
//! | [`poll`] | `poll` | yes | polling: one scheduler for every job, a shared rate budget, adaptive intervals |
//! | [`callback`] | `callback` | yes | callbacks: per-job credentials, a forward-only registry, a tower receiver, a standalone server |
//! | [`HybridDelivery`] | `poll` + `callback` | yes | callback first, polling as the safety net |
//! | [`sim`](https://docs.rs/daglo/latest/daglo/sim/index.html) | `sim` | no | the local emulator of the service, for tests and demos without a token or a network |
//! | [`journal`] | — (`journal` for SQLite) | — (no) | the durable job journal: the trait and its entries; [`SqliteJournal`](https://docs.rs/daglo/latest/daglo/journal/struct.SqliteJournal.html) on embedded SQLite with feature `journal` |
//! | [`redis`](https://docs.rs/daglo/latest/daglo/redis/index.html) | `redis` | no | several replicas or processes: the callback registry, the rate budgets and the journal shared through Redis |
//! | [`test_util`](https://docs.rs/daglo/latest/daglo/test_util/index.html) | `test-util` | no | virtual time and seeded randomness for reproducible tests and benchmarks |
//! | [`models`] | — | — | every request and answer field of the API |
//!
//! Examples (`cargo run --example NAME`): `quickstart`, `switch_strategy`, `axum_receiver`,
//! `resume`, `jobs_service`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod durable;
mod error;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub mod metrics;
mod pending;
#[cfg(any(feature = "poll", feature = "callback"))]
mod settings;
mod table;
mod transcriber;

#[cfg(all(feature = "poll", feature = "callback"))]
mod hybrid;

pub use builder::{StrategyError, TranscriberBuilder};
pub use daglo_client::Client;
pub use daglo_core::{
    DeliveryError, JobEvent, JobId, JobOptions, JobSnapshot, JobState, Language, Outcome, ProgressEvent,
    ProgressObserver, ResultDelivery, Rid, StatusBody, Ticket,
};
pub use error::TranscribeError;
#[cfg(all(feature = "poll", feature = "callback"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
pub use hybrid::HybridDelivery;
pub use pending::Pending;
#[cfg(any(feature = "poll", feature = "callback"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "poll", feature = "callback"))))]
pub use settings::StrategyConfig;
pub use table::{Input, Job};
pub use transcriber::Transcriber;

/// What the library counts through the `metrics` facade: see `docs/metrics.md`.
pub use daglo_core::telemetry;

/// Jobs as durable, queryable objects beyond [`Job`] and [`Input`]: their event streams, the
/// filter of [`Transcriber::jobs`], where results are kept ([`ResultStore`](jobs::ResultStore),
/// [`DirResults`](jobs::DirResults)) and what [`Transcriber::recover`] reports.
pub mod jobs {
    pub use crate::table::{DirResults, JobEvents, RecoveryReport, Resolution, ResultError, ResultStore};
    pub use daglo_core::{CursorError, JobCursor, JobFilter, JobPage, rfc3339};
}

/// The seam every strategy implements beyond [`ResultDelivery`] and [`Ticket`]: why a wait gave
/// up, and an observer that ignores progress.
pub mod delivery {
    pub use daglo_core::{GaveUpReason, IgnoreProgress};
}

/// The REST client and what it answers: [`Client`], its builder, its typed
/// [`Error`](client::Error) (with [`ErrorKind`](client::ErrorKind)), the retry policy and the
/// per-endpoint rate budgets every request of a process draws from.
pub mod client {
    pub use crate::durable::SRT_WAIT;
    pub use daglo_client::{
        ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_ANSWER_BYTES, DEFAULT_RETRY_BACKOFF, Error, ErrorKind,
        RateBudget, RetryPolicy, SRT_BACKOFF, SrtAnswer, StatusAnswer, TokenBucket, install_crypto_provider,
    };
    pub use daglo_core::Backoff;
}

/// Strategies as configuration: [`StrategyConfig`] (also at the root) and the settings of each
/// strategy, with one set of defaults. `docs/configuration.md` lists every key of the JSON/TOML
/// form.
#[cfg(any(feature = "poll", feature = "callback"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "poll", feature = "callback"))))]
pub mod strategy {
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    pub use crate::hybrid::{DEFAULT_HYBRID_WINDOW, HYBRID_SAFETY_NET};
    #[cfg(feature = "callback")]
    #[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
    pub use crate::settings::CallbackSettings;
    #[cfg(all(feature = "poll", feature = "callback"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "poll", feature = "callback"))))]
    pub use crate::settings::HybridSettings;
    #[cfg(feature = "poll")]
    #[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
    pub use crate::settings::PollingSettings;
}

/// Every request and answer field of the API, for code that builds requests or reads results in
/// detail. The types most code needs ([`JobOptions`], [`StatusBody`], …) are at the root too.
pub mod models {
    pub use daglo_core::{
        AUDIO_EXTENSIONS, Audio, AudioSource, Callback, ChannelWord, DecodeError, ErrorBody,
        JobOptionsBuilder, JsonObject, KeywordBoost, KeywordExtraction, MAX_CUE_CHARS, MAX_CUE_DURATION,
        MAX_UPLOAD_BYTES, Model, MultiChannel, NlpConfig, Sentiment, SentimentAnalysis, SentimentScore,
        SpeakerDiarization, Status, SttConfig, SttResult, SubmitRequest, SubmitResponse, TimeOffset,
        Utterance, VIDEO_EXTENSIONS, ValidationError, Word, decode_error_body, decode_status_body,
        decode_status_head, decode_submit_response,
    };
}

/// Polling delivery: one scheduler task for every job, a shared rate budget under the service's
/// 20 requests/s, and fixed, exponential or adaptive intervals.
///
/// Most code uses [`Transcriber::polling`]; build a [`PollingDelivery`](poll::PollingDelivery)
/// to choose the policy, the budget (shared by several pollers) or a deadline, and
/// [`watch`](poll::PollingDelivery::watch) a rid directly for its events.
#[cfg(feature = "poll")]
#[cfg_attr(docsrs, doc(cfg(feature = "poll")))]
pub mod poll {
    pub use daglo_core::{AdaptivePolicy, PollPolicy};
    pub use daglo_poll::{
        DEFAULT_ERROR_BACKOFF, PollingConfig, PollingDelivery, SchedulerStats, StatusSource, Watch,
        WatchOptions,
    };
}

/// Callback delivery: the service POSTs progress and the result to a receiver you run.
///
/// Daglo signs nothing, so every job gets its own credential; the receiver checks it before
/// reading the body, only moves a job's status forward and keeps the first final body. Run the
/// receiver standalone with [`CallbackDelivery::serve`](callback::CallbackDelivery::serve) (or
/// let [`StrategyConfig`] do it), or mount
/// [`CallbackDelivery::receiver`](callback::CallbackDelivery::receiver) next to your routes
/// (`examples/axum_receiver.rs`).
///
#[doc = include_str!("../crates/daglo-callback/docs/threat-model.md")]
#[cfg(feature = "callback")]
#[cfg_attr(docsrs, doc(cfg(feature = "callback")))]
pub mod callback {
    pub use daglo_callback::{
        Applied, CallbackAuth, CallbackConfig, CallbackDelivery, CallbackError, CallbackFuture,
        CallbackInbox, CallbackReceiver, CallbackServer, ConnectionLimits, DEFAULT_ACCEPT_BACKLOG,
        DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_INBOX_BODY_BYTES, DEFAULT_JOB_TTL,
        DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTION_TIME, DEFAULT_MAX_CONNECTIONS, FinalCallbacks,
        InMemoryRegistry, InboxEntry, JobKey, JobRegistry, JobView, Registered, RegistryError, ReplayError,
        Secret, TokenDigest, bind, bind_with_backlog,
    };
}

/// The local emulator of the service (`daglo-sim`): every endpoint, the rate limit, callbacks
/// and fault injection, in-process on `127.0.0.1:0`. For tests and demos without a token or a
/// network; the same emulator runs standalone as `daglo sim` (or the `daglo-sim` binary).
#[cfg(feature = "sim")]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim {
    pub use daglo_sim::{
        CallbackRecord, Clock, DEFAULT_TOKEN, Ending, Endpoint, EndpointStats, ErrorBurst, Faults, JobPlan,
        JobRecord, ManualClock, Planner, SimConfig, Simulator, Stats, Submission,
    };

    /// A client for `sim`: its base URL and its token.
    pub fn client(sim: &Simulator) -> Result<crate::Client, crate::client::Error> {
        crate::Client::builder()
            .token(sim.token())
            .base_url(sim.base_url())
            .build()
    }
}

/// The durable job journal: the [`Journal`](journal::Journal) trait that
/// a transcriber built with [`TranscriberBuilder::journal`] writes each job's intent, rid and outcome to as they happen (so a
/// crash loses nothing), its entries, and — with feature `journal` — the embedded SQLite
/// implementation, [`SqliteJournal`](https://docs.rs/daglo/latest/daglo/journal/struct.SqliteJournal.html). The Redis one is
/// [`redis::RedisJournal`](https://docs.rs/daglo/latest/daglo/redis/struct.RedisJournal.html) (feature `redis`).
pub mod journal {
    pub use daglo_core::conformance::check_job_log;
    pub use daglo_core::conformance::check_journal;
    pub use daglo_core::{
        Claim, Entry, EntryId, EntryPage, EntryQuery, EntryState, Intent, JobLog, Journal, JournalError,
        OutcomeKind, PRUNE_STEP, Recovery, Stage,
    };
    #[cfg(feature = "journal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "journal")))]
    pub use daglo_journal::SqliteJournal;
}

#[doc = include_str!("../crates/daglo-redis/README.md")]
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use daglo_redis::{
        BudgetOptions, Durability, RedisBudget, RedisError, RedisJournal, RedisOptions, RedisRegistry,
        RedisStore, Replicas, SharedBudgets,
    };
}

/// Hooks for reproducible tests and benchmarks: virtual time that runs faster than real time
/// on both the emulator and the poller, and seeded randomness.
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util {
    pub use daglo_core::{ProgressTracker, SplitMix64, TimeScale};
    #[cfg(feature = "poll")]
    pub use daglo_poll::PollClock;
}

/// What the workspace's crates share and a user of the library does not need: no stability
/// promise. `daglo-serve` takes over a gone replica's jobs, aborts tasks and names files with it.
#[doc(hidden)]
pub mod internal {
    pub use daglo_core::internal::{escaped, lock, private_dir, private_file, safe};
    pub use daglo_core::{check_media_file_name, error_chain, fnv1a64};

    use crate::{JobId, TranscribeError, Transcriber};

    /// Aborts its task when dropped.
    #[derive(Debug)]
    pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

    impl AbortOnDrop {
        /// Owns `task`.
        pub fn new(task: tokio::task::JoinHandle<()>) -> Self {
            Self(task)
        }
    }

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    /// Who this process is in the journal's claims (`<host>:<pid>`): what a peer reads in
    /// [`Intent::owner`](daglo_core::Intent::owner).
    pub fn owner() -> String {
        crate::durable::owner()
    }

    /// Follows job `id` from now on, when the journal lists it as running and nobody in this
    /// process follows it — another replica's job, say, whose replica is gone. Resumed by its
    /// rid (and its callback key), never submitted again. `Ok(true)` when it started following
    /// it; `Ok(false)` for a job followed here already, ended, or not running.
    pub async fn adopt_job(transcriber: &Transcriber, id: &JobId) -> Result<bool, TranscribeError> {
        transcriber.adopt_job(id).await
    }

    /// One step of [`Transcriber::prune`]: at most [`PRUNE_STEP`](crate::journal::PRUNE_STEP)
    /// entries that ended before `before` removed from the journal (their kept results and this
    /// process's record of them too), returned so the caller can clear what it kept about them
    /// (`daglo serve`: the inbox under each callback key). Empty without a journal.
    pub async fn prune_step(
        transcriber: &Transcriber,
        before: std::time::SystemTime,
    ) -> Result<Vec<crate::journal::Entry>, TranscribeError> {
        match &transcriber.journal {
            Some(journal) => transcriber.prune_step(journal.as_ref(), before).await,
            None => Ok(Vec::new()),
        }
    }
}

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `docs/configuration.md`'s examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/configuration.md")]
pub struct ConfigurationDoctests;

/// `docs/guide.md`'s examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;

/// `docs/testing.md`'s examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/testing.md")]
pub struct TestingDoctests;
