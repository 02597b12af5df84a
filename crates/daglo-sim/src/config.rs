//! The emulator's settings.

use std::fmt;
use std::time::Duration;

use crate::clock::Clock;
use crate::plan::{Faults, Planner};

/// How the emulator behaves. Start from [`SimConfig::default`] and change what a test needs.
///
/// ```
/// use std::time::Duration;
/// use daglo::sim::SimConfig;
///
/// let config = SimConfig::default()
///     .token("my-test-token")
///     .processing_time(Duration::from_millis(200))
///     .rate_limit(None);
/// assert_eq!(config.rate_limit_per_second(), None);
/// ```
#[derive(Clone)]
pub struct SimConfig {
    pub(crate) token: String,
    pub(crate) seed: u64,
    pub(crate) processing_time: Duration,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) max_upload_bytes: u64,
    pub(crate) max_json_bytes: usize,
    pub(crate) credits: Option<u64>,
    pub(crate) faults: Faults,
    pub(crate) clock: Clock,
    pub(crate) planner: Option<Planner>,
    pub(crate) callback_timeout: Duration,
    pub(crate) callback_retries: u32,
    pub(crate) lenient: bool,
    pub(crate) header_timeout: Duration,
}

/// The token the emulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "sim-token";

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token: DEFAULT_TOKEN.to_owned(),
            seed: 0x0DA6_1000,
            processing_time: Duration::from_secs(3),
            rate_limit: Some(20),
            max_upload_bytes: daglo_core::MAX_UPLOAD_BYTES,
            max_json_bytes: 1 << 20,
            credits: None,
            faults: Faults::default(),
            clock: Clock::Real,
            planner: None,
            callback_timeout: Duration::from_secs(10),
            callback_retries: 0,
            lenient: false,
            header_timeout: Duration::from_secs(30),
        }
    }
}

impl SimConfig {
    /// The bearer token every request must carry (default [`DEFAULT_TOKEN`]).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// The seed behind rids and transcripts: the same seed and inputs give the same output.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How long each job takes from submit to its terminal status (default 3 s).
    #[must_use]
    pub fn processing_time(mut self, processing_time: Duration) -> Self {
        self.processing_time = processing_time;
        self
    }

    /// Requests per second per endpoint before `429` (default `Some(20)`, as the service);
    /// `None` turns the limit off.
    #[must_use]
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit = per_second;
        self
    }

    /// The configured rate limit.
    pub fn rate_limit_per_second(&self) -> Option<u32> {
        self.rate_limit
    }

    /// The largest accepted upload (default 2 GB); larger answers `413`.
    #[must_use]
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = bytes;
        self
    }

    /// How many jobs the account may submit before `403` (credits exhausted); default unlimited.
    #[must_use]
    pub fn credits(mut self, jobs: u64) -> Self {
        self.credits = Some(jobs);
        self
    }

    /// Faults applied to every job (a planner may change them per job).
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The clock jobs and the rate limiter follow (default: the real one).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A function that adjusts each job's plan (ending, timing, faults) after the default
    /// planner has filled it in.
    #[must_use]
    pub fn planner(mut self, planner: Planner) -> Self {
        self.planner = Some(planner);
        self
    }

    /// Sends a callback again — up to `retries` more times, 100 ms doubling between tries (or
    /// the answer's `Retry-After`, at most 5 s) — when the receiver could not be reached or
    /// answered `429` or `5xx` (default 0: each callback is sent once, as the service documents
    /// no retry). A sender that retries like this is what a receiver answering `503` when its
    /// store is down counts on; the real service may not be one, which is why the hybrid
    /// strategy polls for a final that never came. The log keeps one record per callback, with
    /// its last answer.
    #[must_use]
    pub fn callback_retries(mut self, retries: u32) -> Self {
        self.callback_retries = retries;
        self
    }

    /// Accepts submit bodies the published schema forbids — unknown fields, `null` where an
    /// object belongs — ignoring them, as older versions of the emulator did. By default the
    /// emulator is as strict as the schema (`additionalProperties: false` throughout) and
    /// answers `400` naming the field, for JSON and multipart bodies alike, so a typo such as
    /// `speakerDiarisation` fails offline, not in production.
    #[must_use]
    pub fn lenient(mut self) -> Self {
        self.lenient = true;
        self
    }

    /// How long the emulator waits for a callback receiver to answer (default 10 s).
    #[must_use]
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.callback_timeout = timeout;
        self
    }

    /// How long a client may take to send a request head before the connection is cut
    /// (default 30 s; real time, whatever the clock).
    #[must_use]
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("token", &"<redacted>")
            .field("seed", &self.seed)
            .field("processing_time", &self.processing_time)
            .field("rate_limit", &self.rate_limit)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("credits", &self.credits)
            .field("faults", &self.faults)
            .field("clock", &self.clock)
            .field("planner", &self.planner)
            .finish()
    }
}
