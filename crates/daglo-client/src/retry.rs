//! Jittered exponential backoff for idempotent requests.

use std::time::Duration;

use rand::RngExt;

/// How GET requests are retried on `429`, `5xx` and connection failures.
///
/// Waits grow exponentially from `initial` by `factor` up to `max`, each drawn uniformly from
/// `[0, cap]` ("full jitter") so many clients that failed together do not retry together. The
/// service sends no `Retry-After`, so there is nothing better to go by. Submits are not retried
/// by this policy; see [`Client::submit`](crate::Client::submit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `1` means no retry.
    pub max_attempts: u32,
    /// The cap of the first wait.
    pub initial: Duration,
    /// How much the cap grows per attempt.
    pub factor: f64,
    /// The largest cap.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial: Duration::from_millis(250),
            factor: 2.0,
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry (for callers that schedule their own retries, like a poller).
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The cap of the wait before attempt `attempt + 1` (`attempt` counts from 1).
    pub fn cap(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30) as i32;
        let cap = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        Duration::from_secs_f64(cap.min(self.max.as_secs_f64()).max(0.0))
    }

    /// A jittered wait before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.cap(attempt);
        if cap.is_zero() {
            return cap;
        }
        Duration::from_secs_f64(rand::rng().random_range(0.0..=cap.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_then_saturate_and_jitter_stays_below() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.cap(1), Duration::from_millis(250));
        assert_eq!(policy.cap(2), Duration::from_millis(500));
        assert_eq!(policy.cap(10), Duration::from_secs(5));
        assert_eq!(policy.cap(u32::MAX), Duration::from_secs(5));
        for attempt in 1..6 {
            assert!(policy.backoff(attempt) <= policy.cap(attempt));
        }
    }
}
