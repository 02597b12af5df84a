//! The one backoff policy of the project: exponential growth with full jitter.

use std::time::Duration;

/// How long to wait before trying again after a failure: a cap that grows from `initial` by
/// `factor` per attempt up to `max`, and a wait drawn uniformly from `[0, cap]` ("full jitter"),
/// so that many clients that failed together do not come back together.
///
/// A pure policy: the caller brings the randomness (`unit`, in `[0, 1)`), which keeps it
/// testable and lets a scheduler use its seeded generator. The client's retries
/// ([`RetryPolicy`](https://docs.rs/daglo/latest/daglo/client/struct.RetryPolicy.html)), the
/// polling scheduler's retries after failed requests and the confirmation of final callbacks all
/// use it, each with its own figures.
///
/// ```
/// use std::time::Duration;
/// use daglo::client::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(250), 2.0, Duration::from_secs(5));
/// assert_eq!(backoff.cap(1), Duration::from_millis(250));
/// assert_eq!(backoff.cap(3), Duration::from_secs(1));
/// assert_eq!(backoff.cap(30), Duration::from_secs(5));
/// assert_eq!(backoff.delay(3, 0.5), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The cap of the first wait.
    pub initial: Duration,
    /// How much the cap grows per attempt (values below 1 count as 1).
    pub factor: f64,
    /// The largest cap.
    pub max: Duration,
}

impl Backoff {
    /// Caps from `initial`, growing by `factor`, up to `max`.
    pub const fn new(initial: Duration, factor: f64, max: Duration) -> Self {
        Self { initial, factor, max }
    }

    /// The cap of the wait after failed attempt number `attempt` (counting from 1).
    pub fn cap(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(60) as i32;
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        let cap = self.initial.as_secs_f64() * factor.powi(exponent);
        let max = self.max.as_secs_f64();
        Duration::try_from_secs_f64(cap.min(max).max(0.0)).unwrap_or(self.max)
    }

    /// The jittered wait after failed attempt number `attempt`: `unit` (in `[0, 1)`, from the
    /// caller's random source) times the [`cap`](Backoff::cap).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.cap(attempt).mul_f64(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_grow_then_saturate_and_delays_stay_below() {
        let backoff = Backoff::new(Duration::from_millis(250), 2.0, Duration::from_secs(5));
        assert_eq!(backoff.cap(0), Duration::from_millis(250));
        assert_eq!(backoff.cap(2), Duration::from_millis(500));
        assert_eq!(backoff.cap(10), Duration::from_secs(5));
        assert_eq!(backoff.cap(u32::MAX), Duration::from_secs(5));
        for attempt in 1..8 {
            for unit in [0.0, 0.3, 0.999, 1.0, f64::NAN, -1.0] {
                assert!(backoff.delay(attempt, unit) <= backoff.cap(attempt));
            }
        }
        assert_eq!(backoff.delay(4, 0.0), Duration::ZERO);
    }

    #[test]
    fn odd_factors_never_panic() {
        for factor in [0.0, -3.0, f64::NAN, f64::INFINITY, 1e300] {
            let backoff = Backoff::new(Duration::from_secs(1), factor, Duration::from_secs(30));
            for attempt in [1, 2, 50, u32::MAX] {
                assert!(
                    backoff.cap(attempt) <= Duration::from_secs(30),
                    "{factor} {attempt}"
                );
            }
        }
    }
}
