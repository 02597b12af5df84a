//! The emulator's notion of time: the real clock, or a manual one tests move by hand.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use daglo_core::TimeScale;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the emulator reads the time from.
///
/// Job progression, the rate limiter's window and callback timing all follow this clock. With
/// [`Clock::manual`] nothing moves until the test calls [`ManualClock::advance`], which makes
/// progression and rate-limit tests exact and free of sleeps.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Tokio's clock (which follows a paused test clock too).
    #[default]
    Real,
    /// A clock that only moves when told to.
    Manual(ManualClock),
    /// Virtual time running faster than real time; share the same [`TimeScale`] with the
    /// client side (a poller) so both agree, and rate-limited runs finish sooner.
    Scaled(TimeScale),
}

impl Clock {
    /// A fresh manual clock, and a handle to move it.
    pub fn manual() -> (Self, ManualClock) {
        let manual = ManualClock::new();
        (Self::Manual(manual.clone()), manual)
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match self {
            Self::Real => Instant::now(),
            Self::Manual(manual) => manual.now(),
            Self::Scaled(scale) => Instant::from_std(scale.now()),
        }
    }

    /// Waits until the clock reads at least `deadline`.
    pub(crate) async fn sleep_until(&self, deadline: Instant) {
        match self {
            Self::Real => tokio::time::sleep_until(deadline).await,
            Self::Manual(manual) => manual.sleep_until(deadline).await,
            Self::Scaled(scale) => {
                tokio::time::sleep_until(Instant::from_std(scale.to_real(deadline.into_std()))).await
            }
        }
    }
}

/// A clock that stands still until [`advance`](ManualClock::advance) moves it. Cheap to clone;
/// clones share the time.
#[derive(Clone)]
pub struct ManualClock {
    origin: Instant,
    elapsed: Arc<watch::Sender<Duration>>,
}

impl ManualClock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            elapsed: Arc::new(watch::Sender::new(Duration::ZERO)),
        }
    }

    /// The current instant: the creation instant plus everything advanced since.
    pub fn now(&self) -> Instant {
        self.origin + *self.elapsed.borrow()
    }

    /// Moves the clock forward by `by`, waking every job whose next step is now due.
    pub fn advance(&self, by: Duration) {
        self.elapsed.send_modify(|elapsed| *elapsed += by);
    }

    async fn sleep_until(&self, deadline: Instant) {
        let mut changes = self.elapsed.subscribe();
        // `wait_for` checks the current value first, so a deadline already passed returns at once.
        let _ = changes
            .wait_for(|elapsed| self.origin + *elapsed >= deadline)
            .await;
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &*self.elapsed.borrow())
            .finish()
    }
}
