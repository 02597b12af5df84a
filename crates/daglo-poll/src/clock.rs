//! The scheduler's time: tokio's clock, or virtual time shared with an emulator.
#![cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]

use std::time::Instant;

use daglo_core::TimeScale;

/// Where the poller reads the time and sleeps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub enum PollClock {
    /// Tokio's clock, so a paused test clock (`tokio::time::pause`) drives the scheduler too.
    #[default]
    Tokio,
    /// Virtual time shared with an emulator running the same [`TimeScale`]; for tests that need
    /// thousands of rate-limited polls in seconds.
    Scaled(TimeScale),
}

impl PollClock {
    /// The current instant.
    pub fn now(&self) -> Instant {
        match self {
            Self::Tokio => tokio::time::Instant::now().into_std(),
            Self::Scaled(scale) => scale.now(),
        }
    }

    /// Sleeps until the clock reads `deadline`.
    pub async fn sleep_until(&self, deadline: Instant) {
        let real = match self {
            Self::Tokio => deadline,
            Self::Scaled(scale) => scale.to_real(deadline),
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(real)).await;
    }
}
