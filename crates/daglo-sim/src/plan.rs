//! What happens to a job: how long it runs, how it ends, and which faults hit it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use daglo_core::{JobOptions, Status};

/// Faults the emulator injects, globally ([`SimConfig::faults`](crate::SimConfig::faults)) or per
/// job (through a [`SimConfig::planner`](crate::SimConfig::planner)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// Never send the final callback (progress callbacks still go).
    pub drop_final_callback: bool,
    /// Send no callback at all.
    pub drop_all_callbacks: bool,
    /// Send the final callback twice.
    pub duplicate_final_callback: bool,
    /// After the final callback, send a stale progress body (reordering).
    pub late_progress_after_final: bool,
    /// Hold the final callback back this long after the job completes.
    pub delay_final_callback: Option<Duration>,
    /// Send the first callback — and every callback already due — before answering the submit.
    pub callback_before_submit_answer: bool,
    /// Leave `rid` out of every callback body (as the service's published example does).
    pub omit_rid_in_callbacks: bool,
    /// Answer this job's first `count` status requests with `status` (e.g. 500 or 503).
    pub status_error_burst: Option<ErrorBurst>,
    /// Wait this long before answering each request about this job.
    pub slow_answers: Option<Duration>,
    /// Keep answering `/srt` with `202` (not finished yet) for this long after the job has
    /// completed: subtitles that lag the status, which the contract allows (`202` means "ask
    /// again").
    pub srt_lag: Option<Duration>,
    /// Answer this job's first `n` `/srt` requests made after it completed with `202`: the
    /// same lag, counted in requests rather than time (for tests that must not depend on
    /// timing).
    pub srt_not_ready_answers: u32,
}

/// A run of error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorBurst {
    /// The HTTP status to answer with.
    pub status: u16,
    /// How many requests get it.
    pub count: u32,
}

impl ErrorBurst {
    /// `count` answers of `status`.
    pub fn new(status: u16, count: u32) -> Self {
        Self { status, count }
    }
}

/// How a job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// `transcribed` with a generated transcript.
    Transcript,
    /// `transcribed` with nothing said: status answers `204`.
    Silent,
    /// One of the failure statuses, with a message.
    Failed {
        /// `input_error`, `transcript_error` or `file_error`.
        status: Status,
        /// The `message` field.
        message: String,
    },
}

/// The whole script of one job. The default planner derives it from the submit; a custom
/// [`Planner`] may change any of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobPlan {
    /// From the submit to the terminal status.
    pub processing_time: Duration,
    /// How long the audio is (drives the transcript's length and word timings).
    pub audio_duration: Duration,
    /// How it ends.
    pub ending: Ending,
    /// Faults for this job (starts as the global ones).
    pub faults: Faults,
}

/// What the planner sees of a submit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Submission {
    /// The audio's URL (JSON submit) or file name (multipart submit).
    pub audio_name: String,
    /// The uploaded file's size, for multipart submits.
    pub file_bytes: Option<u64>,
    /// The submit's options, when they decoded.
    pub options: Option<JobOptions>,
}

/// A function that adjusts each job's [`JobPlan`]; see [`SimConfig::planner`](crate::SimConfig::planner).
#[derive(Clone)]
pub struct Planner(pub(crate) Arc<PlanFn>);

/// The function a [`Planner`] wraps.
type PlanFn = dyn Fn(&Submission, &mut JobPlan) + Send + Sync;

impl Planner {
    /// Wraps a planning function.
    pub fn new(plan: impl Fn(&Submission, &mut JobPlan) + Send + Sync + 'static) -> Self {
        Self(Arc::new(plan))
    }
}

impl fmt::Debug for Planner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Planner(..)")
    }
}

/// Upload size per second of audio, used to estimate an uploaded file's duration (128 kbit/s).
const BYTES_PER_AUDIO_SECOND: u64 = 16_000;

/// The default ending and audio duration, from hints in the audio's name:
/// `silent` → empty result; `file-error`, `transcript-error`, `input-error` → that failure;
/// `duration=SECONDS` (in a URL) → that audio duration. Otherwise uploads last as long as their
/// size at 128 kbit/s and URLs 20–120 s, chosen from the name.
pub(crate) fn default_ending_and_duration(submission: &Submission, name_hash: u64) -> (Ending, Duration) {
    let name = submission.audio_name.to_ascii_lowercase();
    let hinted = |word: &str| name.contains(word) || name.contains(&word.replace('-', "_"));
    let ending = if hinted("silent") {
        Ending::Silent
    } else if hinted("file-error") {
        Ending::Failed {
            status: Status::FileError,
            message: "the audio could not be decoded".to_owned(),
        }
    } else if hinted("transcript-error") {
        Ending::Failed {
            status: Status::TranscriptError,
            message: "transcription failed; resubmitting later may work".to_owned(),
        }
    } else if hinted("input-error") {
        Ending::Failed {
            status: Status::InputError,
            message: "the request carried invalid values".to_owned(),
        }
    } else {
        Ending::Transcript
    };
    let duration = name
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("duration="))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .or_else(|| {
            submission
                .file_bytes
                .map(|bytes| Duration::from_millis(bytes * 1000 / BYTES_PER_AUDIO_SECOND))
        })
        .unwrap_or_else(|| Duration::from_secs(20 + name_hash % 101));
    (ending, duration)
}
