//! Runtime-agnostic ground of `daglo-rs`: the Daglo async speech-to-text models, their
//! validation, and the [`ResultDelivery`] trait that polling and callback strategies implement.
//!
//! Nothing here does I/O or depends on an async runtime, so every other crate of the project —
//! the REST client, the emulator, the strategies — shares one set of types.
//!
//! - **Requests**: [`SubmitRequest`] (audio by URL) and [`JobOptions`] (every `sttConfig`,
//!   `nlpConfig`, `callback` and `custom` field), built through [`JobOptions::builder`], which
//!   names the offending field in a [`ValidationError`]. Unset options are left out of the JSON.
//! - **Answers**: [`SubmitResponse`], and [`StatusBody`] — the polling answer and the callback
//!   body — with [`Status`] (nine values plus [`Status::Unknown`]), word timings as exact
//!   [`TimeOffset`]s, and [`ErrorBody`]. [`decode_status_body`] says *where* a bad body failed.
//! - **Delivery**: [`ResultDelivery`], [`Outcome`], [`ProgressEvent`].
//! - **Scheduling maths**: [`PollPolicy`] and [`ProgressTracker`] decide when to poll next;
//!   [`TimeScale`] runs virtual time faster for rate-limited tests; [`SplitMix64`] gives
//!   reproducible jitter.
//!
//! ```
//! use daglo_core::{decode_status_body, JobOptions, Language, Outcome, Rid, Status};
//!
//! let options = JobOptions::builder()
//!     .language(Language::KoKr)
//!     .keyword_boost(["다글로"], 10)
//!     .build()?;
//! assert!(options.validate().is_ok());
//!
//! let body = decode_status_body(r#"{"rid": "r-1", "status": "transcribed", "progress": 100,
//!     "sttResults": [{"transcript": "안녕하세요.", "words": [{"word": "안녕하세요.",
//!       "startTime": {"seconds": "0", "nanos": 60000000},
//!       "endTime": {"seconds": "0", "nanos": 860000000}}]}]}"#.as_bytes())?;
//! assert_eq!(body.status, Status::Transcribed);
//! let word = &body.stt_results.as_ref().unwrap()[0].words[0];
//! assert_eq!(word.end_time.unwrap().as_duration().as_millis(), 860);
//!
//! let outcome = Outcome::from_terminal_body(Rid::new("r-1"), body).unwrap();
//! assert_eq!(outcome.transcript().as_deref(), Some("안녕하세요."));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backoff;
mod body;
mod budget;
#[doc(hidden)]
pub mod conformance;
mod decode;
mod delivery;
mod error;
#[doc(hidden)]
pub mod internal;
mod job;
mod journal;
mod language;
mod lenient;
mod offset;
mod options;
mod random;
mod request;
mod schedule;
pub mod secs;
mod status;
pub mod telemetry;
mod timescale;
#[cfg(feature = "tls")]
mod tls;
mod transcript;

pub use backoff::Backoff;
pub use budget::{DECODE_FLOOR, DECODE_RATIO};

/// The 64-bit FNV-1a hash of `bytes`: the project's one change detector (options digests,
/// output fingerprints) — fast and stable, not a secret and not collision-proof.
///
/// ```
/// assert_eq!(daglo_core::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(daglo_core::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
pub use body::{ErrorBody, Sentiment, SentimentScore, StatusBody, SttResult, Word};
#[doc(hidden)]
pub use decode::decode_json;
pub use decode::{decode_error_body, decode_status_body, decode_status_head, decode_submit_response};
pub use delivery::{
    BoxError, DeliveryError, GaveUpReason, IgnoreProgress, Outcome, OutcomeKind, ProgressEvent,
    ProgressObserver, ResultDelivery, Ticket,
};
pub use error::{DecodeError, ValidationError, error_chain};
#[doc(hidden)]
pub use error::{EXCERPT_CHARS, excerpt};
pub use job::{
    CursorError, JobCursor, JobEvent, JobFilter, JobId, JobPage, JobSnapshot, JobState, MAX_JOB_TEXT,
    check_job_text, rfc3339,
};
pub use journal::{
    Claim, Entry, EntryId, EntryPage, EntryQuery, EntryState, Intent, JobLog, Journal, JournalError,
    PRUNE_STEP, Recovery, SUBMIT_LEASE, Stage,
};
pub use language::Language;
pub use offset::TimeOffset;
pub use options::{
    Callback, JobOptions, JobOptionsBuilder, JsonObject, KeywordBoost, KeywordExtraction, Model,
    MultiChannel, NlpConfig, SentimentAnalysis, SpeakerDiarization, SttConfig,
};
pub use random::SplitMix64;
#[doc(hidden)]
pub use request::check_media_file_name;
pub use request::{
    AUDIO_EXTENSIONS, Audio, AudioSource, MAX_UPLOAD_BYTES, Rid, SubmitRequest, SubmitResponse,
    VIDEO_EXTENSIONS,
};
pub use schedule::{AdaptivePolicy, PollPolicy, ProgressTracker};
pub use status::Status;
pub use timescale::TimeScale;
pub use transcript::{ChannelWord, MAX_CUE_CHARS, MAX_CUE_DURATION, Utterance};
