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
            Self::Real => precise::sleep_until(deadline).await,
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

/// Sleeping to within tens of microseconds of a deadline on the real clock.
///
/// Tokio's timer counts whole milliseconds and rounds a deadline up to the next one, so a callback
/// due at 12.1 ms went out at 13 ms — 0.5 ms late on average, 1 ms at worst, and every callback
/// due within the same millisecond went out in one clump. On the real clock the emulator instead
/// sleeps on tokio's timer until 2 ms before the deadline (cheap, and most of the wait), then on
/// one thread of its own that waits on a condition variable with the exact remainder and wakes
/// each sleeper at its instant. When tokio's clock is paused (`tokio::time::pause`, a test's
/// `start_paused`) time does not pass on its own, so the whole wait stays on tokio's timer, which
/// the paused clock jumps.
mod precise {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::time::Duration;

    use tokio::sync::oneshot;
    use tokio::time::Instant;

    /// What the thread waits on: pending wake-ups, earliest first.
    struct Timer {
        pending: Mutex<BinaryHeap<Reverse<Entry>>>,
        changed: Condvar,
    }

    struct Entry {
        at: std::time::Instant,
        wake: oneshot::Sender<()>,
    }

    impl PartialEq for Entry {
        fn eq(&self, other: &Self) -> bool {
            self.at == other.at
        }
    }
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.at.cmp(&other.at)
        }
    }

    /// How long before the deadline the wait moves from tokio's timer (up to 1 ms late) to the
    /// thread's.
    const HANDOVER: Duration = Duration::from_millis(2);

    pub(super) async fn sleep_until(deadline: Instant) {
        if !clock_runs() {
            return tokio::time::sleep_until(deadline).await;
        }
        if let Some(handover) = deadline.checked_sub(HANDOVER)
            && handover > Instant::now()
        {
            tokio::time::sleep_until(handover).await;
        }
        let at = deadline.into_std();
        if at <= std::time::Instant::now() {
            return;
        }
        let Some(timer) = timer() else {
            // No thread could be started: tokio's timer is late, never wrong.
            return tokio::time::sleep_until(deadline).await;
        };
        let (wake, woken) = oneshot::channel();
        {
            let mut pending = daglo_core::internal::lock(&timer.pending);
            let earliest = pending.peek().is_none_or(|Reverse(first)| at < first.at);
            pending.push(Reverse(Entry { at, wake }));
            if earliest {
                timer.changed.notify_one();
            }
        }
        // The sender is only dropped after it has fired.
        let _ = woken.await;
    }

    /// Whether tokio's clock follows the real one: a paused clock stands still between two
    /// readings, the real one has moved on (nanosecond resolution).
    fn clock_runs() -> bool {
        let first = Instant::now();
        let second = Instant::now();
        second != first && std::time::Instant::now().saturating_duration_since(second.into_std()) < HANDOVER
    }

    /// The one timer thread, started on first use.
    fn timer() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                pending: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("daglo-sim-timer".into())
                .spawn(move || run(timer))
                .ok()
                .map(|_| timer)
        })
    }

    fn run(timer: &Timer) {
        let mut pending = daglo_core::internal::lock(&timer.pending);
        loop {
            let now = std::time::Instant::now();
            match pending.peek() {
                None => {
                    pending = timer.changed.wait(pending).unwrap_or_else(|p| p.into_inner());
                }
                Some(Reverse(first)) if first.at <= now => {
                    if let Some(Reverse(due)) = pending.pop() {
                        let _ = due.wake.send(());
                    }
                }
                Some(Reverse(first)) => {
                    let wait = first.at - now;
                    pending = timer
                        .changed
                        .wait_timeout(pending, wait)
                        .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleepers with deadlines in no particular order, some within the handover to the timer
    /// thread, some past it, some already passed: each wakes, and none before its deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_real_clock_wakes_every_sleeper_at_or_after_its_deadline() {
        let start = Instant::now();
        let offsets_us: Vec<i64> = vec![3_100, 250, -500, 2_000, 7_300, 0, 1_999, 4_600, 900, 12_000];
        let sleepers = offsets_us.iter().map(|&us| {
            let deadline = if us < 0 {
                start - Duration::from_micros(us.unsigned_abs())
            } else {
                start + Duration::from_micros(us.unsigned_abs())
            };
            tokio::spawn(async move {
                Clock::Real.sleep_until(deadline).await;
                (deadline, Instant::now())
            })
        });
        let woken = tokio::time::timeout(Duration::from_secs(30), futures_util::future::join_all(sleepers))
            .await
            .expect("every sleeper wakes");
        for result in woken {
            let (deadline, at) = result.unwrap();
            assert!(at >= deadline, "woke {:?} before its deadline", deadline - at);
        }
    }

    /// Under a paused tokio clock the wait stays on tokio's timer, which the paused clock jumps:
    /// an hour passes at once. (Had it gone to the timer thread, nothing would wake it and the
    /// two-hour timeout would fire first.)
    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_is_followed() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(3600);
        tokio::time::timeout(Duration::from_secs(7200), Clock::Real.sleep_until(deadline))
            .await
            .expect("the paused clock jumps to the deadline");
        assert!(Instant::now() >= deadline);
        assert!(Instant::now() < start + Duration::from_secs(7200));
    }
}
