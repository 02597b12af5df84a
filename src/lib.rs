//! `daglo`: get speech-to-text results out of the Daglo asynchronous API.
//!
//! This facade re-exports the workspace's crates so an application depends on one crate:
//!
//! | module / item | from | what |
//! |---|---|---|
//! | [`Client`], [`Error`], [`StatusAnswer`], [`SrtAnswer`], [`RetryPolicy`] | `daglo-client` | the REST client |
//! | [`JobOptions`], [`SubmitRequest`], [`StatusBody`], [`Status`], … | `daglo-core` | models and validation |
//! | [`Transcriber`], [`Pending`], [`TranscribeError`] | this crate | submit and deliver in one place, with any strategy |
//! | [`ResultDelivery`], [`Outcome`], [`ProgressEvent`] | `daglo-core` | the delivery interface strategies implement |
//! | [`PollingDelivery`], [`PollingConfig`], [`TokenBucket`], … (feature `poll`) | `daglo-poll` | polling: one scheduler, a shared rate budget, adaptive intervals |
//! | [`CallbackDelivery`], [`CallbackConfig`], [`CallbackAuth`], … (feature `callback`) | `daglo-callback` | callbacks: per-job credentials, a forward-only registry, a tower receiver |
//! | [`HybridDelivery`] (features `poll` + `callback`) | this crate | callback first, polling as the safety net |
//! | [`sim`] (feature `sim`) | `daglo-sim` | the local emulator, for offline tests |
//!
//! ## Feature flags
//! | feature | default | enables |
//! |---|---|---|
//! | `poll` | yes | [`PollingDelivery`] and its configuration |
//! | `callback` | yes | [`CallbackDelivery`], its receiver and server |
//! | `sim` | no | [`sim`]: the in-process emulator of the service, for integration tests without a token or a network |
//!
//! ```
//! use daglo::{JobOptions, Language, SubmitRequest};
//!
//! let options = JobOptions::builder().language(Language::EnUs).speaker_diarization(Some(2)).build()?;
//! let request = SubmitRequest::new("https://example.com/all-hands.mp4", options)?;
//! assert_eq!(request.audio.source.url, "https://example.com/all-hands.mp4");
//! # Ok::<(), daglo::ValidationError>(())
//! ```
//!
//! Run `cargo run --example quickstart` for a whole job against the embedded emulator.

mod transcriber;
pub use transcriber::{Pending, TranscribeError, Transcriber};

pub use daglo_client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, Error, RetryPolicy, SrtAnswer, StatusAnswer,
};
pub use daglo_core::*;

#[cfg(feature = "poll")]
pub use daglo_poll::{
    PollClock, PollingConfig, PollingDelivery, RateBudget, SchedulerStats, StatusSource, TokenBucket, Watch,
    WatchOptions,
};

#[cfg(all(feature = "poll", feature = "callback"))]
mod hybrid;
#[cfg(all(feature = "poll", feature = "callback"))]
pub use hybrid::HybridDelivery;

#[cfg(feature = "callback")]
pub use daglo_callback::{
    CallbackAuth, CallbackConfig, CallbackDelivery, CallbackError, CallbackReceiver, CallbackServer,
    InMemoryRegistry, JobKey, JobRegistry, Secret,
};

/// The local emulator of the service (`daglo-sim`), for tests and demos without a network.
#[cfg(feature = "sim")]
pub use daglo_sim as sim;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
