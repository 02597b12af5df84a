//! The emulator's memory: jobs, their timeline, and what was served.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use daglo_core::internal::lock;
use std::time::Duration;

use daglo_core::{JsonObject, Rid, Status, StatusBody, SttResult};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::SimConfig;
use crate::plan::{Ending, ErrorBurst, JobPlan};
use crate::rate::SlidingWindow;
use daglo_core::SplitMix64;

/// The service's endpoints, each with its own rate limit and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /stt/v1/async/transcripts`
    Submit,
    /// `GET /stt/v1/async/transcripts/{rid}`
    Status,
    /// `GET /stt/v1/async/transcripts/{rid}/srt`
    Srt,
}

/// Requests one endpoint received and how it answered them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Requests received (every answer counted, errors included).
    pub requests: u64,
    /// Answers by HTTP status.
    pub answers: BTreeMap<u16, u64>,
}

impl EndpointStats {
    /// How many answers had `status`.
    pub fn answered(&self, status: u16) -> u64 {
        self.answers.get(&status).copied().unwrap_or(0)
    }
}

/// Per-endpoint counters since the emulator started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    endpoints: BTreeMap<Endpoint, EndpointStats>,
}

impl Stats {
    /// The counters of one endpoint.
    pub fn endpoint(&self, endpoint: Endpoint) -> EndpointStats {
        self.endpoints.get(&endpoint).cloned().unwrap_or_default()
    }

    /// `429` answers across all endpoints.
    pub fn rate_limited(&self) -> u64 {
        self.endpoints.values().map(|e| e.answered(429)).sum()
    }

    pub(crate) fn record(&mut self, endpoint: Endpoint, status: u16) {
        let entry = self.endpoints.entry(endpoint).or_default();
        entry.requests += 1;
        *entry.answers.entry(status).or_default() += 1;
    }
}

/// What the emulator knows about one job, for tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobRecord {
    /// The job.
    pub rid: Rid,
    /// When the submit was accepted.
    pub submitted_at: Instant,
    /// When the job reaches (or reached) its terminal status: the instant a perfect observer
    /// would learn the result. Detection latency is measured from here.
    pub completes_at: Instant,
    /// How it ends.
    pub ending: Ending,
    /// Status requests about this job (all answers, errors included).
    pub status_requests: u64,
    /// SRT requests about this job.
    pub srt_requests: u64,
    /// When a status request first got the terminal answer.
    pub first_terminal_answer_at: Option<Instant>,
    /// Callback POSTs attempted for this job.
    pub callbacks_sent: u32,
}

/// One callback POST the emulator made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackRecord {
    /// The job it was about.
    pub rid: Rid,
    /// The status in the body.
    pub status: Status,
    /// Whether it carried the terminal body.
    pub is_final: bool,
    /// The receiver's HTTP status, or why there was none.
    pub answer: Result<u16, String>,
    /// When it was sent.
    pub sent_at: Instant,
}

/// Where a job is at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    Running { status: Status, progress: u32 },
    Done,
}

/// Progress milestones as fractions of the processing time; the callback driver sends a
/// progress body at each.
pub(crate) const MILESTONES: [(Status, f64); 6] = [
    (Status::Uploaded, 0.05),
    (Status::FileProcessing, 0.15),
    (Status::Transcribing, 0.25),
    (Status::Transcribing, 0.50),
    (Status::Transcribing, 0.75),
    (Status::PostProcessing, 0.90),
];

/// What a job produces, shared read-only between the server and its callback driver.
#[derive(Debug)]
pub(crate) struct JobOutput {
    pub(crate) rid: Rid,
    pub(crate) ending: Ending,
    pub(crate) results: Vec<SttResult>,
    pub(crate) custom: Option<JsonObject>,
}

impl JobOutput {
    pub(crate) fn running_body(&self, status: Status, progress: u32) -> StatusBody {
        let mut body = StatusBody::new(status);
        body.rid = Some(self.rid.clone());
        body.progress = Some(progress);
        body.custom = self.custom.clone().map(serde_json::Value::Object);
        body
    }

    /// The terminal body. For silent audio polling answers `204`; a callback carries this body
    /// with an empty `sttResults`.
    pub(crate) fn final_body(&self) -> StatusBody {
        let (mut body, with_results) = self.final_head();
        if with_results {
            body.stt_results = Some(self.results.clone());
        }
        body
    }

    /// The terminal body without its transcript, and whether the transcript belongs in it: the
    /// callback driver writes the transcript from here, without a copy of it.
    pub(crate) fn final_head(&self) -> (StatusBody, bool) {
        let (mut body, with_results) = match &self.ending {
            Ending::Transcript | Ending::Silent => {
                let mut body = StatusBody::new(Status::Transcribed);
                body.progress = Some(100);
                (body, true)
            }
            Ending::Failed { status, message } => {
                let mut body = StatusBody::new(status.clone());
                body.message = Some(message.clone());
                (body, false)
            }
        };
        body.rid = Some(self.rid.clone());
        body.custom = self.custom.clone().map(serde_json::Value::Object);
        (body, with_results)
    }
}

