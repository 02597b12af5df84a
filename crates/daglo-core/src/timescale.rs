//! Scaled time, so rate-limited runs of thousands of jobs finish in seconds.

use std::time::{Duration, Instant};

/// A virtual clock running `factor` times faster than the real one, from a shared origin.
///
/// The emulator and a poller given clones of one `TimeScale` agree on the time, so "20 requests
/// per second" holds in virtual seconds on both sides: a test of 2,000 rate-limited jobs runs
/// `factor` times faster and still proves the pacing. Pure arithmetic; the runtime that sleeps
/// is the caller's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale {
    origin: Instant,
    factor: f64,
}

impl TimeScale {
    /// Virtual time starting now, `factor` (> 0) times faster than real time.
    pub fn new(factor: f64) -> Self {
        Self {
            origin: Instant::now(),
            factor: if factor.is_finite() && factor > 0.0 {
                factor
            } else {
                1.0
            },
        }
    }

    /// How much faster than real time this clock runs.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The virtual instant for the real instant `real`.
    pub fn to_virtual(&self, real: Instant) -> Instant {
        self.origin + real.saturating_duration_since(self.origin).mul_f64(self.factor)
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.to_virtual(Instant::now())
    }

    /// The real instant at which the virtual clock reads `virtual_instant`.
    pub fn to_real(&self, virtual_instant: Instant) -> Instant {
        self.origin
            + virtual_instant
                .saturating_duration_since(self.origin)
                .div_f64(self.factor)
    }

    /// A virtual duration in real time.
    pub fn real_duration(&self, virtual_duration: Duration) -> Duration {
        virtual_duration.div_f64(self.factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_and_real_instants_convert_both_ways() {
        let scale = TimeScale::new(10.0);
        let real = scale.origin + Duration::from_secs(3);
        assert_eq!(scale.to_virtual(real), scale.origin + Duration::from_secs(30));
        assert_eq!(scale.to_real(scale.origin + Duration::from_secs(30)), real);
        assert_eq!(TimeScale::new(-1.0).factor(), 1.0);
    }
}
