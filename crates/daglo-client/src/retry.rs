//! How idempotent requests are retried: a number of attempts and the project's one backoff.

use std::time::Duration;

use daglo_core::Backoff;
use rand::RngExt;

/// How GET requests are retried on `429`, `5xx` and connection failures.
///
/// Waits follow [`Backoff`] (exponential caps, full jitter — default 250 ms doubling to 5 s),
/// so many clients that failed together do not retry together. The service sends no
/// `Retry-After`, so there is nothing better to go by. Submits are not retried by this policy;
/// see [`Client::submit`](crate::Client::submit).
///
/// ```
/// use std::time::Duration;
/// use daglo_client::RetryPolicy;
///
/// let patient = RetryPolicy { max_attempts: 8, ..RetryPolicy::default() };
/// assert_eq!(patient.backoff.cap(1), Duration::from_millis(250));
/// assert!(patient.delay(3) <= Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` means no retry.
    pub max_attempts: u32,
    /// The waits between attempts.
    pub backoff: Backoff,
}

/// The default retry backoff: 250 ms, doubling, at most 5 s.
pub const DEFAULT_RETRY_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), 2.0, Duration::from_secs(5));

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: DEFAULT_RETRY_BACKOFF,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry (for callers that schedule their own retries, like a poller).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A jittered wait after failed attempt number `attempt` (counting from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff.delay(attempt, rand::rng().random_range(0.0..1.0))
    }
}