pub(crate) struct Job {
    pub(crate) output: Arc<JobOutput>,
    pub(crate) plan: JobPlan,
    pub(crate) submitted_at: Instant,
    pub(crate) status_requests: u64,
    pub(crate) srt_requests: u64,
    pub(crate) first_terminal_answer_at: Option<Instant>,
    pub(crate) callbacks_sent: u32,
    pub(crate) status_errors_left: u32,
    pub(crate) srt_not_ready_left: u32,
    pub(crate) callbacks_done: watch::Receiver<bool>,
}

impl Job {
    pub(crate) fn completes_at(&self) -> Instant {
        self.submitted_at + self.plan.processing_time
    }

    pub(crate) fn phase_at(&self, now: Instant) -> Phase {
        phase_at(
            self.plan.processing_time,
            now.saturating_duration_since(self.submitted_at),
        )
    }

    pub(crate) fn record(&self) -> JobRecord {
        JobRecord {
            rid: self.output.rid.clone(),
            submitted_at: self.submitted_at,
            completes_at: self.completes_at(),
            ending: self.plan.ending.clone(),
            status_requests: self.status_requests,
            srt_requests: self.srt_requests,
            first_terminal_answer_at: self.first_terminal_answer_at,
            callbacks_sent: self.callbacks_sent,
        }
    }
}

/// Where a job that takes `processing` is after `elapsed`.
pub(crate) fn phase_at(processing: Duration, elapsed: Duration) -> Phase {
    if elapsed >= processing {
        return Phase::Done;
    }
    // The same instants the callback driver uses, so polling and callbacks agree.
    let status = MILESTONES
        .iter()
        .rev()
        .find(|(_, at)| elapsed >= processing.mul_f64(*at))
        .map_or(Status::AiRequested, |(s, _)| s.clone());
    let percent = elapsed.as_nanos() * 100 / processing.as_nanos();
    Phase::Running {
        status,
        progress: u32::try_from(percent).unwrap_or(99).min(99),
    }
}

/// Everything the server, the callback drivers and the [`Simulator`](crate::Simulator) handle share.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) jobs: Mutex<HashMap<Rid, Job>>,
    pub(crate) stats: Mutex<Stats>,
    pub(crate) limiters: Mutex<HashMap<Endpoint, SlidingWindow>>,
    pub(crate) injected: Mutex<HashMap<Endpoint, ErrorBurst>>,
    pub(crate) rng: Mutex<SplitMix64>,
    pub(crate) credits_used: Mutex<u64>,
    pub(crate) callback_client: reqwest::Client,
    pub(crate) callback_log: Mutex<Vec<CallbackRecord>>,
    pub(crate) drivers: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        crate::install_crypto_provider();
        let callback_client = reqwest::Client::builder()
            .timeout(config.callback_timeout)
            .build()
            .unwrap_or_default();
        Self {
            rng: Mutex::new(SplitMix64::new(config.seed)),
            config,
            jobs: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            limiters: Mutex::new(HashMap::new()),
            injected: Mutex::new(HashMap::new()),
            credits_used: Mutex::new(0),
            callback_client,
            callback_log: Mutex::new(Vec::new()),
            drivers: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.config.clock.now()
    }

    /// Whether a request to `endpoint` now is within the rate limit (always, with no limit).
    pub(crate) fn within_rate_limit(&self, endpoint: Endpoint) -> bool {
        let Some(limit) = self.config.rate_limit else {
            return true;
        };
        let now = self.now();
        lock(&self.limiters)
            .entry(endpoint)
            .or_insert_with(|| SlidingWindow::new(limit))
            .try_acquire(now)
    }

    /// Takes one injected error answer for `endpoint`, if a burst is pending.
    pub(crate) fn take_injected(&self, endpoint: Endpoint) -> Option<u16> {
        let mut injected = lock(&self.injected);
        let burst = injected.get_mut(&endpoint)?;
        let status = burst.status;
        burst.count -= 1;
        if burst.count == 0 {
            injected.remove(&endpoint);
        }
        Some(status)
    }

    /// Takes one credit; `false` when the account has none left.
    pub(crate) fn take_credit(&self) -> bool {
        let mut used = lock(&self.credits_used);
        if self.config.credits.is_some_and(|limit| *used >= limit) {
            return false;
        }
        *used += 1;
        true
    }

    pub(crate) fn next_rid(&self) -> Rid {
        Rid::new(crate::rng::uuid(&mut lock(&self.rng)))
    }

    pub(crate) fn processing_time(&self) -> Duration {
        self.config.processing_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rises_through_the_statuses_in_order() {
        let total = Duration::from_secs(100);
        let mut last: Option<(u8, u32)> = None;
        for second in 0..100 {
            let Phase::Running { status, progress } = phase_at(total, Duration::from_secs(second)) else {
                panic!("done too early at {second}s");
            };
            let now = (status.stage().unwrap(), progress);
            if let Some(before) = last {
                assert!(now.0 >= before.0 && now.1 > before.1, "{before:?} then {now:?}");
            }
            last = Some(now);
        }
        assert_eq!(phase_at(total, total), Phase::Done);
        assert_eq!(phase_at(Duration::ZERO, Duration::ZERO), Phase::Done);
    }
}
