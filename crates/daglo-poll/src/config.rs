//! The poller's settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use daglo_core::{Backoff, PollPolicy};

use crate::clock::PollClock;
use daglo_client::RateBudget;

/// The poller's default backoff after a failed status request: 500 ms, doubling, at most 30 s.
pub const DEFAULT_ERROR_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), 2.0, Duration::from_secs(30));

/// How a [`PollingDelivery`](crate::PollingDelivery) polls.
///
/// ```
/// use std::time::Duration;
/// use daglo::poll::{PollPolicy, PollingConfig};
///
/// let config = PollingConfig::default()
///     .policy(PollPolicy::Fixed(Duration::from_secs(3)))
///     .deadline(Some(Duration::from_secs(3600)))
///     .stall_after(Duration::from_secs(120));
/// assert_eq!(config.max_in_flight_requests(), 32);
/// ```
#[derive(Clone)]
pub struct PollingConfig {
    pub(crate) policy: PollPolicy,
    pub(crate) budget: Option<Arc<dyn RateBudget>>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) stall_after: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_queueing: Duration,
    pub(crate) retry_backoff: Backoff,
    pub(crate) clock: PollClock,
    pub(crate) seed: Option<u64>,
}

impl Default for PollingConfig {
    fn default() -> Self {
        Self {
            policy: PollPolicy::default(),
            budget: None,
            deadline: None,
            stall_after: Duration::from_secs(300),
            max_in_flight: 32,
            max_queueing: Duration::from_secs(30),
            retry_backoff: DEFAULT_ERROR_BACKOFF,
            clock: PollClock::Tokio,
            seed: None,
        }
    }
}

impl PollingConfig {
    /// How polls are spaced (default: [`PollPolicy::Adaptive`]).
    #[must_use]
    pub fn policy(mut self, policy: PollPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// A budget for status requests of this poller's own. By default (none given) the poller
    /// draws from its source's budget — the client's status budget
    /// ([`Client::status_budget`](daglo_client::Client::status_budget), 16/s unless the client
    /// was given another) — so polls, confirmations of final callbacks and every other status
    /// request of the process share one budget and every `429` slows them all. Give one only to
    /// pace this poller apart (a scripted [`StatusSource`](crate::StatusSource) without a budget
    /// gets a [`TokenBucket::default`](daglo_client::TokenBucket::default)).
    #[must_use]
    pub fn budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Give up waiting after this long (default: never). Giving up returns
    /// [`Outcome::GaveUp`](daglo_core::Outcome::GaveUp) with the rid; the job goes on.
    #[must_use]
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Report [`ProgressEvent::Stalled`](daglo_core::ProgressEvent::Stalled) when neither status
    /// nor percent has moved for this long (default 5 minutes).
    #[must_use]
    pub fn stall_after(mut self, stall_after: Duration) -> Self {
        self.stall_after = stall_after;
        self
    }

    /// At most this many status requests at once (default 32).
    #[must_use]
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// The configured in-flight limit.
    pub fn max_in_flight_requests(&self) -> usize {
        self.max_in_flight
    }

    /// When the budget is short, a due job may be passed over for jobs predicted to finish
    /// sooner, but never for longer than this (default 30 s): the fairness bound.
    #[must_use]
    pub fn max_queueing(mut self, max: Duration) -> Self {
        self.max_queueing = max;
        self
    }

    /// The waits after failed status requests (`5xx`, transport, an undecodable answer), per
    /// consecutive failure of one job (default [`DEFAULT_ERROR_BACKOFF`]: 500 ms doubling to
    /// 30 s, full jitter).
    #[must_use]
    pub fn retry_backoff(mut self, backoff: Backoff) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// The clock (default: tokio's). A test hook (feature `test-util`): a scaled clock runs
    /// virtual time faster, in step with the emulator's.
    #[must_use]
    #[cfg(feature = "test-util")]
    pub fn clock(mut self, clock: PollClock) -> Self {
        self.clock = clock;
        self
    }

    /// Seeds the jitter, for reproducible schedules (default: random).
    #[must_use]
    #[cfg(feature = "test-util")]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl fmt::Debug for PollingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollingConfig")
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .field("deadline", &self.deadline)
            .field("stall_after", &self.stall_after)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_queueing", &self.max_queueing)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}
